{*
  pvekeep: the service's backups, added to WHMCS's product details overview
  (tabOverviewModuleOutputTemplate: the billing details stay WHMCS's).
  ClientAreaView (hooks/lib/ClientAreaView.php) hands over the plugin's facts
  and display-ready strings in the client's language; every other string
  comes from lang/<language>.json as $pvekeep_lang. Every variable is
  escaped here, and only here.

  Markup fits both themes: Bootstrap 4 (twenty-one: .card, .badge) and
  Bootstrap 3 (six: .panel, .label) classes side by side; tables in
  .table-responsive; the theme's own .progress/.progress-bar.

  Every form POSTs with WHMCS's CSRF token; the module answers with a 303
  back here and a one-time flash message. While a job runs, the inline
  script polls GET ...&pvekeep_poll=JOB (JSON, read-only) and moves the
  progress bar; when the job ends it loads the page once more.

  Stable selectors (browser tests and themes rely on them):
    #pvekeep                         the whole block; [lang] is the language used
    #pvekeep-flash                   the outcome of the last form (data-kind success|danger); the schedule's
                                     in the schedule card, every other at the top of the backups card
    #pvekeep-status                  VM facts; .pvekeep-checked = their age
    #pvekeep-job                     running job (data-job-id, data-job-state, data-poll-url)
    #pvekeep-job-progress .progress-bar   its progress (aria-valuenow)
    #pvekeep-job .pvekeep-job-progress-text  its progress in words ("42% done"), beside the bar
    #pvekeep-job .pvekeep-job-state  its state in words
    #pvekeep-lock                    why nothing can be done now
    #pvekeep-notice                  why there is no Backup now (data-notice: disabled | vm-unusable | quota-full);
                                     none while #pvekeep-lock shows
    #pvekeep-quota                   "n of m backups used" (data-used, data-max)
    #pvekeep-failed-restore          failed restore (data-job-id); buttons [data-pvekeep=restore-retry|restore-reinstall]
    #pvekeep-failed-backup           failed backup or removal
    table#pvekeep-backups            backups; rows tr[data-pvekeep-backup-id] (data-status)
      form.pvekeep-backup-actions    per row: [data-pvekeep=backup-restore], [data-pvekeep=backup-remove]
    form#pvekeep-backup-create       Backup now: input#pvekeep-note[name=pvekeep_note], [data-pvekeep=backup-create-submit]
    #pvekeep-suspended               the service is suspended: why, and that nothing can be changed (no forms then)
      tr .pvekeep-backup-kept        the row's backup is kept (Proxmox's protected flag: rotation never removes it)
      form.pvekeep-backup-keep       per row: [data-pvekeep=backup-keep] toggles it (aria-pressed = kept now)
    #pvekeep-schedule                the schedule card (data-timezone, data-next-run-at, data-window)
      #pvekeep-schedule-next         the next run in words (time[datetime] when there is one)
      #pvekeep-schedule-skipped      why the last scheduled run was skipped (data-reason)
      #pvekeep-schedule-failed       the last scheduled backup failed (being retried, or given up)
      #pvekeep-schedule-run          the last scheduled backup waits (locked, rotating, its host's turn), is
                                     removing older backups, or was made above the quota (data-state, data-reason)
      #pvekeep-schedule-window       the product picks the time inside a window (no time inputs then)
      form#pvekeep-schedule-form     tr[data-day=mon..sun]: input[name=pvekeep_day_DAY] (checkbox),
                                     input[name=pvekeep_time_DAY]; select#pvekeep-timezone; [data-pvekeep=schedule-save]
      .pvekeep-schedule-rotate       the note on rotation
    #pvekeep-snapshots               the Snapshots card (only when the package has snapshots)
      #pvekeep-snapshots-quota       the counter "2/3" (data-used, data-max)
      #pvekeep-snapshots-lock        why the buttons are greyed (while the server is busy)
      #pvekeep-snapshots-failed      a snapshot job of the client's that failed (data-job-id)
      #pvekeep-snapshots-removed     the notice that a restore removed the snapshots
      table#pvekeep-snapshot-list    rows tr[data-pvekeep-snapshot] (data-status, data-vmstate);
        .pvekeep-snapshot-remaining  the remaining lifetime (data-remaining-s; counts down)
        [data-pvekeep=snapshot-rollback], [data-pvekeep=snapshot-remove]  confirmed buttons
      form#pvekeep-snapshot-create   input#pvekeep-snapshot-description, input#pvekeep-snapshot-ram
                                     (only for a running VM on a product that allows RAM),
                                     [data-pvekeep=snapshot-create-submit]
      .pvekeep-snapshots-note        "snapshots are not backups"
  (the older [data-pvekeep=…] names stay on the same elements.)
*}
{*
  The title as the themes' own headers: six's .panel-title is 16px; a
  twenty-one .card-title is an h3 at 1.75rem unless sized (its sidebar
  cards use 1rem). The progress text sits beside the bar, never inside it:
  a bar of a few percent would cut it off.
*}
<style>
#pvekeep .pvekeep-title { font-size: 16px; margin: 0; line-height: 1.3; }
#pvekeep .pvekeep-job-progress { margin-bottom: 5px; }
#pvekeep td.pvekeep-backup-actions > form { display: inline-block; margin: 0; }
#pvekeep .pvekeep-backup-kept { background-color: #17a2b8; color: #fff; }
#pvekeep .pvekeep-card + .pvekeep-card { margin-top: 20px; }
#pvekeep table.pvekeep-schedule-days { width: auto; min-width: 18em; }
#pvekeep .pvekeep-schedule-days td { vertical-align: middle; padding-right: 2em; }
#pvekeep .pvekeep-schedule-days .checkbox, #pvekeep .pvekeep-schedule-days .form-check { margin: 0; }
#pvekeep .pvekeep-schedule-days input[type=time] { width: 9em; }
#pvekeep #pvekeep-timezone { max-width: 20em; }
#pvekeep .pvekeep-schedule-rotate { margin-top: 15px; }
#pvekeep .pvekeep-snapshots-note { margin: 10px 0 0; }
</style>
<div id="pvekeep" class="pvekeep text-left" data-pvekeep="page" lang="{$pvekeep_lang_code|escape}">
  <div class="card panel panel-default pvekeep-card">
    <div class="card-header panel-heading">
      <h3 class="card-title panel-title m-0 pvekeep-title">{$pvekeep_lang['backups.title']|escape}</h3>
    </div>
    <div class="card-body panel-body">

  {if $pvekeep_suspended}
    <div id="pvekeep-suspended" class="alert alert-warning pvekeep-suspended" role="alert" data-pvekeep="suspended">
      <p class="mb-0">{$pvekeep_suspended.text|escape}</p>
      {if $pvekeep_suspended.reason_text}<p class="mb-0 pvekeep-suspended-reason"><strong>{$pvekeep_suspended.reason_text|escape}</strong></p>{/if}
    </div>
  {/if}

  {if $pvekeep_flash && $pvekeep_flash_card == ''}
    <div id="pvekeep-flash" class="alert alert-{$pvekeep_flash.kind|escape} pvekeep-flash" role="alert" data-pvekeep="flash" data-kind="{$pvekeep_flash.kind|escape}">{$pvekeep_flash.text|escape}</div>
  {/if}

  <p id="pvekeep-status" class="small text-muted pvekeep-status" data-pvekeep="status" data-power="{$pvekeep_status.power|escape}" data-checked-at="{$pvekeep_status.checked_at|escape}">
    {if $pvekeep_status.power_text}<span class="pvekeep-power">{$pvekeep_status.power_text|escape}</span> &middot; {/if}
    <span class="pvekeep-checked">{$pvekeep_status.checked_text|escape}</span>
  </p>

  {if $pvekeep_failed_restore}
    <div id="pvekeep-failed-restore" class="alert alert-danger pvekeep-failed" data-pvekeep="failed-restore" data-job-id="{$pvekeep_failed_restore.id|escape}">
      <p class="pvekeep-failed-message">{$pvekeep_failed_restore.message|escape}</p>
      {if $pvekeep_failed_restore.error_text}
        <p class="pvekeep-failed-error"><small>{$pvekeep_failed_restore.error_text|escape}</small></p>
      {/if}
      {if $pvekeep_failed_restore.finished_text}
        <p class="pvekeep-failed-time"><small><time datetime="{$pvekeep_failed_restore.finished_at|escape}">{$pvekeep_failed_restore.finished_text|escape}</time></small></p>
      {/if}
      {if $pvekeep_failed_restore.can_retry || $pvekeep_failed_restore.can_reinstall}
        <form method="post" action="{$pvekeep_page_url|escape}" class="pvekeep-failed-actions">
          <input type="hidden" name="token" value="{$pvekeep_csrf|escape}">
          <input type="hidden" name="modop" value="custom">
          <input type="hidden" name="pvekeep_job_id" value="{$pvekeep_failed_restore.id|escape}">
          {if $pvekeep_failed_restore.can_retry}
            <button type="submit" name="a" value="restoreRetry" class="btn btn-warning" data-pvekeep="restore-retry"
              data-confirm="{$pvekeep_failed_restore.retry_warning|escape}" onclick="return confirm(this.getAttribute('data-confirm'))">{$pvekeep_failed_restore.retry_label|escape}</button>
          {/if}
          {if $pvekeep_failed_restore.can_reinstall}
            <button type="submit" name="a" value="restoreReinstall" class="btn btn-danger" data-pvekeep="restore-reinstall"
              data-confirm="{$pvekeep_lang['reinstall.warning']|escape}" onclick="return confirm(this.getAttribute('data-confirm'))">{$pvekeep_lang['button.reinstall']|escape}</button>
          {/if}
        </form>
      {/if}
    </div>
  {/if}

  {if $pvekeep_failed_backup}
    <div id="pvekeep-failed-backup" class="alert alert-warning pvekeep-failed-backup" data-pvekeep="failed-backup" data-job-id="{$pvekeep_failed_backup.id|escape}">
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
    <div id="pvekeep-job" class="alert alert-info pvekeep-job" data-pvekeep="active-job" data-job-id="{$pvekeep_active_job.id|escape}"
      data-job-kind="{$pvekeep_active_job.kind|escape}" data-job-state="{$pvekeep_active_job.state|escape}"
      data-poll-url="{$pvekeep_poll_url|escape}" data-page-url="{$pvekeep_page_url|escape}" data-poll-ms="2000">
      <p>
        <strong class="pvekeep-job-kind">{$pvekeep_active_job.kind_text|escape}</strong>
        <span class="pvekeep-job-state">{$pvekeep_active_job.state_text|escape}</span>
        &middot; <span class="pvekeep-job-progress-text">{$pvekeep_active_job.progress_text|escape}</span>
      </p>
      <div id="pvekeep-job-progress" class="progress pvekeep-job-progress">
        <div class="progress-bar progress-bar-striped progress-bar-animated active" role="progressbar"
          style="width: {$pvekeep_active_job.progress|escape}%;" aria-valuenow="{$pvekeep_active_job.progress|escape}"
          aria-valuemin="0" aria-valuemax="100" aria-valuetext="{$pvekeep_active_job.progress_text|escape}"></div>
      </div>
      {if $pvekeep_active_job.started_text}
        <p><small class="pvekeep-job-started">{$pvekeep_active_job.started_text|escape}</small></p>
      {/if}
    </div>
  {/if}

  {if $pvekeep_lock.locked}
    <div id="pvekeep-lock" class="alert alert-warning pvekeep-lock" data-pvekeep="lock" data-lock-reason="{$pvekeep_lock.reason|escape}">{$pvekeep_lock.text|escape}</div>
  {/if}

  {if $pvekeep_notice.kind}
    <div id="pvekeep-notice" class="alert alert-info pvekeep-notice" data-pvekeep="notice" data-notice="{$pvekeep_notice.kind|escape}">{$pvekeep_notice.text|escape}</div>
  {/if}

  {if $pvekeep_quota.enabled}
    <p id="pvekeep-quota" class="pvekeep-quota" data-pvekeep="quota" data-used="{$pvekeep_quota.used|escape}" data-max="{$pvekeep_quota.max|escape}">{$pvekeep_quota.text|escape}</p>
  {/if}

  {if $pvekeep_backups}
    <div class="table-responsive">
      <table id="pvekeep-backups" class="table table-striped table-sm table-condensed pvekeep-backups" data-pvekeep="backups">
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
          <tr class="pvekeep-backup" data-pvekeep="backup" data-pvekeep-backup-id="{$b.id|escape}" data-backup-id="{$b.id|escape}" data-status="{$b.status|escape}">
            <td class="text-nowrap"><time class="pvekeep-backup-created" datetime="{$b.created_at|escape}">{$b.created_text|escape}</time></td>
            <td><span class="pvekeep-backup-note">{$b.note|escape}</span>
              {if $b.origin_text}<span class="badge badge-secondary label label-default pvekeep-backup-origin">{$b.origin_text|escape}</span>{/if}
              {if $b.protected}<span class="badge badge-info label label-info pvekeep-backup-kept" data-pvekeep="kept" title="{$pvekeep_lang['schedule.keep.title']|escape}">{$pvekeep_lang['schedule.keep.badge']|escape}</span>{/if}</td>
            <td class="pvekeep-backup-size text-nowrap" data-bytes="{$b.size_bytes|escape}">{$b.size_text|escape}</td>
            <td class="pvekeep-backup-status">{$b.status_text|escape}</td>
            <td class="pvekeep-backup-actions text-nowrap">
              {if $b.can_act}
                <form method="post" action="{$pvekeep_page_url|escape}" class="pvekeep-backup-actions">
                  <input type="hidden" name="token" value="{$pvekeep_csrf|escape}">
                  <input type="hidden" name="modop" value="custom">
                  <input type="hidden" name="pvekeep_backup_id" value="{$b.id|escape}">
                  <input type="hidden" name="pvekeep_token" value="{$b.restore_token|escape}">
                  <button type="submit" name="a" value="backupRestore" class="btn btn-warning btn-sm" data-pvekeep="backup-restore"
                    data-confirm="{$pvekeep_lang['restore.warning']|escape}" onclick="return confirm(this.getAttribute('data-confirm'))">{$pvekeep_lang['button.backup_restore']|escape}</button>
                  {if !$b.protected}
                  <button type="submit" name="a" value="backupRemove" class="btn btn-default btn-outline-secondary btn-sm" data-pvekeep="backup-remove"
                    data-confirm="{$pvekeep_lang['remove.warning']|escape}" onclick="return confirm(this.getAttribute('data-confirm'))">{$pvekeep_lang['button.backup_remove']|escape}</button>
                  {/if}
                </form>
                <form method="post" action="{$pvekeep_page_url|escape}" class="pvekeep-backup-keep">
                  <input type="hidden" name="token" value="{$pvekeep_csrf|escape}">
                  <input type="hidden" name="modop" value="custom">
                  <input type="hidden" name="a" value="backupProtect">
                  <input type="hidden" name="pvekeep_backup_id" value="{$b.id|escape}">
                  <input type="hidden" name="pvekeep_protected" value="{if $b.protected}0{else}1{/if}">
                  <button type="submit" class="btn btn-default btn-outline-secondary btn-sm" data-pvekeep="backup-keep"
                    aria-pressed="{if $b.protected}true{else}false{/if}" title="{$b.keep_title|escape}">{if $b.protected}{$pvekeep_lang['schedule.keep.unbutton']|escape}{else}{$pvekeep_lang['schedule.keep.button']|escape}{/if}</button>
                </form>
              {/if}
            </td>
          </tr>
        {/foreach}
        </tbody>
      </table>
    </div>
  {elseif $pvekeep_quota.enabled}
    <p class="pvekeep-empty" data-pvekeep="empty">{$pvekeep_lang['backups.none']|escape}</p>
  {/if}

  {if $pvekeep_can_backup}
    <form id="pvekeep-backup-create" method="post" action="{$pvekeep_page_url|escape}" class="pvekeep-create" data-pvekeep="backup-create">
      <input type="hidden" name="token" value="{$pvekeep_csrf|escape}">
      <input type="hidden" name="modop" value="custom">
      <input type="hidden" name="a" value="backupCreate">
      <input type="hidden" name="pvekeep_token" value="{$pvekeep_form_token|escape}">
      <div class="form-group">
        <label for="pvekeep-note">{$pvekeep_lang['backups.note_label']|escape}</label>
        <input type="text" id="pvekeep-note" name="pvekeep_note" maxlength="512" class="form-control"
          placeholder="{$pvekeep_lang['backups.note_placeholder']|escape}">
      </div>
      <button type="submit" class="btn btn-primary" data-pvekeep="backup-create-submit">{$pvekeep_lang['button.backup_create']|escape}</button>
    </form>
  {/if}

    </div>
  </div>

  {* The schedule card (issue 9): its own block, after the backups card. *}
  {if $pvekeep_schedule}
  <div id="pvekeep-schedule" class="card panel panel-default pvekeep-card pvekeep-schedule" data-pvekeep="schedule"
    data-timezone="{$pvekeep_schedule.timezone|escape}" data-next-run-at="{$pvekeep_schedule.next_run_at|escape}"
    data-window="{if $pvekeep_schedule.window}{$pvekeep_schedule.window.start|escape}-{$pvekeep_schedule.window.end|escape}{/if}">
    <div class="card-header panel-heading">
      <h3 class="card-title panel-title m-0 pvekeep-title">{$pvekeep_lang['schedule.title']|escape}</h3>
    </div>
    <div class="card-body panel-body">
      {if $pvekeep_flash && $pvekeep_flash_card == 'schedule'}
        <div id="pvekeep-flash" class="alert alert-{$pvekeep_flash.kind|escape} pvekeep-flash" role="alert" data-pvekeep="flash" data-kind="{$pvekeep_flash.kind|escape}">{$pvekeep_flash.text|escape}</div>
      {/if}
      {if $pvekeep_schedule.skipped_text}
        <div id="pvekeep-schedule-skipped" class="alert alert-warning" data-reason="{$pvekeep_schedule.skipped_reason|escape}">{$pvekeep_schedule.skipped_text|escape}</div>
      {/if}
      {if $pvekeep_schedule.last_run_text}
        <div id="pvekeep-schedule-failed" class="alert alert-warning">{$pvekeep_schedule.last_run_text|escape}</div>
      {/if}
      {if $pvekeep_schedule.run_text}
        <div id="pvekeep-schedule-run" class="alert alert-{$pvekeep_schedule.run_alert|escape}" data-state="{$pvekeep_schedule.run_state|escape}" data-reason="{$pvekeep_schedule.run_reason|escape}">{$pvekeep_schedule.run_text|escape}</div>
      {/if}
      <p id="pvekeep-schedule-next" class="pvekeep-schedule-next">
        {if $pvekeep_schedule.next_run_at}<time datetime="{$pvekeep_schedule.next_run_at|escape}">{$pvekeep_schedule.next_run_text|escape}</time>{else}{$pvekeep_schedule.next_run_text|escape}{/if}
      </p>
      {if $pvekeep_schedule.window}
        <p id="pvekeep-schedule-window" class="pvekeep-schedule-window">{$pvekeep_schedule.window_text|escape}</p>
      {/if}
      {if $pvekeep_schedule.can_edit}
        <form id="pvekeep-schedule-form" method="post" action="{$pvekeep_page_url|escape}" class="pvekeep-schedule-form" data-pvekeep="schedule-form">
          <input type="hidden" name="token" value="{$pvekeep_csrf|escape}">
          <input type="hidden" name="modop" value="custom">
          <input type="hidden" name="a" value="scheduleSave">
          {if !$pvekeep_schedule.window}<p>{$pvekeep_lang['schedule.intro']|escape}</p>{/if}
          <div class="table-responsive">
            <table class="table table-sm table-condensed pvekeep-schedule-days">
              <tbody>
              {foreach $pvekeep_schedule.days as $d}
                <tr data-day="{$d.day|escape}" data-enabled="{if $d.enabled}1{else}0{/if}">
                  <td>
                    <div class="checkbox form-check">
                      <label class="form-check-label">
                        <input type="checkbox" class="form-check-input" name="pvekeep_day_{$d.day|escape}" value="1"{if $d.enabled} checked{/if}>
                        {$d.label|escape}
                      </label>
                    </div>
                  </td>
                  <td>
                    {if $pvekeep_schedule.window}
                      <input type="hidden" name="pvekeep_time_{$d.day|escape}" value="{$d.time|escape}">
                    {else}
                      <input type="time" class="form-control form-control-sm input-sm" name="pvekeep_time_{$d.day|escape}" value="{$d.time|escape}"
                        aria-label="{$d.time_label|escape}">
                    {/if}
                  </td>
                </tr>
              {/foreach}
              </tbody>
            </table>
          </div>
          <div class="form-group">
            <label for="pvekeep-timezone">{$pvekeep_lang['schedule.timezone_label']|escape}</label>
            <select id="pvekeep-timezone" name="pvekeep_timezone" class="form-control">
              {foreach $pvekeep_schedule.zones as $z}
                <option value="{$z|escape}"{if $z == $pvekeep_schedule.timezone} selected{/if}>{$z|escape}</option>
              {/foreach}
            </select>
          </div>
          <button type="submit" class="btn btn-primary" data-pvekeep="schedule-save">{$pvekeep_lang['schedule.save']|escape}</button>
        </form>
      {else}
        <ul class="list-unstyled pvekeep-schedule-days" data-pvekeep="schedule-days">
          {foreach $pvekeep_schedule.days as $d}
            {if $d.enabled}<li data-day="{$d.day|escape}">{$d.label|escape}{if !$pvekeep_schedule.window} {$d.time|escape}{/if}</li>{/if}
          {/foreach}
        </ul>
        <p class="pvekeep-schedule-timezone">{$pvekeep_schedule.timezone_text|escape}</p>
      {/if}
      <p class="small text-muted pvekeep-schedule-rotate mb-0">{$pvekeep_schedule.rotate_note|escape}</p>
    </div>
  </div>
  {/if}

  {if $pvekeep_snapshots.enabled}
  {$snap = $pvekeep_snapshots}
  <div id="pvekeep-snapshots" class="card panel panel-default pvekeep-card pvekeep-snapshots" data-pvekeep="snapshots">
    <div class="card-header panel-heading">
      <h3 class="card-title panel-title m-0 pvekeep-title">{$pvekeep_lang['snapshots.title']|escape}
        <span id="pvekeep-snapshots-quota" class="badge badge-secondary label label-default pvekeep-snapshots-quota"
          title="{$pvekeep_lang['snapshots.quota_label']|escape}" data-used="{$snap.quota.used|escape}" data-max="{$snap.quota.max|escape}">{$snap.quota.text|escape}</span>
      </h3>
    </div>
    <div class="card-body panel-body">
      {if $snap.locked}
        <p id="pvekeep-snapshots-lock" class="text-muted pvekeep-snapshots-lock" data-pvekeep="snapshots-lock">{$snap.lock_text|escape}</p>
      {/if}
      {if $snap.removed_by_restore}
        <div id="pvekeep-snapshots-removed" class="alert alert-info" data-pvekeep="snapshots-removed">{$snap.removed_by_restore|escape}</div>
      {/if}
      {if $snap.failed}
        <div id="pvekeep-snapshots-failed" class="alert alert-warning" data-pvekeep="snapshots-failed" data-job-id="{$snap.failed.id|escape}">
          <p class="pvekeep-failed-message">{$snap.failed.message|escape}</p>
          {if $snap.failed.error_text}<p class="pvekeep-failed-error"><small>{$snap.failed.error_text|escape}</small></p>{/if}
          {if $snap.failed.finished_text}<p class="pvekeep-failed-time"><small><time datetime="{$snap.failed.finished_at|escape}">{$snap.failed.finished_text|escape}</time></small></p>{/if}
        </div>
      {/if}

      {if $snap.items}
        <div class="table-responsive">
          <table id="pvekeep-snapshot-list" class="table table-striped table-sm table-condensed pvekeep-snapshot-list" data-pvekeep="snapshot-list"
            data-pattern="{$snap.remaining_pattern|escape}" data-pattern-one="{$snap.remaining_one_pattern|escape}" data-expiring="{$snap.expiring_text|escape}">
            <thead>
              <tr>
                <th>{$pvekeep_lang['snapshots.column.name']|escape}</th>
                <th>{$pvekeep_lang['snapshots.column.created']|escape}</th>
                <th>{$pvekeep_lang['snapshots.column.remaining']|escape}</th>
                <th>{$pvekeep_lang['snapshots.column.actions']|escape}</th>
              </tr>
            </thead>
            <tbody>
            {foreach $snap.items as $sn}
              <tr class="pvekeep-snapshot" data-pvekeep-snapshot="{$sn.name|escape}" data-status="{$sn.status|escape}" data-vmstate="{if $sn.vmstate}1{else}0{/if}">
                <td>
                  <span class="pvekeep-snapshot-description">{if $sn.description}{$sn.description|escape}{else}<span class="text-muted">{$sn.name|escape}</span>{/if}</span>
                  {if $sn.vmstate}<span class="badge badge-info label label-info pvekeep-snapshot-ram">{$pvekeep_lang['snapshots.ram']|escape}</span>{/if}
                  {if $sn.status_text}<span class="badge badge-secondary label label-default pvekeep-snapshot-status">{$sn.status_text|escape}</span>{/if}
                </td>
                <td class="text-nowrap"><time class="pvekeep-snapshot-created" datetime="{$sn.created_at|escape}">{$sn.created_text|escape}</time></td>
                <td class="text-nowrap"><span class="pvekeep-snapshot-remaining" {if isset($sn.remaining_s)}data-remaining-s="{$sn.remaining_s|escape}" title="{$sn.expires_at|escape}"{/if}>{$sn.remaining_text|escape}</span></td>
                <td class="text-nowrap">
                  {if $sn.offered}
                    {* One form per button: each carries its own idempotency key. *}
                    <form method="post" action="{$pvekeep_page_url|escape}" class="pvekeep-snapshot-actions d-inline" style="display: inline;">
                      <input type="hidden" name="token" value="{$pvekeep_csrf|escape}">
                      <input type="hidden" name="modop" value="custom">
                      <input type="hidden" name="pvekeep_snapshot_name" value="{$sn.name|escape}">
                      <input type="hidden" name="pvekeep_token" value="{$sn.rollback_token|escape}">
                      <button type="submit" name="a" value="snapshotRollback" class="btn btn-warning btn-sm" data-pvekeep="snapshot-rollback"
                        {if $snap.locked}disabled title="{$snap.lock_text|escape}"{/if}
                        data-confirm="{$sn.rollback_warning|escape}" onclick="return confirm(this.getAttribute('data-confirm'))">{$pvekeep_lang['button.snapshot_rollback']|escape}</button>
                    </form>
                    <form method="post" action="{$pvekeep_page_url|escape}" class="pvekeep-snapshot-actions d-inline" style="display: inline;">
                      <input type="hidden" name="token" value="{$pvekeep_csrf|escape}">
                      <input type="hidden" name="modop" value="custom">
                      <input type="hidden" name="pvekeep_snapshot_name" value="{$sn.name|escape}">
                      <input type="hidden" name="pvekeep_token" value="{$sn.remove_token|escape}">
                      <button type="submit" name="a" value="snapshotRemove" class="btn btn-default btn-outline-secondary btn-sm" data-pvekeep="snapshot-remove"
                        {if $snap.locked}disabled title="{$snap.lock_text|escape}"{/if}
                        data-confirm="{$pvekeep_lang['snapshot.remove_warning']|escape}" onclick="return confirm(this.getAttribute('data-confirm'))">{$pvekeep_lang['button.snapshot_remove']|escape}</button>
                    </form>
                  {/if}
                </td>
              </tr>
            {/foreach}
            </tbody>
          </table>
        </div>
      {else}
        <p class="pvekeep-empty" data-pvekeep="snapshots-empty">{$pvekeep_lang['snapshots.none']|escape}</p>
      {/if}

      {if $snap.full_text}
        <p class="text-muted pvekeep-snapshots-full" data-pvekeep="snapshots-full">{$snap.full_text|escape}</p>
      {/if}
      {if $snap.can_create}
        <form id="pvekeep-snapshot-create" method="post" action="{$pvekeep_page_url|escape}" class="pvekeep-create" data-pvekeep="snapshot-create">
          <input type="hidden" name="token" value="{$pvekeep_csrf|escape}">
          <input type="hidden" name="modop" value="custom">
          <input type="hidden" name="a" value="snapshotCreate">
          <input type="hidden" name="pvekeep_token" value="{$snap.create_token|escape}">
          <div class="form-group">
            <label for="pvekeep-snapshot-description">{$pvekeep_lang['snapshots.description_label']|escape}</label>
            <input type="text" id="pvekeep-snapshot-description" name="pvekeep_snapshot_description" maxlength="255" class="form-control"
              placeholder="{$pvekeep_lang['snapshots.description_placeholder']|escape}" {if $snap.locked}disabled{/if}>
          </div>
          {if $snap.ram_offered}
            <div class="form-check checkbox">
              <label class="form-check-label">
                <input type="checkbox" id="pvekeep-snapshot-ram" name="pvekeep_snapshot_ram" value="1" class="form-check-input" {if $snap.locked}disabled{/if}>
                {$pvekeep_lang['snapshots.ram_label']|escape}
              </label>
            </div>
          {/if}
          <button type="submit" class="btn btn-primary" data-pvekeep="snapshot-create-submit"
            {if $snap.locked}disabled title="{$snap.lock_text|escape}"{/if}>{$pvekeep_lang['button.snapshot_create']|escape}</button>
        </form>
      {/if}
      <p class="small text-muted pvekeep-snapshots-note">{$snap.lifetime_text|escape} {$pvekeep_lang['snapshots.not_backups']|escape}</p>
    </div>
  </div>
  {/if}
</div>
{if $pvekeep_snapshots.items}
<script>
{literal}
(function () {
  // Counts each remaining lifetime down from the plugin's figure at page
  // load, on the browser's monotonic clock (the client's wall clock may
  // be wrong); the patterns are the page's language's.
  var table = document.getElementById('pvekeep-snapshot-list');
  if (!table) {
    return;
  }
  var cells = table.querySelectorAll('.pvekeep-snapshot-remaining[data-remaining-s]');
  var start = window.performance && performance.now ? performance.now() : Date.now();
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function draw() {
    var now = window.performance && performance.now ? performance.now() : Date.now();
    var gone = Math.floor((now - start) / 1000);
    for (var i = 0; i < cells.length; i++) {
      var left = parseInt(cells[i].getAttribute('data-remaining-s'), 10) - gone;
      if (left <= 0) {
        cells[i].textContent = table.getAttribute('data-expiring');
        continue;
      }
      var days = Math.floor(left / 86400);
      var hms = pad(Math.floor(left % 86400 / 3600)) + ':' + pad(Math.floor(left % 3600 / 60)) + ':' + pad(left % 60);
      var pattern = table.getAttribute(days === 1 ? 'data-pattern-one' : 'data-pattern');
      cells[i].textContent = pattern.split('{days}').join(String(days)).split('{hms}').join(hms);
    }
  }
  window.setInterval(draw, 1000);
})();
{/literal}
</script>
{/if}
{if $pvekeep_active_job}
<script>
{literal}
(function () {
  var box = document.getElementById('pvekeep-job');
  if (!box || !window.fetch || !box.getAttribute('data-poll-url')) {
    return;
  }
  var bar = box.querySelector('.progress-bar');
  var label = box.querySelector('.pvekeep-job-progress-text');
  var state = box.querySelector('.pvekeep-job-state');
  var every = parseInt(box.getAttribute('data-poll-ms'), 10) || 2000;
  var ended = false;
  function tick() {
    fetch(box.getAttribute('data-poll-url'), {credentials: 'same-origin', headers: {'Accept': 'application/json'}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (ended || !d || !d.job) {
          return;
        }
        bar.style.width = d.job.progress + '%';
        bar.setAttribute('aria-valuenow', String(d.job.progress));
        bar.setAttribute('aria-valuetext', d.job.progress_text);
        label.textContent = d.job.progress_text;
        state.textContent = d.job.state_text;
        box.setAttribute('data-job-state', d.job.state);
        if (d.job.done) {
          ended = true;
          window.clearInterval(timer);
          window.location.replace(box.getAttribute('data-page-url'));
        }
      })
      .catch(function () {});
  }
  var timer = window.setInterval(tick, every);
})();
{/literal}
</script>
{/if}
