<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * Where the plugin is: the binary shipped in the module's own bin/ for this
 * machine (bin/pvekeep-linux-amd64 or -arm64), unless PVEKEEP_BIN (the
 * tests) or an optional config.php in the module folder points elsewhere:
 *
 *   <?php return ['binary' => '/opt/pvekeep/pvekeep', 'socket' => '/run/pvekeep.sock',
 *                 'config' => '/etc/pvekeep.toml'];
 */
final class Binary
{
    /** The module folder: beside lib/ (hooks/ in a checkout). */
    public static function moduleDir(): string
    {
        return dirname(__DIR__);
    }

    /**
     * config.php of the module folder ([] without one).
     *
     * @return array<string, string>
     */
    public static function settings(): array
    {
        $file = self::moduleDir() . '/config.php';
        if (!is_file($file)) {
            return [];
        }
        $data = include $file;
        return is_array($data) ? array_map('strval', $data) : [];
    }

    /** The binary to run. */
    public static function path(): string
    {
        foreach (['PVEKEEP_BIN', 'PVEKEEP_BINARY'] as $name) {
            $env = getenv($name);
            if (is_string($env) && $env !== '') {
                return $env;
            }
        }
        $configured = self::settings()['binary'] ?? '';
        if ($configured !== '') {
            return $configured;
        }
        $arch = self::arch(php_uname('m'));
        return self::moduleDir() . '/bin/pvekeep-linux-' . ($arch !== '' ? $arch : php_uname('m'));
    }

    /** The Go architecture of a machine name; '' when none is shipped. */
    public static function arch(string $machine): string
    {
        $map = ['x86_64' => 'amd64', 'amd64' => 'amd64', 'aarch64' => 'arm64', 'arm64' => 'arm64'];
        return $map[strtolower($machine)] ?? '';
    }

    /**
     * Why the binary cannot run, in words an admin can act on; '' when it
     * can.
     */
    public static function problem(string $path): string
    {
        if (!is_file($path)) {
            if (self::arch(php_uname('m')) === '' && strpos($path, self::moduleDir() . '/bin/') === 0) {
                return 'pvekeep: no plugin binary for this machine (' . php_uname('m') . '): only linux amd64 and'
                    . ' arm64 are shipped. Build one and name it in config.php (\'binary\').';
            }
            return 'pvekeep: the plugin binary ' . $path . ' is missing. Upload the whole modules/servers/pvekeep'
                . ' folder of the release, bin/ included.';
        }
        if (!is_executable($path)) {
            return 'pvekeep: the plugin binary ' . $path . ' is not executable by the web server\'s user.'
                . ' Run: chmod 0755 ' . $path;
        }
        return '';
    }
}
