<?php

/**
 * The stand-in's start: strict error handling, its configuration (from the
 * environment, like WHMCS's configuration.php), the database, the session
 * and the module loaded exactly as packaged. Every entry point (router.php,
 * cli.php) requires this file first. docs/whmcs.md says what each piece
 * imitates and where that comes from.
 *
 * Environment:
 *   WHMCS_STANDIN_MODULE_DIR  the packaged module folder
 *                             (default: <repo>/dist/modules/servers/pvekeep)
 *   WHMCS_STANDIN_DSN         WHMCS's database, go-sql-driver form
 *                             (user:pass@unix(/run/mysqld/mysqld.sock)/whmcs or @tcp(host:port)/whmcs)
 *   WHMCS_STANDIN_DATA        a writable folder: sessions, Smarty's compiled templates
 *   WHMCS_STANDIN_ASSETS      the theme CSS fetched from npm (default: <repo>/.cache/npm)
 *   WHMCS_STANDIN_CC_HASH     $cc_encryption_hash (encrypt/decrypt key)
 *   WHMCS_STANDIN_TIMEZONE    the system time zone (default UTC)
 *   PVEKEEP_MODULE_LOG        optional: logModuleCall also appends JSON lines here (tests)
 */

// Strict: every warning, notice and deprecation is an error (WHMCS would
// log it and carry on; the stand-in fails so the tests see it). An @ still
// silences, as in PHP.
error_reporting(E_ALL);
ini_set('display_errors', '0');
set_error_handler(function ($severity, $message, $file, $line) {
    if (!(error_reporting() & $severity)) {
        return false;
    }
    throw new \ErrorException($message, 0, $severity, $file, $line);
});

define('STANDIN_DIR', dirname(__DIR__));
define('STANDIN_REPO', dirname(__DIR__, 3));

/**
 * The stand-in's own settings (not WHMCS's). Fails loudly when the module
 * folder or the database is not given.
 */
function standin_env($name, $default = null)
{
    $v = getenv($name);
    if ($v === false || $v === '') {
        if ($default === null) {
            throw new \RuntimeException("the WHMCS stand-in needs $name in its environment (see hooks/standin/lib/boot.php)");
        }
        return $default;
    }
    return $v;
}

function standin_module_dir()
{
    $dir = standin_env('WHMCS_STANDIN_MODULE_DIR', STANDIN_REPO . '/dist/modules/servers/pvekeep');
    if (!is_file($dir . '/pvekeep.php')) {
        throw new \RuntimeException("no packaged module at $dir (run `make package`, or set WHMCS_STANDIN_MODULE_DIR)");
    }
    return realpath($dir);
}

function standin_data_dir($sub)
{
    $dir = standin_env('WHMCS_STANDIN_DATA', sys_get_temp_dir() . '/whmcs-standin-' . getmyuid()) . '/' . $sub;
    if (!is_dir($dir) && !@mkdir($dir, 0700, true) && !is_dir($dir)) {
        throw new \RuntimeException("cannot create $dir");
    }
    return $dir;
}

/**
 * WHMCS's configuration.php values from a go-sql-driver DSN:
 * db_host, db_port, db_username, db_password, db_name (and the socket the
 * stand-in itself connects through).
 */
function standin_db_config()
{
    static $cfg = null;
    if ($cfg !== null) {
        return $cfg;
    }
    $dsn = standin_env('WHMCS_STANDIN_DSN');
    if (!preg_match('~^([^:@]*)(?::([^@]*))?@(unix|tcp)\(([^)]*)\)/([^?]+)~', $dsn, $m)) {
        throw new \RuntimeException('WHMCS_STANDIN_DSN is not user:pass@unix(/socket)/db or user:pass@tcp(host:port)/db');
    }
    $cfg = ['db_username' => $m[1], 'db_password' => $m[2], 'db_name' => $m[5], 'socket' => '', 'db_host' => 'localhost', 'db_port' => ''];
    if ($m[3] === 'unix') {
        // configuration.php says "localhost": PHP's MySQL drivers take that as
        // the local socket. The socket itself is the stand-in's business.
        $cfg['socket'] = $m[4];
    } else {
        $hp = $m[4];
        $i = strrpos($hp, ':');
        $cfg['db_host'] = $i === false ? $hp : trim(substr($hp, 0, $i), '[]');
        $cfg['db_port'] = $i === false ? '' : substr($hp, $i + 1);
    }
    return $cfg;
}

function standin_pdo()
{
    static $pdo = null;
    if ($pdo === null) {
        $c = standin_db_config();
        $where = $c['socket'] !== '' ? 'unix_socket=' . $c['socket']
            : 'host=' . $c['db_host'] . ($c['db_port'] !== '' ? ';port=' . $c['db_port'] : '');
        $pdo = new \PDO('mysql:' . $where . ';dbname=' . $c['db_name'] . ';charset=utf8mb4', $c['db_username'], $c['db_password'], [
            \PDO::ATTR_ERRMODE => \PDO::ERRMODE_EXCEPTION,
            \PDO::ATTR_DEFAULT_FETCH_MODE => \PDO::FETCH_ASSOC,
            \PDO::ATTR_EMULATE_PREPARES => false,
            \PDO::ATTR_STRINGIFY_FETCHES => true, // WHMCS's PDO gives strings, as mysqlnd without native types does
        ]);
    }
    return $pdo;
}

/** Runs a query and returns its rows (assoc). */
function standin_rows($sql, array $args = [])
{
    $st = standin_pdo()->prepare($sql);
    $st->execute($args);
    return $st->fetchAll();
}

function standin_row($sql, array $args = [])
{
    $rows = standin_rows($sql, $args);
    return $rows ? $rows[0] : null;
}

function standin_exec($sql, array $args = [])
{
    $st = standin_pdo()->prepare($sql);
    $st->execute($args);
    return $st->rowCount();
}

function standin_h($s)
{
    return htmlspecialchars((string) $s, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

require __DIR__ . '/classes.php';
require __DIR__ . '/functions.php';
require __DIR__ . '/module.php';

date_default_timezone_set(standin_env('WHMCS_STANDIN_TIMEZONE', 'UTC'));
define('WHMCS', true);
standin_settings(); // $GLOBALS['CONFIG'] is there before any module file loads, as in WHMCS
