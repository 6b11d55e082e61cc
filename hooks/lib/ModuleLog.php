<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * WHMCS's module log (and, for an admin's failed command, the activity
 * log). Secrets are taken out of what is logged here, whatever WHMCS would
 * turn the request into (an escaped secret would slip past its masking),
 * and handed to WHMCS to mask in the response too. A failure carries the
 * plugin's stderr: its log is the real reason.
 */
final class ModuleLog
{
    /** Request fields that hold secrets, at any depth. */
    private const SECRET_KEYS = ['token_secret', 'password'];

    /**
     * @param array<string, mixed> $request
     * @param mixed $response
     */
    public static function call(string $action, array $request, $response): void
    {
        if (!function_exists('logModuleCall')) {
            return;
        }
        $secrets = [];
        $request = self::mask($request, $secrets);
        logModuleCall('pvekeep', $action, $request, $response, $response, $secrets);
    }

    /**
     * @param array<string, mixed> $request
     */
    public static function failure(string $action, array $request, \Throwable $e, string $stderr): void
    {
        $secrets = [];
        $masked = self::mask($request, $secrets);
        if ($e instanceof \PvekeepTransportException && $e->getStderr() !== '') {
            $stderr = $e->getStderr();
        }
        $stderr = self::scrub($stderr, $secrets);
        $response = get_class($e) . ' (' . $e->getCode() . '): ' . $e->getMessage();
        if ($e instanceof \PvekeepRpcException && $e->getRawData() !== null) {
            $response .= "\ndata: " . json_encode($e->getRawData(), JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
        }
        $response = self::scrub($response, $secrets);
        if (function_exists('logModuleCall')) {
            logModuleCall('pvekeep', $action, $masked, $response, $stderr !== '' ? "plugin stderr:\n" . $stderr : '', $secrets);
        }
        if (($request['actor']['type'] ?? '') === 'admin' && function_exists('logActivity')) {
            logActivity(self::activity($action, $request, $e, $stderr));
        }
    }

    /**
     * One activity-log line for an admin's failed command: the service,
     * the method and the plugin's own last words.
     *
     * @param array<string, mixed> $request
     */
    public static function activity(string $action, array $request, \Throwable $e, string $stderr): string
    {
        $why = self::lastLines($stderr);
        if ($why === '') {
            $why = $e->getMessage();
        }
        $service = isset($request['service_id']) ? ' for service ID ' . (int) $request['service_id'] : '';
        return 'pvekeep: ' . $action . $service . ' failed: ' . $why;
    }

    /**
     * The request with every secret replaced by "***"; $secrets collects
     * them for WHMCS's own masking.
     *
     * @param array<mixed> $data
     * @param list<string> $secrets
     * @return array<mixed>
     */
    public static function mask(array $data, array &$secrets): array
    {
        foreach ($data as $k => $v) {
            if (is_array($v)) {
                $data[$k] = self::mask($v, $secrets);
            } elseif (in_array($k, self::SECRET_KEYS, true) && is_string($v) && $v !== '') {
                $secrets[] = $v;
                $data[$k] = '***';
            }
        }
        return $data;
    }

    /**
     * @param list<string> $secrets
     */
    private static function scrub(string $text, array $secrets): string
    {
        foreach ($secrets as $s) {
            if ($s !== '') {
                $text = str_replace($s, '***', $text);
            }
        }
        return $text;
    }

    /** The last few non-empty lines of a log, at most 500 bytes. */
    public static function lastLines(string $log): string
    {
        $lines = array_values(array_filter(array_map('trim', explode("\n", $log)), 'strlen'));
        $tail = implode(' | ', array_slice($lines, -3));
        return strlen($tail) > 500 ? '…' . substr($tail, -500) : $tail;
    }
}
