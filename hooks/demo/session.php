<?php

/**
 * `make demo`: a hosting customer's session, played through the real
 * module files exactly as WHMCS calls them, against the pvekeep binary,
 * the Proxmox simulator and a throwaway MariaDB database that
 * `pvekeep demo` prepared. Input: PVEKEEP_DEMO_PARAMS (the $params WHMCS
 * hands a module), PVEKEEP_BIN, PVEKEEP_DSN.
 */

require __DIR__ . '/whmcs_stubs.php';
require dirname(__DIR__) . '/pvekeep.php';
require dirname(__DIR__, 2) . '/cronjob/cron.php';

$params = json_decode((string) getenv('PVEKEEP_DEMO_PARAMS'), true);
if (!is_array($params)) {
    fwrite(STDERR, "run this through `make demo` (pvekeep demo)\n");
    exit(2);
}
$tty = function_exists('posix_isatty') ? posix_isatty(STDOUT) : false;
$started = microtime(true);

function say($text = '')
{
    fwrite(STDOUT, $text . "\n");
}

/**
 * The VM's config as Proxmox (the simulator) has it, for showing what the
 * restore changed. Read through the simulator's test-only control URL.
 */
function vm_config(array $params)
{
    $ctx = stream_context_create(['ssl' => ['verify_peer' => false, 'verify_peer_name' => false]]);
    $raw = @file_get_contents($params['demo_control'] . '/vms/100/config', false, $ctx);
    return is_string($raw) ? (json_decode($raw, true) ?: []) : [];
}

function show_vm($label, array $cfg)
{
    say(sprintf('   %-7s cores %-2s memory %-5s MiB  scsi0 %s', $label, $cfg['cores'] ?? '?', $cfg['memory'] ?? '?', $cfg['scsi0'] ?? '-'));
    say(sprintf('   %-7s scsi1 %s', '', $cfg['scsi1'] ?? '(none)'));
    say(sprintf('   %-7s net0  %s', '', $cfg['net0'] ?? '-'));
}

function show_backups(array $params)
{
    $page = pvekeep_ClientArea($params);
    if (($page['tabOverviewReplacementTemplate'] ?? '') === 'templates/error.tpl') {
        say('   error: ' . $page['templateVariables']['usefulErrorMessage']);
        return [];
    }
    $vars = $page['templateVariables'];
    $quota = $vars['pvekeep_quota'];
    say(sprintf('   Backups %d/%d   (VM %d on %s, %s)', $quota['used'], $quota['max'],
        $vars['pvekeep_status']['vmid'], $vars['pvekeep_status']['node'], $vars['pvekeep_status']['power']));
    if (!$vars['pvekeep_backups']) {
        say('   (no backups yet)');
    }
    foreach ($vars['pvekeep_backups'] as $b) {
        say(sprintf('   #%-3d %s  %-32s %10s  %s', $b['id'], pvekeep_format_time($b['created_at']),
            '"' . $b['note'] . '"', pvekeep_format_size($b['size_bytes']), $b['status']));
    }
    return $vars;
}

/**
 * What the panel's cron does every minute, compressed: tick, then look at
 * the job the way the client's page polls it.
 */
function follow_job(array $params, $jobId, $tty)
{
    $server = pvekeep_cron_servers([[
        'id' => $params['serverid'], 'hostname' => $params['serverhostname'], 'port' => $params['serverport'],
        'username' => $params['serverusername'], 'password' => $params['serverpassword'],
        'accesshash' => $params['serveraccesshash'], 'secure' => '',
    ]]);
    $t0 = microtime(true);
    $last = -1;
    while (true) {
        pvekeep_cron_tick($server, 0.5);
        $job = pvekeep_call('jobs.get', $params, ['job_id' => $jobId])['job'];
        $pct = (int) $job['progress_pct'];
        if ($pct !== $last || $job['state'] !== 'running') {
            $bar = str_repeat('#', intdiv($pct, 4)) . str_repeat('.', 25 - intdiv($pct, 4));
            $line = sprintf('   [%s] %3d%%  %-9s %5.1fs', $bar, $pct, $job['state'], microtime(true) - $t0);
            fwrite(STDOUT, $tty ? "\r" . $line : $line . "\n");
            $last = $pct;
        }
        if (!in_array($job['state'], ['queued', 'running'], true)) {
            if ($tty) {
                fwrite(STDOUT, "\n");
            }
            return $job;
        }
        usleep(200000);
    }
}

say('pvekeep demo: one hosting customer, seen through the WHMCS module');
say(sprintf('  Proxmox:  the built-in simulator at %s (2 nodes, 4 VMs)', $params['demo_sim']));
say(sprintf('  Database: %s (WHMCS tables + mod_pvekeep_*)', $params['demo_database']));
say(sprintf('  Customer: %s %s, service #%d "%s", VM 100, package with 3 backups',
    $params['clientsdetails']['firstname'], $params['clientsdetails']['lastname'], $params['serviceid'], $params['domain']));
say();

say('1. Alice opens her service page in the client area.');
show_backups($params);
say();

$note = 'before the PHP 8.3 upgrade';
say(sprintf('2. She types the note "%s" and clicks "Backup now".', $note));
$_POST = ['pvekeep_note' => $note, 'pvekeep_token' => bin2hex(random_bytes(8))];
$answer = pvekeep_backupCreate($params);
say('   module answered: ' . $answer);
if ($answer !== 'success') {
    exit(1);
}
$vars = pvekeep_call('backups.list', $params);
$jobId = $vars['active_job']['id'];
say(sprintf('   job #%d is running on Proxmox; the panel cron drives it and her page shows progress:', $jobId));
$job = follow_job($params, $jobId, $tty);
if ($job['state'] !== 'succeeded') {
    say('   the backup failed: ' . $job['error']);
    exit(1);
}
say();

say('3. Her backup list now:');
$vars = show_backups($params);
say();

$backupId = $vars['pvekeep_backups'][0]['id'];
say('4. Her package is 2 cores, 4 GB RAM, a 20 GB disk, an extra 10 GB disk, disk limits, VLAN 20 and');
say('   50 MB/s network, but the VM itself is still as it was set up. She restores the backup; the');
say('   plugin stops the VM, restores it, then puts it back to what she pays for and starts it.');
show_vm('before', vm_config($params));
$_POST = ['pvekeep_backup_id' => $backupId, 'pvekeep_token' => bin2hex(random_bytes(8))];
$answer = pvekeep_backupRestore($params);
say('   module answered: ' . $answer);
$list = pvekeep_call('backups.list', $params);
$job = follow_job($params, $list['active_job']['id'], $tty);
if ($job['state'] !== 'succeeded') {
    say('   the restore failed: ' . $job['error']);
    exit(1);
}
show_vm('after', vm_config($params));
say('   (the demo has no SMTP server, so the "Backup restored" email is skipped; the tests check it)');
say();

say(sprintf('5. She clicks "Remove" on backup #%d.', $backupId));
$_POST = ['pvekeep_backup_id' => $backupId];
$answer = pvekeep_backupRemove($params);
say('   module answered: ' . $answer);
$list = pvekeep_call('backups.list', $params);
if ($list['active_job']) {
    $job = follow_job($params, $list['active_job']['id'], $tty);
    if ($job['state'] !== 'succeeded') {
        say('   removing failed: ' . $job['error']);
        exit(1);
    }
}
say();

say('6. And the list is empty again:');
show_backups($params);
say();
say(sprintf('Done in %.1f s. Every step went PHP -> pvekeep (JSON-RPC over stdio) -> Proxmox + MariaDB.', microtime(true) - $started));
