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

    public function testTheActorIsTheLoggedInClientNotTheServiceOwner(): void
    {
        $_SESSION = ['uid' => 7];
        $this->assertSame(['type' => 'client', 'id' => 7], pvekeep_actor(['userid' => 3]));
        $_SESSION = [];
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
