<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * The client's strings: lang/<code>.json (shared with the plugin's emails),
 * English filling anything missing. The language is the one the client
 * picked in this session, else the one on their account, else the panel's
 * default.
 */
final class Lang
{
    /** WHMCS language names with a lang/ file of ours. */
    private const CODES = ['english' => 'en', 'german' => 'de', 'russian' => 'ru'];

    /** @var array<string, array<string, string>> */
    private static $files = [];

    /** @var string */
    private $code;

    /** @var array<string, string> */
    private $strings;

    public function __construct(string $language = '')
    {
        $this->code = self::codeFor($language);
        $this->strings = array_merge(self::file('en'), self::file($this->code));
    }

    /**
     * The language of the person looking at a service's page.
     *
     * @param array<string, mixed> $params
     */
    public static function forParams(array $params): self
    {
        $picked = (string) ($_SESSION['Language'] ?? '');
        if ($picked === '') {
            $picked = (string) ($params['clientsdetails']['language'] ?? '');
        }
        if ($picked === '') {
            $picked = Panel::setting('Language');
        }
        return new self($picked);
    }

    /**
     * The code of our lang file for a WHMCS language name ("german") or a
     * code ("de"); English when we have no such file.
     */
    public static function codeFor(string $language): string
    {
        $language = strtolower(trim($language));
        $code = self::CODES[$language] ?? (preg_match('/^[a-z]{2}$/', $language) ? $language : 'en');
        return self::path($code) !== '' ? $code : 'en';
    }

    public function code(): string
    {
        return $this->code;
    }

    /**
     * One string with its {placeholders} filled; the key itself when no
     * language has it.
     *
     * @param array<string, mixed> $vars
     */
    public function get(string $key, array $vars = []): string
    {
        $out = [];
        foreach ($vars as $k => $v) {
            if (is_scalar($v)) {
                $out['{' . $k . '}'] = (string) $v;
            }
        }
        return strtr((string) ($this->strings[$key] ?? $key), $out);
    }

    public function has(string $key): bool
    {
        return isset($this->strings[$key]);
    }

    /** @return array<string, string> */
    public function all(): array
    {
        return $this->strings;
    }

    /**
     * Why the VM is busy, in words: a lock name (Proxmox's, or the
     * plugin's for its running job) is never shown raw.
     */
    public function lock(string $reason): string
    {
        return $this->has('lock.' . $reason) ? $this->get('lock.' . $reason) : $this->get('lock.other');
    }

    /**
     * What a client reads when a call failed: translated by the plugin's
     * reason; a generic sentence for anything else (the details are in
     * the module log).
     */
    public function error(\Throwable $e): string
    {
        if ($e instanceof \PvekeepRpcException && $e->getReason() === 'forbidden' && ($e->getData()['state'] ?? '') === 'suspended') {
            return $this->get('service.suspended_refused');
        }
        if ($e instanceof \PvekeepRpcException && $this->has('error.' . $e->getReason())) {
            $data = $e->getData();
            if (isset($data['lock']) && is_string($data['lock'])) {
                $data['lock'] = $this->lock($data['lock']);
            }
            // A reason may have a more precise message for what it is
            // about: error.quota_exceeded.snapshots,
            // error.invalid_state.not_newest_snapshot.
            foreach (['what', 'state'] as $about) {
                if (isset($data[$about]) && is_string($data[$about]) && $this->has('error.' . $e->getReason() . '.' . $data[$about])) {
                    return $this->get('error.' . $e->getReason() . '.' . $data[$about], $data);
                }
            }
            return $this->get('error.' . $e->getReason(), $data);
        }
        return $this->get('error.unavailable');
    }

    /** @return array<string, string> */
    private static function file(string $code): array
    {
        if (!isset(self::$files[$code])) {
            $path = self::path($code);
            $data = $path !== '' ? json_decode((string) file_get_contents($path), true) : null;
            self::$files[$code] = is_array($data) ? $data : [];
        }
        return self::$files[$code];
    }

    /**
     * Where lang/<code>.json is: in the module folder once packaged, at the
     * repository's root in a checkout; '' when there is none.
     */
    private static function path(string $code): string
    {
        foreach ([dirname(__DIR__) . '/lang/', dirname(__DIR__, 2) . '/lang/'] as $dir) {
            if (is_file($dir . $code . '.json')) {
                return $dir . $code . '.json';
            }
        }
        return '';
    }
}
