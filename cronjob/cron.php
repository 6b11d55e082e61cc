<?php

/**
 * The per-minute cron: the faster option. WHMCS's own cron already ticks the
 * plugin on every run (hooks.php, AfterCronJob); for jobs that move every
 * minute instead of every five, add to the system crontab:
 *
 *   * * * * * php -q /path/to/whmcs/modules/servers/pvekeep/cronjob/cron.php
 *
 * It ticks for 50 seconds with the same code (lib/Cron.php): every enabled
 * pvekeep server, WHMCS's mail settings. Any number may overlap.
 */

// Packaged, lib/ sits beside cronjob/; in the repository it is hooks/lib/.
require_once is_file(dirname(__DIR__) . '/lib/Client.php')
    ? dirname(__DIR__) . '/lib/Client.php'
    : dirname(__DIR__) . '/hooks/lib/Client.php';

use WHMCS\Module\Server\Pvekeep\Cron;
use WHMCS\Module\Server\Pvekeep\ServerFields;

/**
 * tblservers rows (password decrypted) as server objects. For scripts and
 * tests that bring their own servers (hooks/tests/e2e/driver.php).
 *
 * @param list<array<string, mixed>> $rows
 * @return list<array<string, mixed>>
 */
function pvekeep_cron_servers(array $rows)
{
    return array_map([ServerFields::class, 'fromRow'], $rows);
}

/**
 * One tick over the given servers; the plugin's counts.
 *
 * @param list<array<string, mixed>> $servers
 */
function pvekeep_cron_tick(array $servers, $budgetSeconds, ?PvekeepClient $client = null)
{
    return Cron::tick((float) $budgetSeconds, $servers, $client);
}

// Run as a script inside a WHMCS installation: WHMCS itself gives the
// servers (Capsule, decrypt()) and its database and mail settings.
if (PHP_SAPI === 'cli' && realpath($_SERVER['SCRIPT_FILENAME'] ?? '') === __FILE__) {
    $init = getenv('WHMCS_INIT') ?: dirname(__DIR__, 4) . '/init.php';
    if (!is_file($init)) {
        fwrite(STDERR, "pvekeep cron: WHMCS init.php not found at $init (set WHMCS_INIT)\n");
        exit(1);
    }
    require_once $init;
    try {
        fwrite(STDOUT, json_encode(Cron::tick(Cron::SCRIPT_BUDGET)) . "\n");
    } catch (\Throwable $e) {
        fwrite(STDERR, 'pvekeep cron: ' . $e->getMessage() . "\n");
        exit(1);
    }
}
