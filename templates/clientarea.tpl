{* pvekeep client area: the service's backups. Every string comes from
   lang/<language>.json through $pvekeep_lang; every value is escaped. *}
<div class="pvekeep">
  <h3>{$pvekeep_lang['backups.title']|escape}</h3>
  <p class="pvekeep-quota">{$pvekeep_lang['backups.quota']|replace:'{used}':$pvekeep_quota.used|replace:'{max}':$pvekeep_quota.max|escape}</p>

  {if $pvekeep_failed_restore}
    <div class="alert alert-danger">
      <p>{$pvekeep_lang['restore.failed']|escape}</p>
      <p>{$pvekeep_failed_restore.error|escape}</p>
      <form method="post" action="clientarea.php?action=productdetails&amp;id={$serviceid|escape:'url'}">
        <input type="hidden" name="modop" value="custom">
        <input type="hidden" name="pvekeep_job_id" value="{$pvekeep_failed_restore.id|escape}">
        <button type="submit" name="a" value="restoreRetry" class="btn btn-warning">{$pvekeep_lang['button.restore_retry']|escape}</button>
        <button type="submit" name="a" value="restoreReinstall" class="btn btn-danger"
          onclick="return confirm('{$pvekeep_lang['reinstall.warning']|escape:'javascript'}')">{$pvekeep_lang['button.reinstall']|escape}</button>
      </form>
    </div>
  {/if}

  {if $pvekeep_status.lock.locked}
    <div class="alert alert-info">{$pvekeep_lang['error.locked']|replace:'{lock}':$pvekeep_status.lock.reason|escape}</div>
  {/if}

  <table class="table">
    <tbody>
    {foreach $pvekeep_backups as $b}
      <tr>
        <td>{$b.created_at|escape}</td>
        <td>{$b.note|escape}</td>
        <td>{$b.size_bytes|escape}</td>
        <td>{$b.status|escape}</td>
        <td>
          {if $b.status == 'available' && !$pvekeep_status.lock.locked}
          <form method="post" action="clientarea.php?action=productdetails&amp;id={$serviceid|escape:'url'}">
            <input type="hidden" name="modop" value="custom">
            <input type="hidden" name="pvekeep_backup_id" value="{$b.id|escape}">
            <button type="submit" name="a" value="backupRestore" class="btn btn-warning"
              onclick="return confirm('{$pvekeep_lang['restore.warning']|escape:'javascript'}')">{$pvekeep_lang['button.backup_restore']|escape}</button>
            <button type="submit" name="a" value="backupRemove" class="btn btn-default"
              onclick="return confirm('{$pvekeep_lang['remove.warning']|escape:'javascript'}')">{$pvekeep_lang['button.backup_remove']|escape}</button>
          </form>
          {/if}
        </td>
      </tr>
    {/foreach}
    </tbody>
  </table>

  {if !$pvekeep_status.lock.locked && $pvekeep_quota.used < $pvekeep_quota.max}
  <form method="post" action="clientarea.php?action=productdetails&amp;id={$serviceid|escape:'url'}">
    <input type="hidden" name="modop" value="custom">
    <input type="hidden" name="a" value="backupCreate">
    <input type="hidden" name="pvekeep_token" value="{$pvekeep_form_token|escape}">
    <input type="text" name="pvekeep_note" maxlength="512">
    <button type="submit" class="btn btn-primary">{$pvekeep_lang['button.backup_create']|escape}</button>
  </form>
  {/if}
</div>
