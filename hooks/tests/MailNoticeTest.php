<?php

/**
 * Client emails that wait because WHMCS does not send by SMTP: one
 * activity-log line a day from the cron, and the reason and the fix in the
 * service's admin tab.
 */

use PHPUnit\Framework\TestCase;
use WHMCS\Module\Server\Pvekeep\AdminView;
use WHMCS\Module\Server\Pvekeep\Cron;
use WHMCS\Module\Server\Pvekeep\MailSettings;

require_once __DIR__ . '/bootstrap.php';

final class MailNoticeTest extends TestCase
{
    /** @var FakePlugin|null */
    private $plugin = null;

    protected function setUp(): void
    {
        $GLOBALS['pvekeep_test']['activity'] = [];
        $GLOBALS['pvekeep_test']['tables'] = [];
    }

    protected function tearDown(): void
    {
        if ($this->plugin !== null) {
            $this->plugin->close();
        }
        $GLOBALS['pvekeep_test']['activity'] = [];
        $GLOBALS['pvekeep_test']['tables'] = [];
    }

    /** The fake logActivity keeps lines in memory; WHMCS keeps them in tblactivitylog. */
    private static function syncActivityLog(): void
    {
        $rows = [];
        foreach ($GLOBALS['pvekeep_test']['activity'] as $i => $line) {
            // WHMCS stamps a line with the time it is written: the notice
            // is written on the day it names.
            preg_match('/\d{4}-\d{2}-\d{2}/', $line, $day);
            $rows[] = ['id' => $i + 1, 'date' => ($day[0] ?? '2026-01-01') . ' 00:00:01', 'description' => $line];
        }
        $GLOBALS['pvekeep_test']['tables']['tblactivitylog'] = $rows;
    }

    public function testNoNoticeWhenNothingWaits(): void
    {
        $this->assertNull(Cron::waitingEmailsNotice(['emails_waiting' => 0, 'emails_sent' => 3], false, '2026-12-02'));
        $this->assertNull(Cron::waitingEmailsNotice([], false, '2026-12-02'));
        $this->assertFalse(Cron::noteWaitingEmails(['emails_waiting' => 0], false));
        $this->assertSame([], $GLOBALS['pvekeep_test']['activity']);
    }

    public function testTheNoticeSaysWhyAndWhatToDo(): void
    {
        $line = Cron::waitingEmailsNotice(['emails_waiting' => 2], false, '2026-12-02');
        $this->assertStringContainsString('2026-12-02', $line);
        $this->assertStringContainsString('SMTP only', $line);
        $this->assertStringContainsString('PHP mail()', $line);
        $this->assertStringContainsString('[smtp]', $line);
        $this->assertStringNotContainsString("'", $line, 'compared whole with what WHMCS stored: no quotes');
        $this->assertMatchesRegularExpression('/^[\x20-\x7e]+$/', $line, 'plain ASCII');
        $unusable = Cron::waitingEmailsNotice(['emails_waiting' => 1], true, '2026-12-02');
        $this->assertStringContainsString('cannot be used', $unusable);
    }

    public function testOneLineADayHoweverOftenTheCronRuns(): void
    {
        $tick = ['emails_waiting' => 1];
        $day1 = mktime(0, 4, 0, 12, 2, 2026);
        $this->assertTrue(Cron::noteWaitingEmails($tick, false, $day1));
        self::syncActivityLog();
        // Every 5 minutes (AfterCronJob) and every minute (cron.php) for the rest of the day.
        for ($t = $day1 + 60; $t < mktime(0, 0, 0, 12, 3, 2026); $t += 60) {
            $this->assertFalse(Cron::noteWaitingEmails(['emails_waiting' => 3], false, $t));
        }
        $this->assertCount(1, $GLOBALS['pvekeep_test']['activity']);
        // The next day, while they still wait: one more.
        $this->assertTrue(Cron::noteWaitingEmails($tick, false, mktime(0, 2, 0, 12, 3, 2026)));
        self::syncActivityLog();
        $this->assertFalse(Cron::noteWaitingEmails($tick, false, mktime(12, 0, 0, 12, 3, 2026)));
        $this->assertCount(2, $GLOBALS['pvekeep_test']['activity']);
        $this->assertStringContainsString('2026-12-03', $GLOBALS['pvekeep_test']['activity'][1]);
    }

    public function testTheCronTickWritesTheNoticeWhenWhmcsHasNoSmtp(): void
    {
        $GLOBALS['pvekeep_test']['tables'] = [
            'tblservers' => [],
            'tblconfiguration' => [['setting' => 'MailType', 'value' => 'mail']],
            'tblactivitylog' => [],
        ];
        $this->plugin = new FakePlugin(['cron.tick' => ['result' => ['emails_waiting' => 2]]]);
        Cron::tick(Cron::HOOK_BUDGET);
        $this->assertArrayNotHasKey('smtp', $this->plugin->requests()[0]['params']);
        $this->assertCount(1, $GLOBALS['pvekeep_test']['activity']);
        $this->assertStringContainsString('SMTP only', $GLOBALS['pvekeep_test']['activity'][0]);
        self::syncActivityLog();
        Cron::tick(Cron::HOOK_BUDGET);
        $this->assertCount(1, $GLOBALS['pvekeep_test']['activity'], 'not again the same day');
    }

    public function testScriptsThatBringTheirOwnServersLogNothing(): void
    {
        $this->plugin = new FakePlugin(['cron.tick' => ['result' => ['emails_waiting' => 2]]]);
        Cron::tick(5, []);
        $this->assertSame([], $GLOBALS['pvekeep_test']['activity']);
    }

    public function testWhatWhmcsSendsWith(): void
    {
        $this->assertSame('PHP mail()', MailSettings::providerOf(['MailType' => 'mail']));
        $this->assertSame('SMTP', MailSettings::providerOf(['MailType' => 'smtp']));
        $this->assertSame('PHP mail()', MailSettings::providerOf(['MailConfig' => encrypt(json_encode(['module' => 'PhpMail']))]));
        $this->assertSame('SendGrid', MailSettings::providerOf(['MailConfig' => encrypt(json_encode(['module' => 'SendGrid']))]));
        $this->assertSame('SMTP', MailSettings::providerOf(['MailConfig' => json_encode(['module' => 'SmtpMail'])]));
    }

    public function testTheAdminTabSaysWhyEmailsWaitAndTheFix(): void
    {
        $view = new AdminView();
        $noSmtp = "no SMTP settings: WHMCS's mail settings were not passed and no config file sets [smtp]";
        $emails = [
            ['kind' => 'backup_restored', 'state' => 'queued', 'last_error' => $noSmtp],
            ['kind' => 'backup_restored', 'state' => 'queued', 'last_error' => $noSmtp],
            ['kind' => 'backup_restored', 'state' => 'sent', 'last_error' => ''],
        ];
        $text = $view->waitingNotice($emails, 'PHP mail()');
        $this->assertStringContainsString('2 client emails are waiting', $text);
        $this->assertStringContainsString('WHMCS sends its mail with PHP mail()', $text);
        $this->assertStringContainsString('choose SMTP as the Mail Provider', $text);
        $this->assertStringContainsString('[smtp]', $text);
        $this->assertStringContainsString('next cron run', $text);

        $deferred = $view->waitingNotice([['state' => 'queued', 'last_error' => '421 try later']], 'SMTP');
        $this->assertStringContainsString('1 client email is waiting: 421 try later', $deferred);
        $this->assertSame('', $view->waitingNotice([['state' => 'queued', 'last_error' => ''], ['state' => 'failed', 'last_error' => 'x']], 'SMTP'));

        $GLOBALS['pvekeep_test']['tables']['tblconfiguration'] = [['setting' => 'MailType', 'value' => 'mail']];
        $fields = $view->build(['emails' => $emails], 0);
        $this->assertStringContainsString('id="pvekeep-admin-emails-waiting"', $fields['pvekeep Emails']);
        $this->assertStringContainsString('PHP mail()', $fields['pvekeep Emails']);
        $this->assertStringContainsString('config.php&#039;s', $fields['pvekeep Emails'], 'escaped');
    }
}
