<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * Sizes, dates and ages for people: dates in WHMCS's own date format
 * (General Settings, e.g. "DD/MM/YYYY") and the system time zone (PHP's
 * default zone, which WHMCS sets), ages in the client's language.
 */
final class Format
{
    /** @var Lang */
    private $lang;

    /** @var string PHP date() format of WHMCS's DateFormat */
    private $date;

    /** @var \DateTimeZone */
    private $zone;

    /** @var int */
    private $now;

    public function __construct(Lang $lang, string $whmcsDateFormat = '', ?\DateTimeZone $zone = null, ?int $now = null)
    {
        $this->lang = $lang;
        $this->date = self::phpDateFormat($whmcsDateFormat);
        $this->zone = $zone ?? new \DateTimeZone(date_default_timezone_get());
        $this->now = $now ?? time();
    }

    /** The panel's format, zone and clock. */
    public static function forPanel(Lang $lang): self
    {
        return new self($lang, Panel::setting('DateFormat'));
    }

    /**
     * WHMCS's DateFormat ("DD/MM/YYYY", "MM/DD/YYYY", "YYYY-MM-DD",
     * "DD.MM.YYYY", …) as a PHP date() format; ISO when unset or odd.
     */
    public static function phpDateFormat(string $whmcs): string
    {
        $f = strtoupper(trim($whmcs));
        if (!preg_match('/^(DD|MM|YYYY)([\/.\- ])(DD|MM|YYYY)\2(DD|MM|YYYY)$/', $f, $m)) {
            return 'Y-m-d';
        }
        $parts = [$m[1], $m[3], $m[4]];
        sort($parts);
        if ($parts !== ['DD', 'MM', 'YYYY']) {
            return 'Y-m-d';
        }
        return strtr($f, ['YYYY' => 'Y', 'DD' => 'd', 'MM' => 'm']);
    }

    /**
     * A size in binary units with one decimal ("1.5 GiB"), whole bytes
     * below 1 KiB, with the language's decimal separator.
     *
     * @param mixed $bytes
     */
    public function size($bytes): string
    {
        $bytes = is_numeric($bytes) ? max(0, (int) $bytes) : 0;
        if ($bytes < 1024) {
            return $bytes . ' B';
        }
        $units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
        $n = $bytes / 1024;
        $i = 0;
        // Compare the rounded value, so 1023.96 MiB reads "1.0 GiB".
        while (round($n, 1) >= 1024 && $i < count($units) - 1) {
            $n /= 1024;
            $i++;
        }
        $point = $this->lang->has('format.decimal_point') ? $this->lang->get('format.decimal_point') : '.';
        return number_format($n, 1, $point, '') . ' ' . $units[$i];
    }

    /**
     * A contract time (RFC 3339) as date and time in the panel's format and
     * zone ("22/11/2026 11:15"); '' for an empty or malformed time.
     *
     * @param mixed $rfc3339
     */
    public function dateTime($rfc3339): string
    {
        return $this->dateTimeIn($rfc3339, $this->zone);
    }

    /**
     * A local calendar date ("2026-12-07") in the panel's format; '' when
     * it is not one.
     */
    public function date(string $ymd): string
    {
        $d = \DateTimeImmutable::createFromFormat('!Y-m-d', $ymd);
        return $d !== false && $d->format('Y-m-d') === $ymd ? $d->format($this->date) : '';
    }

    /**
     * dateTime in another zone (a schedule's own).
     *
     * @param mixed $rfc3339
     */
    public function dateTimeIn($rfc3339, \DateTimeZone $zone): string
    {
        $t = self::parse($rfc3339);
        return $t === null ? '' : $t->setTimezone($zone)->format($this->date . ' H:i');
    }

    /**
     * How long ago the plugin last heard from Proxmox, in words: "checked
     * 3 min ago"; "not checked yet" without a time.
     *
     * @param mixed $rfc3339
     */
    public function age($rfc3339): string
    {
        $t = self::parse($rfc3339);
        if ($t === null) {
            return $this->lang->get('status.checked_never');
        }
        $s = max(0, $this->now - $t->getTimestamp());
        if ($s < 60) {
            return $this->lang->get('status.checked_now');
        }
        if ($s < 3600) {
            return $this->lang->get('status.checked_minutes', ['n' => intdiv($s, 60)]);
        }
        if ($s < 86400) {
            return $this->lang->get('status.checked_hours', ['n' => intdiv($s, 3600)]);
        }
        return $this->lang->get('status.checked_days', ['n' => intdiv($s, 86400)]);
    }

    /**
     * Seconds from now until a contract time (negative once past); null
     * for an empty or malformed time.
     *
     * @param mixed $rfc3339
     */
    public function secondsUntil($rfc3339): ?int
    {
        $t = self::parse($rfc3339);
        return $t === null ? null : $t->getTimestamp() - $this->now;
    }

    /**
     * A remaining lifetime as the snapshots page counts it down:
     * "0 days 23:59:54" (the page's script redraws it every second with
     * the same two patterns, snapshots.remaining and snapshots.remaining_one).
     */
    public function remaining(int $seconds): string
    {
        $s = max(0, $seconds);
        $days = intdiv($s, 86400);
        $hms = sprintf('%02d:%02d:%02d', intdiv($s % 86400, 3600), intdiv($s % 3600, 60), $s % 60);
        return $this->lang->get($days === 1 ? 'snapshots.remaining_one' : 'snapshots.remaining', ['days' => $days, 'hms' => $hms]);
    }

    /**
     * @param mixed $rfc3339
     */
    private static function parse($rfc3339): ?\DateTimeImmutable
    {
        $s = trim((string) $rfc3339);
        if (!preg_match('/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i', $s)) {
            return null;
        }
        if (!checkdate((int) substr($s, 5, 2), (int) substr($s, 8, 2), (int) substr($s, 0, 4))) {
            return null;
        }
        try {
            return new \DateTimeImmutable($s);
        } catch (\Exception $e) {
            return null;
        }
    }
}
