<?php

/**
 * The stand-in's command line: what WHMCS runs without a browser.
 *
 *   php hooks/standin/cli.php test-connection SERVER_ID   TestConnection → {"success":…,"error":…}
 *   php hooks/standin/cli.php config-options PRODUCT_ID   ConfigOptions with each Loader's items or error
 *   php hooks/standin/cli.php cron                        WHMCS's cron run: fires AfterCronJob
 *   php hooks/standin/cli.php command NAME SERVICE_ID [REASON]  a module command as the system (Create, Suspend, …;
 *                                                         REASON: Suspend's reason, as the admin types it)
 *   php hooks/standin/cli.php params SERVICE_ID           the $params WHMCS would build (model left out)
 *   php hooks/standin/cli.php client-area SERVICE_ID      the module's ClientArea, rendered, as the owner sees it,
 *                                                         called whatever the status (WHMCS: Active only) → {status, html}
 *   php hooks/standin/cli.php encrypt TEXT                WHMCS's encrypt() with this installation's hash
 *
 * Output: one JSON document on stdout. Exit 0, or 1 with the error on stderr.
 * Environment: as lib/boot.php.
 */

if (PHP_SAPI !== 'cli') {
    exit(2);
}
try {
    require __DIR__ . '/lib/boot.php';
    standin_load_module();
    $args = array_slice($argv, 1);
    $cmd = array_shift($args);
    switch ($cmd) {
        case 'test-connection':
            $out = standin_test_connection((int) ($args[0] ?? 0));
            break;
        case 'config-options':
            $out = standin_config_options((int) ($args[0] ?? 0));
            break;
        case 'cron':
            $out = ['AfterCronJob' => run_hook('AfterCronJob', [])];
            break;
        case 'command':
            $extra = ($args[0] ?? '') === 'Suspend' ? ['suspendreason' => (string) ($args[2] ?? '')] : [];
            [$ok, $msg] = standin_module_command((string) ($args[0] ?? ''), (int) ($args[1] ?? 0), $extra);
            $out = ['success' => $ok, 'result' => $msg];
            break;
        case 'params':
            $out = standin_params((int) ($args[0] ?? 0));
            $out['model'] = $out['model']->toArray();
            break;
        case 'client-area':
            require_once __DIR__ . '/lib/theme.php';
            require_once __DIR__ . '/lib/clientarea.php';
            $out = standin_client_area_direct((int) ($args[0] ?? 0));
            break;
        case 'encrypt':
            $out = encrypt((string) ($args[0] ?? ''));
            break;
        default:
            fwrite(STDERR, "usage: cli.php test-connection ID | config-options PID | cron | command NAME SID [REASON] | params SID | client-area SID | encrypt TEXT\n");
            exit(2);
    }
    echo json_encode($out, JSON_UNESCAPED_SLASHES | JSON_PRETTY_PRINT), "\n";
} catch (\Throwable $e) {
    fwrite(STDERR, 'WHMCS stand-in: ' . $e . "\n");
    exit(1);
}
