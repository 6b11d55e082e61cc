<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * Calls the plugin: one client per request and configuration (a socket
 * connection is kept for the request's later calls), every call written to
 * WHMCS's module log by ModuleLog.
 */
final class Rpc
{
    /** @var array<string, \PvekeepClient> */
    private static $clients = [];

    /**
     * Who acts: the admin in the admin area; the client logged in to this
     * session in the client area (never $params['userid']: that is the
     * service's owner and proves nothing about who clicked); the system
     * everywhere else (the API, payment callbacks, the cron), where WHMCS
     * itself has decided the command may run.
     *
     * @return array{type: string, id: int}
     */
    public static function actor(): array
    {
        if (defined('ADMINAREA')) {
            return !empty($_SESSION['adminid'])
                ? ['type' => 'admin', 'id' => (int) $_SESSION['adminid']]
                : ['type' => 'system', 'id' => 0];
        }
        if (defined('CLIENTAREA')) {
            // Without a logged-in client the plugin refuses (actor id 0).
            return ['type' => 'client', 'id' => (int) ($_SESSION['uid'] ?? 0)];
        }
        return ['type' => 'system', 'id' => 0];
    }

    /**
     * Calls a method about one service, as whoever acts now (or $actor).
     *
     * @param array<string, mixed> $params module parameters
     * @param array<string, mixed> $fields the method's own fields
     * @param array{type: string, id: int}|null $actor
     * @return array<mixed>
     */
    public static function service(string $method, array $params, array $fields = [], ?array $actor = null): array
    {
        return self::call($method, array_merge([
            'service_id' => (int) ($params['serviceid'] ?? 0),
            'actor' => $actor ?? self::actor(),
            'server' => ServerFields::fromParams($params),
        ], $fields));
    }

    /**
     * Calls one method and logs it.
     *
     * @param array<string, mixed> $request
     * @return array<mixed>
     * @throws \PvekeepException
     */
    public static function call(string $method, array $request, ?\PvekeepClient $client = null): array
    {
        try {
            $client = $client ?? self::client();
            $result = $client->call($method, $request);
        } catch (\PvekeepException $e) {
            ModuleLog::failure($method, $request, $e, $client !== null ? $client->lastStderr() : '');
            throw $e;
        }
        ModuleLog::call($method, $request, $result);
        return $result;
    }

    /**
     * The client for this request: the socket of config.php or
     * PVEKEEP_SOCKET when set, else the binary spawned per call, reading
     * WHMCS's own database (PHP-FPM clears the environment, so
     * PVEKEEP_DSN cannot be relied on there; it still wins when set).
     *
     * @throws \PvekeepTransportException when the binary cannot run
     */
    public static function client(?float $timeout = null): \PvekeepClient
    {
        $settings = Binary::settings();
        $config = [
            'socket' => $settings['socket'] ?? '',
            'config' => $settings['config'] ?? '',
            'timeout' => $timeout,
            'binary' => Binary::path(),
        ];
        if (!getenv('PVEKEEP_DSN')) {
            $config['dsn'] = Panel::dsn(Panel::database());
        }
        $key = md5(serialize($config) . '|' . getenv('PVEKEEP_SOCKET') . '|' . getenv('PVEKEEP_MODE'));
        if (!isset(self::$clients[$key])) {
            $client = \PvekeepClient::fromEnvironment($config);
            if (!$client->usesSocket()) {
                $problem = Binary::problem($config['binary']);
                if ($problem !== '') {
                    throw new \PvekeepTransportException($problem);
                }
            }
            self::$clients[$key] = $client;
        }
        return self::$clients[$key];
    }
}
