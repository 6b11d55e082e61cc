<?php

/**
 * The VM's life from WHMCS (Lifecycle): each module command is one plugin
 * method; "success" only when the plugin accepted the job; a refusal is an
 * escaped sentence for the admin; CreateAccount hands over what only WHMCS
 * knows (the decrypted password, the dedicated IP, the client's SSH key,
 * the configurable options). Against the fake plugin, which records what
 * it was sent; areas in their own PHP process (fixtures/request.php).
 */

use PHPUnit\Framework\TestCase;
use WHMCS\Module\Server\Pvekeep\ClientAreaView;
use WHMCS\Module\Server\Pvekeep\Format;
use WHMCS\Module\Server\Pvekeep\Lang;
use WHMCS\Module\Server\Pvekeep\Lifecycle;

require_once __DIR__ . '/bootstrap.php';
require_once dirname(__DIR__) . '/pvekeep.php';

final class LifecycleTest extends TestCase
{
    /** @var FakePlugin|null */
    private $plugin = null;

    private const PARAMS = [
        'serviceid' => 42, 'userid' => 7, 'status' => 'Pending', 'serverid' => 1, 'moduletype' => 'pvekeep',
        'serverhostname' => 'pve1.example.net', 'serverusername' => 'whmcs@pve!pvekeep',
        'serverpassword' => 'S3CRET-token', 'serveraccesshash' => 'AB:CD', 'serversecure' => '',
        'domain' => ' vm42.example.net ', 'username' => 'root', 'password' => 'Pa$$"w<rd>',
        'dedicatedip' => '203.0.113.10', 'assignedips' => '',
        'customfields' => ['vmid' => '', 'SSH Public Key' => "ssh-ed25519 AAAA one@host\r\n\r\nssh-rsa BBBB two@host\n"],
        'configoptions' => ['CPU Cores' => '2', 'RAM' => 4, 'Operating System' => '9001'],
        'clientsdetails' => ['language' => 'german'],
    ];

    protected function tearDown(): void
    {
        if ($this->plugin !== null) {
            $this->plugin->close();
            $this->plugin = null;
        }
    }

    private function plugin(array $answers = []): FakePlugin
    {
        if ($this->plugin !== null) {
            $this->plugin->close();
        }
        $this->plugin = new FakePlugin($answers);
        return $this->plugin;
    }

    public static function commands(): array
    {
        return [
            'create' => ['pvekeep_CreateAccount', 'service.create'],
            'suspend' => ['pvekeep_SuspendAccount', 'service.suspend'],
            'unsuspend' => ['pvekeep_UnsuspendAccount', 'service.unsuspend'],
            'change package' => ['pvekeep_ChangePackage', 'service.change_package'],
            'terminate' => ['pvekeep_TerminateAccount', 'service.terminate'],
        ];
    }

    /**
     * @dataProvider commands
     */
    public function testAnAcceptedJobIsSuccessAfterOneCall(string $fn, string $method): void
    {
        $plugin = $this->plugin([$method => ['result' => ['job' => ['id' => 5, 'kind' => $method, 'state' => 'running']]]]);
        $this->assertSame('success', $fn(self::PARAMS));
        $calls = $plugin->requests();
        $this->assertSame([$method], array_column($calls, 'method'));
        $this->assertSame(42, $calls[0]['params']['service_id']);
        $this->assertSame(['type' => 'system', 'id' => 0], $calls[0]['params']['actor'], 'the automation, outside both areas');
        $this->assertSame('pve1.example.net', $calls[0]['params']['server']['host']);
    }

    /**
     * @dataProvider commands
     */
    public function testALockedVmIsRefusedWithWhatHoldsIt(string $fn, string $method): void
    {
        $this->plugin([$method => ['error' => ['code' => 1003, 'message' => 'the VM is busy',
            'data' => ['reason' => 'locked', 'lock' => 'backup', 'job_id' => 12]]]]);
        $result = $fn(self::PARAMS);
        $this->assertNotSame('success', $result);
        $this->assertStringContainsString('busy (a backup is running, job 12)', $result);
        $this->assertStringContainsString('Nothing was changed', $result);
    }

    public function testThePluginsOwnLocksAreNamedInWords(): void
    {
        $this->plugin(['service.terminate' => ['error' => ['code' => 1003, 'message' => 'busy',
            'data' => ['reason' => 'locked', 'lock' => 'change-package', 'job_id' => 3]]]]);
        $this->assertStringContainsString('busy (your new package is being applied, job 3)', pvekeep_TerminateAccount(self::PARAMS));
    }

    /**
     * @dataProvider commands
     */
    public function testAJobThatAlreadyFailedIsNoSuccess(string $fn, string $method): void
    {
        $this->plugin([$method => ['result' => ['job' => ['id' => 8, 'state' => 'failed', 'error' => 'clone <failed>']]]]);
        $result = $fn(self::PARAMS);
        $this->assertSame('pvekeep: ' . $method . ' did not start (job 8 failed): clone &lt;failed&gt;', $result);
        $this->plugin([$method => ['result' => []]]);
        $this->assertStringContainsString('did not start', $fn(self::PARAMS), 'an answer without a job');
    }

    /**
     * The plugin's own words reach the admin, escaped: WHMCS prints the
     * answer raw.
     */
    public function testAShrinkIsRefusedWithThePluginsMessageEscaped(): void
    {
        $this->plugin(['service.change_package' => ['error' => ['code' => 1005,
            'message' => 'the package\'s system disk <10 GiB> is smaller than the VM\'s (20 GiB): disks only grow; nothing was changed',
            'data' => ['reason' => 'invalid_state']]]]);
        $result = pvekeep_ChangePackage(self::PARAMS);
        $this->assertSame('pvekeep: the package&#039;s system disk &lt;10 GiB&gt; is smaller than the VM&#039;s (20 GiB):'
            . ' disks only grow; nothing was changed', $result);
    }

    public function testAMissingPluginIsNoSuccess(): void
    {
        putenv('PVEKEEP_BIN=/nonexistent/pvekeep');
        putenv('PVEKEEP_DSN=x');
        try {
            foreach (self::commands() as list($fn)) {
                $result = $fn(self::PARAMS);
                $this->assertStringContainsString('/nonexistent/pvekeep is missing', $result, $fn);
            }
        } finally {
            putenv('PVEKEEP_BIN');
            putenv('PVEKEEP_DSN');
        }
    }

    /**
     * What only WHMCS knows reaches the plugin, the password as WHMCS
     * decrypted it, and never the module log.
     */
    public function testCreateHandsOverWhatOnlyWhmcsKnows(): void
    {
        $plugin = $this->plugin(['service.create' => ['result' => ['job' => ['id' => 1, 'state' => 'queued']]]]);
        $this->assertSame('success', pvekeep_CreateAccount(self::PARAMS));
        $p = $plugin->requests()[0]['params'];
        $this->assertSame('vm42.example.net', $p['hostname']);
        $this->assertSame('root', $p['username']);
        $this->assertSame('Pa$$"w<rd>', $p['password']);
        $this->assertSame('203.0.113.10', $p['dedicated_ip']);
        $this->assertSame("ssh-ed25519 AAAA one@host\nssh-rsa BBBB two@host", $p['ssh_keys']);
        $this->assertSame(['CPU Cores' => '2', 'RAM' => '4', 'Operating System' => '9001'], $p['config_options']);
        $this->assertNotEmpty($plugin->moduleLog());
        foreach ($plugin->moduleLog() as $entry) {
            $this->assertStringNotContainsString('Pa$$', $entry['request']);
        }
    }

    public function testCreateWithoutIpKeyOrOptions(): void
    {
        $plugin = $this->plugin(['service.create' => ['result' => ['job' => ['id' => 1, 'state' => 'queued']]]]);
        $params = ['dedicatedip' => '', 'customfields' => ['vmid' => ''], 'configoptions' => []] + self::PARAMS;
        $this->assertSame('success', pvekeep_CreateAccount($params));
        $p = $plugin->requests()[0]['params'];
        $this->assertSame('', $p['dedicated_ip'], 'DHCP');
        $this->assertSame('', $p['ssh_keys']);
        $this->assertSame([], $p['config_options']);
    }

    /**
     * @dataProvider sshKeyFields
     */
    public function testTheSshKeyFieldIsFoundByItsUsualNames(string $name, bool $found): void
    {
        $this->assertSame($found ? 'ssh-ed25519 AAAA x' : '', Lifecycle::sshKeys(['customfields' => [$name => 'ssh-ed25519 AAAA x']]));
    }

    public static function sshKeyFields(): array
    {
        return [
            'SSH Key' => ['SSH Key', true], 'SSH Public Key' => ['SSH Public Key', true], 'sshkeys' => ['sshkeys', true],
            'ssh_key' => ['ssh_key', true], 'Public SSH Key' => ['Public SSH Key', true], 'Hostname' => ['Hostname', false],
        ];
    }

    public function testOnlyCreateCarriesFields(): void
    {
        foreach (['SuspendAccount', 'UnsuspendAccount', 'ChangePackage', 'TerminateAccount'] as $fn) {
            $this->assertSame([], Lifecycle::fields($fn, self::PARAMS), $fn);
        }
    }

    public static function areas(): array
    {
        return [
            // The admin's button: the admin acts.
            'admin' => ['admin', ['adminid' => 3], ['type' => 'admin', 'id' => 3]],
            // An order paid with credit in the client area: WHMCS decided.
            'client area' => ['client', ['uid' => 7], ['type' => 'system', 'id' => 0]],
            'the cron' => ['', [], ['type' => 'system', 'id' => 0]],
        ];
    }

    /**
     * @dataProvider areas
     */
    public function testWhoActs(string $area, array $session, array $actor): void
    {
        $plugin = $this->plugin(['service.suspend' => ['result' => ['job' => ['id' => 2, 'state' => 'running']]]]);
        $cmd = ['area' => $area, 'method' => 'POST', 'call' => 'pvekeep_SuspendAccount', 'params' => self::PARAMS,
            'session' => $session];
        $spec = [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']];
        $proc = proc_open([PHP_BINARY, __DIR__ . '/fixtures/request.php', json_encode($cmd)], $spec, $pipes);
        fclose($pipes[0]);
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        proc_close($proc);
        $res = json_decode((string) $out, true);
        $this->assertIsArray($res, "request.php printed: $out $err");
        $this->assertSame('success', $res['result']);
        $this->assertSame($actor, $plugin->requests()[0]['params']['actor']);
    }

    /**
     * The page names a running lifecycle job in the client's words, never
     * as "working on your server" in general.
     *
     * @dataProvider commands
     */
    public function testThePageNamesALifecycleJob(string $fn, string $kind): void
    {
        foreach (['english', 'german', 'russian'] as $language) {
            $lang = new Lang($language);
            $job = (new ClientAreaView($lang, new Format($lang)))->job(['id' => 1, 'kind' => $kind, 'state' => 'running']);
            $this->assertNotSame($lang->get('job.other'), $job['kind_text'], "$language: $kind");
        }
    }
}
