<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * What templates/clientarea.tpl is handed, from one backups.list answer
 * (its snapshots section by SnapshotsView):
 * the plugin's facts as they came plus display-ready strings in the
 * client's language, and which forms to offer. A form is offered only when
 * WHMCS would run it (an Active service of the logged-in client) and the
 * plugin would accept it (quota, lock); the plugin checks everything again
 * when a form is posted. Strings are raw here: the template escapes every
 * one.
 */
final class ClientAreaView
{
    /** Template paths relative to the module folder. */
    public const TEMPLATE = 'templates/clientarea.tpl';
    public const ERROR_TEMPLATE = 'templates/error.tpl';

    /** @var Lang */
    private $lang;

    /** @var Format */
    private $format;

    public function __construct(Lang $lang, Format $format)
    {
        $this->lang = $lang;
        $this->format = $format;
    }

    /**
     * The overview tab's module output (billing details stay WHMCS's), or
     * the page's JSON poll of a running job (?pvekeep_poll=JOB), which
     * answers and ends the request. One plugin call either way, answered
     * from the plugin's database.
     *
     * @param array<string, mixed> $params
     * @return array<string, mixed>
     */
    public static function page(array $params): array
    {
        $lang = Lang::forParams($params);
        $view = new self($lang, Format::forPanel($lang));
        if (Input::hasQuery('pvekeep_poll')) {
            $view->poll($params);
        }
        $flash = Http::takeFlash((int) ($params['serviceid'] ?? 0));
        try {
            // The panel's zone: a schedule without its own is in it.
            $list = Rpc::service('backups.list', $params, ['panel_timezone' => date_default_timezone_get()]);
            // One key per rendered form: a double submit makes one job.
            $vars = $view->build($list, $params, $flash, Input::token(), bin2hex(random_bytes(16)));
            return ['tabOverviewModuleOutputTemplate' => self::TEMPLATE, 'templateVariables' => $vars];
        } catch (\Throwable $e) {
            $error = self::pageError($lang, $e);
            return [
                'tabOverviewModuleOutputTemplate' => self::ERROR_TEMPLATE,
                'templateVariables' => [
                    'pvekeep_error' => $error['text'],
                    'pvekeep_error_kind' => $error['kind'],
                    'pvekeep_flash' => $flash,
                ],
            ];
        }
    }

    /**
     * What the page says when backups.list refused. The page view is no
     * click, so no "action not possible": backups.list answers
     * invalid_state only for a service that has no VM bound yet (an order
     * not provisioned, or an admin who has not filled in the vmid), and the
     * client is told just that, as information rather than an error.
     *
     * @return array{kind: string, text: string} kind: info | danger
     */
    public static function pageError(Lang $lang, \Throwable $e): array
    {
        if ($e instanceof \PvekeepRpcException && $e->getReason() === 'invalid_state') {
            return ['kind' => 'info', 'text' => $lang->get('service.not_set_up')];
        }
        return ['kind' => 'danger', 'text' => $lang->error($e)];
    }

    /**
     * Answers the page's poll with the job as the page shows it.
     *
     * @param array<string, mixed> $params
     */
    public function poll(array $params): void
    {
        try {
            $answer = Rpc::service('jobs.get', $params, ['job_id' => Input::queryInt('pvekeep_poll')]);
            $body = ['job' => $this->job(is_array($answer['job'] ?? null) ? $answer['job'] : [])];
        } catch (\Throwable $e) {
            $body = ['error' => $this->lang->error($e)];
        }
        Http::json($body);
    }

    /**
     * @param array<string, mixed> $list   the backups.list answer
     * @param array<string, mixed> $params module parameters
     * @param array{kind: string, text: string}|null $flash
     * @return array<string, mixed>
     */
    public function build(array $list, array $params, ?array $flash, string $csrf, string $formKey): array
    {
        $serviceId = (int) ($params['serviceid'] ?? 0);
        // A suspended service is read-only (the plugin refuses every action).
        $suspended = $this->suspended($list, $params);
        $mayAct = self::mayAct($params) && $suspended === null;
        $status = is_array($list['status'] ?? null) ? $list['status'] : [];

        $quota = ['used' => (int) ($list['quota']['used'] ?? 0), 'max' => (int) ($list['quota']['max'] ?? 0)];
        $quota['enabled'] = $quota['max'] > 0; // a quota of 0 turns backups off
        $quota['full'] = $quota['enabled'] && $quota['used'] >= $quota['max'];
        $quota['text'] = $this->lang->get('backups.quota', $quota);
        $quota['pct'] = $quota['enabled'] ? (int) min(100, round(100 * $quota['used'] / $quota['max'])) : 0;

        $job = is_array($list['active_job'] ?? null) ? $this->job($list['active_job']) : null;
        $lock = is_array($status['lock'] ?? null) ? $status['lock'] : [];
        $locked = !empty($lock['locked']) || $job !== null;
        $lockReason = (string) ($lock['reason'] ?? '');
        $lockView = [
            'locked' => $locked,
            'reason' => $lockReason,
            'text' => $locked ? $this->lang->get('error.locked', ['lock' => $this->lang->lock($lockReason)]) : '',
        ];

        $backups = [];
        foreach ((array) ($list['items'] ?? []) as $b) {
            if (!is_array($b)) {
                continue;
            }
            $state = (string) ($b['status'] ?? '');
            $id = (int) ($b['id'] ?? 0);
            $backups[] = $b + [
                'created_text' => $this->format->dateTime($b['created_at'] ?? ''),
                'size_text' => (int) ($b['size_bytes'] ?? 0) > 0 ? $this->format->size($b['size_bytes']) : '',
                'status_text' => $this->lang->has('backup.status.' . $state) ? $this->lang->get('backup.status.' . $state) : $state,
                'origin_text' => ($b['origin'] ?? '') === 'scheduled' ? $this->lang->get('backup.origin.scheduled') : '',
                'can_act' => $mayAct && $state === 'available' && !$locked,
                // Kept: Proxmox's protected flag; rotation never removes it.
                'protected' => !empty($b['protected']),
                'keep_title' => $this->lang->get(empty($b['protected']) ? 'schedule.keep.title' : 'schedule.keep.untitle'),
                // Its own key: the plugin refuses a key it has seen for
                // another kind of job.
                'restore_token' => $formKey . '-restore-' . $id,
            ];
        }

        // A restore or reinstall that failed after Proxmox changed the VM
        // left it unusable: a backup of it now is worthless and would take
        // a place of the quota. Restoring another backup stays offered.
        $unusable = false;
        $failed = is_array($list['failed_restore'] ?? null) ? $list['failed_restore'] : null;
        if ($failed !== null) {
            $next = (array) ($failed['next_actions'] ?? []);
            $what = ($failed['kind'] ?? '') === 'vm.reinstall' ? 'reinstall' : 'restore';
            // Without a reinstall to offer, the job failed before Proxmox
            // changed anything: the server still works.
            $unusable = in_array('reinstall', $next, true);
            $failed += [
                'message' => $this->lang->get($what . ($unusable ? '.failed' : '.failed_intact')),
                'retry_label' => $this->lang->get($what === 'reinstall' ? 'button.reinstall_retry' : 'button.restore_retry'),
                'retry_warning' => $this->lang->get($what . '.warning'),
                'can_retry' => $mayAct && in_array('retry', $next, true) && !$locked,
                'can_reinstall' => $mayAct && $unusable && !$locked,
            ] + $this->failure($failed);
        }

        // A backup or removal that failed, until the next job: the click
        // must not end in silence.
        $failedBackup = is_array($list['failed_backup'] ?? null) ? $list['failed_backup'] : null;
        if ($failedBackup !== null) {
            $failedBackup += [
                'message' => $this->lang->get(($failedBackup['kind'] ?? '') === 'backup.remove' ? 'backup.remove_failed' : 'backup.create_failed'),
            ] + $this->failure($failedBackup);
        }

        // While something runs, the busy notice alone says why nothing can
        // be done (a running backup already counts in the quota).
        $notice = ['kind' => '', 'text' => ''];
        if (!$locked && !$quota['enabled']) {
            $notice = ['kind' => 'disabled', 'text' => $this->lang->get('backups.disabled')];
        } elseif (!$locked && $unusable) {
            $notice = ['kind' => 'vm-unusable', 'text' => $this->lang->get('backups.paused_unusable')];
        } elseif (!$locked && $quota['full']) {
            $notice = ['kind' => 'quota-full', 'text' => $this->lang->get('backups.quota_full', $quota)];
        }

        $page = Http::servicePage($serviceId);
        $snapshots = (new SnapshotsView($this->lang, $this->format))->build(
            is_array($list['snapshots'] ?? null) ? $list['snapshots'] : [],
            $mayAct,
            $lockView,
            (string) ($status['power'] ?? ''),
            $formKey
        );
        return [
            'pvekeep_suspended' => $suspended,
            'pvekeep_schedule' => $quota['enabled'] ? (new ScheduleView($this->lang, $this->format))->build($list['schedule'] ?? null, $mayAct) : null,
            'pvekeep_backups' => $backups,
            'pvekeep_snapshots' => $snapshots,
            'pvekeep_quota' => $quota,
            'pvekeep_active_job' => $job,
            'pvekeep_failed_restore' => $failed,
            'pvekeep_failed_backup' => $failedBackup,
            'pvekeep_lock' => $lockView,
            'pvekeep_notice' => $notice,
            'pvekeep_can_backup' => $mayAct && $quota['enabled'] && !$quota['full'] && !$locked && !$unusable,
            'pvekeep_status' => $this->status($status),
            'pvekeep_flash' => $flash !== null && $flash['text'] !== '' ? $flash : null,
            // The card that shows it ('' = the backups card at the top).
            'pvekeep_flash_card' => (string) ($flash['card'] ?? ''),
            'pvekeep_service_id' => $serviceId,
            'pvekeep_page_url' => $page,
            'pvekeep_poll_url' => $job !== null ? $page . '&pvekeep_poll=' . (int) $job['id'] : '',
            'pvekeep_csrf' => $csrf,
            'pvekeep_form_token' => $formKey,
            'pvekeep_lang' => $this->lang->all(),
            'pvekeep_lang_code' => $this->lang->code(),
        ];
    }

    /**
     * A job as the page and its poll show it.
     *
     * @param array<string, mixed> $job
     * @return array<string, mixed>
     */
    public function job(array $job): array
    {
        $pct = max(0, min(100, (int) ($job['progress_pct'] ?? 0)));
        $kind = (string) ($job['kind'] ?? '');
        $state = (string) ($job['state'] ?? '');
        $started = $this->format->dateTime($job['created_at'] ?? '');
        return [
            'id' => (int) ($job['id'] ?? 0),
            'kind' => $kind,
            'state' => $state,
            'kind_text' => $this->lang->has('job.' . $kind) ? $this->lang->get('job.' . $kind) : $this->lang->get('job.other'),
            'state_text' => $this->jobStateText($state, (string) ($job['step'] ?? '')),
            'progress' => $pct,
            'progress_text' => $this->lang->get('job.progress', ['pct' => $pct]),
            'started_text' => $started !== '' ? $this->lang->get('job.started', ['time' => $started]) : '',
            'done' => !in_array($state, ['queued', 'running'], true),
        ] + $job;
    }

    /**
     * A job's state in words. A backup held back because its host already
     * runs as many backups as it may (a scheduled one, say) says so: it is
     * waiting its turn, not stuck.
     */
    private function jobStateText(string $state, string $step): string
    {
        if ($state === 'queued' && $step === 'wait_node') {
            return $this->lang->get('schedule.wait_node');
        }
        return $this->lang->has('job.state.' . $state) ? $this->lang->get('job.state.' . $state) : $state;
    }

    /**
     * Whether this page may offer forms: WHMCS runs a custom function only
     * for an Active service of the logged-in client.
     *
     * @param array<string, mixed> $params
     */
    public static function mayAct(array $params): bool
    {
        if (isset($params['status']) && $params['status'] !== 'Active') {
            return false;
        }
        $uid = (int) ($_SESSION['uid'] ?? 0);
        return $uid > 0 && $uid === (int) ($params['userid'] ?? 0);
    }

    /**
     * Why nothing can be changed on a suspended service (WHMCS's status,
     * or the plugin's while a suspension or reactivation is under way):
     * null when it is not suspended. The reason is the one the admin typed
     * when suspending (tblhosting.suspendreason, on WHMCS's service model).
     *
     * @param array<string, mixed> $list
     * @param array<string, mixed> $params
     * @return array{text: string, reason: string, reason_text: string}|null
     */
    private function suspended(array $list, array $params): ?array
    {
        if (($params['status'] ?? '') !== 'Suspended' && ($list['service_state'] ?? '') !== 'suspended') {
            return null;
        }
        $model = $params['model'] ?? null;
        $reason = is_object($model) ? trim((string) ($model->suspendreason ?? '')) : '';
        return [
            'text' => $this->lang->get('service.suspended'),
            'reason' => $reason,
            'reason_text' => $reason !== '' ? $this->lang->get('service.suspended_reason', ['reason' => $reason]) : '',
        ];
    }

    /**
     * The VM as the plugin last saw it, and how long ago that was.
     *
     * @param array<string, mixed> $status
     * @return array<string, mixed>
     */
    private function status(array $status): array
    {
        $power = (string) ($status['power'] ?? '');
        return [
            'vmid' => (int) ($status['vmid'] ?? 0),
            'node' => (string) ($status['node'] ?? ''),
            'power' => $power,
            'power_text' => $power !== '' && $this->lang->has('power.' . $power) ? $this->lang->get('power.' . $power) : '',
            'checked_at' => (string) ($status['checked_at'] ?? ''),
            'checked_text' => $this->format->age($status['checked_at'] ?? ''),
        ];
    }

    /**
     * What a failed job's alert says besides its message: Proxmox's reason
     * and when it failed, each '' when unknown.
     *
     * @param array<string, mixed> $job
     * @return array{error_text: string, finished_text: string}
     */
    private function failure(array $job): array
    {
        $finished = $this->format->dateTime($job['finished_at'] ?? '');
        return [
            'error_text' => (string) ($job['error'] ?? '') !== '' ? $this->lang->get('restore.failed_details', ['error' => $job['error']]) : '',
            'finished_text' => $finished !== '' ? $this->lang->get('restore.failed_at', ['time' => $finished]) : '',
        ];
    }
}
