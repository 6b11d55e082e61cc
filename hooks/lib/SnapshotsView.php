<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * The Snapshots card of the client page, from backups.list's `snapshots`
 * section: the counter, the list with each snapshot's remaining lifetime
 * (the template's script counts it down), which forms to offer, and why
 * none are while the server is busy. Like ClientAreaView, strings are raw
 * here and escaped by the template.
 */
final class SnapshotsView
{
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
     * @param array<string, mixed> $section backups.list's snapshots section
     * @param bool $mayAct  WHMCS would run the page's forms (Active, owner)
     * @param array{locked: bool, reason: string, text: string} $lock the page's lock
     * @param string $power the VM's power state as last seen
     * @param string $formKey the page view's idempotency key base
     * @return array<string, mixed>
     */
    public function build(array $section, bool $mayAct, array $lock, string $power, string $formKey): array
    {
        $quota = is_array($section['quota'] ?? null) ? $section['quota'] : [];
        $used = (int) ($quota['used'] ?? 0);
        $max = (int) ($quota['max'] ?? 0);
        $days = (int) ($section['lifetime_days'] ?? 0);
        $locked = !empty($lock['locked']);

        $items = [];
        foreach ((array) ($section['items'] ?? []) as $sn) {
            if (!is_array($sn)) {
                continue;
            }
            $status = (string) ($sn['status'] ?? '');
            $left = $this->format->secondsUntil($sn['expires_at'] ?? '');
            $created = $this->format->dateTime($sn['created_at'] ?? '');
            $name = (string) ($sn['name'] ?? '');
            $items[] = [
                'name' => $name,
                'description' => (string) ($sn['description'] ?? ''),
                'status' => $status,
                'status_text' => $status !== 'available' && $this->lang->has('snapshot.status.' . $status)
                    ? $this->lang->get('snapshot.status.' . $status) : '',
                'created_at' => (string) ($sn['created_at'] ?? ''),
                'created_text' => $created,
                'vmstate' => !empty($sn['vmstate']),
                'expires_at' => (string) ($sn['expires_at'] ?? ''),
                // null: kept until removed.
                'remaining_s' => $left === null ? null : max(0, $left),
                'remaining_text' => $left === null ? $this->lang->get('snapshots.kept')
                    : ($left > 0 ? $this->format->remaining($left) : $this->lang->get('snapshots.expiring')),
                'offered' => $mayAct && $status === 'available',
                'rollback_warning' => $this->lang->get(
                    !empty($sn['vmstate']) ? 'snapshot.rollback_warning_ram' : 'snapshot.rollback_warning',
                    ['time' => $created]
                ),
                // Keys of their own: the plugin refuses a key it has seen
                // for another kind of job. The name is hashed to keep the
                // key within the plugin's 64 bytes.
                'rollback_token' => $formKey . '-rb-' . substr(md5($name), 0, 12),
                'remove_token' => $formKey . '-rm-' . substr(md5($name), 0, 12),
            ];
        }

        $failed = is_array($section['failed_job'] ?? null) ? $section['failed_job'] : null;
        if ($failed !== null) {
            $what = substr((string) ($failed['kind'] ?? ''), strlen('snapshot.'));
            $finished = $this->format->dateTime($failed['finished_at'] ?? '');
            $failed = [
                'id' => (int) ($failed['id'] ?? 0),
                'message' => $this->lang->has('snapshot.' . $what . '_failed')
                    ? $this->lang->get('snapshot.' . $what . '_failed') : $this->lang->get('snapshot.create_failed'),
                'error_text' => (string) ($failed['error'] ?? '') !== ''
                    ? $this->lang->get('restore.failed_details', ['error' => $failed['error']]) : '',
                'finished_at' => (string) ($failed['finished_at'] ?? ''),
                'finished_text' => $finished !== '' ? $this->lang->get('restore.failed_at', ['time' => $finished]) : '',
            ];
        }

        $removed = (array) ($section['removed_by_restore'] ?? []);
        $full = $used >= $max;
        return [
            'enabled' => $max > 0 || $items !== [],
            'quota' => ['used' => $used, 'max' => $max, 'text' => $this->lang->get('snapshots.quota', ['used' => $used, 'max' => $max])],
            'full' => $full,
            'full_text' => $full && $max > 0 ? $this->lang->get('snapshots.quota_full', ['used' => $used, 'max' => $max]) : '',
            'lifetime_days' => $days,
            'lifetime_text' => $days > 0
                ? $this->lang->get($days === 1 ? 'snapshots.lifetime_one' : 'snapshots.lifetime', ['days' => $days])
                : $this->lang->get('snapshots.lifetime_keep'),
            'items' => $items,
            'failed' => $failed,
            'removed_by_restore' => $removed !== []
                ? $this->lang->get('snapshots.removed_by_restore', ['count' => count($removed)]) : '',
            // Forms stay on the page while the server is busy, greyed with
            // the reason beside them (#pvekeep-snapshots-lock).
            'locked' => $locked,
            'lock_text' => $locked ? (string) ($lock['text'] ?? '') : '',
            'can_create' => $mayAct && $max > 0 && !$full,
            'ram_offered' => !empty($section['ram_allowed']) && $power === 'running',
            'create_token' => $formKey . '-snapshot',
            'remaining_pattern' => $this->lang->get('snapshots.remaining'),
            'remaining_one_pattern' => $this->lang->get('snapshots.remaining_one'),
            'expiring_text' => $this->lang->get('snapshots.expiring'),
        ];
    }
}
