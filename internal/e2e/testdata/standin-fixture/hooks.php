<?php

/**
 * The fixture module's hooks, for TestStandinIsAsHarshAsWHMCS: a
 * PreModule hook that aborts every command of a service whose domain is
 * abort.example.test, as any hook of any module may.
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

foreach (['PreModuleCreate', 'PreModuleSuspend', 'PreModuleUnsuspend', 'PreModuleTerminate', 'PreModuleChangePackage'] as $point) {
    add_hook($point, 1, function (array $vars) {
        return ($vars['params']['domain'] ?? '') === 'abort.example.test' ? ['abortcmd' => true] : null;
    });
}
