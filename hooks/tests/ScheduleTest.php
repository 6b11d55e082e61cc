<?php

/**
 * Issue 9 on the page: the schedule card (ScheduleView, from backups.list's
 * `schedule`), the Keep toggle on each backup, the suspended notice, and
 * the forms they post (scheduleSave, backupProtect), rendered by real
 * Smarty and posted in their own PHP process against the fake plugin.
 */

use PHPUnit\Framework\TestCase;
use WHMCS\Module\Server\Pvekeep\ClientAreaView;
use WHMCS\Module\Server\Pvekeep\Format;
use WHMCS\Module\Server\Pvekeep\Lang;
use WHMCS\Module\Server\Pvekeep\ScheduleView;

require_once __DIR__ . '/bootstrap.php';

final class ScheduleTest extends TestCase
{
    private const PARAMS = ['serviceid' => 42, 'userid' => 7, 'status' => 'Active'];

    private const HOSTILE = '<b>x</b>"\'&';

    /** @var FakePlugin|null */
    private $plugin = null;

    /** @var string */
    private $zone = '';

    protected function setUp(): void
    {
        $this->zone = date_default_timezone_get();
        date_default_timezone_set('Europe/Berlin'); // the panel's zone
    }

    protected function tearDown(): void
    {
        date_default_timezone_set($this->zone);
        $_SESSION = [];
        if ($this->plugin !== null) {
            $this->plugin->close();
            $this->plugin = null;
        }
    }

    /** A week: Monday and Thursday on, the rest off; Sunday first as the plugin sends it. */
    private static function schedule(array $over = []): array
    {
        $days = [];
        foreach (['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as $d) {
            $days[] = ['day' => $d, 'enabled' => in_array($d, ['mon', 'thu'], true), 'time' => $d === 'thu' ? '23:45' : '03:00'];
        }
        return $over + ['timezone' => 'Asia/Tokyo', 'days' => $days, 'next_run_at' => '2026-12-06T18:00:00Z',
            'window' => '', 'skipped_reason' => ''];
    }

    private static function view(array $list, array $params = self::PARAMS, string $language = 'english'): array
    {
        $_SESSION = ['uid' => 7];
        $list += ['quota' => ['used' => 1, 'max' => 3], 'items' => [], 'status' => [], 'schedule' => self::schedule()];
        $lang = new Lang($language);
        $format = new Format($lang, 'DD/MM/YYYY', new DateTimeZone('UTC'), strtotime('2026-12-03T10:00:00Z'));
        return (new ClientAreaView($lang, $format))->build($list, $params, null, 'csrf"tok', 'k');
    }

    private static function render(array $vars): string
    {
        require_once '/usr/share/php/smarty4/Smarty.class.php';
        $smarty = new Smarty();
        $smarty->setCompileDir(sys_get_temp_dir() . '/pvekeep-smarty-test-' . getmyuid());
        $smarty->setTemplateDir(dirname(__DIR__, 2) . '/templates');
        $smarty->assign($vars);
        return $smarty->fetch(dirname(__DIR__, 2) . '/' . ClientAreaView::TEMPLATE);
    }

    public function testTheWeekIsShownMondayFirstWithItsTimes(): void
    {
        $s = self::view([])['pvekeep_schedule'];
        $this->assertSame(ScheduleView::DAYS, array_column($s['days'], 'day'));
        $this->assertSame(['Monday', 'Tuesday'], array_slice(array_column($s['days'], 'label'), 0, 2));
        $this->assertSame([true, false, false, true, false, false, false], array_column($s['days'], 'enabled'));
        $this->assertSame('23:45', $s['days'][3]['time']);
        $this->assertSame('Time on Thursday', $s['days'][3]['time_label']);
        $this->assertTrue($s['any']);
        $this->assertTrue($s['can_edit']);
        $this->assertNull($s['window']);
    }

    /** The next run in the schedule's own zone, where its weekday and time were picked. */
    public function testTheNextRunIsInTheSchedulesZone(): void
    {
        $s = self::view([])['pvekeep_schedule'];
        $this->assertSame('Next scheduled backup: Monday, 07/12/2026 03:00 (Asia/Tokyo)', $s['next_run_text']);
        $this->assertSame('Times are in the time zone Asia/Tokyo.', $s['timezone_text']);
        $this->assertSame('Asia/Tokyo', $s['timezone']);
        $this->assertContains('Asia/Tokyo', $s['zones']);
        $s = self::view([], self::PARAMS, 'german')['pvekeep_schedule'];
        $this->assertSame('Nächstes geplantes Backup: Montag, 07/12/2026 03:00 (Asia/Tokyo)', $s['next_run_text']);
    }

    public function testWithoutItsOwnZoneTheScheduleIsInThePanels(): void
    {
        $s = self::view(['schedule' => self::schedule(['timezone' => ''])])['pvekeep_schedule'];
        $this->assertSame('Europe/Berlin', $s['timezone']);
        $this->assertSame('Next scheduled backup: Sunday, 06/12/2026 19:00 (Europe/Berlin)', $s['next_run_text']);
    }

    public function testNoNextRun(): void
    {
        $off = self::schedule(['next_run_at' => null]);
        foreach ($off['days'] as &$d) {
            $d['enabled'] = false;
        }
        unset($d);
        $this->assertSame('Scheduled backups are off. Tick a day to turn them on.', self::view(['schedule' => $off])['pvekeep_schedule']['next_run_text']);
        $suspended = self::view(['schedule' => $off], ['status' => 'Suspended'] + self::PARAMS)['pvekeep_schedule'];
        $this->assertSame('Scheduled backups are off.', $suspended['next_run_text'], 'no form to tick a day in');
        $this->assertSame('No scheduled backup is coming up.',
            self::view(['schedule' => self::schedule(['next_run_at' => ''])])['pvekeep_schedule']['next_run_text']);
    }

    /**
     * @dataProvider windows
     * @param mixed $window
     */
    public function testAWindowMeansTheSystemPicksTheTime($window, ?array $want): void
    {
        $s = self::view(['schedule' => self::schedule(['window' => $window])])['pvekeep_schedule'];
        $this->assertSame($want, $s['window']);
        if ($want !== null) {
            $this->assertStringContainsString('between 01:00 and 05:00', $s['window_text']);
        } else {
            $this->assertSame('', $s['window_text']);
        }
    }

    public static function windows(): array
    {
        return [
            'string' => ['01:00-05:00', ['start' => '01:00', 'end' => '05:00']],
            'object' => [['start' => '01:00', 'end' => '05:00'], ['start' => '01:00', 'end' => '05:00']],
            'none' => ['', null],
            'null' => [null, null],
        ];
    }

    public function testASkippedRunSaysWhy(): void
    {
        $s = self::view(['schedule' => self::schedule(['skipped_reason' => 'all_protected'])])['pvekeep_schedule'];
        $this->assertStringContainsString('the backups that could make room are marked Keep', $s['skipped_text']);
        foreach (['not_active', 'disabled', 'superseded'] as $reason) {
            $s = self::view(['schedule' => self::schedule(['skipped_reason' => $reason])])['pvekeep_schedule'];
            $this->assertSame((new Lang('english'))->get('schedule.skipped.' . $reason), $s['skipped_text'], $reason);
            $this->assertNotSame('The last scheduled backup was skipped.', $s['skipped_text'], "$reason in its own words");
        }
        $s = self::view(['schedule' => self::schedule(['skipped_reason' => 'something_new'])])['pvekeep_schedule'];
        $this->assertSame('The last scheduled backup was skipped.', $s['skipped_text'], 'never the raw reason');
        $this->assertSame('', self::view([])['pvekeep_schedule']['skipped_text']);
    }

    /**
     * @dataProvider lastRuns
     */
    public function testAFailedScheduledBackupIsShown(array $run, string $want): void
    {
        $run += ['date' => '2026-12-07', 'attempts' => 1, 'max_attempts' => 3, 'error' => 'vzdump <failed>', 'reason' => ''];
        $this->assertSame($want, self::view(['schedule' => self::schedule(['last_run' => $run])])['pvekeep_schedule']['last_run_text']);
    }

    public static function lastRuns(): array
    {
        return [
            'retried' => [['state' => 'waiting', 'attempts' => 2],
                'The scheduled backup of 07/12/2026 failed (vzdump <failed>). It is being tried again (attempt 2 of 3).'],
            'given up' => [['state' => 'failed', 'attempts' => 3], 'The scheduled backup of 07/12/2026 failed: vzdump <failed>'],
            'given up without a message' => [['state' => 'failed', 'error' => ''], 'The scheduled backup of 07/12/2026 failed.'],
            'due, not tried yet' => [['state' => 'waiting', 'attempts' => 0, 'error' => ''], ''],
            'done' => [['state' => 'done'], ''],
            'skipped' => [['state' => 'skipped', 'reason' => 'all_protected'], ''],
        ];
    }

    /**
     * What the latest run is doing, or what it could not do although its
     * backup was made, in words: never a skip, never a failure.
     *
     * @dataProvider runStates
     */
    public function testWhatTheLatestRunIsDoingIsShown(array $run, string $want, string $alert): void
    {
        $run += ['date' => '2026-12-07', 'attempts' => 0, 'max_attempts' => 3, 'error' => '', 'reason' => ''];
        $s = self::view(['schedule' => self::schedule(['last_run' => $run])])['pvekeep_schedule'];
        $this->assertSame($want, $s['run_text']);
        $this->assertSame($alert, $s['run_alert']);
        $this->assertSame('', $s['skipped_text']);
    }

    public static function runStates(): array
    {
        $made = 'The scheduled backup of 07/12/2026 was made, but ';
        return [
            'waiting: the server is busy' => [['state' => 'waiting', 'reason' => 'locked'],
                'The scheduled backup of 07/12/2026 is waiting: your server is busy with another task. It starts as soon as that has finished.', 'info'],
            'waiting for a removal' => [['state' => 'waiting', 'reason' => 'rotating'],
                'The scheduled backup of 07/12/2026 is waiting until an older backup has been removed.', 'info'],
            'waiting for its host' => [['state' => 'waiting'],
                'The scheduled backup of 07/12/2026 is waiting its turn: another backup is running on the same host.', 'info'],
            'waiting, for a reason this page does not know' => [['state' => 'waiting', 'reason' => 'something_new'],
                'The scheduled backup of 07/12/2026 is waiting to start.', 'info'],
            'made, older ones being removed' => [['state' => 'rotating', 'reason' => 'rotating'],
                'The scheduled backup of 07/12/2026 was made; older backups are being removed to bring your package back within its quota.', 'info'],
            'made, every other one kept' => [['state' => 'done', 'reason' => 'all_protected'], $made
                . 'no older backup could be removed to make room, as the others are marked Keep: your package now holds more backups than it includes. Remove a backup or stop keeping one.', 'warning'],
            'made, a removal failed' => [['state' => 'done', 'reason' => 'rotate_failed'], $made
                . 'an older backup could not be removed: your package now holds more backups than it includes.', 'warning'],
            'done' => [['state' => 'done'], '', ''],
            'running' => [['state' => 'running', 'attempts' => 1], '', ''],
            'retried: the failure box says so' => [['state' => 'waiting', 'reason' => 'locked', 'attempts' => 2, 'error' => 'x'], '', ''],
            'failed' => [['state' => 'failed', 'attempts' => 3, 'error' => 'x'], '', ''],
            'skipped' => [['state' => 'skipped', 'reason' => 'all_protected'], '', ''],
        ];
    }

    /** A run that made its backup is not called skipped, whatever the plugin's skipped_reason says. */
    public function testARunThatMadeItsBackupIsNotShownAsSkipped(): void
    {
        $run = ['state' => 'done', 'reason' => 'all_protected', 'date' => '2026-12-07', 'attempts' => 1, 'max_attempts' => 3, 'error' => ''];
        foreach (['english', 'german', 'russian'] as $language) {
            $s = self::view(['schedule' => self::schedule(['skipped_reason' => 'all_protected', 'last_run' => $run])], self::PARAMS, $language)['pvekeep_schedule'];
            $this->assertSame('', $s['skipped_text'], $language);
            $this->assertSame((new Lang($language))->get('schedule.run_done.all_protected', ['date' => '07/12/2026']), $s['run_text'], $language);
        }
        $de = self::view(['schedule' => self::schedule(['last_run' => ['state' => 'waiting', 'reason' => 'locked'] + $run])], self::PARAMS, 'german');
        $this->assertStringStartsWith('Das geplante Backup vom 07/12/2026 wartet', $de['pvekeep_schedule']['run_text']);
        $ru = self::view(['schedule' => self::schedule(['last_run' => ['state' => 'waiting', 'reason' => 'rotating'] + $run])], self::PARAMS, 'russian');
        $this->assertStringStartsWith('Копия по расписанию за 07/12/2026 ожидает', $ru['pvekeep_schedule']['run_text']);
    }

    public function testTheLatestRunIsRenderedEscaped(): void
    {
        $run = ['state' => 'waiting', 'reason' => self::HOSTILE, 'date' => '2026-12-07', 'attempts' => 0, 'max_attempts' => 3, 'error' => ''];
        $html = self::render(self::view(['schedule' => self::schedule(['last_run' => $run])]));
        $card = substr($html, (int) strpos($html, 'id="pvekeep-schedule"'));
        $this->assertStringContainsString('<div id="pvekeep-schedule-run" class="alert alert-info" data-state="waiting"'
            . ' data-reason="&lt;b&gt;x&lt;/b&gt;&quot;&#039;&amp;">The scheduled backup of 07/12/2026 is waiting to start.</div>', $card);
        $this->assertStringNotContainsString('<b>x</b>', $html);
        $run = ['state' => 'done', 'reason' => 'all_protected'] + $run;
        $html = self::render(self::view(['schedule' => self::schedule(['last_run' => $run])], self::PARAMS, 'russian'));
        $this->assertMatchesRegularExpression('/<div id="pvekeep-schedule-run" class="alert alert-warning" data-state="done" data-reason="all_protected">Копия по расписанию за 07\/12\/2026 создана/u', $html);
        $html = self::render(self::view(['schedule' => self::schedule(['last_run' => ['state' => 'done', 'reason' => ''] + $run])]));
        $this->assertStringNotContainsString('pvekeep-schedule-run', $html);
    }

    public function testABackupWaitingForItsHostSaysSo(): void
    {
        $job = ['id' => 3, 'kind' => 'backup.create', 'state' => 'queued', 'step' => 'wait_node', 'progress_pct' => 0];
        $v = self::view(['active_job' => $job]);
        $this->assertStringStartsWith('Waiting: another backup is running on the same host', $v['pvekeep_active_job']['state_text']);
        $v = self::view(['active_job' => ['step' => 'dispatch'] + $job]);
        $this->assertSame('Waiting to start', $v['pvekeep_active_job']['state_text']);
    }

    public function testNoCardWithoutBackupsOrWithoutASchedule(): void
    {
        $this->assertNull(self::view(['quota' => ['used' => 0, 'max' => 0]])['pvekeep_schedule'], 'backups off');
        $this->assertNull(self::view(['schedule' => null])['pvekeep_schedule'], 'a plugin without schedules');
    }

    public function testKeptBackups(): void
    {
        $b = ['id' => 5, 'created_at' => '2026-11-22T10:15:42Z', 'note' => 'n', 'size_bytes' => 10, 'status' => 'available', 'origin' => 'scheduled'];
        $v = self::view(['items' => [$b + ['protected' => true], ['id' => 6] + $b]]);
        $this->assertTrue($v['pvekeep_backups'][0]['protected']);
        $this->assertStringStartsWith('Stop keeping', $v['pvekeep_backups'][0]['keep_title']);
        $this->assertFalse($v['pvekeep_backups'][1]['protected'], 'no flag: not kept');
        $this->assertStringStartsWith('Keep this backup', $v['pvekeep_backups'][1]['keep_title']);

        $html = self::render($v);
        $this->assertSame(1, substr_count($html, 'data-pvekeep="kept"'), 'one badge');
        $this->assertMatchesRegularExpression('/name="pvekeep_protected" value="0">\s*<button[^>]*aria-pressed="true"[^>]*>Don&#039;t keep</', $html);
        $this->assertMatchesRegularExpression('/name="pvekeep_protected" value="1">\s*<button[^>]*aria-pressed="false"[^>]*>Keep</', $html);
        $this->assertSame(1, substr_count($html, 'data-pvekeep="backup-remove"'), 'a kept backup is not offered for removal');
    }

    public function testTheCardRendersTheGridEscapedWithTheToken(): void
    {
        $v = self::view(['schedule' => self::schedule(['timezone' => 'America/New_York', 'skipped_reason' => self::HOSTILE,
            'last_run' => ['state' => 'failed', 'date' => '2026-12-05', 'error' => self::HOSTILE]])]);
        $html = self::render($v);
        $card = substr($html, (int) strpos($html, 'id="pvekeep-schedule"'));
        $this->assertStringContainsString('data-timezone="America/New_York"', $card);
        $this->assertStringContainsString('data-next-run-at="2026-12-06T18:00:00Z"', $card);
        $this->assertStringContainsString('<time datetime="2026-12-06T18:00:00Z">Next scheduled backup: Sunday, 06/12/2026 13:00 (America/New_York)</time>', $card);
        $this->assertStringContainsString('id="pvekeep-schedule-skipped" class="alert alert-warning" data-reason="&lt;b&gt;x&lt;/b&gt;&quot;&#039;&amp;"', $card);
        $this->assertStringContainsString('<input type="hidden" name="token" value="csrf&quot;tok">', $card);
        $this->assertStringContainsString('<input type="hidden" name="a" value="scheduleSave">', $card);
        $this->assertMatchesRegularExpression('/<tr data-day="mon" data-enabled="1">.*?name="pvekeep_day_mon" value="1" checked>.*?'
            . '<input type="time"[^>]*name="pvekeep_time_mon" value="03:00"/s', $card);
        $this->assertMatchesRegularExpression('/name="pvekeep_day_tue" value="1">/', $card, 'Tuesday not ticked');
        $this->assertSame(7, substr_count($card, 'type="time"'));
        $this->assertStringContainsString('<option value="America/New_York" selected>', $card);
        $this->assertSame(1, substr_count($card, ' selected>'));
        $this->assertStringContainsString('data-pvekeep="schedule-save"', $card);
        $this->assertStringContainsString('pvekeep-schedule-rotate', $card);
        $this->assertStringContainsString('id="pvekeep-schedule-failed" class="alert alert-warning">The scheduled backup of 05/12/2026 failed:'
            . ' &lt;b&gt;x&lt;/b&gt;&quot;&#039;&amp;</div>', $card);
        $this->assertStringNotContainsString('<b>x</b>', $html);
        $this->assertLessThan(strpos($html, 'id="pvekeep-schedule"'), strpos($html, 'id="pvekeep-backups"'), 'after the backups card');
    }

    /**
     * @dataProvider flashCards
     */
    public function testTheFlashIsShownInItsCard(string $card, bool $inSchedule): void
    {
        $_SESSION = ['uid' => 7];
        $lang = new Lang('english');
        $flash = ['kind' => 'success', 'text' => 'Saved <b>'] + ($card !== '' ? ['card' => $card] : []);
        $list = ['quota' => ['used' => 1, 'max' => 3], 'items' => [], 'status' => [], 'schedule' => self::schedule()];
        $html = self::render((new ClientAreaView($lang, new Format($lang)))->build($list, self::PARAMS, $flash, 't', 'k'));
        $this->assertSame(1, substr_count($html, 'id="pvekeep-flash"'));
        $this->assertSame($inSchedule, strpos($html, 'id="pvekeep-flash"') > strpos($html, 'id="pvekeep-schedule"'));
        $this->assertStringContainsString('Saved &lt;b&gt;', $html);
    }

    public static function flashCards(): array
    {
        return ['the schedule\'s' => ['schedule', true], 'any other' => ['', false]];
    }

    public function testAWindowReplacesTheTimeInputs(): void
    {
        $html = self::render(self::view(['schedule' => self::schedule(['window' => '01:00-05:00'])]));
        $this->assertStringContainsString('id="pvekeep-schedule-window"', $html);
        $this->assertStringContainsString('data-window="01:00-05:00"', $html);
        $this->assertStringNotContainsString('type="time"', $html);
        $this->assertSame(7, preg_match_all('/<input type="hidden" name="pvekeep_time_[a-z]{3}" value="/', $html));
        $this->assertStringContainsString('name="pvekeep_day_thu" value="1" checked>', $html, 'the days stay the client\'s');
    }

    /**
     * Suspended: the notice says why, the schedule is shown read-only and
     * no form is offered anywhere, whether WHMCS or the plugin says so.
     *
     * @dataProvider suspensions
     */
    public function testASuspendedServiceIsReadOnlyAndSaysWhy(array $params, array $list, string $reason): void
    {
        $b = ['id' => 5, 'created_at' => '2026-11-22T10:15:42Z', 'note' => 'n', 'size_bytes' => 10, 'status' => 'available', 'origin' => 'manual'];
        $v = self::view($list + ['items' => [$b]], $params);
        $this->assertNotNull($v['pvekeep_suspended']);
        $this->assertFalse($v['pvekeep_can_backup']);
        $this->assertFalse($v['pvekeep_schedule']['can_edit']);
        $this->assertSame([], $v['pvekeep_schedule']['zones']);
        $html = self::render($v);
        $this->assertStringContainsString('id="pvekeep-suspended"', $html);
        $this->assertStringNotContainsString('<form', $html);
        $this->assertStringContainsString('<li data-day="thu">Thursday 23:45</li>', $html);
        if ($reason !== '') {
            $this->assertStringContainsString('Reason: &lt;b&gt;x&lt;/b&gt;&quot;&#039;&amp;', $html);
        } else {
            $this->assertStringNotContainsString('pvekeep-suspended-reason', $html);
        }
    }

    public static function suspensions(): array
    {
        $model = (object) ['suspendreason' => self::HOSTILE]; // WHMCS's service model
        return [
            'by WHMCS, with a reason' => [['status' => 'Suspended', 'model' => $model] + self::PARAMS, [], self::HOSTILE],
            'by the plugin' => [self::PARAMS, ['service_state' => 'suspended'], ''],
        ];
    }

    public function testAnActiveServiceShowsNoSuspension(): void
    {
        $this->assertNull(self::view(['service_state' => 'active'])['pvekeep_suspended']);
    }

    // ---- the forms, posted ----

    private function plugin(array $answers = []): FakePlugin
    {
        $this->plugin = new FakePlugin($answers);
        return $this->plugin;
    }

    private static function request(array $cmd): array
    {
        $cmd += ['params' => self::PARAMS + ['clientsdetails' => ['language' => 'english']], 'session' => ['uid' => 7],
            'area' => 'client', 'method' => 'POST'];
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

    public function testSaveSendsTheWeekAsTicked(): void
    {
        $plugin = $this->plugin(['schedule.set' => ['result' => ['schedule' => []]]]);
        $res = self::request(['call' => 'pvekeep_scheduleSave', 'token_ok' => true, 'post' => [
            'pvekeep_timezone' => 'America/New_York', 'pvekeep_day_mon' => '1', 'pvekeep_time_mon' => '03:30',
            'pvekeep_day_sat' => '1', 'pvekeep_time_sat' => '23:59', 'pvekeep_time_tue' => '', 'pvekeep_time_wed' => '12:00',
        ]]);
        $this->assertFalse($res['returned'], 'a POST ends in the redirect');
        $this->assertSame(['kind' => 'success', 'text' => 'Your backup schedule has been saved.', 'card' => 'schedule'],
            $res['session']['pvekeep_flash'][42], 'shown in the schedule card');
        $calls = $plugin->requests();
        $this->assertSame(['schedule.set'], array_column($calls, 'method'));
        $p = $calls[0]['params'];
        $this->assertSame('America/New_York', $p['timezone']);
        // The request's own PHP zone (WHMCS sets it to the panel's).
        $this->assertInstanceOf(DateTimeZone::class, new DateTimeZone($p['panel_timezone']));
        $this->assertSame([
            ['day' => 'sun', 'enabled' => false, 'time' => '00:00'],
            ['day' => 'mon', 'enabled' => true, 'time' => '03:30'],
            ['day' => 'tue', 'enabled' => false, 'time' => '00:00'],
            ['day' => 'wed', 'enabled' => false, 'time' => '12:00'],
            ['day' => 'thu', 'enabled' => false, 'time' => '00:00'],
            ['day' => 'fri', 'enabled' => false, 'time' => '00:00'],
            ['day' => 'sat', 'enabled' => true, 'time' => '23:59'],
        ], $p['days']);
        $this->assertSame(['type' => 'client', 'id' => 7], $p['actor']);
    }

    public function testSaveIsPostOnlyAndNeedsTheToken(): void
    {
        $plugin = $this->plugin();
        $res = self::request(['call' => 'pvekeep_scheduleSave', 'method' => 'GET', 'token_ok' => true, 'get' => ['pvekeep_day_mon' => '1']]);
        $this->assertStringContainsString('only be started with the form', $res['result']);
        $res = self::request(['call' => 'pvekeep_scheduleSave', 'token_ok' => false, 'post' => ['pvekeep_day_mon' => '1']]);
        $this->assertSame('danger', $res['session']['pvekeep_flash'][42]['kind']);
        $res = self::request(['call' => 'pvekeep_backupProtect', 'token_ok' => false, 'post' => ['pvekeep_backup_id' => '5', 'pvekeep_protected' => '1']]);
        $this->assertSame(['WHMCS.default'], $res['token_checks']);
        $this->assertSame([], $plugin->requests());
    }

    /**
     * @dataProvider scheduleErrors
     */
    public function testARefusedScheduleSaysWhatToFix(array $error, string $want): void
    {
        $this->plugin(['schedule.set' => ['error' => $error]]);
        $res = self::request(['call' => 'pvekeep_scheduleSave', 'token_ok' => true, 'post' => ['pvekeep_day_mon' => '1']]);
        $this->assertSame(['kind' => 'danger', 'text' => $want, 'card' => 'schedule'], $res['session']['pvekeep_flash'][42]);
    }

    public static function scheduleErrors(): array
    {
        $invalid = function ($field) {
            return ['code' => 1007, 'message' => 'bad', 'data' => ['reason' => 'invalid_input', 'field' => $field]];
        };
        return [
            'a time' => [$invalid('days[1].time'), 'Please pick a valid time (HH:MM) for every ticked day.'],
            'the zone' => [$invalid('timezone'), 'Please pick a time zone from the list.'],
            'not yours' => [['code' => 1002, 'message' => 'no', 'data' => ['reason' => 'forbidden']], 'You cannot change this service.'],
            'suspended' => [['code' => 1002, 'message' => 'no', 'data' => ['reason' => 'forbidden', 'state' => 'suspended']],
                'Your service is suspended: nothing can be changed until it is reactivated.'],
        ];
    }

    /**
     * @dataProvider keeps
     */
    public function testKeepAndStopKeeping(string $posted, bool $protected, string $flash): void
    {
        $plugin = $this->plugin(['backups.protect' => ['result' => ['backup' => ['id' => 5]]]]);
        $res = self::request(['call' => 'pvekeep_backupProtect', 'token_ok' => true,
            'post' => ['pvekeep_backup_id' => '5', 'pvekeep_protected' => $posted]]);
        $p = $plugin->requests()[0]['params'];
        $this->assertSame('backups.protect', $plugin->requests()[0]['method']);
        $this->assertSame(5, $p['backup_id']);
        $this->assertSame($protected, $p['protected']);
        $this->assertSame(['kind' => 'success', 'text' => $flash], $res['session']['pvekeep_flash'][42]);
    }

    public static function keeps(): array
    {
        return [
            'keep' => ['1', true, 'The backup is now kept: scheduled backups will never remove it.'],
            'stop keeping' => ['0', false, 'The backup is no longer kept.'],
        ];
    }

    public function testEveryNewStringIsTranslated(): void
    {
        $en = json_decode((string) file_get_contents(dirname(__DIR__, 2) . '/lang/en.json'), true);
        foreach (['de', 'ru'] as $code) {
            $other = json_decode((string) file_get_contents(dirname(__DIR__, 2) . "/lang/$code.json"), true);
            foreach ($en as $key => $text) {
                if (preg_match('/^(schedule|service\.suspended)/', $key)) {
                    $this->assertArrayHasKey($key, $other, "$code lacks $key");
                    $this->assertNotSame($text, $other[$key], "$code: $key is English");
                    preg_match_all('/\{[a-z_]+\}/', $text, $want);
                    preg_match_all('/\{[a-z_]+\}/', $other[$key], $got);
                    $this->assertSame($want[0], $got[0], "$code: $key keeps its placeholders");
                }
            }
        }
    }
}
