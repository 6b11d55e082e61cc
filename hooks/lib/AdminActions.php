<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * The admin's module buttons. WHMCS posts them with no module fields, so
 * Restore and Remove act on the backup chosen in the service's pvekeep
 * fields, Retry and Reinstall on the service's failed restore; a reinstall
 * also needs its confirmation ticked there first (AdminView). Answers are
 * "success" or an escaped message: WHMCS prints them raw.
 */
final class AdminActions
{
    /** Button label => custom function. */
    public const BUTTONS = [
        'Backup now' => 'adminBackupCreate',
        'Restore selected backup' => 'adminBackupRestore',
        'Remove selected backup' => 'adminBackupRemove',
        'Retry restore' => 'adminRestoreRetry',
        'Reinstall (failed restore)' => 'adminRestoreReinstall',
    ];

    /**
     * The buttons for this service: Retry and Reinstall only while a failed
     * restore offers them. Without a service (or without an answer from the
     * plugin) every button is listed; each refuses what it cannot do.
     *
     * @param array<string, mixed> $params
     * @return array<string, string>
     */
    public static function buttons(array $params): array
    {
        if ((int) ($params['serviceid'] ?? 0) <= 0) {
            return self::BUTTONS;
        }
        try {
            $o = AdminView::overview($params);
        } catch (\Throwable $e) {
            return self::BUTTONS;
        }
        $next = is_array($o['failed_restore'] ?? null) ? (array) ($o['failed_restore']['next_actions'] ?? []) : [];
        $out = [];
        foreach (self::BUTTONS as $label => $fn) {
            if (($fn === 'adminRestoreRetry' && !in_array('retry', $next, true))
                || ($fn === 'adminRestoreReinstall' && !in_array('reinstall', $next, true))) {
                continue;
            }
            $out[$label] = $fn;
        }
        return $out;
    }

    /**
     * @param array<string, mixed> $params
     * @return string "success" or an HTML-escaped message
     */
    public static function run(string $name, array $params): string
    {
        if (defined('CLIENTAREA') || !in_array($name, self::BUTTONS, true)) {
            return Http::escape('This is an admin command.');
        }
        if (defined('ADMINAREA')) {
            // WHMCS's admin UI sends these buttons itself (runModuleCommand,
            // AJAX); whether as GET or POST is not public, so the method is
            // not the guard. An admin session and WHMCS's admin token are:
            // a request bearing the token cannot be forged from another
            // site, GET or POST. (Client-area functions stay POST-only.)
            if ((int) ($_SESSION['adminid'] ?? 0) <= 0) {
                return Http::escape('Admin commands need a logged-in admin. Nothing was changed.');
            }
            if (!Input::checkToken('WHMCS.admin.default')) {
                return Http::escape('The request carried no valid security token. Nothing was changed.');
            }
        }
        try {
            $refusal = self::perform($name, $params);
        } catch (\Throwable $e) {
            return Http::escape(self::message($e));
        } finally {
            AdminView::forget(); // the page drawn after the command shows its effect
        }
        return $refusal === '' ? 'success' : Http::escape($refusal);
    }

    /**
     * What an admin reads for a failure: the plugin's own message (English,
     * says what is wrong) or why it could not be run; the module log has
     * the details.
     */
    public static function message(\Throwable $e): string
    {
        if ($e instanceof \PvekeepRpcException) {
            $data = $e->getData();
            $detail = isset($data['detail']) && is_string($data['detail']) ? ' (' . $data['detail'] . ')' : '';
            return 'pvekeep: ' . $e->getMessage() . $detail;
        }
        if ($e instanceof \PvekeepTransportException) {
            $said = ModuleLog::lastLines($e->getStderr());
            return $e->getMessage() . ($said !== '' ? ': ' . $said : ' (the module log has the plugin\'s own output).');
        }
        return 'pvekeep: ' . $e->getMessage();
    }

    /**
     * Runs one command; returns '' when done, else why it was not started.
     *
     * @param array<string, mixed> $params
     */
    private static function perform(string $name, array $params): string
    {
        if ($name === 'adminBackupCreate') {
            Rpc::service('backups.create', $params, ['note' => '']);
            return '';
        }
        $o = AdminView::overview($params, true);
        switch ($name) {
            case 'adminBackupRestore':
            case 'adminBackupRemove':
                $id = (int) ($o['selected_backup_id'] ?? 0);
                if ($id <= 0) {
                    return 'No backup is selected: choose one under "pvekeep Backups" below, click Save Changes, then this button again.';
                }
                Rpc::service($name === 'adminBackupRestore' ? 'backups.restore' : 'backups.remove', $params, ['backup_id' => $id]);
                return '';
            case 'adminRestoreRetry':
                $failed = is_array($o['failed_restore'] ?? null) ? $o['failed_restore'] : null;
                if ($failed === null || !in_array('retry', (array) ($failed['next_actions'] ?? []), true)) {
                    return 'There is no failed restore to retry on this service.';
                }
                Rpc::service('restore.retry', $params, ['job_id' => (int) $failed['id']]);
                return '';
            default: // adminRestoreReinstall
                $failed = is_array($o['failed_restore'] ?? null) ? $o['failed_restore'] : null;
                if ($failed === null || !in_array('reinstall', (array) ($failed['next_actions'] ?? []), true)) {
                    return 'Reinstall is only offered after a restore that failed and left the VM unusable; this service has none.';
                }
                $serviceId = (int) ($params['serviceid'] ?? 0);
                if (AdminView::confirmedJob($serviceId) !== (int) $failed['id']) {
                    return 'Confirm first: tick "Allow Reinstall" under "pvekeep Failed restore" below, click Save Changes,'
                        . ' then this button again.';
                }
                unset($_SESSION['pvekeep_reinstall'][$serviceId]); // one confirmation, one reinstall
                Rpc::service('restore.reinstall', $params, ['job_id' => (int) $failed['id']]);
                return '';
        }
    }
}
