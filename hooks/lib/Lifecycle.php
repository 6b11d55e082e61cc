<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * The VM's life as WHMCS drives it: CreateAccount, SuspendAccount,
 * UnsuspendAccount, ChangePackage and TerminateAccount, each one plugin
 * method that records a durable job, takes its first step and answers
 * (DESIGN §3, §5); the cron's ticks carry the job on. WHMCS changes the
 * service's status only on "success", so "success" means the plugin
 * accepted the job; anything else is an HTML-escaped sentence for the
 * admin (WHMCS prints it raw): a locked VM says what holds it, a refused
 * change (a shrink) says the plugin's own words. Nothing is decided here.
 */
final class Lifecycle
{
    /** Module function => plugin method. */
    public const METHODS = [
        'CreateAccount' => 'service.create',
        'SuspendAccount' => 'service.suspend',
        'UnsuspendAccount' => 'service.unsuspend',
        'ChangePackage' => 'service.change_package',
        'TerminateAccount' => 'service.terminate',
    ];

    /**
     * Normalised names (lowercase letters and digits only) of a product
     * custom field that holds the client's SSH public key.
     */
    private const SSH_KEY_FIELDS = ['sshkey', 'sshkeys', 'sshpublickey', 'publicsshkey', 'sshpubkey'];

    /**
     * @param array<string, mixed> $params module parameters
     * @return string "success" or an HTML-escaped message for the admin
     */
    public static function run(string $function, array $params): string
    {
        if (!isset(self::METHODS[$function])) {
            return Http::escape('pvekeep: ' . $function . ' is not a module command.');
        }
        try {
            $answer = Rpc::service(self::METHODS[$function], $params, self::fields($function, $params), self::actor());
        } catch (\Throwable $e) {
            return Http::escape(self::message($e));
        }
        $job = is_array($answer['job'] ?? null) ? $answer['job'] : [];
        $state = (string) ($job['state'] ?? '');
        if ($job === [] || in_array($state, ['failed', 'cancelled'], true)) {
            // An earlier attempt of the same command that already ended
            // badly, or an answer without a job: not a success.
            $error = trim((string) ($job['error'] ?? ''));
            return Http::escape('pvekeep: ' . self::METHODS[$function] . ' did not start'
                . ($state !== '' ? ' (job ' . (int) ($job['id'] ?? 0) . ' ' . $state . ')' : '')
                . ($error !== '' ? ': ' . $error : '.'));
        }
        return 'success';
    }

    /**
     * Who runs the command: the admin who clicked it, else the system.
     * WHMCS also runs these inside a client's request (an order paid with
     * credit sets the service up, a paid upgrade changes the package):
     * WHMCS decided then, not the client, so the client is not the actor.
     *
     * @return array{type: string, id: int}
     */
    public static function actor(): array
    {
        $actor = Rpc::actor();
        return $actor['type'] === 'admin' ? $actor : ['type' => 'system', 'id' => 0];
    }

    /**
     * CreateAccount's fields (docs/lifecycle.md): what the plugin cannot
     * read from WHMCS's tables itself — the service's password arrives
     * decrypted only in $params (the database holds it encrypted with
     * WHMCS's key) — and the rest as WHMCS hands it over. The other
     * commands carry none: the plugin reads the service's package, which
     * WHMCS has saved before it calls them.
     *
     * @param array<string, mixed> $params
     * @return array<string, mixed>
     */
    public static function fields(string $function, array $params): array
    {
        if ($function !== 'CreateAccount') {
            return [];
        }
        return [
            'hostname' => trim((string) ($params['domain'] ?? '')),
            'username' => trim((string) ($params['username'] ?? '')),
            'password' => (string) ($params['password'] ?? ''),
            'dedicated_ip' => trim((string) ($params['dedicatedip'] ?? '')),
            'ssh_keys' => self::sshKeys($params),
            'config_options' => self::configOptions($params),
        ];
    }

    /**
     * The client's SSH public key(s) from a product custom field named like
     * "SSH Key" or "SSH Public Key", one per line; '' without one.
     *
     * @param array<string, mixed> $params
     */
    public static function sshKeys(array $params): string
    {
        foreach ((array) ($params['customfields'] ?? []) as $name => $value) {
            $norm = preg_replace('/[^a-z0-9]/', '', strtolower((string) $name));
            if (in_array($norm, self::SSH_KEY_FIELDS, true) && is_string($value) && trim($value) !== '') {
                // One key per line, as Proxmox's sshkeys holds them.
                $lines = preg_split('/\r\n|\r|\n/', trim($value));
                return implode("\n", array_values(array_filter(array_map('trim', $lines), 'strlen')));
            }
        }
        return '';
    }

    /**
     * The service's configurable options as WHMCS passes them (name before
     * "|" => the chosen sub-option's value, or a quantity), as strings.
     *
     * @param array<string, mixed> $params
     * @return array<string, string>|\stdClass an object when empty (JSON {})
     */
    public static function configOptions(array $params)
    {
        $out = [];
        foreach ((array) ($params['configoptions'] ?? []) as $name => $value) {
            if (is_scalar($value)) {
                $out[(string) $name] = (string) $value;
            }
        }
        return $out === [] ? new \stdClass() : $out;
    }

    /**
     * What the admin reads when the plugin refused: a busy VM in words
     * (what holds it and which job), else the plugin's own message.
     */
    public static function message(\Throwable $e): string
    {
        if ($e instanceof \PvekeepRpcException && $e->getReason() === 'locked') {
            $data = $e->getData();
            $lang = new Lang('english');
            $what = $lang->lock(is_string($data['lock'] ?? null) ? $data['lock'] : '');
            $job = (int) ($data['job_id'] ?? 0);
            return 'pvekeep: the VM is busy (' . $what . ($job > 0 ? ', job ' . $job : '') . '). Nothing was changed;'
                . ' run the command again once that has finished.';
        }
        return AdminActions::message($e);
    }
}
