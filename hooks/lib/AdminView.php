<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * The admin's view of a service, under the service's fields in WHMCS's own
 * form (AdminServicesTabFields: label => HTML): the VM, its lock, the last
 * jobs, the backups with the one the admin buttons act on, the snapshots
 * (those made in the Proxmox UI apart), the emails
 * (a restore email that could not be sent shows here), and a failed restore
 * with the confirmation a reinstall needs. Everything from admin.overview
 * (the plugin's database) but the snapshots made in the Proxmox UI (an
 * admin's snapshots.list); every value escaped here.
 *
 * Form fields (saved by AdminServicesTabFieldsSave with WHMCS's Save):
 *   pvekeep_selected_backup      the backup "Restore/Remove selected backup" act on (0 = none)
 *   pvekeep_confirm_reinstall    the failed restore's job id, ticked to allow one reinstall
 */
final class AdminView
{
    /** Seconds a ticked reinstall confirmation stays valid. */
    public const CONFIRM_TTL = 900;

    /** @var array<int, array<mixed>> admin.overview per service, for this request */
    private static $overviews = [];

    /** @var Lang */
    private $lang;

    /** @var Format */
    private $format;

    public function __construct(?Format $format = null)
    {
        $this->lang = new Lang('english');
        $this->format = $format ?? Format::forPanel($this->lang);
    }

    /**
     * @param array<string, mixed> $params
     * @return array<string, string>
     */
    public static function fields(array $params): array
    {
        try {
            $overview = self::overview($params);
        } catch (\Throwable $e) {
            return ['pvekeep' => '<div class="alert alert-danger">' . Http::escape(AdminActions::message($e)) . '</div>'];
        }
        return (new self())->build($overview + self::foreign($params), self::confirmedJob((int) ($params['serviceid'] ?? 0)));
    }

    /**
     * The VM's snapshots made in the Proxmox UI, as foreign_snapshots and
     * foreign_error: only an admin's snapshots.list asks Proxmox for them
     * (bounded by the plugin; admin.overview reads the database alone).
     *
     * @param array<string, mixed> $params
     * @return array<string, mixed>
     */
    private static function foreign(array $params): array
    {
        try {
            $list = Rpc::service('snapshots.list', $params);
        } catch (\Throwable $e) {
            return ['foreign_snapshots' => [], 'foreign_error' => ['message' => AdminActions::message($e)]];
        }
        return [
            'foreign_snapshots' => (array) ($list['foreign'] ?? []),
            'foreign_error' => is_array($list['foreign_error'] ?? null) ? $list['foreign_error'] : null,
        ];
    }

    /**
     * admin.overview of the service, asked once per request (the fields and
     * the buttons both need it) unless $fresh.
     *
     * @param array<string, mixed> $params
     * @return array<mixed>
     */
    public static function overview(array $params, bool $fresh = false): array
    {
        $id = (int) ($params['serviceid'] ?? 0);
        if ($fresh || !isset(self::$overviews[$id])) {
            unset(self::$overviews[$id]);
            self::$overviews[$id] = Rpc::service('admin.overview', $params);
        }
        return self::$overviews[$id];
    }

    /** Forgets the request's overviews: a command changed what they say. */
    public static function forget(): void
    {
        self::$overviews = [];
    }

    /**
     * @param array<string, mixed> $o the admin.overview answer
     * @return array<string, string>
     */
    public function build(array $o, int $confirmedJob): array
    {
        $fields = [];
        if ((string) ($o['settings_error'] ?? '') !== '') {
            // The client's page cannot work until this is fixed.
            $fields['pvekeep Settings'] = '<div class="alert alert-danger" id="pvekeep-admin-settings-error">'
                . Http::escape('The product\'s module settings cannot be used: ' . $o['settings_error']) . '</div>';
        }
        $fields['pvekeep VM'] = $this->vm($o);
        $fields['pvekeep Backups'] = $this->backups((array) ($o['backups'] ?? []), (int) ($o['selected_backup_id'] ?? 0));
        $fields['pvekeep Snapshots'] = $this->snapshots(
            (array) ($o['snapshots'] ?? []),
            (array) ($o['foreign_snapshots'] ?? []),
            is_array($o['foreign_error'] ?? null) ? $o['foreign_error'] : null
        );
        if (is_array($o['failed_restore'] ?? null)) {
            $fields['pvekeep Failed restore'] = $this->failedRestore($o['failed_restore'], $confirmedJob);
        }
        if (is_array($o['termination'] ?? null)) {
            $fields['pvekeep Termination'] = $this->termination($o['termination']);
        }
        $fields['pvekeep Jobs'] = $this->jobs((array) ($o['jobs'] ?? []));
        $fields['pvekeep Emails'] = $this->emails((array) ($o['emails'] ?? []));
        return $fields;
    }

    /**
     * The failed restore a reinstall was confirmed for (0 = none or
     * expired), from this admin's session.
     */
    public static function confirmedJob(int $serviceId): int
    {
        $c = $_SESSION['pvekeep_reinstall'][$serviceId] ?? null;
        if (!is_array($c) || (int) ($c['until'] ?? 0) < time()) {
            return 0;
        }
        return (int) ($c['job_id'] ?? 0);
    }

    /**
     * @param array<string, mixed> $params
     */
    public static function save(array $params): void
    {
        $serviceId = (int) ($params['serviceid'] ?? 0);
        try {
            if (isset($_POST['pvekeep_selected_backup'])) {
                $id = Input::postInt('pvekeep_selected_backup');
                if ($id !== Input::postInt('pvekeep_selected_backup_was')) {
                    Rpc::service('admin.select_backup', $params, ['backup_id' => $id]);
                }
            }
        } catch (\Throwable $e) {
            // Logged (module log, activity log); WHMCS's Save goes on.
        }
        $job = Input::postInt('pvekeep_confirm_reinstall');
        if ($job > 0) {
            $_SESSION['pvekeep_reinstall'][$serviceId] = ['job_id' => $job, 'until' => time() + self::CONFIRM_TTL];
        } else {
            unset($_SESSION['pvekeep_reinstall'][$serviceId]);
        }
    }

    /** @param array<string, mixed> $o */
    private function vm(array $o): string
    {
        $parts = [];
        $parts[] = (int) ($o['vmid'] ?? 0) > 0 ? 'VM ' . (int) $o['vmid'] . ' on node ' . (string) ($o['node'] ?? '?') : 'No VM recorded';
        if ((string) ($o['power'] ?? '') !== '') {
            $parts[] = (string) $o['power'];
        }
        $parts[] = $this->format->age($o['checked_at'] ?? '');
        $quotas = is_array($o['quotas'] ?? null) ? $o['quotas'] : [];
        foreach (['backups' => 'backups', 'snapshots' => 'snapshots'] as $k => $word) {
            if (is_array($quotas[$k] ?? null)) {
                $parts[] = (int) ($quotas[$k]['used'] ?? 0) . ' of ' . (int) ($quotas[$k]['max'] ?? 0) . ' ' . $word;
            }
        }
        $html = Http::escape(implode(' · ', $parts));
        $lock = is_array($o['lock'] ?? null) ? $o['lock'] : [];
        if (!empty($lock['locked'])) {
            $html .= '<br><span class="label label-warning badge badge-warning" data-pvekeep-admin="lock">'
                . Http::escape('Locked: ' . $this->lang->lock((string) ($lock['reason'] ?? ''))
                    . ((int) ($lock['job_id'] ?? 0) > 0 ? ' (job #' . (int) $lock['job_id'] . ')' : ''))
                . '</span>';
        }
        return $html;
    }

    /**
     * @param array<mixed> $backups
     */
    private function backups(array $backups, int $selected): string
    {
        $options = '<option value="0">— none —</option>';
        $rows = '';
        foreach ($backups as $b) {
            if (!is_array($b)) {
                continue;
            }
            $id = (int) ($b['id'] ?? 0);
            $label = '#' . $id . ' ' . $this->format->dateTime($b['created_at'] ?? '') . ' ' . (string) ($b['note'] ?? '');
            if (($b['status'] ?? '') === 'available') {
                $options .= '<option value="' . $id . '"' . ($id === $selected ? ' selected' : '') . '>' . Http::escape(trim($label)) . '</option>';
            }
            $rows .= '<tr data-pvekeep-admin-backup-id="' . $id . '"><td>' . $id . '</td><td>'
                . Http::escape($this->format->dateTime($b['created_at'] ?? '')) . '</td><td>'
                . Http::escape((string) ($b['note'] ?? '')) . '</td><td>'
                . Http::escape($this->format->size($b['size_bytes'] ?? 0)) . '</td><td>'
                . Http::escape((string) ($b['status'] ?? '') . (!empty($b['protected']) ? ', protected' : '')
                    . (($b['origin'] ?? '') !== '' ? ', ' . (string) $b['origin'] : '')) . '</td><td><code>'
                . Http::escape((string) ($b['volid'] ?? '')) . '</code></td></tr>';
        }
        $select = '<select name="pvekeep_selected_backup" id="pvekeep-admin-selected-backup" class="form-control select-inline">'
            . $options . '</select><input type="hidden" name="pvekeep_selected_backup_was" value="' . $selected . '"> '
            . '<span class="help-block text-muted">The backup "Restore selected backup" and "Remove selected backup"'
            . ' act on. Choose, click Save Changes, then the button.</span>';
        if ($rows === '') {
            return $select . '<p>No backups.</p>';
        }
        return $select . '<div class="table-responsive"><table class="table table-condensed table-sm" id="pvekeep-admin-backups">'
            . '<tr><th>ID</th><th>Created</th><th>Note</th><th>Size</th><th>Status</th><th>Volume</th></tr>' . $rows
            . '</table></div>';
    }

    /**
     * The plugin's snapshots (a removal the cron keeps retrying in red,
     * with its error and attempts), then those made in the Proxmox UI:
     * the client never sees or counts these.
     *
     * @param array<mixed> $own
     * @param array<mixed> $foreign
     * @param array<string, mixed>|null $foreignError
     */
    private function snapshots(array $own, array $foreign, ?array $foreignError): string
    {
        $rows = '';
        foreach ([[$own, false], [$foreign, true]] as list($list, $isForeign)) {
            foreach ($list as $sn) {
                if (!is_array($sn)) {
                    continue;
                }
                $failed = (string) ($sn['last_error'] ?? '') !== '';
                $state = $isForeign ? 'made in Proxmox: not the client\'s, not counted' : (string) ($sn['status'] ?? '');
                if ($failed) {
                    $state .= sprintf(', removal failed %d× (the cron retries): %s', (int) ($sn['attempts'] ?? 0), $sn['last_error']);
                }
                $expires = $this->format->dateTime($sn['expires_at'] ?? '');
                $rows .= '<tr data-pvekeep-admin-snapshot="' . Http::escape((string) ($sn['name'] ?? '')) . '"'
                    . ($isForeign ? ' data-foreign="1"' : '') . ($failed ? ' class="danger table-danger"' : '') . '><td><code>'
                    . Http::escape((string) ($sn['name'] ?? '')) . '</code></td><td>'
                    . Http::escape((string) ($sn['description'] ?? '')) . '</td><td>'
                    . Http::escape($this->format->dateTime($sn['created_at'] ?? '')) . '</td><td>'
                    . Http::escape($isForeign ? '' : ($expires !== '' ? $expires : 'kept')) . '</td><td>'
                    . (!empty($sn['vmstate']) ? 'yes' : '') . '</td><td>'
                    . Http::escape($state) . '</td></tr>';
            }
        }
        $note = '';
        if ($foreignError !== null) {
            $note = '<p class="text-muted">' . Http::escape('Snapshots made in Proxmox could not be listed: '
                . (string) ($foreignError['message'] ?? '')) . '</p>';
        }
        if ($rows === '') {
            return 'No snapshots.' . $note;
        }
        return '<div class="table-responsive"><table class="table table-condensed table-sm" id="pvekeep-admin-snapshots">'
            . '<tr><th>Name</th><th>Description</th><th>Taken</th><th>Expires</th><th>RAM</th><th>State</th></tr>' . $rows
            . '</table></div>' . $note;
    }

    /**
     * @param array<string, mixed> $job
     */
    private function failedRestore(array $job, int $confirmedJob): string
    {
        $id = (int) ($job['id'] ?? 0);
        $next = (array) ($job['next_actions'] ?? []);
        $html = '<div class="alert alert-danger" id="pvekeep-admin-failed-restore" data-job-id="' . $id . '">'
            . Http::escape(sprintf(
                '%s job #%d failed %s: %s',
                ($job['kind'] ?? '') === 'vm.reinstall' ? 'Reinstall' : 'Restore',
                $id,
                $this->format->dateTime($job['finished_at'] ?? ''),
                (string) ($job['error'] ?? '')
            ));
        if (in_array('retry', $next, true)) {
            $html .= '<br>' . Http::escape('"Retry restore" runs it again.');
        }
        if (in_array('reinstall', $next, true)) {
            $html .= '<br><label><input type="checkbox" name="pvekeep_confirm_reinstall" id="pvekeep-admin-confirm-reinstall" value="'
                . $id . '"' . ($confirmedJob === $id ? ' checked' : '') . '> '
                . Http::escape('Allow "Reinstall (failed restore)": erases the VM\'s disks and installs the package\'s'
                    . ' operating system. Tick, Save Changes, then click the button (valid 15 minutes).')
                . '</label>';
        } else {
            $html .= '<br>' . Http::escape('Proxmox did not change the VM; no reinstall is needed.');
        }
        return $html . '</div>';
    }

    /**
     * When the VM was destroyed and what became of its backups: when they
     * go, or that they went; the backups the cron could not remove, why,
     * and when it tries again.
     *
     * @param array<string, mixed> $t admin.overview's termination
     */
    private function termination(array $t): string
    {
        $text = 'VM destroyed ' . $this->format->dateTime($t['terminated_at'] ?? '') . ' · ';
        $after = (string) ($t['backups_purge_after'] ?? '');
        $text .= $after === '' ? 'its backups were removed' : 'its backups are removed from ' . $this->format->dateTime($after);
        $html = Http::escape($text);
        $error = trim((string) ($t['purge_error'] ?? ''));
        if ($after !== '' && $error !== '') {
            $retry = (string) ($t['purge_retry_at'] ?? '');
            $html .= '<div class="alert alert-warning" data-pvekeep-admin="purge-error">'
                . Http::escape($error . ' (' . (int) ($t['purge_attempts'] ?? 0) . ' round(s)'
                    . ($retry !== '' ? '; next try ' . $this->format->dateTime($retry) : '') . ')')
                . '</div>';
        }
        return $html;
    }

    /**
     * @param array<mixed> $jobs
     */
    private function jobs(array $jobs): string
    {
        $rows = '';
        foreach ($jobs as $j) {
            if (!is_array($j)) {
                continue;
            }
            $rows .= '<tr data-pvekeep-admin-job-id="' . (int) ($j['id'] ?? 0) . '"><td>' . (int) ($j['id'] ?? 0) . '</td><td>'
                . Http::escape((string) ($j['kind'] ?? '')) . '</td><td>'
                . Http::escape((string) ($j['state'] ?? '') . (($j['step'] ?? '') !== '' ? ' (' . $j['step'] . ')' : '')
                    . ' ' . (int) ($j['progress_pct'] ?? 0) . '%') . '</td><td>'
                . Http::escape($this->format->dateTime($j['created_at'] ?? '')) . '</td><td>'
                . Http::escape($this->format->dateTime($j['finished_at'] ?? '')) . '</td><td>'
                . Http::escape((string) ($j['error'] ?? '')) . '</td><td>'
                . $this->jobEmail(is_array($j['email'] ?? null) ? $j['email'] : null) . '</td></tr>';
        }
        if ($rows === '') {
            return 'No jobs yet.';
        }
        return '<div class="table-responsive"><table class="table table-condensed table-sm" id="pvekeep-admin-jobs">'
            . '<tr><th>ID</th><th>Kind</th><th>State</th><th>Created</th><th>Finished</th><th>Error</th><th>Email</th></tr>' . $rows
            . '</table></div>';
    }

    /**
     * A job's email in a few words; a red label when it could not be sent.
     *
     * @param array<string, mixed>|null $m
     */
    private function jobEmail(?array $m): string
    {
        if ($m === null) {
            return '';
        }
        $state = (string) ($m['state'] ?? '');
        $text = $state . ((string) ($m['last_error'] ?? '') !== '' ? ': ' . $m['last_error'] : '');
        $bad = $state === 'failed' || ($state === 'queued' && (string) ($m['last_error'] ?? '') !== '');
        return $bad ? '<span class="label label-danger badge badge-danger">' . Http::escape($text) . '</span>' : Http::escape($text);
    }

    /**
     * @param array<mixed> $emails
     */
    private function emails(array $emails): string
    {
        $rows = '';
        foreach ($emails as $m) {
            if (!is_array($m)) {
                continue;
            }
            $state = (string) ($m['state'] ?? '');
            $bad = $state === 'failed' || ($state === 'queued' && (string) ($m['last_error'] ?? '') !== '');
            $rows .= '<tr data-pvekeep-admin-email-state="' . Http::escape($state) . '"' . ($bad ? ' class="danger table-danger"' : '') . '><td>'
                . Http::escape((string) ($m['kind'] ?? '')) . '</td><td>'
                . Http::escape($state) . '</td><td>' . Http::escape((string) ($m['recipient'] ?? '')) . '</td><td>'
                . (int) ($m['attempts'] ?? 0) . '</td><td>'
                . Http::escape($this->format->dateTime($m['created_at'] ?? '')) . '</td><td>'
                . Http::escape((string) ($m['last_error'] ?? '')) . '</td></tr>';
        }
        if ($rows === '') {
            return 'No emails.';
        }
        $notice = $this->waitingNotice($emails);
        return ($notice !== '' ? '<div class="alert alert-warning" id="pvekeep-admin-emails-waiting">' . Http::escape($notice) . '</div>' : '')
            . '<div class="table-responsive"><table class="table table-condensed table-sm" id="pvekeep-admin-emails">'
            . '<tr><th>Email</th><th>State</th><th>To</th><th>Attempts</th><th>Created</th><th>Last error</th></tr>' . $rows
            . '</table></div>';
    }

    /**
     * Why client emails wait and how to get them out, '' when none waits
     * with a reason. The plugin notes the reason on each waiting email:
     * "no SMTP settings: …" when WHMCS does not send by SMTP and no TOML
     * [smtp] is set, else the SMTP problem (unusable settings, a server
     * that deferred the message).
     *
     * @param array<mixed> $emails
     */
    public function waitingNotice(array $emails, ?string $provider = null): string
    {
        $noSmtp = 0;
        $other = [];
        foreach ($emails as $m) {
            if (!is_array($m) || ($m['state'] ?? '') !== 'queued' || (string) ($m['last_error'] ?? '') === '') {
                continue;
            }
            $why = (string) $m['last_error'];
            if (strncmp($why, 'no SMTP settings', 16) === 0) {
                $noSmtp++;
            } else {
                $other[$why] = ($other[$why] ?? 0) + 1;
            }
        }
        $parts = [];
        if ($noSmtp > 0) {
            $provider = $provider ?? MailSettings::provider();
            $parts[] = sprintf(
                '%s waiting: pvekeep sends client emails by SMTP only, and %s. Fix: in System Settings → General Settings'
                . ' → Mail, choose SMTP as the Mail Provider, or set [smtp] in the plugin\'s TOML file (config.php\'s'
                . ' \'config\'). Nothing is lost: the waiting emails go out with the next cron run.',
                $noSmtp === 1 ? '1 client email is' : $noSmtp . ' client emails are',
                $provider !== '' && $provider !== 'SMTP' ? 'WHMCS sends its mail with ' . $provider
                    : 'no SMTP settings reach the plugin'
            );
        }
        foreach ($other as $why => $n) {
            $parts[] = sprintf(
                '%s waiting: %s. Check WHMCS\'s SMTP settings (System Settings → General Settings → Mail) or the'
                . ' plugin\'s [smtp]; each cron run tries again.',
                $n === 1 ? '1 client email is' : $n . ' client emails are',
                rtrim($why, '.')
            );
        }
        return implode(' ', $parts);
    }
}
