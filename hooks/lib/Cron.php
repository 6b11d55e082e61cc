<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * One cron.tick: every enabled pvekeep server (credentials decrypted here;
 * the plugin never stores them) and WHMCS's mail settings, within a time
 * budget. WHMCS's own cron (AfterCronJob, every run) ticks briefly, so its
 * run stays short; cronjob/cron.php ticks for most of a minute when a
 * per-minute crontab is wanted. Any number may overlap: the plugin leases
 * jobs in the database.
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
        $request = [
            'actor' => ['type' => 'system', 'id' => 0],
            'servers' => $servers ?? self::servers(),
            'budget_s' => $budget,
        ];
        $smtp = $servers === null ? MailSettings::smtp() : null;
        if ($smtp !== null) {
            $request['smtp'] = $smtp;
        }
        // The plugin works for up to the budget: wait that long and a
        // margin, or the client would kill it mid-pass and leave its leases.
        return Rpc::call('cron.tick', $request, $client ?? Rpc::client($budget + 30));
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
