<?php

/**
 * Installing the module: Test Connection's messages, the settings'
 * dropdowns, and the cron with WHMCS's servers and mail settings.
 */

use PHPUnit\Framework\TestCase;
use WHMCS\Module\Server\Pvekeep\ConnectionTest;
use WHMCS\Module\Server\Pvekeep\Cron;
use WHMCS\Module\Server\Pvekeep\MailSettings;
use WHMCS\Module\Server\Pvekeep\ProductSettings;

require_once __DIR__ . '/bootstrap.php';
require_once dirname(__DIR__) . '/pvekeep.php';

final class SetupTest extends TestCase
{
    /** @var FakePlugin|null */
    private $plugin = null;

    private const SERVER = [
        'serverid' => 1, 'serverhostname' => 'pve1.example.net', 'serverport' => '8006',
        'serverusername' => 'whmcs@pve!pvekeep', 'serverpassword' => 'S3CRET', 'serveraccesshash' => '', 'serversecure' => '',
    ];

    protected function tearDown(): void
    {
        if ($this->plugin !== null) {
            $this->plugin->close();
        }
        $GLOBALS['pvekeep_test']['tables'] = [];
    }

    public function testConnectionPasses(): void
    {
        $this->plugin = new FakePlugin(['server.test' => ['result' => ['ok' => true, 'checks' => []]]]);
        $this->assertSame(['success' => true, 'error' => ''], pvekeep_TestConnection(self::SERVER));
        $sent = $this->plugin->requests()[0]['params'];
        $this->assertSame('whmcs@pve!pvekeep', $sent['server']['token_id']);
        $this->assertSame(['type' => 'system', 'id' => 0], $sent['actor']);
    }

    public function testFailedChecksAreNamedWithTheFingerprintToPin(): void
    {
        $this->plugin = new FakePlugin(['server.test' => ['result' => [
            'ok' => false, 'fingerprint' => 'AA:BB:CC',
            'checks' => [
                ['name' => 'address', 'ok' => true, 'detail' => ''],
                ['name' => 'tls', 'ok' => false, 'detail' => 'The certificate is self-signed & not pinned.'],
                ['name' => 'storage', 'ok' => false, 'detail' => 'No storage holds <backup> content.'],
            ],
        ]]]);
        $r = pvekeep_TestConnection(self::SERVER);
        $this->assertFalse($r['success']);
        $this->assertStringContainsString('TLS: The certificate is self-signed &amp; not pinned.', $r['error']);
        $this->assertStringContainsString('Backup storage: No storage holds &lt;backup&gt; content.', $r['error']);
        $this->assertStringContainsString('fingerprint is AA:BB:CC', $r['error']);
        $this->assertStringContainsString('Access Hash', $r['error']);
        $this->assertStringNotContainsString('Address:', $r['error'], 'passed checks are not listed');
    }

    public function testAConfigurationErrorNamesTheWhmcsField(): void
    {
        $this->plugin = new FakePlugin(['server.test' => ['error' => ['code' => 1007,
            'message' => 'the certificate does not match the pinned fingerprint',
            'data' => ['reason' => 'invalid_input', 'field' => 'server.fingerprint']]]]);
        $r = pvekeep_TestConnection(self::SERVER + ['serveraccesshash' => '11:22']);
        $this->assertFalse($r['success']);
        $this->assertStringContainsString('does not match the pinned fingerprint.', $r['error']);
        $this->assertStringContainsString('Check the server\'s Access Hash', str_replace('&#039;', '\'', $r['error']));
    }

    public function testLoadersListTheServersOptions(): void
    {
        $this->plugin = new FakePlugin(['server.options' => ['result' => ['items' => [
            ['value' => '9000', 'label' => '9000 debian-12 (pve1)'], ['value' => '9001', 'label' => '9001 alma-9 (pve1)'],
        ]]]]);
        $this->assertSame(['' => '(not managed)', '9000' => '9000 debian-12 (pve1)', '9001' => '9001 alma-9 (pve1)'],
            pvekeep_LoadTemplates(self::SERVER));
        $this->assertSame(['9000' => '9000 debian-12 (pve1)', '9001' => '9001 alma-9 (pve1)'], pvekeep_LoadBackupStorages(self::SERVER),
            'the backup storage is required');
        $kinds = array_map(function ($r) {
            return $r['params']['kind'];
        }, $this->plugin->requests());
        $this->assertSame(['templates', 'backup_storages'], $kinds);
    }

    public function testALoaderThatCannotAskSaysWhatToDo(): void
    {
        $this->plugin = new FakePlugin(['server.options' => ['error' => ['code' => 1008, 'message' => 'Proxmox is not reachable',
            'data' => ['reason' => 'unavailable']]]]);
        try {
            pvekeep_LoadBridges(self::SERVER);
            $this->fail('no exception');
        } catch (\Exception $e) {
            $this->assertStringContainsString('Proxmox is not reachable', $e->getMessage());
            $this->assertStringContainsString('Test Connection', $e->getMessage());
        }
    }

    public function testLegacySmtpSettings(): void
    {
        $smtp = MailSettings::fromSettings([
            'MailType' => 'smtp', 'SMTPHost' => 'mail.example.net', 'SMTPPort' => '465', 'SMTPUsername' => 'u',
            'SMTPPassword' => encrypt('p@ss'), 'SMTPSSL' => 'ssl', 'Email' => 'billing@example.net', 'CompanyName' => 'Example',
        ]);
        $this->assertSame(['host' => 'mail.example.net', 'port' => 465, 'username' => 'u', 'password' => 'p@ss', 'secure' => 'ssl',
            'from_email' => 'billing@example.net', 'from_name' => 'Example'], $smtp);
        $this->assertNull(MailSettings::fromSettings(['MailType' => 'mail', 'SMTPHost' => 'x']), 'PHP mail(): no SMTP');
    }

    public function testWhmcs8MailConfig(): void
    {
        $config = encrypt(json_encode(['module' => 'SmtpMail', 'configuration' => [
            'host' => 'smtp.example.net', 'port' => '587', 'secure' => 'tls', 'username' => 'u', 'password' => 'pw',
        ]]));
        $smtp = MailSettings::fromSettings(['MailConfig' => $config, 'MailType' => 'mail', 'Email' => 'a@example.net']);
        $this->assertSame('smtp.example.net', $smtp['host']);
        $this->assertSame(587, $smtp['port']);
        $this->assertSame('tls', $smtp['secure']);
        $this->assertSame('pw', $smtp['password']);
        $this->assertNull(MailSettings::fromSettings(['MailConfig' => encrypt(json_encode(['module' => 'SendGrid']))]));
    }

    public function testCronTicksEveryEnabledServerWithThePanelsMail(): void
    {
        $GLOBALS['pvekeep_test']['tables'] = [
            'tblservers' => [
                ['id' => 1, 'type' => 'pvekeep', 'disabled' => 0, 'hostname' => 'pve1', 'ipaddress' => '', 'port' => '8006',
                    'username' => 'whmcs@pve!k', 'password' => encrypt('tok'), 'accesshash' => 'AB', 'secure' => ''],
                ['id' => 2, 'type' => 'pvekeep', 'disabled' => 1, 'hostname' => 'off'],
                ['id' => 3, 'type' => 'cpanel', 'disabled' => 0, 'hostname' => 'other'],
            ],
            'tblconfiguration' => [
                ['setting' => 'MailType', 'value' => 'smtp'], ['setting' => 'SMTPHost', 'value' => 'mail.example.net'],
                ['setting' => 'SMTPPassword', 'value' => encrypt('smtp-pw')], ['setting' => 'SMTPSSL', 'value' => 'tls'],
                ['setting' => 'Email', 'value' => 'billing@example.net'], ['setting' => 'CompanyName', 'value' => 'Example'],
            ],
        ];
        $this->plugin = new FakePlugin(['cron.tick' => ['result' => ['jobs' => 1]]]);
        $this->assertSame(['jobs' => 1], Cron::tick(Cron::HOOK_BUDGET));
        $p = $this->plugin->requests()[0]['params'];
        $this->assertSame([1], array_column($p['servers'], 'id'));
        $this->assertSame('tok', $p['servers'][0]['token_secret']);
        $this->assertSame(20, $p['budget_s']);
        $this->assertSame('smtp-pw', $p['smtp']['password']);
        $this->assertSame(587, $p['smtp']['port']);
        $this->assertSame('Example', $p['smtp']['from_name']);
    }

    public function testHooksAreRegisteredByTheirRealNames(): void
    {
        require_once dirname(__DIR__) . '/hooks.php';
        $hooks = $GLOBALS['pvekeep_test']['hooks'];
        $this->assertSame(['hook_pvekeep_after_cron'], $hooks['AfterCronJob']);
        $this->assertSame(['hook_pvekeep_abort_when_locked'], $hooks['PreModuleChangePassword'], 'a command pvekeep does not own');
        foreach (['PreModuleCreate', 'PreModuleSuspend', 'PreModuleUnsuspend', 'PreModuleTerminate', 'PreModuleChangePackage', 'PreModuleCustom'] as $point) {
            $this->assertArrayNotHasKey($point, $hooks, "$point: the module's own function refuses a locked VM itself, with the reason");
        }
    }

    public function testAFailedCronTickNeverBreaksWhmcsCronAndIsLogged(): void
    {
        require_once dirname(__DIR__) . '/hooks.php';
        $GLOBALS['pvekeep_test']['activity'] = [];
        $this->plugin = new FakePlugin(['cron.tick' => ['error' => ['code' => 1008, 'message' => 'database unreachable',
            'data' => ['reason' => 'unavailable']]]]);
        $GLOBALS['pvekeep_test']['tables'] = ['tblservers' => [], 'tblconfiguration' => []];
        hook_pvekeep_after_cron([]);
        $this->assertCount(1, $GLOBALS['pvekeep_test']['activity']);
        $this->assertStringContainsString('database unreachable', $GLOBALS['pvekeep_test']['activity'][0]);
        $this->assertSame(['cron.tick'], array_column($this->plugin->requests(), 'method'));
        $this->assertArrayNotHasKey('smtp', $this->plugin->requests()[0]['params'], 'WHMCS sends no SMTP: none is passed');
    }

    public function testALockedVmAbortsOtherModuleCommands(): void
    {
        require_once dirname(__DIR__) . '/hooks.php';
        $this->plugin = new FakePlugin(['service.status' => ['result' => ['lock' => ['locked' => true, 'reason' => 'restore']]]]);
        $abort = hook_pvekeep_abort_when_locked(['params' => ['moduletype' => 'pvekeep', 'serviceid' => 4]]);
        $this->assertTrue($abort['abortcmd']);
        $this->assertStringContainsString('a backup is being restored', $abort['abortmsg']);
        $this->assertNull(hook_pvekeep_abort_when_locked(['params' => ['moduletype' => 'cpanel', 'serviceid' => 4]]));
        $this->assertSame(['type' => 'system', 'id' => 0], $this->plugin->requests()[0]['params']['actor']);
    }
}
