<?php

/**
 * pvekeep — WHMCS server module for Proxmox KVM backups.
 *
 * Every function here only gathers the panel's facts, calls the pvekeep
 * plugin over JSON-RPC (lib/Client.php) and returns or renders the answer.
 * No SQL, no Proxmox calls, no business rules: those live in the plugin.
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

require_once __DIR__ . '/lib/Client.php';

function pvekeep_MetaData()
{
    return [
        'DisplayName' => 'pvekeep (Proxmox KVM backups)',
        'APIVersion' => '1.1',
        'RequiresServer' => true,
        'DefaultSSLPort' => '8006',
    ];
}

/**
 * Product module settings. Their order is the public contract of
 * configoption1..N (DESIGN §8): append, never reorder.
 */
function pvekeep_ConfigOptions()
{
    return [
        'Backup Storage' => [
            'Type' => 'text', 'Size' => '25', 'Default' => 'backup',
            'Description' => 'Proxmox storage id that holds backups',
        ],
        'Backups' => [
            'Type' => 'text', 'Size' => '5', 'Default' => '3',
            'Description' => 'Backups quota (0 turns backups off)',
        ],
        'Snapshots' => [
            'Type' => 'text', 'Size' => '5', 'Default' => '3',
            'Description' => 'Snapshots quota (0 turns snapshots off)',
        ],
        'Snapshot Lifetime' => [
            'Type' => 'text', 'Size' => '5', 'Default' => '3',
            'Description' => 'Days before a snapshot expires (0 = keep)',
        ],
        // configoption5..22: the VM package a restore puts back. Empty means
        // "not managed"; configurable options of the same name override.
        'CPU Cores' => ['Type' => 'text', 'Size' => '5', 'Description' => 'vCPUs'],
        'RAM' => ['Type' => 'text', 'Size' => '5', 'Description' => 'GB'],
        'System Disk' => ['Type' => 'text', 'Size' => '5', 'Description' => 'GB (grow only)'],
        'Additional Disk' => ['Type' => 'text', 'Size' => '5', 'Description' => 'GB (0 = none)'],
        'System Disk Read Bandwidth' => ['Type' => 'text', 'Size' => '5', 'Description' => 'MB/s (0 = unlimited)'],
        'System Disk Write Bandwidth' => ['Type' => 'text', 'Size' => '5', 'Description' => 'MB/s (0 = unlimited)'],
        'System Disk Read IOPS' => ['Type' => 'text', 'Size' => '5', 'Description' => '0 = unlimited'],
        'System Disk Write IOPS' => ['Type' => 'text', 'Size' => '5', 'Description' => '0 = unlimited'],
        'Additional Disk Read Bandwidth' => ['Type' => 'text', 'Size' => '5', 'Description' => 'MB/s (0 = unlimited)'],
        'Additional Disk Write Bandwidth' => ['Type' => 'text', 'Size' => '5', 'Description' => 'MB/s (0 = unlimited)'],
        'Additional Disk Read IOPS' => ['Type' => 'text', 'Size' => '5', 'Description' => '0 = unlimited'],
        'Additional Disk Write IOPS' => ['Type' => 'text', 'Size' => '5', 'Description' => '0 = unlimited'],
        'Network Bandwidth' => ['Type' => 'text', 'Size' => '5', 'Description' => 'MB/s (0 = unlimited)'],
        'Network Bridge' => ['Type' => 'text', 'Size' => '10', 'Default' => 'vmbr0'],
        'VLAN Tag' => ['Type' => 'text', 'Size' => '5', 'Description' => '0 = untagged'],
        'Network Model' => ['Type' => 'text', 'Size' => '10', 'Default' => 'virtio'],
        'Disk Storage' => ['Type' => 'text', 'Size' => '15', 'Default' => 'local-lvm', 'Description' => 'for a new additional disk'],
        'Operating System' => ['Type' => 'text', 'Size' => '6', 'Description' => 'template vmid a reinstall clones'],
    ];
}

/**
 * The actor of a call: the admin in the admin area; the client logged in
 * to this session in the client area (never $params['userid']: WHMCS
 * fills that with the service's owner, so it would prove nothing about who
 * clicked); the system everywhere else (the API, payment callbacks, cron),
 * where WHMCS itself has already decided the command may run.
 */
function pvekeep_actor(array $params)
{
    if (defined('ADMINAREA')) {
        return !empty($_SESSION['adminid'])
            ? ['type' => 'admin', 'id' => (int) $_SESSION['adminid']]
            : ['type' => 'system', 'id' => 0];
    }
    if (defined('CLIENTAREA')) {
        // Without a logged-in client the plugin refuses (actor id 0).
        return ['type' => 'client', 'id' => (int) ($_SESSION['uid'] ?? 0)];
    }
    return ['type' => 'system', 'id' => 0];
}

/**
 * WHMCS's own database settings: WHMCS 7/8 loads configuration.php inside
 * a method, so they are not globals there; its application config has
 * them. Older installs and scripts that include configuration.php
 * directly leave them as globals.
 */
function pvekeep_whmcs_db_settings()
{
    $keys = ['db_host', 'db_port', 'db_username', 'db_password', 'db_name'];
    $out = [];
    $config = null;
    if (class_exists('\DI') && method_exists('\DI', 'make')) {
        try {
            $config = \DI::make('config');
        } catch (\Throwable $e) {
            $config = null;
        }
    }
    foreach ($keys as $k) {
        if ($config !== null && isset($config[$k])) {
            $out[$k] = (string) $config[$k];
        } elseif (isset($GLOBALS[$k])) {
            $out[$k] = (string) $GLOBALS[$k];
        }
    }
    return $out;
}

/**
 * A go-sql-driver/mysql DSN for WHMCS's database. "localhost" without a
 * port means the local socket to PHP's MySQL drivers, and so here too
 * (grants for user@localhost do not match TCP connections); a host may
 * carry its port ("db:3307") and IPv6 addresses are bracketed.
 */
function pvekeep_dsn(array $db)
{
    if (empty($db['db_name']) || !isset($db['db_username'])) {
        return '';
    }
    $host = trim((string) ($db['db_host'] ?? ''));
    $port = trim((string) ($db['db_port'] ?? ''));
    if (preg_match('/^\[(.+)\](?::(\d+))?$/', $host, $m)) { // [::1]:3307
        $host = $m[1];
        $port = $port !== '' ? $port : ($m[2] ?? '');
    } elseif (substr_count($host, ':') === 1) { // db.example:3307
        [$host, $hostPort] = explode(':', $host, 2);
        $port = $port !== '' ? $port : $hostPort;
    }
    if ($host === '' || ($host === 'localhost' && $port === '')) {
        $socket = ini_get('pdo_mysql.default_socket') ?: (ini_get('mysqli.default_socket') ?: '/run/mysqld/mysqld.sock');
        $address = 'unix(' . $socket . ')';
    } elseif ($host[0] === '/') {
        $address = 'unix(' . $host . ')';
    } else {
        $hostPart = strpos($host, ':') !== false ? '[' . $host . ']' : $host;
        $address = 'tcp(' . $hostPart . ':' . ($port !== '' ? $port : '3306') . ')';
    }
    return $db['db_username'] . ':' . ($db['db_password'] ?? '') . '@' . $address . '/' . $db['db_name'];
}

/**
 * How to reach the plugin inside WHMCS: the database is WHMCS's own
 * (PHP-FPM clears the environment, so PVEKEEP_DSN cannot be relied on
 * there); the environment still wins for installs that set it, and for
 * the tests.
 */
function pvekeep_client_config()
{
    $config = [];
    if (!getenv('PVEKEEP_DSN')) {
        $dsn = pvekeep_dsn(pvekeep_whmcs_db_settings());
        if ($dsn !== '') {
            $config['dsn'] = $dsn;
        }
    }
    return $config;
}

/**
 * The Proxmox server of this service, from the fields WHMCS hands a module.
 */
function pvekeep_server(array $params)
{
    return pvekeep_server_object([
        'id' => $params['serverid'] ?? 0,
        'hostname' => $params['serverhostname'] ?? '',
        'ipaddress' => $params['serverip'] ?? '',
        'port' => $params['serverport'] ?? 0,
        'username' => $params['serverusername'] ?? '',
        'password' => $params['serverpassword'] ?? '',
        'accesshash' => $params['serveraccesshash'] ?? '',
        'secure' => $params['serversecure'] ?? '',
    ]);
}

/**
 * Calls one service-scoped method with the common fields filled in.
 */
function pvekeep_call($method, array $params, array $fields = [])
{
    $request = array_merge([
        'service_id' => (int) ($params['serviceid'] ?? 0),
        'actor' => pvekeep_actor($params),
        'server' => pvekeep_server($params),
    ], $fields);
    $client = PvekeepClient::fromEnvironment(pvekeep_client_config());
    try {
        $result = $client->call($method, $request);
        pvekeep_log($method, $request, $result);
        return $result;
    } catch (\Throwable $e) {
        pvekeep_log($method, $request, $e->getMessage());
        throw $e;
    }
}

/**
 * Writes the call to WHMCS's module log. The secrets are taken out of the
 * request here, whatever form WHMCS turns it into (an escaped secret would
 * slip past its string masking), and also handed to WHMCS to mask in the
 * response.
 */
function pvekeep_log($action, array $request, $response)
{
    if (!function_exists('logModuleCall')) {
        return;
    }
    $secrets = [];
    foreach (['token_secret', 'password'] as $field) {
        if (($request['server'][$field] ?? '') !== '') {
            $secrets[] = (string) $request['server'][$field];
            $request['server'][$field] = '***';
        }
    }
    logModuleCall('pvekeep', $action, $request, $response, $response, $secrets);
}

/**
 * The message a client reads for an error: translated by reason, falling
 * back to the plugin's own (already safe) message.
 */
function pvekeep_error_message(\Throwable $e, array $params = [])
{
    if ($e instanceof PvekeepRpcException) {
        $lang = pvekeep_lang(pvekeep_client_language($params));
        $key = 'error.' . $e->getReason();
        if (isset($lang[$key])) {
            $data = $e->getData();
            if (isset($data['lock'])) {
                $data['lock'] = pvekeep_lock_text($data['lock'], $lang);
            }
            return strtr($lang[$key], pvekeep_placeholders($data));
        }
        return $e->getMessage();
    }
    return 'The backup service is not reachable right now. Please try again later.';
}

function pvekeep_placeholders(array $data)
{
    $out = [];
    foreach ($data as $k => $v) {
        if (is_scalar($v)) {
            $out['{' . $k . '}'] = (string) $v;
        }
    }
    return $out;
}

/**
 * The client's own language (WHMCS hands it in clientsdetails), falling
 * back to the panel's default.
 */
function pvekeep_client_language(array $params)
{
    $language = (string) ($params['clientsdetails']['language'] ?? '');
    return $language !== '' ? $language : null;
}

/**
 * The code of a lang/<code>.json file for a WHMCS language name ("german")
 * or code ("de"), falling back to the panel's default and then to English
 * when there is no such file.
 */
function pvekeep_lang_code($language = null)
{
    $language = strtolower((string) ($language ?? ($GLOBALS['CONFIG']['Language'] ?? 'english')));
    $codes = ['english' => 'en', 'german' => 'de', 'russian' => 'ru'];
    $code = $codes[$language] ?? (preg_match('/^[a-z]{2}$/', $language) ? $language : 'en');
    return pvekeep_lang_file($code) !== '' ? $code : 'en';
}

/**
 * Where lang/<code>.json is: beside this file once packaged, beside hooks/
 * in the repository; '' when there is none.
 */
function pvekeep_lang_file($code)
{
    foreach ([__DIR__ . '/lang/', dirname(__DIR__) . '/lang/'] as $dir) {
        if (is_file($dir . $code . '.json')) {
            return $dir . $code . '.json';
        }
    }
    return '';
}

/**
 * Strings for the client's language from lang/<language>.json, English as
 * the fallback for anything missing.
 */
function pvekeep_lang($language = null)
{
    static $cache = [];
    $code = pvekeep_lang_code($language);
    if (!isset($cache[$code])) {
        $load = function ($c) {
            $file = pvekeep_lang_file($c);
            $data = $file !== '' ? json_decode((string) file_get_contents($file), true) : null;
            return is_array($data) ? $data : [];
        };
        $cache[$code] = array_merge($load('en'), $load($code));
    }
    return $cache[$code];
}

/**
 * One string of $lang with its {placeholders} filled in; the key itself
 * when the string is missing everywhere.
 */
function pvekeep_text(array $lang, $key, array $vars = [])
{
    return strtr((string) ($lang[$key] ?? $key), pvekeep_placeholders($vars));
}

/**
 * Why the VM is busy, in words: a lock name (Proxmox's own, or the
 * plugin's for its running job) is never shown raw.
 */
function pvekeep_lock_text($reason, array $lang)
{
    $key = 'lock.' . (string) $reason;
    return (string) ($lang[$key] ?? ($lang['lock.other'] ?? (string) $reason));
}

/**
 * A size for people: binary units with one decimal ("1.5 GiB"), whole
 * bytes below 1 KiB. $point is the language's decimal separator.
 */
function pvekeep_format_size($bytes, $point = '.')
{
    $bytes = is_numeric($bytes) ? max(0, (int) $bytes) : 0;
    if ($bytes < 1024) {
        return $bytes . ' B';
    }
    $units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
    $n = $bytes / 1024;
    $i = 0;
    // Compare the rounded value, so 1023.96 MiB reads "1.0 GiB", not "1024.0 MiB".
    while (round($n, 1) >= 1024 && $i < count($units) - 1) {
        $n /= 1024;
        $i++;
    }
    return number_format($n, 1, $point, '') . ' ' . $units[$i];
}

/**
 * A contract time (RFC 3339) for people, in UTC: "2026-11-22 10:15 UTC".
 * An empty or malformed time gives ''.
 */
function pvekeep_format_time($rfc3339)
{
    $s = trim((string) $rfc3339);
    if (!preg_match('/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i', $s)) {
        return '';
    }
    try {
        $t = new \DateTimeImmutable($s);
    } catch (\Exception $e) {
        return '';
    }
    return $t->setTimezone(new \DateTimeZone('UTC'))->format('Y-m-d H:i') . ' UTC';
}

/**
 * Custom functions the client area may call (the page's forms post to
 * them); WHMCS refuses any other.
 */
function pvekeep_ClientAreaAllowedFunctions()
{
    return ['backupCreate', 'backupRemove', 'backupRestore', 'restoreRetry', 'restoreReinstall'];
}

function pvekeep_ClientAreaCustomButtonArray()
{
    $lang = pvekeep_lang();
    // Restore, remove, retry and reinstall act on one backup or job: they
    // are forms on the page (with a confirmation), not sidebar buttons.
    return [
        $lang['button.backup_create'] ?? 'Backup now' => 'backupCreate',
    ];
}

function pvekeep_AdminCustomButtonArray()
{
    return [
        'Backup now' => 'backupCreate',
        'Remove backup' => 'backupRemove',
        'Restore backup' => 'backupRestore',
        'Retry restore' => 'restoreRetry',
        'Reinstall OS' => 'restoreReinstall',
    ];
}

/**
 * "Backup now": the note and a per-form idempotency key come from the
 * client's form, so a double submit makes one backup.
 */
function pvekeep_backupCreate(array $params)
{
    try {
        pvekeep_call('backups.create', $params, [
            'note' => (string) ($_POST['pvekeep_note'] ?? ''),
            'idempotency_key' => (string) ($_POST['pvekeep_token'] ?? ''),
        ]);
        return 'success';
    } catch (\Throwable $e) {
        return pvekeep_error_message($e, $params);
    }
}

function pvekeep_backupRemove(array $params)
{
    try {
        pvekeep_call('backups.remove', $params, [
            'backup_id' => (int) ($_POST['pvekeep_backup_id'] ?? 0),
        ]);
        return 'success';
    } catch (\Throwable $e) {
        return pvekeep_error_message($e, $params);
    }
}

/**
 * "Restore": overwrites the VM with the backup (its current disks and all
 * its snapshots are destroyed — the page says so before the click), then
 * the plugin puts the VM back to the package and emails the client.
 */
function pvekeep_backupRestore(array $params)
{
    try {
        pvekeep_call('backups.restore', $params, [
            'backup_id' => (int) ($_POST['pvekeep_backup_id'] ?? 0),
            'idempotency_key' => (string) ($_POST['pvekeep_token'] ?? ''),
        ]);
        return 'success';
    } catch (\Throwable $e) {
        return pvekeep_error_message($e, $params);
    }
}

function pvekeep_restoreRetry(array $params)
{
    try {
        pvekeep_call('restore.retry', $params, ['job_id' => (int) ($_POST['pvekeep_job_id'] ?? 0)]);
        return 'success';
    } catch (\Throwable $e) {
        return pvekeep_error_message($e, $params);
    }
}

function pvekeep_restoreReinstall(array $params)
{
    try {
        pvekeep_call('restore.reinstall', $params, ['job_id' => (int) ($_POST['pvekeep_job_id'] ?? 0)]);
        return 'success';
    } catch (\Throwable $e) {
        return pvekeep_error_message($e, $params);
    }
}

/**
 * The client area's overview tab: the service's backups, the running job,
 * a failed restore to retry, and the Backup-now form.
 */
function pvekeep_ClientArea(array $params)
{
    try {
        $list = pvekeep_call('backups.list', $params);
        $status = pvekeep_call('service.status', $params);
        $language = pvekeep_client_language($params);
        // One key per rendered form: a double submit makes one backup.
        $token = bin2hex(random_bytes(16));
        return [
            'tabOverviewReplacementTemplate' => 'templates/clientarea.tpl',
            'templateVariables' => pvekeep_clientarea_view($list, $status, pvekeep_lang($language), $token)
                + ['pvekeep_lang_code' => pvekeep_lang_code($language)],
        ];
    } catch (\Throwable $e) {
        return [
            'tabOverviewReplacementTemplate' => 'templates/error.tpl',
            'templateVariables' => ['usefulErrorMessage' => pvekeep_error_message($e, $params)],
        ];
    }
}

/**
 * What templates/clientarea.tpl shows, from the answers of backups.list and
 * service.status: the plugin's facts as they came, plus what to show and
 * which forms to offer, as display-ready strings in the client's language.
 * The plugin enforces every rule again when a form is posted; this only
 * keeps the page from offering what it would refuse.
 */
function pvekeep_clientarea_view(array $list, array $status, array $lang, $token)
{
    $quota = ['used' => (int) ($list['quota']['used'] ?? 0), 'max' => (int) ($list['quota']['max'] ?? 0)];
    $quota['enabled'] = $quota['max'] > 0; // a quota of 0 turns backups off
    $quota['full'] = $quota['enabled'] && $quota['used'] >= $quota['max'];
    $quota['text'] = pvekeep_text($lang, 'backups.quota', $quota);

    $job = $list['active_job'] ?? null;
    $lock = $status['lock'] ?? [];
    $locked = !empty($lock['locked']) || $job !== null;
    $lockView = [
        'locked' => $locked,
        'reason' => (string) ($lock['reason'] ?? ''),
        'text' => $locked
            ? pvekeep_text($lang, 'error.locked', ['lock' => pvekeep_lock_text($lock['reason'] ?? '', $lang)])
            : '',
    ];

    $backups = [];
    $point = (string) ($lang['format.decimal_point'] ?? '.');
    foreach ($list['items'] ?? [] as $b) {
        $state = (string) ($b['status'] ?? '');
        $id = (int) ($b['id'] ?? 0);
        $backups[] = $b + [
            'created_text' => pvekeep_format_time($b['created_at'] ?? ''),
            'size_text' => (int) ($b['size_bytes'] ?? 0) > 0 ? pvekeep_format_size($b['size_bytes'], $point) : '',
            'status_text' => (string) ($lang['backup.status.' . $state] ?? $state),
            'origin_text' => ($b['origin'] ?? '') === 'scheduled' ? (string) ($lang['backup.origin.scheduled'] ?? '') : '',
            'can_act' => $state === 'available' && !$locked,
            // Its own key: the plugin matches keys per service and refuses
            // one it has seen for another kind of job.
            'restore_token' => $token . '-restore-' . $id,
        ];
    }

    if ($job !== null) {
        $pct = max(0, min(100, (int) ($job['progress_pct'] ?? 0)));
        $job += [
            'kind_text' => (string) ($lang['job.' . ($job['kind'] ?? '')] ?? ($lang['job.other'] ?? '')),
            'state_text' => (string) ($lang['job.state.' . ($job['state'] ?? '')] ?? ''),
            'progress' => $pct,
            'progress_text' => pvekeep_text($lang, 'job.progress', ['pct' => $pct]),
            'started_text' => pvekeep_text($lang, 'job.started', ['time' => pvekeep_format_time($job['created_at'] ?? '')]),
        ];
    }

    $failed = $list['failed_restore'] ?? null;
    if ($failed !== null) {
        $next = (array) ($failed['next_actions'] ?? []);
        $what = ($failed['kind'] ?? '') === 'vm.reinstall' ? 'reinstall' : 'restore';
        // Without a reinstall to offer, the job failed before Proxmox
        // changed anything: the server still works.
        $damaged = in_array('reinstall', $next, true);
        $failed += [
            'message' => pvekeep_text($lang, $what . ($damaged ? '.failed' : '.failed_intact')),
            'retry_label' => pvekeep_text($lang, $what === 'reinstall' ? 'button.reinstall_retry' : 'button.restore_retry'),
            'retry_warning' => pvekeep_text($lang, $what . '.warning'),
            'can_retry' => in_array('retry', $next, true) && !$locked,
            'can_reinstall' => in_array('reinstall', $next, true) && !$locked,
        ] + pvekeep_failure_texts($failed, $lang);
    }

    // A backup or removal that failed, until the next job: the click must
    // not end in silence.
    $failedBackup = $list['failed_backup'] ?? null;
    if ($failedBackup !== null) {
        $failedBackup += [
            'message' => pvekeep_text($lang, ($failedBackup['kind'] ?? '') === 'backup.remove' ? 'backup.remove_failed' : 'backup.create_failed'),
        ] + pvekeep_failure_texts($failedBackup, $lang);
    }

    $notice = ['kind' => '', 'text' => ''];
    if (!$quota['enabled']) {
        $notice = ['kind' => 'disabled', 'text' => pvekeep_text($lang, 'backups.disabled')];
    } elseif ($quota['full']) {
        $notice = ['kind' => 'quota-full', 'text' => pvekeep_text($lang, 'backups.quota_full', $quota)];
    }

    return [
        'pvekeep_backups' => $backups,
        'pvekeep_quota' => $quota,
        'pvekeep_active_job' => $job,
        'pvekeep_failed_restore' => $failed,
        'pvekeep_failed_backup' => $failedBackup,
        'pvekeep_lock' => $lockView,
        'pvekeep_notice' => $notice,
        'pvekeep_can_backup' => $quota['enabled'] && !$quota['full'] && !$locked,
        'pvekeep_status' => $status,
        'pvekeep_form_token' => (string) $token,
        'pvekeep_lang' => $lang,
    ];
}

/**
 * What a failed job's alert says besides its message: Proxmox's reason
 * and when it failed, each '' when unknown.
 */
function pvekeep_failure_texts(array $job, array $lang)
{
    $finished = pvekeep_format_time($job['finished_at'] ?? '');
    return [
        'error_text' => ($job['error'] ?? '') !== '' ? pvekeep_text($lang, 'restore.failed_details', ['error' => $job['error']]) : '',
        'finished_text' => $finished !== '' ? pvekeep_text($lang, 'restore.failed_at', ['time' => $finished]) : '',
    ];
}
