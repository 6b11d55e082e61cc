<?php

/**
 * Whole requests to the module's entry points, each in its own PHP process
 * (fixtures/request.php: WHMCS's encoded input, session, CSRF check) against
 * a fake plugin that records what it was sent (fixtures/FakePlugin.php):
 * only a POST with the token changes anything, input is decoded exactly
 * once, answers are escaped, the page costs one call, the admin's buttons
 * act on what the admin chose and confirmed.
 */

use PHPUnit\Framework\TestCase;

require_once __DIR__ . '/bootstrap.php';

final class ModuleRequestTest extends TestCase
{
    /** @var FakePlugin|null */
    private $plugin = null;

    private const PARAMS = [
        'serviceid' => 42, 'userid' => 7, 'status' => 'Active', 'serverid' => 1,
        'serverhostname' => 'pve1.example.net', 'serverusername' => 'whmcs@pve!pvekeep',
        'serverpassword' => 'S3CRET-token', 'serveraccesshash' => 'AB:CD', 'serversecure' => '',
        'clientsdetails' => ['language' => 'english'],
    ];

    /** What the client typed into the note field. */
    private const NOTE = 'Tom\'s "db" <b>&amp; é';

    protected function tearDown(): void
    {
        if ($this->plugin !== null) {
            $this->plugin->close();
        }
    }

    /** A new fake plugin, the previous one closed (tearDown closes the last). */
    private function freshPlugin(array $answers = []): FakePlugin
    {
        if ($this->plugin !== null) {
            $this->plugin->close();
        }
        return $this->plugin($answers);
    }

    private function plugin(array $answers = [], array $stderr = []): FakePlugin
    {
        $this->plugin = new FakePlugin($answers, $stderr);
        return $this->plugin;
    }

    /**
     * @param array<string, mixed> $cmd see fixtures/request.php
     * @return array<string, mixed>
     */
    private static function request(array $cmd): array
    {
        $cmd += ['params' => self::PARAMS, 'session' => ['uid' => 7]];
        $spec = [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']];
        $proc = proc_open([PHP_BINARY, __DIR__ . '/fixtures/request.php', json_encode($cmd)], $spec, $pipes);
        fclose($pipes[0]);
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        proc_close($proc);
        $lines = array_values(array_filter(explode("\n", (string) $out), 'strlen'));
        $res = json_decode((string) end($lines), true);
        self::assertIsArray($res, "request.php printed: $out $err");
        return $res;
    }

    public function testAGetToAStateChangingFunctionChangesNothingAndSaysSo(): void
    {
        $plugin = $this->plugin();
        $res = self::request(['area' => 'client', 'method' => 'GET', 'call' => 'pvekeep_backupCreate',
            'get' => ['pvekeep_note' => 'x', 'token' => 'csrf-token-1'], 'token_ok' => true]);
        $this->assertTrue($res['returned']);
        $this->assertStringContainsString('only be started with the form', $res['result']);
        $this->assertSame([], $plugin->requests());
    }

    public function testAPostWithoutAValidTokenChangesNothing(): void
    {
        $plugin = $this->plugin();
        foreach (['backupCreate', 'backupRestore', 'backupRemove', 'restoreRetry', 'restoreReinstall'] as $fn) {
            $res = self::request(['area' => 'client', 'method' => 'POST', 'call' => 'pvekeep_' . $fn,
                'post' => ['pvekeep_note' => 'x', 'pvekeep_backup_id' => '1', 'pvekeep_job_id' => '1'], 'token_ok' => false]);
            $this->assertSame(['WHMCS.default'], $res['token_checks'], $fn);
            $this->assertSame('danger', $res['session']['pvekeep_flash'][42]['kind'], $fn);
        }
        $this->assertSame([], $plugin->requests());
    }

    /**
     * The note arrives HTML-entity-encoded and reaches the plugin exactly
     * as typed; the outcome waits in the session and the request ends in
     * a redirect (no output, nothing returned to WHMCS).
     */
    public function testAPostWithTheTokenReachesThePluginAsTypedAndRedirects(): void
    {
        $plugin = $this->plugin(['backups.create' => ['result' => ['job' => ['id' => 9]]]]);
        $res = self::request(['area' => 'client', 'method' => 'POST', 'call' => 'pvekeep_backupCreate',
            'post' => ['token' => 'csrf-token-1', 'pvekeep_note' => self::NOTE, 'pvekeep_token' => 'form-1'], 'token_ok' => true]);
        $this->assertFalse($res['returned'], 'a redirect ends the request');
        $this->assertSame('', $res['output']);
        $this->assertSame(['kind' => 'success', 'text' => 'Your backup has been started.'], $res['session']['pvekeep_flash'][42]);
        $calls = $plugin->requests();
        $this->assertCount(1, $calls);
        $this->assertSame('backups.create', $calls[0]['method']);
        $this->assertSame(self::NOTE, $calls[0]['params']['note']);
        $this->assertSame('form-1', $calls[0]['params']['idempotency_key']);
        $this->assertSame(['type' => 'client', 'id' => 7], $calls[0]['params']['actor']);
        $this->assertSame(42, $calls[0]['params']['service_id']);
    }

    public function testAPluginErrorWithHtmlIsKeptAsTextAndEscapedWhenReturned(): void
    {
        $error = ['error' => ['code' => 1006, 'message' => 'Proxmox refused the request',
            'data' => ['reason' => 'upstream', 'detail' => '<script>alert(1)</script> & more']]];
        $this->plugin(['backups.create' => $error]);
        $res = self::request(['area' => 'client', 'method' => 'POST', 'call' => 'pvekeep_backupCreate',
            'post' => ['pvekeep_note' => 'n'], 'token_ok' => true]);
        $flash = $res['session']['pvekeep_flash'][42];
        $this->assertSame('danger', $flash['kind']);
        $this->assertStringContainsString('<script>alert(1)</script> & more', $flash['text'], 'raw here: the template escapes it');

        // The API's ModuleCustom: WHMCS prints the answer raw.
        $res = self::request(['area' => '', 'method' => 'POST', 'call' => 'pvekeep_backupCreate', 'post' => []]);
        $this->assertTrue($res['returned']);
        $this->assertStringContainsString('&lt;script&gt;alert(1)&lt;/script&gt; &amp; more', $res['result']);
        $this->assertStringNotContainsString('<script>', $res['result']);
    }

    public function testANoteThatIsNotUtf8IsRefusedBeforeThePlugin(): void
    {
        // In-process, as the API's ModuleCustom (no area): WHMCS's own
        // encoding would already have emptied it in the client area.
        $plugin = $this->plugin();
        $_POST = ['pvekeep_note' => "caf\xE9"];
        try {
            $result = \WHMCS\Module\Server\Pvekeep\ClientActions::run('backupCreate', self::PARAMS);
        } finally {
            $_POST = [];
        }
        $this->assertStringContainsString('Please check the value you entered (note)', $result);
        $this->assertSame([], $plugin->requests());
    }

    public function testRestoreSendsTheChosenBackupAndItsOwnKey(): void
    {
        $plugin = $this->plugin();
        self::request(['area' => 'client', 'method' => 'POST', 'call' => 'pvekeep_backupRestore',
            'post' => ['pvekeep_backup_id' => '5', 'pvekeep_token' => 'k-restore-5'], 'token_ok' => true]);
        $p = $plugin->requests()[0]['params'];
        $this->assertSame(5, $p['backup_id']);
        $this->assertSame('k-restore-5', $p['idempotency_key']);
    }

    public function testThePageIsOnePluginCallAndShowsTheFlashOnce(): void
    {
        $plugin = $this->plugin(['backups.list' => ['result' => [
            'quota' => ['used' => 0, 'max' => 3], 'items' => [], 'active_job' => null,
            'status' => ['vmid' => 100, 'power' => 'running', 'lock' => ['locked' => false], 'checked_at' => null],
        ]]]);
        $res = self::request(['area' => 'client', 'method' => 'GET', 'call' => 'pvekeep_ClientArea',
            'session' => ['uid' => 7, 'pvekeep_flash' => [42 => ['kind' => 'success', 'text' => 'done']]]]);
        $this->assertSame('templates/clientarea.tpl', $res['result']['tabOverviewModuleOutputTemplate']);
        $vars = $res['result']['templateVariables'];
        $this->assertSame(['kind' => 'success', 'text' => 'done'], $vars['pvekeep_flash']);
        $this->assertSame('csrf-token-1', $vars['pvekeep_csrf']);
        $this->assertTrue($vars['pvekeep_can_backup']);
        $this->assertArrayNotHasKey(42, $res['session']['pvekeep_flash'] ?? [], 'shown once');
        $this->assertSame(['backups.list'], array_column($plugin->requests(), 'method'));
    }

    public function testThePollAnswersJsonFromJobsGet(): void
    {
        $plugin = $this->plugin(['jobs.get' => ['result' => ['job' => [
            'id' => 9, 'kind' => 'backup.create', 'state' => 'running', 'progress_pct' => 57,
        ]]]]);
        $res = self::request(['area' => 'client', 'method' => 'GET', 'call' => 'pvekeep_ClientArea',
            'get' => ['action' => 'productdetails', 'id' => '42', 'pvekeep_poll' => '9'],
            'session' => ['uid' => 7, 'Language' => 'german']]);
        $this->assertFalse($res['returned'], 'the poll answers and ends the request');
        $body = json_decode($res['output'], true);
        $this->assertSame(57, $body['job']['progress']);
        $this->assertSame('57 % erledigt', $body['job']['progress_text']);
        $this->assertSame((new \WHMCS\Module\Server\Pvekeep\Lang('german'))->get('job.state.running'), $body['job']['state_text']);
        $this->assertFalse($body['job']['done']);
        $calls = $plugin->requests();
        $this->assertSame(['jobs.get'], array_column($calls, 'method'));
        $this->assertSame(9, $calls[0]['params']['job_id']);
        $this->assertSame(['type' => 'client', 'id' => 7], $calls[0]['params']['actor']);
    }

    /** The poll's last answer names the final state in the client's words, not "succeeded". */
    public function testThePollTranslatesAFinishedJobsState(): void
    {
        $want = [
            'english' => ['succeeded' => 'Finished', 'failed' => 'Failed', 'cancelled' => 'Cancelled'],
            'german' => ['succeeded' => 'Abgeschlossen', 'failed' => 'Fehlgeschlagen', 'cancelled' => 'Abgebrochen'],
            'russian' => ['succeeded' => 'Завершено', 'failed' => 'Не удалось', 'cancelled' => 'Отменено'],
        ];
        foreach ($want as $language => $states) {
            foreach ($states as $state => $text) {
                $this->freshPlugin(['jobs.get' => ['result' => ['job' => [
                    'id' => 9, 'kind' => 'backup.create', 'state' => $state, 'progress_pct' => 100,
                ]]]]);
                $res = self::request(['area' => 'client', 'method' => 'GET', 'call' => 'pvekeep_ClientArea',
                    'get' => ['action' => 'productdetails', 'id' => '42', 'pvekeep_poll' => '9'],
                    'session' => ['uid' => 7, 'Language' => $language]]);
                $body = json_decode($res['output'], true);
                $this->assertSame($text, $body['job']['state_text'], "$language $state");
                $this->assertTrue($body['job']['done'], "$language $state");
            }
        }
    }

    private const OVERVIEW = [
        'vmid' => 100, 'node' => 'pve1', 'power' => 'stopped', 'lock' => ['locked' => false], 'checked_at' => null,
        'selected_backup_id' => 0,
        'backups' => [['id' => 5, 'created_at' => '2026-11-22T10:15:42Z', 'note' => '<img src=x onerror=alert(1)>',
            'size_bytes' => 2048, 'status' => 'available', 'origin' => 'manual', 'volid' => 'backup:vzdump-qemu-100.vma.zst', 'protected' => false]],
        'jobs' => [], 'emails' => [['id' => 1, 'kind' => 'backup_restored', 'state' => 'failed', 'attempts' => 5,
            'last_error' => '535 <auth> failed', 'created_at' => '2026-11-22T10:15:42Z']],
        'failed_restore' => ['id' => 12, 'kind' => 'backup.restore', 'state' => 'failed', 'error' => 'disk gone',
            'next_actions' => ['retry', 'reinstall'], 'finished_at' => '2026-11-22T10:20:00Z'],
    ];

    public function testAdminRestoreActsOnTheSelectedBackupOnly(): void
    {
        $plugin = $this->plugin(['admin.overview' => ['result' => self::OVERVIEW]]);
        $admin = ['area' => 'admin', 'method' => 'POST', 'session' => ['adminid' => 1], 'token_ok' => true, 'post' => ['token' => 'x']];
        $res = self::request($admin + ['call' => 'pvekeep_adminBackupRestore']);
        $this->assertStringContainsString('No backup is selected', $res['result']);
        $this->assertSame(['admin.overview'], array_column($plugin->requests(), 'method'));
        $this->assertSame(['WHMCS.admin.default'], $res['token_checks']);
        $plugin->close();

        $plugin = $this->plugin(['admin.overview' => ['result' => ['selected_backup_id' => 5] + self::OVERVIEW]]);
        $res = self::request($admin + ['call' => 'pvekeep_adminBackupRestore']);
        $this->assertSame('success', $res['result']);
        $calls = $plugin->requests();
        $this->assertSame(['admin.overview', 'backups.restore'], array_column($calls, 'method'));
        $this->assertSame(5, $calls[1]['params']['backup_id']);
        $this->assertSame(['type' => 'admin', 'id' => 1], $calls[1]['params']['actor']);
    }

    public function testAdminReinstallNeedsTheConfirmationSavedFirst(): void
    {
        $plugin = $this->plugin(['admin.overview' => ['result' => self::OVERVIEW]]);
        $admin = ['area' => 'admin', 'method' => 'POST', 'token_ok' => true, 'call' => 'pvekeep_adminRestoreReinstall'];
        $res = self::request($admin + ['session' => ['adminid' => 1]]);
        $this->assertStringContainsString('Confirm first', $res['result']);
        $res = self::request($admin + ['session' => ['adminid' => 1, 'pvekeep_reinstall' => [42 => ['job_id' => 11, 'until' => time() + 60]]]]);
        $this->assertStringContainsString('Confirm first', $res['result'], 'confirmed for another job');
        $this->assertSame(['admin.overview', 'admin.overview'], array_column($plugin->requests(), 'method'));

        $res = self::request($admin + ['session' => ['adminid' => 1, 'pvekeep_reinstall' => [42 => ['job_id' => 12, 'until' => time() + 60]]]]);
        $this->assertSame('success', $res['result']);
        $this->assertArrayNotHasKey(42, $res['session']['pvekeep_reinstall'], 'one confirmation, one reinstall');
        $calls = $plugin->requests();
        $this->assertSame('restore.reinstall', end($calls)['method']);
        $this->assertSame(12, end($calls)['params']['job_id']);
    }

    public function testReinstallIsOfferedOnlyForAFailedRestoreThatOffersIt(): void
    {
        $all = array_values(\WHMCS\Module\Server\Pvekeep\AdminActions::BUTTONS);
        $plugin = $this->plugin(['admin.overview' => ['result' => self::OVERVIEW]]);
        $admin = ['area' => 'admin', 'method' => 'GET', 'session' => ['adminid' => 1]];
        $this->assertSame($all, array_values(self::request($admin + ['call' => 'pvekeep_AdminCustomButtonArray'])['result']));
        $plugin->close();

        $intact = self::OVERVIEW;
        $intact['failed_restore']['next_actions'] = ['retry'];
        $this->plugin(['admin.overview' => ['result' => $intact]]);
        $buttons = self::request($admin + ['call' => 'pvekeep_AdminCustomButtonArray'])['result'];
        $this->assertContains('adminRestoreRetry', $buttons);
        $this->assertNotContains('adminRestoreReinstall', $buttons, 'the VM works: nothing to reinstall');
        $this->plugin->close();

        $this->plugin(['admin.overview' => ['result' => ['failed_restore' => null] + self::OVERVIEW]]);
        $buttons = self::request($admin + ['call' => 'pvekeep_AdminCustomButtonArray'])['result'];
        $this->assertSame(['adminBackupCreate', 'adminBackupRestore', 'adminBackupRemove'], array_values($buttons));
    }

    /**
     * WHMCS's admin UI may send a module button as a GET or a POST (its
     * runModuleCommand AJAX; not public): either works with an admin session
     * and the admin token, neither without.
     */
    public function testAdminButtonsNeedAnAdminAndTheTokenNotAPost(): void
    {
        foreach (['GET', 'POST'] as $method) {
            $plugin = $this->freshPlugin();
            $res = self::request(['area' => 'admin', 'method' => $method, 'session' => ['adminid' => 1], 'token_ok' => true,
                'call' => 'pvekeep_adminBackupCreate', strtolower($method) => ['token' => 'csrf-token-1']]);
            $this->assertSame('success', $res['result'], "$method with the token");
            $this->assertSame(['WHMCS.admin.default'], $res['token_checks'], $method);
            $this->assertSame(['backups.create'], array_column($plugin->requests(), 'method'), $method);

            $plugin = $this->freshPlugin();
            $res = self::request(['area' => 'admin', 'method' => $method, 'session' => ['adminid' => 1], 'token_ok' => false,
                'call' => 'pvekeep_adminBackupCreate']);
            $this->assertStringContainsString('no valid security token. Nothing was changed', $res['result'], "$method without");
            $this->assertSame([], $plugin->requests(), "$method without the token");

            $plugin = $this->freshPlugin();
            $res = self::request(['area' => 'admin', 'method' => $method, 'session' => [], 'token_ok' => true,
                'call' => 'pvekeep_adminBackupCreate']);
            $this->assertStringContainsString('need a logged-in admin', $res['result'], "$method, no admin");
            $this->assertSame([], $plugin->requests(), "$method without an admin");
        }
    }

    public function testAnAdminsFailureGoesToTheActivityAndModuleLogWithThePluginsStderr(): void
    {
        $plugin = $this->plugin(
            ['backups.create' => ['error' => ['code' => 1006, 'message' => 'Proxmox refused the request', 'data' => ['reason' => 'upstream']]]],
            ['backups.create' => 'level=ERROR msg="vzdump: storage backup not online" token=S3CRET-token']
        );
        $res = self::request(['area' => 'admin', 'method' => 'POST', 'session' => ['adminid' => 1], 'token_ok' => true,
            'call' => 'pvekeep_adminBackupCreate']);
        $this->assertStringContainsString('Proxmox refused the request', $res['result']);
        $this->assertCount(1, $res['activity']);
        $this->assertStringContainsString('storage backup not online', $res['activity'][0]);
        $this->assertStringContainsString('service ID 42', $res['activity'][0]);
        $this->assertStringNotContainsString('S3CRET', $res['activity'][0]);
        $log = $plugin->moduleLog();
        $this->assertStringContainsString('storage backup not online', $log[0]['processed']);
        $this->assertStringNotContainsString('S3CRET', implode(' ', $log[0]));
    }

    public function testAdminFieldsEscapeEverythingAndShowTheFailedEmail(): void
    {
        $this->plugin(['admin.overview' => ['result' => ['selected_backup_id' => 5] + self::OVERVIEW]]);
        $res = self::request(['area' => 'admin', 'method' => 'GET', 'session' => ['adminid' => 1],
            'call' => 'pvekeep_AdminServicesTabFields']);
        $html = implode("\n", $res['result']);
        $this->assertStringNotContainsString('<img', $html);
        $this->assertStringContainsString('&lt;img src=x onerror=alert(1)&gt;', $html);
        $this->assertMatchesRegularExpression('/<option value="5" selected>/', $html);
        $this->assertStringContainsString('535 &lt;auth&gt; failed', $res['result']['pvekeep Emails']);
        $this->assertStringContainsString('name="pvekeep_confirm_reinstall"', $res['result']['pvekeep Failed restore']);
        $this->assertArrayNotHasKey('pvekeep Settings', $res['result']);
    }

    public function testAdminFieldsListSnapshotsWithAFailedExpiryAndThoseMadeInProxmoxApart(): void
    {
        $this->plugin(['admin.overview' => ['result' => [
            'snapshots' => [
                ['name' => 'pk-a', 'description' => '<b>mine</b>', 'created_at' => '2026-11-22T10:15:42Z', 'expires_at' => '2026-11-23T10:15:42Z',
                    'vmstate' => true, 'status' => 'available', 'last_error' => 'VM is locked (backup)', 'attempts' => 2],
                ['name' => 'pk-b', 'description' => '', 'created_at' => '2026-11-22T11:00:00Z', 'expires_at' => null,
                    'vmstate' => false, 'status' => 'available', 'last_error' => '', 'attempts' => 0],
            ],
        ] + self::OVERVIEW], 'snapshots.list' => ['result' => [
            'foreign' => [['name' => 'before-upgrade', 'description' => 'by hand', 'created_at' => '2026-11-20T09:00:00Z',
                'vmstate' => false, 'status' => 'available', 'foreign' => true]],
        ]]]);
        $res = self::request(['area' => 'admin', 'method' => 'GET', 'session' => ['adminid' => 1],
            'call' => 'pvekeep_AdminServicesTabFields']);
        $html = $res['result']['pvekeep Snapshots'];
        $this->assertStringContainsString('&lt;b&gt;mine&lt;/b&gt;', $html);
        $this->assertMatchesRegularExpression('/data-pvekeep-admin-snapshot="pk-a" class="danger table-danger">.*removal failed 2× \(the cron retries\): VM is locked \(backup\)/', $html);
        $this->assertMatchesRegularExpression('/data-pvekeep-admin-snapshot="pk-b"><td>.*<td>kept<\/td>/', $html);
        $this->assertMatchesRegularExpression('/data-pvekeep-admin-snapshot="before-upgrade" data-foreign="1">.*made in Proxmox: not the client&#039;s, not counted/', $html);
    }

    public function testAdminFieldsSayWhenTheProductSettingsCannotWork(): void
    {
        $this->plugin(['admin.overview' => ['result' => ['settings_error' => 'Backups: "three" is not a number'] + self::OVERVIEW]]);
        $res = self::request(['area' => 'admin', 'method' => 'GET', 'session' => ['adminid' => 1],
            'call' => 'pvekeep_AdminServicesTabFields']);
        $this->assertStringContainsString('Backups: &quot;three&quot; is not a number', $res['result']['pvekeep Settings']);
    }

    public function testAdminSaveSelectsTheBackupAndKeepsTheConfirmation(): void
    {
        $plugin = $this->plugin();
        $res = self::request(['area' => 'admin', 'method' => 'POST', 'session' => ['adminid' => 1],
            'call' => 'pvekeep_AdminServicesTabFieldsSave',
            'post' => ['pvekeep_selected_backup' => '5', 'pvekeep_selected_backup_was' => '0', 'pvekeep_confirm_reinstall' => '12']]);
        $calls = $plugin->requests();
        $this->assertSame(['admin.select_backup'], array_column($calls, 'method'));
        $this->assertSame(5, $calls[0]['params']['backup_id']);
        $this->assertSame(12, $res['session']['pvekeep_reinstall'][42]['job_id']);

        self::request(['area' => 'admin', 'method' => 'POST', 'session' => ['adminid' => 1],
            'call' => 'pvekeep_AdminServicesTabFieldsSave',
            'post' => ['pvekeep_selected_backup' => '5', 'pvekeep_selected_backup_was' => '5']]);
        $this->assertCount(1, $plugin->requests(), 'an unchanged choice is not sent again');
    }
}
