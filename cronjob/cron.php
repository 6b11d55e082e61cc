<?php

/**
 * The panel cron entry: hands the Proxmox servers of this module (with
 * their decrypted credentials, which the plugin never stores) to
 * `cron.tick`, which drives every job forward within the time budget.
 *
 * Run it from the system crontab every minute, next to WHMCS's own cron:
 *
 *   * * * * * php -q /path/to/whmcs/modules/servers/pvekeep/cronjob/cron.php
 *
 * Any number may overlap: the plugin leases jobs in the database.
 */

// Packaged, lib/ sits beside cronjob/; in the repository it is hooks/lib/.
require_once is_file(dirname(__DIR__) . '/lib/Client.php')
    ? dirname(__DIR__) . '/lib/Client.php'
    : dirname(__DIR__) . '/hooks/lib/Client.php';

/**
 * Turns tblservers rows (password already decrypted) into the server
 * objects of the panel contract.
 */
function pvekeep_cron_servers(array $rows)
{
    return array_map('pvekeep_server_object', $rows);
}

/**
 * One tick: returns the plugin's counts of what it did.
 */
function pvekeep_cron_tick(array $servers, $budgetSeconds, ?PvekeepClient $client = null)
{
    // The plugin works for up to the budget: wait that long and a margin,
    // or the client would kill it mid-pass and leave its leases behind.
    $client = $client ?? PvekeepClient::fromEnvironment(['timeout' => (float) $budgetSeconds + 30]);
    return $client->call('cron.tick', [
        'actor' => ['type' => 'system', 'id' => 0],
        'servers' => $servers,
        'budget_s' => (float) $budgetSeconds,
    ]);
}

// Run as a script inside a WHMCS installation: read this module's servers
// through WHMCS itself (Capsule and decrypt()), then tick for 50 seconds so
// a once-a-minute crontab keeps jobs moving continuously.
if (PHP_SAPI === 'cli' && realpath($_SERVER['SCRIPT_FILENAME'] ?? '') === __FILE__) {
    $init = getenv('WHMCS_INIT') ?: dirname(__DIR__, 4) . '/init.php';
    if (!is_file($init)) {
        fwrite(STDERR, "pvekeep cron: WHMCS init.php not found at $init (set WHMCS_INIT)\n");
        exit(1);
    }
    require_once $init;
    require_once dirname(__DIR__) . '/pvekeep.php';
    $rows = [];
    foreach (\WHMCS\Database\Capsule::table('tblservers')->where('type', 'pvekeep')->where('disabled', 0)->get() as $s) {
        $row = (array) $s;
        $row['password'] = decrypt($row['password']);
        $rows[] = $row;
    }
    try {
        $budget = 50;
        $client = PvekeepClient::fromEnvironment(array_merge(pvekeep_client_config(), ['timeout' => $budget + 30]));
        $counts = pvekeep_cron_tick(pvekeep_cron_servers($rows), $budget, $client);
        fwrite(STDOUT, json_encode($counts) . "\n");
    } catch (\Throwable $e) {
        fwrite(STDERR, 'pvekeep cron: ' . $e->getMessage() . "\n");
        exit(1);
    }
}
