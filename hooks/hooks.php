<?php

/**
 * WHMCS hooks of the pvekeep module (WHMCS loads this file on every request):
 *  - AfterCronJob: every WHMCS cron run drives the plugin's jobs and email
 *    outbox (cron.tick) for a short time, so nothing needs an extra crontab;
 *    cronjob/cron.php every minute is the faster option.
 *  - PreModuleChangePassword: while pvekeep runs an operation on a VM (or
 *    Proxmox holds a lock on it), a command pvekeep does not implement
 *    would collide with it, so WHMCS is told to abort it (DESIGN §4).
 *    Never for pvekeep's own commands (Create, Suspend, Unsuspend,
 *    Terminate, ChangePackage, the custom functions): pvekeep is the
 *    product's module (DESIGN §9), and they refuse a locked VM themselves
 *    with the reason, where WHMCS's abort shows none ("Function Aborted by
 *    Action Hook Code"); a double-posted form gets its first job back.
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

require_once __DIR__ . '/lib/Client.php';

use WHMCS\Module\Server\Pvekeep\Cron;
use WHMCS\Module\Server\Pvekeep\Lang;
use WHMCS\Module\Server\Pvekeep\Panel;
use WHMCS\Module\Server\Pvekeep\Rpc;

/**
 * An abort answer when the service's VM is busy, else null. An unreachable
 * plugin does not block the admin: the command goes ahead.
 */
function hook_pvekeep_abort_when_locked(array $vars)
{
    $params = $vars['params'] ?? [];
    if (($params['moduletype'] ?? '') !== 'pvekeep') {
        return null;
    }
    try {
        // Asked as the system: hooks run for admins, the API and payment
        // callbacks alike, and the lock must hold in all of them.
        $status = Rpc::service('service.status', $params, [], ['type' => 'system', 'id' => 0]);
    } catch (\Throwable $e) {
        return null;
    }
    if (empty($status['lock']['locked'])) {
        return null;
    }
    // WHMCS itself shows "Function Aborted by Action Hook Code"; the reason
    // is for logs and for WHMCS versions that show it.
    $lang = new Lang(Panel::setting('Language'));
    $reason = $lang->get('error.locked', ['lock' => $lang->lock((string) ($status['lock']['reason'] ?? ''))]);
    return ['abortcmd' => true, 'abortmsg' => $reason];
}

/**
 * One short tick after WHMCS's own cron work. A failure is logged and never
 * breaks WHMCS's cron.
 */
function hook_pvekeep_after_cron(array $vars)
{
    try {
        Cron::tick(Cron::HOOK_BUDGET);
    } catch (\Throwable $e) {
        if (function_exists('logActivity')) {
            logActivity('pvekeep: the cron tick failed: ' . $e->getMessage() . ' (details in the module log)');
        }
    }
}

add_hook('AfterCronJob', 1, 'hook_pvekeep_after_cron');
add_hook('PreModuleChangePassword', 1, 'hook_pvekeep_abort_when_locked');
