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
        // Like WHMCS: arrays become text first, then the mask strings are
        // replaced in that text. PVEKEEP_MODULE_LOG_NO_MASK keeps what a
        // log that masks nothing would, for tests of the module's own care.
        if (getenv('PVEKEEP_MODULE_LOG_NO_MASK')) {
            $mask = [];
        }
        $text = function ($v) use ($mask) {
            $s = is_string($v) ? $v : print_r($v, true);
            foreach ($mask as $secret) {
                if ($secret !== '') {
                    $s = str_replace($secret, '***', $s);
                }
            }
            return $s;
        };
        $line = json_encode(['module' => $module, 'action' => $action, 'request' => $text($request), 'response' => $text($response)]);
        file_put_contents($file, $line . "\n", FILE_APPEND);
    }
}

if (!function_exists('add_hook')) {
    function add_hook($point, $priority, $fn)
    {
        $GLOBALS['pvekeep_test_hooks'][$point][] = $fn;
    }
}
