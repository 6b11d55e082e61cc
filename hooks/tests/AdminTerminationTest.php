<?php

/**
 * The admin tab of a terminated service: when its backups go, and the
 * ones the cron could not remove, why and when it tries again — escaped.
 */

use PHPUnit\Framework\TestCase;
use WHMCS\Module\Server\Pvekeep\AdminView;

require_once __DIR__ . '/bootstrap.php';

final class AdminTerminationTest extends TestCase
{
    public function testTheAdminTabShowsWhatThePurgeCouldNotRemove(): void
    {
        $view = new AdminView();
        $fields = $view->build(['termination' => [
            'terminated_at' => '2026-12-01T10:00:00Z',
            'backups_purge_after' => '2026-12-08T10:00:00Z',
            'purge_error' => '1 backup(s) could not be removed: backup:backup/vzdump-qemu-100.vma.zst: <b>refused</b>',
            'purge_attempts' => 2,
            'purge_retry_at' => '2026-12-08T10:15:00Z',
        ]], 0);
        $html = $fields['pvekeep Termination'];
        $this->assertStringContainsString('data-pvekeep-admin="purge-error"', $html);
        $this->assertStringContainsString('vzdump-qemu-100.vma.zst: &lt;b&gt;refused&lt;/b&gt;', $html, 'escaped');
        $this->assertStringContainsString('2 round(s); next try', $html);
        $this->assertStringNotContainsString('<b>', $html);

        $done = $view->build(['termination' => ['terminated_at' => '2026-12-01T10:00:00Z', 'backups_purge_after' => null,
            'purge_error' => 'old', 'purge_attempts' => 1]], 0);
        $this->assertStringContainsString('its backups were removed', $done['pvekeep Termination']);
        $this->assertStringNotContainsString('purge-error', $done['pvekeep Termination']);
        $this->assertArrayNotHasKey('pvekeep Termination', $view->build([], 0));
    }
}
