<?php

/**
 * Runs one module entry point the way WHMCS would and prints its outcome
 * as one JSON line, for the Go end-to-end tests (internal/e2e).
 *
 *   php driver.php '{"do":"button","function":"backupCreate","params":{…},"post":{…}}'
 *   php driver.php '{"do":"call","method":"jobs.get","params":{…},"fields":{…}}'
 *   php driver.php '{"do":"clientarea","params":{…}}'
 *   php driver.php '{"do":"cron","servers":[tblservers rows],"budget":0.5}'
 *
 * Environment: PVEKEEP_BIN, PVEKEEP_DSN (read by the module's client).
 */

require dirname(__DIR__) . '/fixtures/whmcs.php';
require dirname(__DIR__, 2) . '/pvekeep.php';
require dirname(__DIR__, 3) . '/cronjob/cron.php';

use WHMCS\Module\Server\Pvekeep\ClientActions;
use WHMCS\Module\Server\Pvekeep\ClientAreaView;
use WHMCS\Module\Server\Pvekeep\Rpc;

// A button is a form the client posted with WHMCS's token.
$GLOBALS['pvekeep_test']['token_ok'] = true;

$cmd = json_decode($argv[1] ?? '', true);
if (!is_array($cmd)) {
    fwrite(STDERR, "driver: argument 1 must be a JSON object\n");
    exit(2);
}

function out(array $v)
{
    fwrite(STDOUT, json_encode($v) . "\n");
    exit(0);
}

// Who is logged in: WHMCS keeps the client's id in the session, while
// $params['userid'] is always the service's owner. A call with a session
// is a client-area request; the hooks and the cron run without one.
$_SESSION = [];
if (isset($cmd['session_uid'])) {
    define('CLIENTAREA', true);
    $_SESSION = ['uid' => (int) $cmd['session_uid']];
}

try {
    switch ($cmd['do'] ?? '') {
        case 'button':
            // As WHMCS hands it over: a POST, entity-encoded. run() is the
            // function without the redirect that ends a real request.
            $_SERVER['REQUEST_METHOD'] = 'POST';
            $_POST = array_map(function ($v) {
                return is_scalar($v) ? htmlspecialchars((string) $v, ENT_QUOTES, 'UTF-8') : $v;
            }, $cmd['post'] ?? []);
            out(['result' => ClientActions::run($cmd['function'], $cmd['params'])]);
            // no break: out() exits
        case 'clientarea':
            out(['result' => ClientAreaView::page($cmd['params'])]);
            // no break
        case 'call':
            out(['result' => Rpc::service($cmd['method'], $cmd['params'], $cmd['fields'] ?? [])]);
            // no break
        case 'hook':
            // What WHMCS does before a module command: run the PreModule hooks.
            require_once dirname(__DIR__, 2) . '/hooks.php';
            $results = [];
            foreach ($GLOBALS['pvekeep_test']['hooks'][$cmd['point']] ?? [] as $fn) {
                $results[] = $fn(['params' => $cmd['params']]);
            }
            out(['result' => $results]);
            // no break
        case 'cron':
            // env reaches the plugin process (the kill tests' crash point).
            $client = PvekeepClient::fromEnvironment(['env' => $cmd['env'] ?? [], 'timeout' => ($cmd['budget'] ?? 0) + 30]);
            out(['result' => pvekeep_cron_tick(pvekeep_cron_servers($cmd['servers']), $cmd['budget'] ?? 0, $client)]);
            // no break
        default:
            fwrite(STDERR, "driver: unknown action\n");
            exit(2);
    }
} catch (PvekeepRpcException $e) {
    out(['error' => ['code' => $e->getCode(), 'message' => $e->getMessage(), 'data' => $e->getData()]]);
} catch (PvekeepTransportException $e) {
    out(['transport_error' => $e->getMessage(), 'stderr' => $e->getStderr()]);
}
