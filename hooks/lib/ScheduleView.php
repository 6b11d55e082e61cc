<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * The schedule card of the page, from backups.list's `schedule`: the
 * weekday grid (a tick and a time per day, Monday first), the time zone,
 * the next run, why the last run was skipped, failed, waits, or left the
 * package above its quota although its backup was made, the note that a scheduled
 * backup at a full quota rotates the oldest backup not kept away, and,
 * when the product sets a window, that the system picks the time. The
 * plugin computes everything; this only puts it into words. Strings are
 * raw here: the template escapes them.
 */
final class ScheduleView
{
    /** Contract day names, in the order the grid shows them. */
    public const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

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
     * The card's variables, or null when the plugin sent no schedule.
     *
     * @param mixed $schedule backups.list's `schedule`
     * @param bool $canEdit whether the page may offer the form (the
     *                      service is Active, the client's, not suspended)
     * @return array<string, mixed>|null
     */
    public function build($schedule, bool $canEdit): ?array
    {
        if (!is_array($schedule)) {
            return null;
        }
        $panelZone = date_default_timezone_get();
        $zone = trim((string) ($schedule['timezone'] ?? ''));
        $zone = $zone !== '' ? $zone : $panelZone;
        $window = self::window($schedule['window'] ?? null);

        $byDay = [];
        foreach ((array) ($schedule['days'] ?? []) as $d) {
            if (is_array($d) && is_string($d['day'] ?? null)) {
                $byDay[strtolower($d['day'])] = $d;
            }
        }
        $days = [];
        $any = false;
        foreach (self::DAYS as $day) {
            $d = $byDay[$day] ?? [];
            $enabled = !empty($d['enabled']);
            $any = $any || $enabled;
            $time = (string) ($d['time'] ?? '');
            $days[] = [
                'day' => $day,
                'label' => $this->lang->get('schedule.day.' . $day),
                'time_label' => $this->lang->get('schedule.time_label', ['day' => $this->lang->get('schedule.day.' . $day)]),
                'enabled' => $enabled,
                'time' => preg_match('/^([01]\d|2[0-3]):[0-5]\d$/', $time) ? $time : '',
            ];
        }

        $next = (string) ($schedule['next_run_at'] ?? '');
        $nextText = $this->nextRun($next, $zone);
        $lastRun = is_array($schedule['last_run'] ?? null) ? $schedule['last_run'] : null;
        $skipped = trim((string) ($schedule['skipped_reason'] ?? ''));
        if ($lastRun !== null && in_array((string) ($lastRun['state'] ?? ''), ['done', 'rotating'], true)) {
            $skipped = ''; // its backup was made: never called skipped
        }
        list($runText, $runAlert) = $this->runNow($lastRun);
        return [
            'timezone' => $zone,
            'timezone_text' => $this->lang->get('schedule.timezone', ['zone' => $zone]),
            'zones' => $canEdit ? self::zones($zone) : [],
            'days' => $days,
            'any' => $any,
            'window' => $window,
            'window_text' => $window !== null ? $this->lang->get('schedule.window', $window) : '',
            'next_run_at' => $next,
            'next_run_text' => $nextText !== ''
                ? $this->lang->get('schedule.next_run', ['time' => $nextText])
                : $this->lang->get($any ? 'schedule.next_run_none' : ($canEdit ? 'schedule.off' : 'schedule.off_readonly')),
            'rotate_note' => $this->lang->get('schedule.rotate_note'),
            'skipped_reason' => $skipped,
            'skipped_text' => $skipped === '' ? '' : ($this->lang->has('schedule.skipped.' . $skipped)
                ? $this->lang->get('schedule.skipped.' . $skipped) : $this->lang->get('schedule.skipped.other')),
            'last_run_text' => $this->lastRun($lastRun),
            'run_text' => $runText,
            'run_alert' => $runAlert,
            'run_state' => $runText !== '' ? (string) ($lastRun['state'] ?? '') : '',
            'run_reason' => $runText !== '' ? (string) ($lastRun['reason'] ?? '') : '',
            'can_edit' => $canEdit,
        ];
    }

    /**
     * A scheduled backup that failed, in words: still being retried today
     * (attempt n of m) or given up; '' otherwise (a skip has its own text).
     *
     * @param array<string, mixed>|null $run backups.list's schedule.last_run
     */
    private function lastRun(?array $run): string
    {
        if ($run === null) {
            return '';
        }
        $state = (string) ($run['state'] ?? '');
        $error = trim((string) ($run['error'] ?? ''));
        $vars = [
            'date' => $this->format->date((string) ($run['date'] ?? '')),
            'error' => $error,
            'attempts' => (int) ($run['attempts'] ?? 0),
            'max' => (int) ($run['max_attempts'] ?? 0),
        ];
        if ($state === 'failed') {
            return $this->lang->get($error !== '' ? 'schedule.run_failed' : 'schedule.run_failed_plain', $vars);
        }
        if ($state === 'waiting' && $vars['attempts'] > 0 && $error !== '') {
            return $this->lang->get('schedule.run_retrying', $vars);
        }
        return '';
    }

    /**
     * What the latest run is doing, or what it could not do although its
     * backup was made, in words, with the alert's kind ('info' while it
     * waits or rotates, 'warning' when the package is left above its
     * quota); ['', ''] when there is nothing to say here (a failure and a
     * retry have lastRun's words, a skip its own).
     *
     * @param array<string, mixed>|null $run backups.list's schedule.last_run
     * @return array{0: string, 1: string}
     */
    private function runNow(?array $run): array
    {
        if ($run === null) {
            return ['', ''];
        }
        $state = (string) ($run['state'] ?? '');
        $reason = trim((string) ($run['reason'] ?? ''));
        $vars = ['date' => $this->format->date((string) ($run['date'] ?? ''))];
        if ($state === 'waiting') {
            if ((int) ($run['attempts'] ?? 0) > 0 && trim((string) ($run['error'] ?? '')) !== '') {
                return ['', '']; // being retried: lastRun says so
            }
            // No reason: it waits for its turn on its node.
            $key = 'schedule.run_waiting.' . ($reason === '' ? 'node' : $reason);
            if (!$this->lang->has($key)) {
                $key = 'schedule.run_waiting.other';
            }
            return [$this->lang->get($key, $vars), 'info'];
        }
        if ($state === 'rotating') {
            return [$this->lang->get('schedule.run_rotating', $vars), 'info'];
        }
        if ($state === 'done' && $reason !== '') {
            $key = 'schedule.run_done.' . $reason;
            return [$this->lang->get($this->lang->has($key) ? $key : 'schedule.run_done.rotate_failed', $vars), 'warning'];
        }
        return ['', ''];
    }

    /**
     * The admin's window as {start, end} ("01:00", "05:00"), from
     * "HH:MM-HH:MM" or an object; null when the customer picks the times.
     *
     * @param mixed $w
     * @return array{start: string, end: string}|null
     */
    public static function window($w): ?array
    {
        if (is_array($w)) {
            $start = (string) ($w['start'] ?? '');
            $end = (string) ($w['end'] ?? '');
        } elseif (is_string($w) && preg_match('/^\s*(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$/', $w, $m)) {
            list(, $start, $end) = $m;
        } else {
            return null;
        }
        if ($start === '' || $end === '') {
            return null;
        }
        return ['start' => $start, 'end' => $end];
    }

    /**
     * The time zones a client may pick: PHP's list of IANA names, the
     * current one included even when PHP lists it under another name.
     *
     * @return list<string>
     */
    public static function zones(string $current): array
    {
        $zones = \DateTimeZone::listIdentifiers();
        if ($current !== '' && !in_array($current, $zones, true)) {
            $zones[] = $current;
            sort($zones);
        }
        return $zones;
    }

    /**
     * "Tuesday, 08/12/2026 03:00 (Europe/Berlin)": the run in the
     * schedule's own zone, where its weekday and time were picked; '' when
     * there is none or the zone is unknown to PHP.
     */
    private function nextRun(string $rfc3339, string $zone): string
    {
        try {
            $tz = new \DateTimeZone($zone);
        } catch (\Exception $e) {
            return '';
        }
        $text = $this->format->dateTimeIn($rfc3339, $tz);
        if ($text === '') {
            return '';
        }
        $day = strtolower((new \DateTimeImmutable($rfc3339))->setTimezone($tz)->format('D'));
        return $this->lang->get('schedule.day.' . $day) . ', ' . $text . ' (' . $zone . ')';
    }
}
