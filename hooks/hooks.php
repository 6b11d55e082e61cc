<?php

/**
 * WHMCS hooks: while pvekeep runs an operation on a VM (or Proxmox holds a
 * lock on it), the module's other commands — start/stop, reinstall,
 * password, package change, suspend — would collide with it, so they are
 * aborted with the reason (DESIGN §4).
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

require_once __DIR__ . '/pvekeep.php';

/**
 * Returns an abort answer when the service's VM is busy, else null. An
 * unreachable plugin does not block the admin: the command goes ahead.
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
        $status = pvekeep_call('service.status', $params, ['actor' => ['type' => 'system', 'id' => 0]]);
    } catch (\Throwable $e) {
        return null;
    }
    if (!empty($status['lock']['locked'])) {
        $lang = pvekeep_lang();
        $msg = pvekeep_text($lang, 'error.locked', ['lock' => pvekeep_lock_text($status['lock']['reason'] ?? '', $lang)]);
        return ['abortcmd' => true, 'abortmsg' => $msg];
    }
    return null;
}

foreach (
    [
        'PreModuleSuspend', 'PreModuleUnsuspend', 'PreModuleTerminate', 'PreModuleChangePackage',
        'PreModuleChangePassword', 'PreModuleCustom',
    ] as $hookPoint
) {
    add_hook($hookPoint, 1, 'hook_pvekeep_abort_when_locked');
}
