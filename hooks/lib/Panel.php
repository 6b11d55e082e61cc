<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * What the module reads of WHMCS itself: its settings and its database
 * credentials. Each falls back quietly when WHMCS does not offer it (the
 * cron script before init, the tests).
 */
final class Panel
{
    /**
     * A general setting (DateFormat, Language, SystemURL, …), '' when unset.
     */
    public static function setting(string $name): string
    {
        if (class_exists('\WHMCS\Config\Setting')) {
            try {
                $value = \WHMCS\Config\Setting::getValue($name);
                if ($value !== null && $value !== '') {
                    return (string) $value;
                }
            } catch (\Throwable $e) {
                // fall through to the global copy
            }
        }
        return (string) ($GLOBALS['CONFIG'][$name] ?? '');
    }

    /**
     * WHMCS's database settings. WHMCS 7/8 loads configuration.php inside a
     * method, so they are not globals there: its application config has them.
     *
     * @return array<string, string>
     */
    public static function database(): array
    {
        $config = null;
        if (class_exists('\DI')) {
            try {
                $config = \DI::make('config');
            } catch (\Throwable $e) {
                $config = null;
            }
        }
        $out = [];
        foreach (['db_host', 'db_port', 'db_username', 'db_password', 'db_name'] as $k) {
            if ($config !== null && isset($config[$k])) {
                $out[$k] = (string) $config[$k];
            } elseif (isset($GLOBALS[$k])) {
                $out[$k] = (string) $GLOBALS[$k];
            }
        }
        return $out;
    }

    /**
     * A go-sql-driver/mysql DSN for WHMCS's database, '' without one.
     * "localhost" without a port means the local socket (grants for
     * user@localhost do not match TCP); a host may carry its port
     * ("db:3307"); IPv6 addresses are bracketed.
     *
     * @param array<string, string> $db
     */
    public static function dsn(array $db): string
    {
        if (empty($db['db_name']) || !isset($db['db_username'])) {
            return '';
        }
        $host = trim((string) ($db['db_host'] ?? ''));
        $port = trim((string) ($db['db_port'] ?? ''));
        if (preg_match('/^\[(.+)\](?::(\d+))?$/', $host, $m)) {
            $host = $m[1];
            $port = $port !== '' ? $port : ($m[2] ?? '');
        } elseif (substr_count($host, ':') === 1) {
            list($host, $hostPort) = explode(':', $host, 2);
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
}
