<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * The client area's forms: each custom function the page posts to. In the
 * client area only a POST with WHMCS's CSRF token changes anything (WHMCS
 * routes modop=custom from GET links too); the outcome goes to a flash
 * message and the browser is sent back to the page (303), so F5 never
 * posts again. Elsewhere (the API's ModuleCustom) WHMCS has already
 * decided, and the answer is returned as WHMCS expects: "success" or an
 * escaped message.
 */
final class ClientActions
{
    /**
     * Custom function => [plugin method, success message key].
     */
    public const ACTIONS = [
        'backupCreate' => ['backups.create', 'flash.backup_create'],
        'backupRemove' => ['backups.remove', 'flash.backup_remove'],
        'backupRestore' => ['backups.restore', 'flash.backup_restore'],
        'restoreRetry' => ['restore.retry', 'flash.restore_retry'],
        'restoreReinstall' => ['restore.reinstall', 'flash.restore_reinstall'],
        'scheduleSave' => ['schedule.set', 'schedule.saved'],
        'backupProtect' => ['backups.protect', 'schedule.keep.flash_on'],
        'snapshotCreate' => ['snapshots.create', 'flash.snapshot_create'],
        'snapshotRollback' => ['snapshots.rollback', 'flash.snapshot_rollback'],
        'snapshotRemove' => ['snapshots.remove', 'flash.snapshot_remove'],
    ];

    /**
     * Runs the function and answers the browser: in the client area a POST
     * ends in a redirect; anything else returns WHMCS's answer.
     *
     * @param array<string, mixed> $params
     */
    public static function respond(string $name, array $params): string
    {
        $result = self::run($name, $params);
        if (defined('CLIENTAREA') && Input::isPost()) {
            Http::seeOther((int) ($params['serviceid'] ?? 0));
        }
        return $result;
    }

    /**
     * Runs the function; in the client area a POST's outcome is also kept
     * as the page's flash message.
     *
     * @param array<string, mixed> $params
     * @return string "success" or an HTML-escaped message
     */
    public static function run(string $name, array $params): string
    {
        $lang = Lang::forParams($params);
        if (!isset(self::ACTIONS[$name])) {
            return Http::escape($lang->get('error.invalid_state'));
        }
        $serviceId = (int) ($params['serviceid'] ?? 0);
        if (defined('CLIENTAREA')) {
            if (!Input::isPost()) {
                // A link or a crafted GET: nothing destructive on GET.
                return Http::escape($lang->get('error.post_only'));
            }
            if (!Input::checkToken('WHMCS.default')) {
                Http::flash($serviceId, 'danger', $lang->get('error.csrf'));
                return Http::escape($lang->get('error.csrf'));
            }
        }
        list($method, $done) = self::ACTIONS[$name];
        // The schedule's outcome is shown in its own card.
        $card = $name === 'scheduleSave' ? 'schedule' : '';
        try {
            $fields = self::fields($name);
            foreach (['note', 'description'] as $text) {
                if (isset($fields[$text]) && !preg_match('//u', $fields[$text])) {
                    // JSON would carry it as U+FFFD and the plugin could no
                    // longer tell: refuse it here, as the plugin would.
                    throw new \PvekeepRpcException("the $text is not valid UTF-8", 1007, ['reason' => 'invalid_input', 'field' => $text]);
                }
            }
            Rpc::service($method, $params, $fields);
            if ($name === 'backupProtect' && empty($fields['protected'])) {
                $done = 'schedule.keep.flash_off';
            }
        } catch (\Throwable $e) {
            $message = $name === 'scheduleSave' ? ScheduleForm::error($lang, $e) : $lang->error($e);
            if (defined('CLIENTAREA')) {
                Http::flash($serviceId, 'danger', $message, $card);
            }
            return Http::escape($message);
        }
        if (defined('CLIENTAREA')) {
            Http::flash($serviceId, 'success', $lang->get($done), $card);
        }
        return 'success';
    }

    /**
     * The method's fields from the posted form, decoded once.
     *
     * @return array<string, mixed>
     */
    private static function fields(string $name): array
    {
        switch ($name) {
            case 'backupCreate':
                // The form's own key: a double submit makes one backup.
                return ['note' => Input::post('pvekeep_note'), 'idempotency_key' => Input::post('pvekeep_token')];
            case 'backupRestore':
                return ['backup_id' => Input::postInt('pvekeep_backup_id'), 'idempotency_key' => Input::post('pvekeep_token')];
            case 'backupRemove':
                return ['backup_id' => Input::postInt('pvekeep_backup_id')];
            case 'backupProtect':
                return ['backup_id' => Input::postInt('pvekeep_backup_id'), 'protected' => Input::post('pvekeep_protected') === '1'];
            case 'scheduleSave':
                return ScheduleForm::fields();
            case 'snapshotCreate':
                // RAM only when asked for; the plugin checks the product
                // allows it and the VM runs.
                return [
                    'description' => Input::post('pvekeep_snapshot_description'),
                    'include_ram' => Input::post('pvekeep_snapshot_ram') === '1',
                    'idempotency_key' => Input::post('pvekeep_token'),
                ];
            case 'snapshotRollback':
            case 'snapshotRemove':
                // The name is the plugin's own record's; it refuses one
                // that is not this service's.
                return ['name' => Input::post('pvekeep_snapshot_name'), 'idempotency_key' => Input::post('pvekeep_token')];
            default:
                return ['job_id' => Input::postInt('pvekeep_job_id')];
        }
    }
}
