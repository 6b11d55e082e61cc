<?php

/**
 * The WHMCS module contract (after WHMCS's sample provisioning module
 * test): every function the module defines returns what WHMCS expects of
 * it, and the functions the client area posts to are allowed.
 */

use PHPUnit\Framework\TestCase;

require_once dirname(__DIR__) . '/demo/whmcs_stubs.php';
require_once dirname(__DIR__) . '/pvekeep.php';

final class WHMCSModuleTest extends TestCase
{
    public static function arrayFunctions(): array
    {
        return [
            ['MetaData'], ['ConfigOptions'], ['ClientAreaCustomButtonArray'],
            ['AdminCustomButtonArray'], ['ClientAreaAllowedFunctions'],
        ];
    }

    /**
     * @dataProvider arrayFunctions
     */
    public function testFunctionReturnsAnArray(string $name): void
    {
        $fn = 'pvekeep_' . $name;
        $this->assertTrue(function_exists($fn), "$fn is not defined");
        $this->assertIsArray($fn());
    }

    public function testMetaDataNamesTheModule(): void
    {
        $meta = pvekeep_MetaData();
        $this->assertSame('1.1', $meta['APIVersion']);
        $this->assertTrue($meta['RequiresServer']);
    }

    /**
     * The numbering of module settings is public (configoptionN): the
     * first four are fixed by DESIGN §8, the rest by internal/plan.
     */
    public function testConfigOptionsKeepTheirPublicOrder(): void
    {
        $names = array_keys(pvekeep_ConfigOptions());
        $this->assertSame(['Backup Storage', 'Backups', 'Snapshots', 'Snapshot Lifetime'], array_slice($names, 0, 4));
        $this->assertSame('CPU Cores', $names[4]);
        $this->assertSame('Operating System', $names[21]);
        $this->assertLessThanOrEqual(24, count($names));
    }

    public function testEveryButtonFunctionExistsAndIsAllowed(): void
    {
        $allowed = pvekeep_ClientAreaAllowedFunctions();
        foreach (pvekeep_ClientAreaCustomButtonArray() as $label => $function) {
            $this->assertTrue(function_exists('pvekeep_' . $function), "button $label calls a missing function");
            $this->assertContains($function, $allowed, "button $label is not an allowed client function");
        }
        foreach (pvekeep_AdminCustomButtonArray() as $label => $function) {
            $this->assertTrue(function_exists('pvekeep_' . $function), "admin button $label calls a missing function");
        }
        foreach ($allowed as $function) {
            $this->assertTrue(function_exists('pvekeep_' . $function), "allowed function $function is missing");
        }
    }

    /**
     * A custom function returns 'success' or an error message string, even
     * when the plugin cannot be reached at all.
     */
    public function testCustomFunctionsReturnAStringWhenThePluginIsMissing(): void
    {
        putenv('PVEKEEP_BIN=/nonexistent/pvekeep');
        try {
            foreach (pvekeep_ClientAreaAllowedFunctions() as $function) {
                $result = ('pvekeep_' . $function)(['serviceid' => 1, 'userid' => 1]);
                $this->assertIsString($result);
                $this->assertNotSame('success', $result);
            }
            $page = pvekeep_ClientArea(['serviceid' => 1, 'userid' => 1]);
            $this->assertSame('templates/error.tpl', $page['tabOverviewReplacementTemplate']);
            $this->assertIsString($page['templateVariables']['usefulErrorMessage']);
        } finally {
            putenv('PVEKEEP_BIN');
        }
    }

    public function testOutsideTheClientAreaTheActorIsTheSystem(): void
    {
        // The API, payment callbacks and cron: WHMCS already decided.
        $_SESSION = ['uid' => 7];
        $this->assertSame(['type' => 'system', 'id' => 0], pvekeep_actor(['userid' => 3]));
        $_SESSION = [];
    }

    /**
     * @runInSeparateProcess
     */
    public function testInTheClientAreaTheActorIsTheLoggedInClientNotTheServiceOwner(): void
    {
        define('CLIENTAREA', true);
        $_SESSION = ['uid' => 7];
        $this->assertSame(['type' => 'client', 'id' => 7], pvekeep_actor(['userid' => 3]));
        $_SESSION = [];
        $this->assertSame(['type' => 'client', 'id' => 0], pvekeep_actor(['userid' => 3]), 'no login: refused by the plugin');
    }

    public static function dsnCases(): array
    {
        $base = ['db_username' => 'whmcs', 'db_password' => 'p@ss/w:rd', 'db_name' => 'whmcs'];
        return [
            'localhost means the socket' => [$base + ['db_host' => 'localhost'], '/^whmcs:p@ss\/w:rd@unix\(.+\)\/whmcs$/'],
            'localhost with a port is TCP' => [$base + ['db_host' => 'localhost', 'db_port' => '3307'], '/@tcp\(localhost:3307\)\/whmcs$/'],
            'host carrying its port' => [$base + ['db_host' => 'db.example:3307'], '/@tcp\(db\.example:3307\)\/whmcs$/'],
            'plain host gets 3306' => [$base + ['db_host' => '10.0.0.5'], '/@tcp\(10\.0\.0\.5:3306\)\/whmcs$/'],
            'IPv6 is bracketed' => [$base + ['db_host' => '::1'], '/@tcp\(\[::1\]:3306\)\/whmcs$/'],
            'bracketed IPv6 with port' => [$base + ['db_host' => '[fd00::5]:3307'], '/@tcp\(\[fd00::5\]:3307\)\/whmcs$/'],
            'a socket path' => [$base + ['db_host' => '/var/run/mysqld/mysqld.sock'], '/@unix\(\/var\/run\/mysqld\/mysqld\.sock\)\/whmcs$/'],
            'no database, no DSN' => [['db_host' => 'localhost'], '/^$/'],
        ];
    }

    /**
     * @dataProvider dsnCases
     */
    public function testDsnFromWhmcsSettings(array $db, string $pattern): void
    {
        $this->assertMatchesRegularExpression($pattern, pvekeep_dsn($db));
    }

    /**
     * WHMCS 7/8 keeps the database settings in its application config,
     * not in globals.
     *
     * @runInSeparateProcess
     */
    public function testDatabaseSettingsComeFromWhmcsApplicationConfig(): void
    {
        eval('class DI { public static function make($what) { return new ArrayObject(["db_host" => "db.internal", "db_port" => "", "db_username" => "u", "db_password" => "s", "db_name" => "whmcs"]); } }');
        putenv('PVEKEEP_DSN');
        $this->assertSame(['dsn' => 'u:s@tcp(db.internal:3306)/whmcs'], pvekeep_client_config());
        putenv('PVEKEEP_DSN=root@unix(/x)/y');
        $this->assertSame([], pvekeep_client_config(), 'the environment wins');
        putenv('PVEKEEP_DSN');
    }

    public function testModuleLogRequestNeverCarriesTheSecretsEvenUnmasked(): void
    {
        $log = tempnam(sys_get_temp_dir(), 'modlog');
        putenv('PVEKEEP_MODULE_LOG=' . $log);
        // The module must not rely on WHMCS's masking of what it logs.
        putenv('PVEKEEP_MODULE_LOG_NO_MASK=1');
        try {
            // Characters JSON or print_r would escape or reflow.
            $secret = 'a/b"c\\d' . "\n" . 'é';
            pvekeep_log('backups.list', ['server' => ['token_secret' => $secret, 'password' => 'pw/"x']], 'answer');
            $written = (string) file_get_contents($log);
        } finally {
            putenv('PVEKEEP_MODULE_LOG');
            putenv('PVEKEEP_MODULE_LOG_NO_MASK');
            unlink($log);
        }
        $this->assertNotSame('', $written);
        $decoded = json_decode($written, true);
        $this->assertIsArray($decoded);
        foreach ([$secret, 'pw/"x'] as $s) {
            $this->assertStringNotContainsString($s, $decoded['request']);
        }
    }

    public function testServerFieldsMapTokenAndFingerprint(): void
    {
        $s = pvekeep_server([
            'serverhostname' => 'pve1.example.net', 'serverport' => '8006', 'serverusername' => 'whmcs@pve!pvekeep',
            'serverpassword' => 'secret', 'serveraccesshash' => 'AB:CD', 'serversecure' => 'on',
        ]);
        $this->assertSame('whmcs@pve!pvekeep', $s['token_id']);
        $this->assertSame('secret', $s['token_secret']);
        $this->assertSame('', $s['password']);
        $this->assertSame('AB:CD', $s['fingerprint']);
        $this->assertFalse($s['verify_tls'], 'a pinned fingerprint replaces CA verification');
    }
}
