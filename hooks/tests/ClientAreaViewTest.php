<?php

/**
 * What the client-area page is handed (ClientAreaView::build) from one
 * backups.list answer, and the language it speaks. The page itself is
 * rendered by Smarty inside the stand-in's theme and checked in Chromium
 * (internal/e2e).
 */

use PHPUnit\Framework\TestCase;
use WHMCS\Module\Server\Pvekeep\ClientAreaView;
use WHMCS\Module\Server\Pvekeep\Format;
use WHMCS\Module\Server\Pvekeep\Lang;

require_once __DIR__ . '/bootstrap.php';

final class ClientAreaViewTest extends TestCase
{
    /** The logged-in client owns service 42 and it is Active. */
    private const PARAMS = ['serviceid' => 42, 'userid' => 7, 'status' => 'Active'];

    protected function setUp(): void
    {
        $_SESSION = ['uid' => 7];
        $GLOBALS['CONFIG'] = [];
    }

    protected function tearDown(): void
    {
        $_SESSION = [];
        $GLOBALS['CONFIG'] = [];
    }

    private static function backup(int $id, string $status = 'available'): array
    {
        // A backup being made has no size yet.
        return ['id' => $id, 'created_at' => '2026-11-22T10:15:42Z', 'note' => 'n',
            'size_bytes' => $status === 'creating' ? 0 : 1536, 'status' => $status, 'origin' => 'manual'];
    }

    private static function view(array $list, array $lock = ['locked' => false, 'reason' => '', 'job_id' => 0], array $params = self::PARAMS): array
    {
        $list += ['quota' => ['used' => 0, 'max' => 3], 'items' => [], 'active_job' => null, 'failed_restore' => null,
            'status' => ['vmid' => 100, 'node' => 'pve1', 'power' => 'running', 'lock' => $lock, 'checked_at' => '2026-11-22T10:27:00Z']];
        $lang = new Lang('english');
        $format = new Format($lang, 'DD/MM/YYYY', new DateTimeZone('UTC'), strtotime('2026-11-22T10:30:00Z'));
        return (new ClientAreaView($lang, $format))->build($list, $params, null, 'csrf', 'tok');
    }

    public function testIdleServiceOffersEverything(): void
    {
        $v = self::view(['quota' => ['used' => 1, 'max' => 3], 'items' => [self::backup(7)]]);
        $this->assertTrue($v['pvekeep_can_backup']);
        $this->assertSame('1 of 3 backups used', $v['pvekeep_quota']['text']);
        $this->assertSame('', $v['pvekeep_notice']['kind']);
        $b = $v['pvekeep_backups'][0];
        $this->assertTrue($b['can_act']);
        $this->assertSame('1.5 KiB', $b['size_text']);
        $this->assertSame('22/11/2026 10:15', $b['created_text']);
        $this->assertSame('Available', $b['status_text']);
        $this->assertSame(1536, $b['size_bytes'], 'the plugin\'s facts are kept');
        $this->assertSame('tok-restore-7', $b['restore_token'], 'not the Backup-now form\'s key');
        $this->assertSame('csrf', $v['pvekeep_csrf']);
        $this->assertSame('clientarea.php?action=productdetails&id=42', $v['pvekeep_page_url']);
        $this->assertSame('', $v['pvekeep_poll_url'], 'nothing to poll');
    }

    public function testVmFactsAndTheirAge(): void
    {
        $s = self::view([])['pvekeep_status'];
        $this->assertSame('Server running', $s['power_text']);
        $this->assertSame('checked 3 min ago', $s['checked_text']);
        $this->assertSame(100, $s['vmid']);
        $s = self::view(['status' => ['lock' => []]])['pvekeep_status'];
        $this->assertSame('Server status not checked yet', $s['checked_text']);
        $this->assertSame('', $s['power_text']);
    }

    /**
     * WHMCS runs a custom function only for an Active service of the
     * logged-in client: no form is offered otherwise.
     */
    public function testNoFormsForAnotherClientOrAnInactiveService(): void
    {
        $list = ['quota' => ['used' => 1, 'max' => 3], 'items' => [self::backup(7)],
            'failed_restore' => ['id' => 4, 'kind' => 'backup.restore', 'state' => 'failed', 'next_actions' => ['retry', 'reinstall']]];
        foreach (
            [
                'suspended' => [self::PARAMS + ['status' => 'Suspended'], ['uid' => 7]],
                'another client' => [self::PARAMS, ['uid' => 8]],
                'nobody logged in' => [self::PARAMS, []],
            ] as $case => list($params, $session)
        ) {
            $params['status'] = $case === 'suspended' ? 'Suspended' : 'Active';
            $_SESSION = $session;
            $v = self::view($list, ['locked' => false, 'reason' => '', 'job_id' => 0], $params);
            $this->assertFalse($v['pvekeep_can_backup'], $case);
            $this->assertFalse($v['pvekeep_backups'][0]['can_act'], $case);
            $this->assertFalse($v['pvekeep_failed_restore']['can_retry'], $case);
            $this->assertFalse($v['pvekeep_failed_restore']['can_reinstall'], $case);
        }
    }

    public function testFullQuotaHidesTheFormAndSaysWhy(): void
    {
        $v = self::view(['quota' => ['used' => 3, 'max' => 3], 'items' => [self::backup(1), self::backup(2), self::backup(3)]]);
        $this->assertFalse($v['pvekeep_can_backup']);
        $this->assertSame('quota-full', $v['pvekeep_notice']['kind']);
        $this->assertStringContainsString('(3 of 3)', $v['pvekeep_notice']['text']);
        $this->assertTrue($v['pvekeep_backups'][0]['can_act'], 'restore and remove stay');
    }

    public function testQuotaZeroMeansBackupsAreOff(): void
    {
        $v = self::view(['quota' => ['used' => 0, 'max' => 0]]);
        $this->assertFalse($v['pvekeep_can_backup']);
        $this->assertFalse($v['pvekeep_quota']['enabled']);
        $this->assertSame('disabled', $v['pvekeep_notice']['kind']);
        $this->assertSame('Backups are not part of your package.', $v['pvekeep_notice']['text']);
    }

    public function testRunningJobLocksEveryFormAndIsPolled(): void
    {
        $job = ['id' => 9, 'kind' => 'backup.create', 'state' => 'running', 'progress_pct' => 42,
            'created_at' => '2026-11-22T10:15:42Z'];
        $v = self::view(
            ['quota' => ['used' => 2, 'max' => 3], 'items' => [self::backup(2, 'creating'), self::backup(1)], 'active_job' => $job],
            ['locked' => true, 'reason' => 'backup', 'job_id' => 9]
        );
        $this->assertFalse($v['pvekeep_can_backup']);
        $this->assertFalse($v['pvekeep_backups'][1]['can_act']);
        $this->assertSame('Being created', $v['pvekeep_backups'][0]['status_text']);
        $this->assertSame('', $v['pvekeep_backups'][0]['size_text'], 'no size before it exists');
        $j = $v['pvekeep_active_job'];
        $this->assertSame('Creating a backup', $j['kind_text']);
        $this->assertSame(42, $j['progress']);
        $this->assertSame('42% done', $j['progress_text']);
        $this->assertSame('Started 22/11/2026 10:15', $j['started_text']);
        $this->assertFalse($j['done']);
        $this->assertStringContainsString('(a backup is running)', $v['pvekeep_lock']['text']);
        $this->assertSame('clientarea.php?action=productdetails&id=42&pvekeep_poll=9', $v['pvekeep_poll_url']);
    }

    public function testJobViewForThePoll(): void
    {
        $lang = new Lang('german');
        $view = new ClientAreaView($lang, new Format($lang, 'DD.MM.YYYY', new DateTimeZone('UTC')));
        $j = $view->job(['id' => 9, 'kind' => 'backup.restore', 'state' => 'succeeded', 'progress_pct' => 140]);
        $this->assertTrue($j['done']);
        $this->assertSame(100, $j['progress'], 'clamped');
        $this->assertSame('100 % erledigt', $j['progress_text']);
        $this->assertSame(['queued', 'running'], array_values(array_filter(['queued', 'running', 'failed', 'cancelled'], function ($s) use ($view) {
            return !$view->job(['state' => $s])['done'];
        })));
    }

    public function testProxmoxLockWithoutAJobAlsoLocks(): void
    {
        $v = self::view(['items' => [self::backup(1)]], ['locked' => true, 'reason' => 'snapshot', 'job_id' => 0]);
        $this->assertFalse($v['pvekeep_can_backup']);
        $this->assertFalse($v['pvekeep_backups'][0]['can_act']);
        $this->assertStringContainsString('a snapshot is being taken', $v['pvekeep_lock']['text']);
    }

    public function testFailedRestoreOffersItsNextActions(): void
    {
        $failed = ['id' => 4, 'kind' => 'backup.restore', 'state' => 'failed', 'error' => 'read error',
            'finished_at' => '2026-11-22T10:15:42Z', 'next_actions' => ['retry', 'reinstall']];
        $f = self::view(['items' => [self::backup(1)], 'failed_restore' => $failed])['pvekeep_failed_restore'];
        $this->assertTrue($f['can_retry']);
        $this->assertTrue($f['can_reinstall']);
        $this->assertSame('Details: read error', $f['error_text']);
        $this->assertSame('Failed at 22/11/2026 10:15', $f['finished_text']);
        $this->assertStringStartsWith('The restore failed', $f['message']);

        $failed['kind'] = 'vm.reinstall';
        $failed['next_actions'] = ['reinstall'];
        $f = self::view(['failed_restore' => $failed])['pvekeep_failed_restore'];
        $this->assertStringStartsWith('The reinstall failed', $f['message']);
        $this->assertFalse($f['can_retry']);
    }

    public function testRestoreThatFailedBeforeChangingTheVMSaysItWorksAndOffersOnlyRetry(): void
    {
        $failed = ['id' => 5, 'kind' => 'backup.restore', 'state' => 'failed', 'error' => 'storage offline',
            'finished_at' => '2026-11-22T10:15:42Z', 'next_actions' => ['retry']];
        $f = self::view(['items' => [self::backup(1)], 'failed_restore' => $failed])['pvekeep_failed_restore'];
        $this->assertSame('The restore could not be carried out. Your server was not changed.', $f['message']);
        $this->assertTrue($f['can_retry']);
        $this->assertFalse($f['can_reinstall']);
        $this->assertSame('Retry restore', $f['retry_label']);
    }

    /**
     * A restore that left the VM unusable: Backup now would save a broken
     * server and take a place of the quota, so it is hidden with a reason;
     * restoring another backup stays offered.
     */
    public function testUnusableVmAfterAFailedRestoreOffersNoBackupNow(): void
    {
        $failed = ['id' => 4, 'kind' => 'backup.restore', 'state' => 'failed', 'next_actions' => ['retry', 'reinstall']];
        $v = self::view(['quota' => ['used' => 1, 'max' => 3], 'items' => [self::backup(1)], 'failed_restore' => $failed]);
        $this->assertFalse($v['pvekeep_can_backup']);
        $this->assertSame('vm-unusable', $v['pvekeep_notice']['kind']);
        $this->assertStringStartsWith('No new backups until your server works again', $v['pvekeep_notice']['text']);
        $this->assertTrue($v['pvekeep_backups'][0]['can_act'], 'restoring another backup is a way back');
        $this->assertTrue($v['pvekeep_failed_restore']['can_retry']);
        $this->assertTrue($v['pvekeep_failed_restore']['can_reinstall']);

        $failed['kind'] = 'vm.reinstall';
        $failed['next_actions'] = ['reinstall'];
        $this->assertFalse(self::view(['failed_restore' => $failed])['pvekeep_can_backup'], 'a failed reinstall too');

        // Failed before Proxmox changed anything: the server works, backups stay.
        $failed = ['id' => 5, 'kind' => 'backup.restore', 'state' => 'failed', 'next_actions' => ['retry']];
        $v = self::view(['items' => [self::backup(1)], 'failed_restore' => $failed]);
        $this->assertTrue($v['pvekeep_can_backup']);
        $this->assertSame('', $v['pvekeep_notice']['kind']);
    }

    /**
     * A running backup already counts in the quota: the busy notice alone
     * says why nothing can be done, not also "quota full".
     */
    public function testRunningJobShowsOnlyTheBusyNotice(): void
    {
        $job = ['id' => 9, 'kind' => 'backup.create', 'state' => 'running', 'progress_pct' => 3];
        $lock = ['locked' => true, 'reason' => 'backup', 'job_id' => 9];
        $list = ['quota' => ['used' => 3, 'max' => 3], 'items' => [self::backup(3, 'creating'), self::backup(2), self::backup(1)], 'active_job' => $job];
        $v = self::view($list, $lock);
        $this->assertTrue($v['pvekeep_lock']['locked']);
        $this->assertSame('', $v['pvekeep_notice']['kind']);
        $this->assertSame('', $v['pvekeep_notice']['text']);
        $this->assertSame('3 of 3 backups used', $v['pvekeep_quota']['text'], 'the count stays');

        $list['failed_restore'] = ['id' => 4, 'kind' => 'backup.restore', 'state' => 'failed', 'next_actions' => ['retry', 'reinstall']];
        $list['active_job'] = ['id' => 10, 'kind' => 'backup.restore', 'state' => 'running', 'progress_pct' => 3];
        $this->assertSame('', self::view($list, $lock)['pvekeep_notice']['kind'], 'a retry running: only busy');

        $list['active_job'] = null;
        $list['failed_restore'] = null;
        $this->assertSame('quota-full', self::view($list)['pvekeep_notice']['kind'], 'once it ends');
    }

    /**
     * backups.list answers invalid_state only for a service with no VM
     * bound: the page view says the service is not set up yet, in the
     * client's language, as information, never "action not possible".
     */
    public function testUnboundServiceIsNotSetUpYet(): void
    {
        $e = new PvekeepRpcException('no virtual machine is bound to this service', 1005, ['reason' => 'invalid_state']);
        foreach (['english' => 'Your service is not set up yet.', 'german' => 'Ihr Dienst ist noch nicht eingerichtet.',
            'russian' => 'Ваша услуга ещё не настроена.'] as $language => $start) {
            $lang = new Lang($language);
            $got = ClientAreaView::pageError($lang, $e);
            $this->assertSame('info', $got['kind'], $language);
            $this->assertStringStartsWith($start, $got['text'], $language);
            $this->assertNotSame($lang->get('error.invalid_state'), $got['text'], $language);
        }
        $down = ClientAreaView::pageError(new Lang('english'), new PvekeepTransportException('no socket'));
        $this->assertSame(['kind' => 'danger', 'text' => (new Lang('english'))->get('error.unavailable')], $down);
        $forbidden = new PvekeepRpcException('not yours', 1002, ['reason' => 'forbidden']);
        $this->assertSame('danger', ClientAreaView::pageError(new Lang('english'), $forbidden)['kind']);
    }

    public function testFailedBackupIsExplained(): void
    {
        $failed = ['id' => 7, 'kind' => 'backup.create', 'state' => 'failed', 'error' => 'No space left on device',
            'finished_at' => '2026-11-22T10:15:42Z', 'next_actions' => []];
        $f = self::view(['failed_backup' => $failed])['pvekeep_failed_backup'];
        $this->assertSame('Your last backup could not be made.', $f['message']);
        $this->assertSame('Details: No space left on device', $f['error_text']);
        $this->assertNull(self::view([])['pvekeep_failed_backup']);

        $failed['kind'] = 'backup.remove';
        $f = self::view(['failed_backup' => $failed])['pvekeep_failed_backup'];
        $this->assertSame('The backup could not be removed.', $f['message']);
    }

    public function testFailedReinstallIsRetriedAsAReinstall(): void
    {
        $failed = ['id' => 6, 'kind' => 'vm.reinstall', 'state' => 'failed', 'error' => 'clone failed',
            'finished_at' => '2026-11-22T10:15:42Z', 'next_actions' => ['retry', 'reinstall']];
        $f = self::view(['failed_restore' => $failed])['pvekeep_failed_restore'];
        $this->assertSame('Retry reinstall', $f['retry_label']);
        $this->assertStringStartsWith('Reinstalling erases', $f['retry_warning']);
    }

    public function testLockReasonsAreTranslatedNeverRaw(): void
    {
        $en = new Lang('english');
        $this->assertSame('a backup is being restored', $en->lock('restore'));
        $this->assertSame('eine Sicherung läuft', (new Lang('german'))->lock('backup'));
        $this->assertSame($en->get('lock.other'), $en->lock('something-new'));
        $this->assertSame($en->get('lock.other'), $en->lock(''));
    }

    public function testLockedErrorNamesTheLockInWords(): void
    {
        $e = new PvekeepRpcException('locked', 1003, ['reason' => 'locked', 'lock' => 'restore', 'job_id' => 3]);
        $this->assertStringContainsString('идёт восстановление из резервной копии', (new Lang('russian'))->error($e));
    }

    public function testUnknownFailuresGetTheGenericSentenceNotTheirText(): void
    {
        $en = new Lang('english');
        $this->assertSame($en->get('error.unavailable'), $en->error(new PvekeepTransportException('pvekeep: /x/bin missing')));
        $this->assertSame($en->get('error.unavailable'), $en->error(new PvekeepRpcException('<b>odd</b>', -32601)));
    }

    public function testLanguageCodes(): void
    {
        $this->assertSame('de', Lang::codeFor('German'));
        $this->assertSame('ru', Lang::codeFor('russian'));
        $this->assertSame('ru', Lang::codeFor('ru'));
        $this->assertSame('en', Lang::codeFor('klingon'), 'no such file: English');
        $this->assertSame('en', Lang::codeFor('fr'), 'no fr.json: English');
    }

    /**
     * The language the client picked in this session wins over the one on
     * their account, which wins over the panel's default.
     */
    public function testLanguageChoice(): void
    {
        $params = ['clientsdetails' => ['language' => 'russian']];
        $GLOBALS['CONFIG'] = ['Language' => 'german'];
        $_SESSION = ['Language' => 'english'];
        $this->assertSame('en', Lang::forParams($params)->code());
        $_SESSION = [];
        $this->assertSame('ru', Lang::forParams($params)->code());
        $this->assertSame('de', Lang::forParams([])->code());
        $GLOBALS['CONFIG'] = [];
        $this->assertSame('en', Lang::forParams([])->code());
    }
}
