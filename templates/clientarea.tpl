{* pvekeep client area: the service's backups.
   pvekeep_clientarea_view() (hooks/pvekeep.php) hands over the plugin's facts
   and display-ready strings in the client's language; every other string
   comes from lang/<language>.json through $pvekeep_lang. This file only
   prints them, each one escaped (notes are the client's own text). The
   data-pvekeep attributes and pvekeep-* classes are stable: the browser
   tests (internal/e2e/clientarea_test.go) and themes rely on them. A
   button that destroys something asks first: its data-confirm text. *}
<div class="pvekeep" data-pvekeep="page" lang="{$pvekeep_lang_code|escape}">
  <h3 class="pvekeep-title">{$pvekeep_lang['backups.title']|escape}</h3>

  {if $pvekeep_failed_restore}
    <div class="alert alert-danger pvekeep-failed" data-pvekeep="failed-restore" data-job-id="{$pvekeep_failed_restore.id|escape}">
      <p class="pvekeep-failed-message">{$pvekeep_failed_restore.message|escape}</p>
      {if $pvekeep_failed_restore.error_text}
        <p class="pvekeep-failed-error"><small>{$pvekeep_failed_restore.error_text|escape}</small></p>
      {/if}
      {if $pvekeep_failed_restore.finished_text}
        <p class="pvekeep-failed-time"><small><time datetime="{$pvekeep_failed_restore.finished_at|escape}">{$pvekeep_failed_restore.finished_text|escape}</time></small></p>
      {/if}
      {if $pvekeep_failed_restore.can_retry || $pvekeep_failed_restore.can_reinstall}
        <form method="post" action="clientarea.php?action=productdetails&amp;id={$serviceid|escape:'url'}" class="pvekeep-failed-actions">
          <input type="hidden" name="modop" value="custom">
          <input type="hidden" name="pvekeep_job_id" value="{$pvekeep_failed_restore.id|escape}">
          {if $pvekeep_failed_restore.can_retry}
            <button type="submit" name="a" value="restoreRetry" class="btn btn-warning" data-pvekeep="restore-retry"
              data-confirm="{$pvekeep_failed_restore.retry_warning|escape}" onclick="return confirm(this.dataset.confirm)">{$pvekeep_failed_restore.retry_label|escape}</button>
          {/if}
          {if $pvekeep_failed_restore.can_reinstall}
            <button type="submit" name="a" value="restoreReinstall" class="btn btn-danger" data-pvekeep="restore-reinstall"
              data-confirm="{$pvekeep_lang['reinstall.warning']|escape}" onclick="return confirm(this.dataset.confirm)">{$pvekeep_lang['button.reinstall']|escape}</button>
          {/if}
        </form>
      {/if}
    </div>
  {/if}

  {if $pvekeep_failed_backup}
    <div class="alert alert-warning pvekeep-failed-backup" data-pvekeep="failed-backup" data-job-id="{$pvekeep_failed_backup.id|escape}">
      <p class="pvekeep-failed-message">{$pvekeep_failed_backup.message|escape}</p>
      {if $pvekeep_failed_backup.error_text}
        <p class="pvekeep-failed-error"><small>{$pvekeep_failed_backup.error_text|escape}</small></p>
      {/if}
      {if $pvekeep_failed_backup.finished_text}
        <p class="pvekeep-failed-time"><small><time datetime="{$pvekeep_failed_backup.finished_at|escape}">{$pvekeep_failed_backup.finished_text|escape}</time></small></p>
      {/if}
    </div>
  {/if}

  {if $pvekeep_active_job}
    <div class="alert alert-info pvekeep-job" data-pvekeep="active-job" data-job-id="{$pvekeep_active_job.id|escape}"
      data-job-kind="{$pvekeep_active_job.kind|escape}" data-job-state="{$pvekeep_active_job.state|escape}">
      <p>
        <strong class="pvekeep-job-kind">{$pvekeep_active_job.kind_text|escape}</strong>
        <span class="pvekeep-job-state">{$pvekeep_active_job.state_text|escape}</span>
      </p>
      <progress class="pvekeep-job-progress" max="100" value="{$pvekeep_active_job.progress|escape}"
        aria-label="{$pvekeep_active_job.progress_text|escape}">{$pvekeep_active_job.progress_text|escape}</progress>
      <span class="pvekeep-job-percent">{$pvekeep_active_job.progress_text|escape}</span>
      <p><small class="pvekeep-job-started">{$pvekeep_active_job.started_text|escape}</small>
        <a href="clientarea.php?action=productdetails&amp;id={$serviceid|escape:'url'}" class="pvekeep-refresh" data-pvekeep="refresh">{$pvekeep_lang['job.refresh']|escape}</a></p>
    </div>
  {/if}

  {if $pvekeep_lock.locked}
    <div class="alert alert-warning pvekeep-lock" data-pvekeep="lock" data-lock-reason="{$pvekeep_lock.reason|escape}">{$pvekeep_lock.text|escape}</div>
  {/if}

  {if $pvekeep_quota.enabled}
    <p class="pvekeep-quota" data-pvekeep="quota" data-used="{$pvekeep_quota.used|escape}" data-max="{$pvekeep_quota.max|escape}">{$pvekeep_quota.text|escape}</p>
  {/if}

  {if $pvekeep_notice.kind}
    <div class="alert alert-info pvekeep-notice" data-pvekeep="notice" data-notice="{$pvekeep_notice.kind|escape}">{$pvekeep_notice.text|escape}</div>
  {/if}

  {if $pvekeep_backups}
    <table class="table pvekeep-backups" data-pvekeep="backups">
      <thead>
        <tr>
          <th>{$pvekeep_lang['backups.column.created']|escape}</th>
          <th>{$pvekeep_lang['backups.column.note']|escape}</th>
          <th>{$pvekeep_lang['backups.column.size']|escape}</th>
          <th>{$pvekeep_lang['backups.column.status']|escape}</th>
          <th>{$pvekeep_lang['backups.column.actions']|escape}</th>
        </tr>
      </thead>
      <tbody>
      {foreach $pvekeep_backups as $b}
        <tr class="pvekeep-backup" data-pvekeep="backup" data-backup-id="{$b.id|escape}" data-status="{$b.status|escape}">
          <td class="text-nowrap"><time class="pvekeep-backup-created" datetime="{$b.created_at|escape}">{$b.created_text|escape}</time></td>
          <td><span class="pvekeep-backup-note">{$b.note|escape}</span>
            {if $b.origin_text}<span class="label label-default pvekeep-backup-origin">{$b.origin_text|escape}</span>{/if}</td>
          <td class="pvekeep-backup-size text-nowrap" data-bytes="{$b.size_bytes|escape}">{$b.size_text|escape}</td>
          <td class="pvekeep-backup-status">{$b.status_text|escape}</td>
          <td class="pvekeep-backup-actions">
            {if $b.can_act}
              <form method="post" action="clientarea.php?action=productdetails&amp;id={$serviceid|escape:'url'}">
                <input type="hidden" name="modop" value="custom">
                <input type="hidden" name="pvekeep_backup_id" value="{$b.id|escape}">
                <input type="hidden" name="pvekeep_token" value="{$b.restore_token|escape}">
                <button type="submit" name="a" value="backupRestore" class="btn btn-warning btn-sm" data-pvekeep="backup-restore"
                  data-confirm="{$pvekeep_lang['restore.warning']|escape}" onclick="return confirm(this.dataset.confirm)">{$pvekeep_lang['button.backup_restore']|escape}</button>
                <button type="submit" name="a" value="backupRemove" class="btn btn-default btn-sm" data-pvekeep="backup-remove"
                  data-confirm="{$pvekeep_lang['remove.warning']|escape}" onclick="return confirm(this.dataset.confirm)">{$pvekeep_lang['button.backup_remove']|escape}</button>
              </form>
            {/if}
          </td>
        </tr>
      {/foreach}
      </tbody>
    </table>
  {elseif $pvekeep_quota.enabled}
    <p class="pvekeep-empty" data-pvekeep="empty">{$pvekeep_lang['backups.none']|escape}</p>
  {/if}

  {if $pvekeep_can_backup}
    <form method="post" action="clientarea.php?action=productdetails&amp;id={$serviceid|escape:'url'}" class="pvekeep-create" data-pvekeep="backup-create">
      <input type="hidden" name="modop" value="custom">
      <input type="hidden" name="a" value="backupCreate">
      <input type="hidden" name="pvekeep_token" value="{$pvekeep_form_token|escape}">
      <label for="pvekeep-note">{$pvekeep_lang['backups.note_label']|escape}</label>
      <input type="text" id="pvekeep-note" name="pvekeep_note" maxlength="512" class="form-control"
        placeholder="{$pvekeep_lang['backups.note_placeholder']|escape}">
      <button type="submit" class="btn btn-primary" data-pvekeep="backup-create-submit">{$pvekeep_lang['button.backup_create']|escape}</button>
    </form>
  {/if}
</div>
