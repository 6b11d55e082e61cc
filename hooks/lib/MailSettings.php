<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * WHMCS's own outgoing mail settings, for the plugin's emails (cron.tick's
 * `smtp`; the TOML's [smtp] wins when set). WHMCS 8's Mail Providers keep
 * them in the setting MailConfig (encrypted JSON: module "SmtpMail" and its
 * configuration); older installs keep MailType = "smtp" and SMTPHost,
 * SMTPPort, SMTPUsername, SMTPPassword (encrypted), SMTPSSL ("", "ssl",
 * "tls"). The sender is Email / CompanyName either way. null when WHMCS
 * does not send by SMTP (the emails then wait in the plugin's outbox; the
 * admin's service tab and, once a day, the activity log say so: Cron,
 * AdminView).
 */
final class MailSettings
{
    private const NAMES = [
        'MailConfig', 'MailType', 'SMTPHost', 'SMTPPort', 'SMTPUsername', 'SMTPPassword', 'SMTPSSL',
        'Email', 'CompanyName',
    ];

    /**
     * @return array<string, mixed>|null
     */
    public static function smtp(): ?array
    {
        return self::fromSettings(self::read());
    }

    /**
     * @param array<string, string> $s setting => value as tblconfiguration stores it
     * @return array<string, mixed>|null
     */
    public static function fromSettings(array $s): ?array
    {
        $smtp = null;
        $config = self::mailConfig((string) ($s['MailConfig'] ?? ''));
        if ($config !== null) {
            if (strcasecmp((string) ($config['module'] ?? ''), 'SmtpMail') === 0) {
                $c = is_array($config['configuration'] ?? null) ? $config['configuration'] : [];
                $smtp = [
                    'host' => (string) ($c['host'] ?? ''),
                    'port' => (int) ($c['port'] ?? 0),
                    'username' => (string) ($c['username'] ?? ''),
                    'password' => (string) ($c['password'] ?? ''),
                    'secure' => self::secure((string) ($c['secure'] ?? '')),
                ];
            }
        } elseif (strtolower((string) ($s['MailType'] ?? '')) === 'smtp') {
            $smtp = [
                'host' => (string) ($s['SMTPHost'] ?? ''),
                'port' => (int) ($s['SMTPPort'] ?? 0),
                'username' => (string) ($s['SMTPUsername'] ?? ''),
                'password' => self::decrypt((string) ($s['SMTPPassword'] ?? '')),
                'secure' => self::secure((string) ($s['SMTPSSL'] ?? '')),
            ];
        }
        if ($smtp === null || $smtp['host'] === '') {
            return null;
        }
        if ($smtp['port'] <= 0) {
            $smtp['port'] = $smtp['secure'] === 'ssl' ? 465 : 587;
        }
        return $smtp + [
            'from_email' => (string) ($s['Email'] ?? ''),
            'from_name' => (string) ($s['CompanyName'] ?? ''),
        ];
    }

    /**
     * What WHMCS sends its own mail with, as the admin reads it: "SMTP",
     * "PHP mail()", another Mail Provider's module name, or '' when the
     * settings cannot be read.
     */
    public static function provider(): string
    {
        try {
            return self::providerOf(self::read());
        } catch (\Throwable $e) {
            return '';
        }
    }

    /**
     * @param array<string, string> $s setting => value as tblconfiguration stores it
     */
    public static function providerOf(array $s): string
    {
        $config = self::mailConfig((string) ($s['MailConfig'] ?? ''));
        $module = $config !== null ? (string) ($config['module'] ?? '') : strtolower((string) ($s['MailType'] ?? ''));
        if (strcasecmp($module, 'SmtpMail') === 0 || $module === 'smtp') {
            return 'SMTP';
        }
        if (strcasecmp($module, 'PhpMail') === 0 || $module === 'mail' || ($config === null && $module === '' && $s !== [])) {
            return 'PHP mail()';
        }
        return $module;
    }

    /** @return array<string, string> */
    private static function read(): array
    {
        $out = [];
        if (!class_exists('\WHMCS\Database\Capsule')) {
            return $out;
        }
        foreach (\WHMCS\Database\Capsule::table('tblconfiguration')->whereIn('setting', self::NAMES)->get() as $row) {
            $out[(string) $row->setting] = (string) $row->value;
        }
        return $out;
    }

    /**
     * MailConfig as an array: encrypted JSON (stored by WHMCS 8), or
     * plain JSON; null when absent or unreadable.
     *
     * @return array<string, mixed>|null
     */
    private static function mailConfig(string $stored): ?array
    {
        if (trim($stored) === '') {
            return null;
        }
        foreach ([self::decrypt($stored), $stored] as $text) {
            $data = json_decode($text, true);
            if (is_array($data)) {
                return $data;
            }
        }
        return null;
    }

    private static function decrypt(string $s): string
    {
        return $s !== '' && function_exists('decrypt') ? (string) decrypt($s) : '';
    }

    private static function secure(string $v): string
    {
        $v = strtolower(trim($v));
        return in_array($v, ['ssl', 'tls'], true) ? $v : '';
    }
}
