<?php

/**
 * templates/*.tpl rendered by real Smarty (as WHMCS does) from what
 * ClientAreaView hands over: every value escaped, the stable selectors of
 * the template's header present, forms carrying the CSRF token.
 */

use PHPUnit\Framework\TestCase;
use WHMCS\Module\Server\Pvekeep\ClientAreaView;
use WHMCS\Module\Server\Pvekeep\Format;
use WHMCS\Module\Server\Pvekeep\Lang;

require_once __DIR__ . '/bootstrap.php';

final class TemplateTest extends TestCase
{
    private const HOSTILE = '<script>alert("x")</script>\'&';

    private static function render(string $template, array $vars): string
    {
        $smartyClass = '/usr/share/php/smarty4/Smarty.class.php';
        if (!is_file($smartyClass)) {
            self::fail('Smarty 4 is missing (.ci/bringup.sh installs it): ' . $smartyClass);
        }
        require_once $smartyClass;
        $smarty = new Smarty();
        $smarty->setCompileDir(sys_get_temp_dir() . '/pvekeep-smarty-test-' . getmyuid());
        $smarty->setTemplateDir(dirname(__DIR__, 2) . '/templates');
        $smarty->assign($vars);
        return $smarty->fetch(dirname(__DIR__, 2) . '/' . $template);
    }

    private static function vars(array $list): array
    {
        $_SESSION = ['uid' => 7];
        $lang = new Lang('english');
        $view = new ClientAreaView($lang, new Format($lang, 'DD/MM/YYYY', new DateTimeZone('UTC')));
        $vars = $view->build($list + ['quota' => ['used' => 1, 'max' => 3], 'items' => [], 'status' => []],
            ['serviceid' => 42, 'userid' => 7, 'status' => 'Active'], ['kind' => 'danger', 'text' => self::HOSTILE], 'csrf"tok', 'k');
        $_SESSION = [];
        return $vars;
    }

    public function testIdlePageEscapesEverythingAndCarriesTheToken(): void
    {
        $html = self::render(ClientAreaView::TEMPLATE, self::vars(['items' => [
            ['id' => 5, 'created_at' => '2026-11-22T10:15:42Z', 'note' => self::HOSTILE, 'size_bytes' => 10, 'status' => 'available', 'origin' => 'manual'],
        ]]));
        $this->assertStringNotContainsString('<script>alert', $html);
        $this->assertStringContainsString('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#039;&amp;', $html);
        foreach (['id="pvekeep"', 'id="pvekeep-flash"', 'id="pvekeep-status"', 'id="pvekeep-backups"', 'data-pvekeep-backup-id="5"',
            'id="pvekeep-backup-create"', 'id="pvekeep-note"', 'data-pvekeep="backup-restore"', 'data-pvekeep="backup-remove"',
            'class="table-responsive"', 'card panel panel-default'] as $selector) {
            $this->assertStringContainsString($selector, $html);
        }
        $this->assertSame(substr_count($html, '<form'), substr_count($html, '<input type="hidden" name="token" value="csrf&quot;tok">'), 'every form has the token');
        $this->assertSame(substr_count($html, '<form'), substr_count($html, 'method="post"'), 'POST only');
        $this->assertStringNotContainsString('<script>', $html, 'no poll without a job');
    }

    public function testRunningJobHasTheProgressBarAndThePoll(): void
    {
        $html = self::render(ClientAreaView::TEMPLATE, self::vars(['active_job' => [
            'id' => 9, 'kind' => 'backup.create', 'state' => 'running', 'progress_pct' => 42, 'created_at' => '2026-11-22T10:15:42Z',
        ]]));
        $this->assertStringContainsString('id="pvekeep-job"', $html);
        $this->assertMatchesRegularExpression('/id="pvekeep-job-progress" class="progress[^"]*">\s*<div class="progress-bar[^"]*" role="progressbar"\s+style="width: 42%;" aria-valuenow="42"/', $html);
        $this->assertStringContainsString('data-poll-url="clientarea.php?action=productdetails&amp;id=42&amp;pvekeep_poll=9"', $html);
        $this->assertStringContainsString('window.location.replace', $html);
        $this->assertStringNotContainsString('id="pvekeep-backup-create"', $html, 'locked: no Backup now');
    }

    /**
     * The bar holds no text: at a few percent (twenty-one's bar clips what
     * does not fit) the label would be cut to "1!"; it sits beside the bar,
     * and the poll updates it there.
     */
    public function testProgressTextIsBesideTheBarNotInIt(): void
    {
        $html = self::render(ClientAreaView::TEMPLATE, self::vars(['active_job' => [
            'id' => 9, 'kind' => 'backup.create', 'state' => 'running', 'progress_pct' => 3,
        ]]));
        $this->assertMatchesRegularExpression('/<div class="progress-bar[^"]*"[^>]*aria-valuetext="3% done"><\/div>/', $html, 'an empty bar');
        $this->assertMatchesRegularExpression('/<span class="pvekeep-job-progress-text">3% done<\/span>/', $html);
        $this->assertStringContainsString("label.textContent = d.job.progress_text", $html);
        $this->assertStringNotContainsString("bar.textContent", $html);
    }

    /**
     * The card's title is sized as the themes' own headers (six's
     * .panel-title), not Bootstrap 4's full h3 of a bare .card-title.
     */
    public function testTitleIsSizedAsTheThemesHeaders(): void
    {
        $html = self::render(ClientAreaView::TEMPLATE, self::vars([]));
        $this->assertMatchesRegularExpression('/<h3 class="[^"]*\bm-0\b[^"]*pvekeep-title">/', $html);
        $this->assertMatchesRegularExpression('/#pvekeep \.pvekeep-title \{[^}]*font-size: 16px;/', $html);
    }

    public function testFailedRestoreHidesBackupNowAndSaysWhy(): void
    {
        $html = self::render(ClientAreaView::TEMPLATE, self::vars([
            'items' => [['id' => 5, 'created_at' => '2026-11-22T10:15:42Z', 'note' => 'n', 'size_bytes' => 10, 'status' => 'available', 'origin' => 'manual']],
            'failed_restore' => ['id' => 4, 'kind' => 'backup.restore', 'state' => 'failed', 'next_actions' => ['retry', 'reinstall']],
        ]));
        $this->assertStringNotContainsString('id="pvekeep-backup-create"', $html);
        $this->assertStringContainsString('data-notice="vm-unusable"', $html);
        $this->assertStringContainsString('data-pvekeep="backup-restore"', $html);
        $this->assertStringContainsString('data-pvekeep="restore-reinstall"', $html);
    }

    public function testNotSetUpIsInformation(): void
    {
        $html = self::render(ClientAreaView::ERROR_TEMPLATE, ['pvekeep_error' => 'not set up', 'pvekeep_error_kind' => 'info', 'pvekeep_flash' => null]);
        $this->assertStringContainsString('class="alert alert-info pvekeep-error"', $html);
        $html = self::render(ClientAreaView::ERROR_TEMPLATE, ['pvekeep_error' => 'down', 'pvekeep_flash' => null]);
        $this->assertStringContainsString('class="alert alert-danger pvekeep-error"', $html);
    }

    public function testErrorPage(): void
    {
        $html = self::render(ClientAreaView::ERROR_TEMPLATE, ['pvekeep_error' => self::HOSTILE, 'pvekeep_flash' => null]);
        $this->assertStringContainsString('id="pvekeep-error"', $html);
        $this->assertStringNotContainsString('<script>', $html);
    }
}
