<?php

/**
 * What the client-area page is handed (pvekeep_clientarea_view) and the
 * helpers that make the plugin's facts readable: sizes, times, lock
 * reasons. The page itself is rendered by Smarty and checked in Chromium
 * by internal/e2e/clientarea_test.go.
 */

use PHPUnit\Framework\TestCase;

require_once dirname(__DIR__) . '/demo/whmcs_stubs.php';
require_once dirname(__DIR__) . '/pvekeep.php';

final class ClientAreaViewTest extends TestCase
{
    public static function sizes(): array
    {
        return [
            'nothing' => [0, '.', '0 B'],
            'bytes' => [1023, '.', '1023 B'],
            'one KiB' => [1024, '.', '1.0 KiB'],
            'one and a half GiB' => [1610612736, '.', '1.5 GiB'],
            'rounds up into the next unit' => [1073700000, '.', '1.0 GiB'],
            'just below the rounding' => [1073636966, '.', '1023.9 MiB'],
            'German decimal comma' => [1610612736, ',', '1,5 GiB'],
            'large' => [5 * 1024 ** 4 + 512 * 1024 ** 3, '.', '5.5 TiB'],
            'numeric string' => ['2048', '.', '2.0 KiB'],
            'negative' => [-5, '.', '0 B'],
            'not a number' => ['lots', '.', '0 B'],
        ];
    }

    /**
     * @dataProvider sizes
     */
    public function testFormatSize($bytes, string $point, string $want): void
    {
        $this->assertSame($want, pvekeep_format_size($bytes, $point));
    }

    public static function times(): array
    {
        return [
            'UTC' => ['2026-11-22T10:15:42Z', '2026-11-22 10:15 UTC'],
            'offset is converted to UTC' => ['2026-11-22T12:15:42+02:00', '2026-11-22 10:15 UTC'],
            'across midnight' => ['2026-11-22T00:30:00-01:00', '2026-11-22 01:30 UTC'],
            'fractional seconds' => ['2026-11-22T10:15:42.123456Z', '2026-11-22 10:15 UTC'],
            'lowercase z' => ['2026-11-22t10:15:42z', '2026-11-22 10:15 UTC'],
            'empty' => ['', ''],
            'null' => [null, ''],
            'words PHP would parse' => ['tomorrow', ''],
            'date only' => ['2026-11-22', ''],
            'no such day' => ['2026-13-45T10:15:42Z', ''],
        ];
    }

    /**
     * @dataProvider times
     */
    public function testFormatTime($in, string $want): void
    {
        $this->assertSame($want, pvekeep_format_time($in));
    }

    public function testLockReasonsAreTranslatedNeverRaw(): void
    {
        $en = pvekeep_lang('english');
        $this->assertSame('a backup is being restored', pvekeep_lock_text('restore', $en));
        $this->assertSame('eine Sicherung läuft', pvekeep_lock_text('backup', pvekeep_lang('german')));
        $this->assertSame($en['lock.other'], pvekeep_lock_text('something-new', $en));
        $this->assertSame($en['lock.other'], pvekeep_lock_text('', $en));
    }

    public function testLanguageCodes(): void
    {
        $this->assertSame('de', pvekeep_lang_code('German'));
        $this->assertSame('ru', pvekeep_lang_code('russian'));
        $this->assertSame('ru', pvekeep_lang_code('ru'));
        $this->assertSame('en', pvekeep_lang_code('klingon'), 'no such file: English');
        $this->assertSame('en', pvekeep_lang_code('fr'), 'no fr.json: English');
    }

    private static function backup(int $id, string $status = 'available'): array
    {
        // A backup being made has no size yet.
        return ['id' => $id, 'created_at' => '2026-11-22T10:15:42Z', 'note' => 'n',
            'size_bytes' => $status === 'creating' ? 0 : 1536, 'status' => $status, 'origin' => 'manual'];
    }

    private static function view(array $list, array $lock = ['locked' => false, 'reason' => '', 'job_id' => 0]): array
    {
        $list += ['quota' => ['used' => 0, 'max' => 3], 'items' => [], 'active_job' => null, 'failed_restore' => null];
        return pvekeep_clientarea_view($list, ['lock' => $lock], pvekeep_lang('english'), 'tok');
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
        $this->assertSame('2026-11-22 10:15 UTC', $b['created_text']);
        $this->assertSame('Available', $b['status_text']);
        $this->assertSame(1536, $b['size_bytes'], 'the plugin\'s facts are kept');
        $this->assertSame('tok-restore-7', $b['restore_token'], 'not the Backup-now form\'s key');
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

    public function testRunningJobLocksEveryForm(): void
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
        $this->assertSame('Creating a backup', $v['pvekeep_active_job']['kind_text']);
        $this->assertSame(42, $v['pvekeep_active_job']['progress']);
        $this->assertSame('42% done', $v['pvekeep_active_job']['progress_text']);
        $this->assertStringContainsString('(a backup is running)', $v['pvekeep_lock']['text']);
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
        $v = self::view(['items' => [self::backup(1)], 'failed_restore' => $failed]);
        $f = $v['pvekeep_failed_restore'];
        $this->assertTrue($f['can_retry']);
        $this->assertTrue($f['can_reinstall']);
        $this->assertSame('Details: read error', $f['error_text']);
        $this->assertSame('Failed at 2026-11-22 10:15 UTC', $f['finished_text']);
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

    public function testLockedErrorNamesTheLockInWords(): void
    {
        $e = new PvekeepRpcException('locked', 1003, ['reason' => 'locked', 'lock' => 'restore', 'job_id' => 3]);
        $msg = pvekeep_error_message($e, ['clientsdetails' => ['language' => 'russian']]);
        $this->assertStringContainsString('идёт восстановление из резервной копии', $msg);
    }
}
