<?php

/**
 * WHMCS hooks of the pvekeep module (WHMCS loads this file on every request):
 *  - AfterCronJob: every WHMCS cron run drives the plugin's jobs and email
 *    outbox (cron.tick) for a short time, so nothing needs an extra crontab;
 *    cronjob/cron.php every minute is the faster option.
 *  - PreModule*: while pvekeep runs an operation on a VM (or Proxmox holds a
 *    lock on it), the other module commands would collide with it, so WHMCS
 *    is told to abort them (DESIGN §4). Not PreModuleCustom: a pvekeep
 *    service's custom functions are pvekeep's own, which refuse a locked VM
 *    themselves with the reason (WHMCS's abort shows none) and answer a
 *    double-posted form with its first job instead of an abort (DESIGN §9).
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
foreach (
    [
        'PreModuleSuspend', 'PreModuleUnsuspend', 'PreModuleTerminate', 'PreModuleChangePackage',
        'PreModuleChangePassword',
    ] as $hookPoint
) {
    add_hook($hookPoint, 1, 'hook_pvekeep_abort_when_locked');
}
