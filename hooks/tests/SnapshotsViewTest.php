<?php

/**
 * The Snapshots card: what SnapshotsView hands the template from
 * backups.list's snapshots section, and the card as Smarty renders it.
 */

use PHPUnit\Framework\TestCase;
use WHMCS\Module\Server\Pvekeep\ClientAreaView;
use WHMCS\Module\Server\Pvekeep\Format;
use WHMCS\Module\Server\Pvekeep\Lang;
use WHMCS\Module\Server\Pvekeep\SnapshotsView;

require_once __DIR__ . '/bootstrap.php';

final class SnapshotsViewTest extends TestCase
{
    private const NOW = '2026-11-22T10:30:00Z';
    private const IDLE = ['locked' => false, 'reason' => '', 'text' => ''];
    private const BUSY = ['locked' => true, 'reason' => 'backup', 'text' => 'Your server is busy (a backup is running).'];

    private static function snapshot(string $name, array $more = []): array
    {
        return $more + ['name' => $name, 'description' => 'before upgrade', 'created_at' => '2026-11-22T10:29:54Z',
            'expires_at' => '2026-11-23T10:29:54Z', 'vmstate' => false, 'status' => 'available'];
    }

    private static function section(array $more = []): array
    {
        return $more + ['quota' => ['used' => 1, 'max' => 3], 'lifetime_s' => 86400, 'lifetime_days' => 1,
            'ram_allowed' => true, 'items' => [self::snapshot('pk-a')], 'failed_job' => null, 'removed_by_restore' => []];
    }

    private static function view(array $section, bool $mayAct = true, array $lock = self::IDLE, string $power = 'running', string $language = 'english'): array
    {
        $lang = new Lang($language);
        $format = new Format($lang, 'DD/MM/YYYY', new DateTimeZone('UTC'), strtotime(self::NOW));
        return (new SnapshotsView($lang, $format))->build($section, $mayAct, $lock, $power, 'k');
    }

    public function testCounterListAndRemainingLifetime(): void
    {
        $v = self::view(self::section());
        $this->assertTrue($v['enabled']);
        $this->assertSame('1/3', $v['quota']['text']);
        $this->assertSame('0 days 23:59:54', $v['items'][0]['remaining_text']);
        $this->assertSame(86394, $v['items'][0]['remaining_s']);
        $this->assertSame('22/11/2026 10:29', $v['items'][0]['created_text']);
        $this->assertTrue($v['can_create']);
        $this->assertTrue($v['items'][0]['offered']);
        $this->assertSame('Snapshots are removed automatically 1 day after they are taken.', $v['lifetime_text']);
    }

    /**
     * @dataProvider remainingCases
     */
    public function testRemainingIsDaysAndAClock(string $language, int $seconds, string $want): void
    {
        $lang = new Lang($language);
        $this->assertSame($want, (new Format($lang, '', new DateTimeZone('UTC'), 0))->remaining($seconds));
    }

    public function remainingCases(): array
    {
        return [
            'under a day' => ['english', 86394, '0 days 23:59:54'],
            'one day' => ['english', 86400 + 61, '1 day 00:01:01'],
            'ten days' => ['english', 10 * 86400, '10 days 00:00:00'],
            'German' => ['german', 2 * 86400 + 5, '2 Tage 00:00:05'],
            'Russian' => ['russian', 3 * 86400, '3 дн. 00:00:00'],
            'never negative' => ['english', -5, '0 days 00:00:00'],
        ];
    }

    public function testKeptAndExpiringSnapshots(): void
    {
        $v = self::view(self::section(['lifetime_days' => 0, 'items' => [
            self::snapshot('pk-kept', ['expires_at' => null]),
            self::snapshot('pk-old', ['expires_at' => '2026-11-22T10:00:00Z']),
        ]]));
        $this->assertSame('Snapshots are kept until you remove them.', $v['lifetime_text']);
        $this->assertNull($v['items'][0]['remaining_s']);
        $this->assertSame('kept', $v['items'][0]['remaining_text']);
        $this->assertSame('expiring now', $v['items'][1]['remaining_text'], 'past its lifetime: the next tick removes it');
    }

    public function testBusyServerGreysTheFormsWithTheReason(): void
    {
        $v = self::view(self::section(), true, self::BUSY);
        $this->assertTrue($v['locked']);
        $this->assertSame(self::BUSY['text'], $v['lock_text']);
        $this->assertTrue($v['can_create'], 'shown, greyed: the template disables it');
        $html = self::render($v);
        $this->assertStringContainsString('id="pvekeep-snapshots-lock"', $html);
        foreach (['snapshot-rollback', 'snapshot-remove', 'snapshot-create-submit'] as $button) {
            $this->assertMatchesRegularExpression('/data-pvekeep="' . $button . '"\s+disabled title="Your server is busy/', $html, $button);
        }
    }

    public function testNothingOfferedToAnotherClientOrAnInactiveService(): void
    {
        $v = self::view(self::section(), false);
        $this->assertFalse($v['can_create']);
        $this->assertFalse($v['items'][0]['offered']);
        $html = self::render($v);
        $this->assertStringNotContainsString('<form', $html);
        $this->assertStringContainsString('data-pvekeep-snapshot="pk-a"', $html, 'the list is still shown');
    }

    public function testFullQuotaHidesTakeAndSaysWhy(): void
    {
        $v = self::view(self::section(['quota' => ['used' => 3, 'max' => 3]]));
        $this->assertFalse($v['can_create']);
        $this->assertStringContainsString('3 of 3', $v['full_text']);
        $this->assertTrue($v['items'][0]['offered'], 'rollback and remove stay');
    }

    public function testNoSnapshotsInThePackageHidesTheCard(): void
    {
        $v = self::view(self::section(['quota' => ['used' => 0, 'max' => 0], 'items' => []]));
        $this->assertFalse($v['enabled']);
        $this->assertStringNotContainsString('id="pvekeep-snapshots"', self::render($v));
    }

    public function testRAMIsOfferedOnlyForARunningVMOnAProductThatAllowsIt(): void
    {
        $this->assertTrue(self::view(self::section())['ram_offered']);
        $this->assertFalse(self::view(self::section(), true, self::IDLE, 'stopped')['ram_offered']);
        $this->assertFalse(self::view(self::section(['ram_allowed' => false]))['ram_offered']);
    }

    public function testRollbackWarnsThatChangesSinceAreLost(): void
    {
        $v = self::view(self::section(['items' => [self::snapshot('pk-a'), self::snapshot('pk-b', ['vmstate' => true])]]));
        $this->assertStringContainsString('Everything changed on your server since then is lost', $v['items'][0]['rollback_warning']);
        $this->assertStringContainsString('22/11/2026 10:29', $v['items'][0]['rollback_warning']);
        $this->assertStringContainsString('continues from the moment of the snapshot', $v['items'][1]['rollback_warning']);
        $this->assertNotSame($v['items'][0]['rollback_token'], $v['items'][0]['remove_token']);
        $this->assertNotSame($v['items'][0]['rollback_token'], $v['items'][1]['rollback_token']);
        // The page's key is 32 hex characters; the plugin takes up to 64 bytes.
        $long = self::view(self::section(['items' => [self::snapshot(str_repeat('x', 40))]]), true, self::IDLE, 'running');
        $this->assertLessThanOrEqual(64, strlen(str_repeat('f', 31) . $long['items'][0]['rollback_token']));
    }

    public function testFailedSnapshotJobAndRestoreNoticeAreExplained(): void
    {
        $v = self::view(self::section([
            'failed_job' => ['id' => 8, 'kind' => 'snapshot.rollback', 'state' => 'failed', 'error' => 'zfs said no', 'finished_at' => '2026-11-22T10:20:00Z'],
            'removed_by_restore' => [self::snapshot('pk-x'), self::snapshot('pk-y')],
        ]));
        $this->assertSame('The rollback could not be carried out.', $v['failed']['message']);
        $this->assertSame('Details: zfs said no', $v['failed']['error_text']);
        $this->assertSame('Restoring a backup removed all snapshots of your server (2).', $v['removed_by_restore']);
    }

    public function testCardEscapesEverythingAndEveryFormPostsWithTheToken(): void
    {
        $hostile = '<script>alert("x")</script>\'&';
        $v = self::view(self::section(['items' => [self::snapshot('pk-a', ['description' => $hostile])]]));
        $html = self::render($v);
        $this->assertStringNotContainsString('<script>alert', $html);
        $this->assertStringContainsString('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#039;&amp;', $html);
        foreach (['id="pvekeep-snapshots"', 'id="pvekeep-snapshots-quota"', 'id="pvekeep-snapshot-list"', 'data-pvekeep-snapshot="pk-a"',
            'data-remaining-s="86394"', 'id="pvekeep-snapshot-create"', 'id="pvekeep-snapshot-description"', 'id="pvekeep-snapshot-ram"',
            'class="small text-muted pvekeep-snapshots-note"'] as $selector) {
            $this->assertStringContainsString($selector, $html);
        }
        $forms = substr_count($html, '<form');
        $this->assertSame(3, $forms, 'take, and rollback and remove for the one snapshot');
        $this->assertSame($forms, substr_count($html, '<input type="hidden" name="token" value="csrf">'));
        $this->assertSame($forms, substr_count($html, 'method="post"'));
        $this->assertStringContainsString('performance.now', $html, 'the countdown script');
    }

    public function testLangErrorsSayWhatTheyAreAbout(): void
    {
        $lang = new Lang('english');
        $quota = new \PvekeepRpcException('snapshots quota reached', 1004, ['reason' => 'quota_exceeded', 'what' => 'snapshots', 'used' => 3, 'max' => 3]);
        $this->assertSame('You have used all 3 snapshots of your package. Remove one to make room.', $lang->error($quota));
        $backups = new \PvekeepRpcException('backups quota reached', 1004, ['reason' => 'quota_exceeded', 'what' => 'backups', 'used' => 3, 'max' => 3]);
        $this->assertStringContainsString('3 backups', $lang->error($backups));
        $older = new \PvekeepRpcException('not newest', 1005, ['reason' => 'invalid_state', 'state' => 'not_newest_snapshot']);
        $this->assertStringContainsString('only to the newest snapshot', (new Lang('english'))->error($older));
        $this->assertStringContainsString('nur auf den neuesten Snapshot', (new Lang('german'))->error($older));
    }

    /** The whole page with this card, as Smarty renders it. */
    private static function render(array $snapshots): string
    {
        require_once '/usr/share/php/smarty4/Smarty.class.php';
        $lang = new Lang('english');
        $_SESSION = ['uid' => 7];
        $vars = (new ClientAreaView($lang, new Format($lang, 'DD/MM/YYYY', new DateTimeZone('UTC'))))->build(
            ['quota' => ['used' => 0, 'max' => 0], 'items' => [], 'status' => []],
            ['serviceid' => 42, 'userid' => 7, 'status' => 'Active'],
            null,
            'csrf',
            'k'
        );
        $_SESSION = [];
        $vars['pvekeep_snapshots'] = $snapshots;
        $smarty = new Smarty();
        $smarty->setCompileDir(sys_get_temp_dir() . '/pvekeep-smarty-test-' . getmyuid());
        $smarty->assign($vars);
        return $smarty->fetch(dirname(__DIR__, 2) . '/' . ClientAreaView::TEMPLATE);
    }
}
