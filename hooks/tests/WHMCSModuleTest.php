<?php

/**
 * The WHMCS module contract (after WHMCS's sample provisioning module
 * test): every function returns what WHMCS expects of it, the settings keep
 * their public order, and the plumbing under them (actor, database, server
 * fields, module log) says what it should.
 */

use PHPUnit\Framework\TestCase;
use WHMCS\Module\Server\Pvekeep\Binary;
use WHMCS\Module\Server\Pvekeep\ModuleLog;
use WHMCS\Module\Server\Pvekeep\Panel;
use WHMCS\Module\Server\Pvekeep\Rpc;
use WHMCS\Module\Server\Pvekeep\ServerFields;

require_once __DIR__ . '/bootstrap.php';
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
        $this->assertSame('Network Bridge', $names[17]);
        $this->assertSame('Disk Storage', $names[20]);
        $this->assertSame('Operating System', $names[21]);
        $this->assertSame('Snapshot RAM', $names[22]);
        $this->assertSame('More Settings', $names[23]);
        $this->assertCount(24, $names, '24 is WHMCS\'s limit: configoption24 is a key = value textarea');
        foreach (pvekeep_ConfigOptions() as $name => $o) {
            $this->assertContains($o['Type'], ['text', 'password', 'yesno', 'dropdown', 'radio', 'textarea'], $name);
        }
    }

    /**
     * Four settings are dropdowns filled from the server; WHMCS runs a
     * Loader only in simple mode, so those are simple-mode settings.
     */
    public function testLoaderSettingsExistAndShowInSimpleMode(): void
    {
        $loaders = [];
        foreach (pvekeep_ConfigOptions() as $name => $o) {
            if (isset($o['Loader'])) {
                $this->assertTrue(function_exists($o['Loader']), "$name: {$o['Loader']} is not defined");
                $this->assertTrue($o['SimpleMode'] ?? false, "$name: a Loader needs SimpleMode");
                $loaders[] = $name;
            }
        }
        $this->assertSame(['Backup Storage', 'Network Bridge', 'Disk Storage', 'Operating System'], $loaders);
        $this->assertStringContainsString('Access Hash', pvekeep_ConfigOptions()['Backup Storage']['Description'],
            'the server fields are documented in the settings');
    }

    public function testEveryButtonFunctionExists(): void
    {
        $this->assertSame([], pvekeep_ClientAreaCustomButtonArray(), 'sidebar links are GETs: none');
        foreach (pvekeep_AdminCustomButtonArray() as $label => $function) {
            $this->assertTrue(function_exists('pvekeep_' . $function), "admin button $label calls a missing function");
            $this->assertNotContains($function, pvekeep_ClientAreaAllowedFunctions(), "$function is the admin's only");
        }
        foreach (pvekeep_ClientAreaAllowedFunctions() as $function) {
            $this->assertTrue(function_exists('pvekeep_' . $function), "allowed function $function is missing");
        }
    }

    /**
     * Outside the client and admin areas (the API's ModuleCustom) a custom
     * function returns a string even when the plugin cannot run at all,
     * and the page shows an error without hiding WHMCS's own details.
     */
    public function testFunctionsAnswerWhenThePluginIsMissing(): void
    {
        putenv('PVEKEEP_BIN=/nonexistent/pvekeep');
        putenv('PVEKEEP_DSN=x');
        try {
            foreach (array_merge(pvekeep_ClientAreaAllowedFunctions(), array_values(pvekeep_AdminCustomButtonArray())) as $function) {
                $result = ('pvekeep_' . $function)(['serviceid' => 1, 'userid' => 1]);
                $this->assertIsString($result);
                $this->assertNotSame('success', $result);
            }
            $page = pvekeep_ClientArea(['serviceid' => 1, 'userid' => 1]);
            $this->assertSame('templates/error.tpl', $page['tabOverviewModuleOutputTemplate']);
            $this->assertArrayNotHasKey('tabOverviewReplacementTemplate', $page);
            $this->assertIsString($page['templateVariables']['pvekeep_error']);
            $test = pvekeep_TestConnection(['serverhostname' => 'pve']);
            $this->assertFalse($test['success']);
            $this->assertStringContainsString('/nonexistent/pvekeep is missing', $test['error']);
            $fields = pvekeep_AdminServicesTabFields(['serviceid' => 1]);
            $this->assertStringContainsString('missing', $fields['pvekeep']);
        } finally {
            putenv('PVEKEEP_BIN');
            putenv('PVEKEEP_DSN');
        }
    }

    public function testBinaryProblemsSayWhatToDo(): void
    {
        $this->assertSame('amd64', Binary::arch('x86_64'));
        $this->assertSame('arm64', Binary::arch('aarch64'));
        $this->assertSame('', Binary::arch('riscv64'));
        $this->assertStringContainsString('is missing', Binary::problem('/nonexistent/pvekeep'));
        $file = tempnam(sys_get_temp_dir(), 'pvkbin');
        chmod($file, 0644);
        try {
            $this->assertStringContainsString('chmod 0755 ' . $file, Binary::problem($file));
            chmod($file, 0755);
            $this->assertSame('', Binary::problem($file));
        } finally {
            unlink($file);
        }
        $this->assertStringStartsWith(dirname(__DIR__) . '/bin/pvekeep-linux-', (function () {
            putenv('PVEKEEP_BIN');
            return Binary::path();
        })(), 'the module runs the binary in its own folder');
    }

    public function testOutsideTheClientAreaTheActorIsTheSystem(): void
    {
        $_SESSION = ['uid' => 7];
        $this->assertSame(['type' => 'system', 'id' => 0], Rpc::actor());
        $_SESSION = [];
    }

    /**
     * @runInSeparateProcess
     * @preserveGlobalState disabled
     */
    public function testInTheClientAreaTheActorIsTheLoggedInClientNotTheServiceOwner(): void
    {
        define('CLIENTAREA', true);
        $_SESSION = ['uid' => 7];
        $this->assertSame(['type' => 'client', 'id' => 7], Rpc::actor());
        $_SESSION = [];
        $this->assertSame(['type' => 'client', 'id' => 0], Rpc::actor(), 'no login: refused by the plugin');
    }

    /**
     * @runInSeparateProcess
     * @preserveGlobalState disabled
     */
    public function testInTheAdminAreaTheActorIsTheAdmin(): void
    {
        define('ADMINAREA', true);
        $_SESSION = ['adminid' => 2, 'uid' => 7];
        $this->assertSame(['type' => 'admin', 'id' => 2], Rpc::actor());
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
        $this->assertMatchesRegularExpression($pattern, Panel::dsn($db));
    }

    /**
     * WHMCS 7/8 keeps the database settings in its application config,
     * not in globals.
     *
     * @runInSeparateProcess
     * @preserveGlobalState disabled
     */
    public function testDatabaseSettingsComeFromWhmcsApplicationConfig(): void
    {
        eval('class DI { public static function make($what) { return new ArrayObject(["db_host" => "db.internal", "db_port" => "", "db_username" => "u", "db_password" => "s", "db_name" => "whmcs"]); } }');
        $this->assertSame('u:s@tcp(db.internal:3306)/whmcs', Panel::dsn(Panel::database()));
    }

    public function testModuleLogRequestNeverCarriesTheSecretsEvenUnmasked(): void
    {
        $log = tempnam(sys_get_temp_dir(), 'modlog');
        putenv('PVEKEEP_MODULE_LOG=' . $log);
        // The module must not rely on WHMCS's masking of what it logs.
        putenv('PVEKEEP_MODULE_LOG_NO_MASK=1');
        // Characters JSON or print_r would escape or reflow.
        $secret = 'a/b"c\\d' . "\n" . 'é';
        try {
            ModuleLog::call('cron.tick', [
                'servers' => [['token_secret' => $secret], ['password' => 'pw/"x']],
                'smtp' => ['password' => 'smtp-"pw'],
            ], 'answer');
            $written = (string) file_get_contents($log);
        } finally {
            putenv('PVEKEEP_MODULE_LOG');
            putenv('PVEKEEP_MODULE_LOG_NO_MASK');
            unlink($log);
        }
        $decoded = json_decode($written, true);
        $this->assertIsArray($decoded);
        foreach ([$secret, 'pw/"x', 'smtp-"pw'] as $s) {
            $this->assertStringNotContainsString($s, $decoded['request']);
        }
    }

    public function testServerFieldsMapTokenAndFingerprint(): void
    {
        $s = ServerFields::fromParams([
            'serverid' => 3, 'serverhostname' => 'pve1.example.net', 'serverport' => '8006', 'serverusername' => 'whmcs@pve!pvekeep',
            'serverpassword' => 'secret', 'serveraccesshash' => 'AB:CD', 'serversecure' => 'on',
        ]);
        $this->assertSame('whmcs@pve!pvekeep', $s['token_id']);
        $this->assertSame('secret', $s['token_secret']);
        $this->assertSame('', $s['password']);
        $this->assertSame('AB:CD', $s['fingerprint']);
        $this->assertFalse($s['verify_tls'], 'a pinned fingerprint replaces CA verification');
        $this->assertSame(3, $s['id']);
        $s = ServerFields::fromParams(['serverip' => '10.0.0.2', 'serverusername' => 'root@pam', 'serverpassword' => 'pw', 'serversecure' => 'on']);
        $this->assertSame('10.0.0.2', $s['host'], 'the IP when there is no hostname');
        $this->assertSame(['root@pam', 'pw', '', ''], [$s['username'], $s['password'], $s['token_id'], $s['token_secret']]);
        $this->assertTrue($s['verify_tls']);
        $this->assertSame(8006, $s['port']);
    }
}
