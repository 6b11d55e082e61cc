<?php

/**
 * The few WHMCS functions the module calls, for running the real module
 * files outside WHMCS (the demo and the end-to-end tests). logModuleCall
 * appends to the file named by PVEKEEP_MODULE_LOG so tests can check that
 * secrets were masked.
 */

if (!defined('WHMCS')) {
    define('WHMCS', true);
}

if (!function_exists('logModuleCall')) {
    function logModuleCall($module, $action, $request, $response, $processed = '', $mask = [])
    {
        $file = getenv('PVEKEEP_MODULE_LOG');
        if (!$file) {
            return;
        }
        $line = json_encode(['module' => $module, 'action' => $action, 'request' => $request, 'response' => $response]);
        foreach ($mask as $secret) {
            if ($secret !== '') {
                $line = str_replace($secret, '***', $line);
            }
        }
        file_put_contents($file, $line . "\n", FILE_APPEND);
    }
}

if (!function_exists('add_hook')) {
    function add_hook($point, $priority, $fn)
    {
        $GLOBALS['pvekeep_test_hooks'][$point][] = $fn;
    }
}
