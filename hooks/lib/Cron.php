<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * One cron.tick: every enabled pvekeep server (credentials decrypted here;
 * the plugin never stores them) and WHMCS's mail settings, within a time
 * budget. WHMCS's own cron (AfterCronJob, every run) ticks briefly, so its
 * run stays short; cronjob/cron.php ticks for most of a minute when a
 * per-minute crontab is wanted. Any number may overlap: the plugin leases
 * jobs in the database.
 *
 * Client emails go out by SMTP only (WHMCS's SMTP settings, or [smtp] in
 * the plugin's TOML file). On a WHMCS that sends with PHP mail() they wait
 * in the plugin's outbox, never dropped; the activity log then says so
 * once a day (waitingEmailsNotice), and the service's admin tab says which
 * emails wait and why.
 */
final class Cron
{
    /** Seconds AfterCronJob may spend. */
    public const HOOK_BUDGET = 20;

    /** Seconds a per-minute cronjob/cron.php run may spend. */
    public const SCRIPT_BUDGET = 50;

    /**
     * The plugin's counts of what it did.
     *
     * @param list<array<string, mixed>>|null $servers server objects; null reads WHMCS's
     * @return array<mixed>
     */
    public static function tick(float $budget, ?array $servers = null, ?\PvekeepClient $client = null): array
    {
        $panel = $servers === null;
        $request = [
            'actor' => ['type' => 'system', 'id' => 0],
            'servers' => $servers ?? self::servers(),
            'budget_s' => $budget,
        ];
        $smtp = $panel ? MailSettings::smtp() : null;
        if ($smtp !== null) {
            $request['smtp'] = $smtp;
        }
        // The plugin works for up to the budget: wait that long and a
        // margin, or the client would kill it mid-pass and leave its leases.
        $result = Rpc::call('cron.tick', $request, $client ?? Rpc::client($budget + 30));
        if ($panel) {
            self::noteWaitingEmails($result, $smtp !== null);
        }
        return $result;
    }

    /**
     * The activity-log line for a tick that left client emails waiting for
     * want of usable SMTP settings, or null when none wait. The line names
     * the day: noteWaitingEmails writes it once that day, so however often
     * the cron runs (WHMCS's every 5 minutes, cron.php every minute) the
     * activity log gets one line a day while emails wait. Plain ASCII, no
     * quotes: WHMCS stores it as given and the lookup compares it whole.
     *
     * @param array<mixed> $tick the cron.tick answer
     * @param bool $panelSmtp whether WHMCS's SMTP settings were passed to the tick
     * @param string $day the day in WHMCS's time zone, Y-m-d
     */
    public static function waitingEmailsNotice(array $tick, bool $panelSmtp, string $day): ?string
    {
        if ((int) ($tick['emails_waiting'] ?? 0) <= 0) {
            return null;
        }
        $head = 'pvekeep: client emails are waiting in its outbox (notice of ' . $day . ', repeated daily while they wait): ';
        if ($panelSmtp) {
            return $head . 'the SMTP settings of WHMCS cannot be used; the service tab in the admin area shows why. '
                . 'Correct them (System Settings, General Settings, Mail) or set [smtp] in the TOML file of the plugin; '
                . 'the waiting emails go out with the next cron run.';
        }
        return $head . 'pvekeep sends client emails by SMTP only and WHMCS does not send by SMTP (PHP mail() or another provider). '
            . 'Choose SMTP as the Mail Provider of WHMCS (System Settings, General Settings, Mail) or set [smtp] in the TOML file '
            . 'of the plugin (config.php, config); the waiting emails go out with the next cron run.';
    }

    /**
     * Writes waitingEmailsNotice to the activity log unless it is there
     * already (the activity log is the only state: nothing of the module's
     * own to keep). True when a line was written. A failed lookup writes
     * nothing: better one missing notice than one per cron run.
     *
     * @param array<mixed> $tick the cron.tick answer
     */
    public static function noteWaitingEmails(array $tick, bool $panelSmtp, ?int $now = null): bool
    {
        $line = self::waitingEmailsNotice($tick, $panelSmtp, date('Y-m-d', $now ?? time()));
        if ($line === null || !function_exists('logActivity') || !class_exists('\WHMCS\Database\Capsule')) {
            return false;
        }
        try {
            // The indexed date bounds the lookup: tblactivitylog grows for
            // years, and its description is unindexed text.
            $since = date('Y-m-d 00:00:00', $now ?? time());
            $seen = \WHMCS\Database\Capsule::table('tblactivitylog')
                ->where('date', '>=', $since)
                ->where('description', $line)
                ->first();
            if ($seen !== null) {
                return false;
            }
        } catch (\Throwable $e) {
            return false;
        }
        logActivity($line);
        return true;
    }

    /**
     * WHMCS's enabled pvekeep servers as server objects.
     *
     * @return list<array<string, mixed>>
     */
    public static function servers(): array
    {
        $out = [];
        $rows = \WHMCS\Database\Capsule::table('tblservers')->where('type', 'pvekeep')->where('disabled', 0)->get();
        foreach ($rows as $row) {
            $row = (array) $row;
            $row['password'] = function_exists('decrypt') ? (string) decrypt((string) ($row['password'] ?? '')) : '';
            $out[] = ServerFields::fromRow($row);
        }
        return $out;
    }
}
