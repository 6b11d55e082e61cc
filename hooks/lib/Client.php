<?php

/**
 * Loads the module's code: the JSON-RPC client (global classes, also used
 * by scripts outside WHMCS) and an autoloader for the module's own classes
 * in lib/ (namespace WHMCS\Module\Server\Pvekeep, which WHMCS itself
 * autoloads from the same folder; this one serves cron.php and the tests).
 * pvekeep.php, hooks.php and cronjob/cron.php require this one file.
 */

require_once __DIR__ . '/PvekeepException.php';
require_once __DIR__ . '/PvekeepRpcException.php';
require_once __DIR__ . '/PvekeepTransportException.php';
require_once __DIR__ . '/PvekeepClient.php';

spl_autoload_register(function ($class) {
    $prefix = 'WHMCS\\Module\\Server\\Pvekeep\\';
    if (strncmp($class, $prefix, strlen($prefix)) !== 0) {
        return;
    }
    $file = __DIR__ . '/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
