<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * The Proxmox server object of the panel contract (DESIGN §3), from a WHMCS
 * server. WHMCS hands its fields to a module as $params['server…'] and to
 * the cron as tblservers rows (password still encrypted there); both are
 * mapped here, once.
 *
 * How an admin fills in the server (System Settings → Servers):
 *   Hostname or IP   the Proxmox host, no scheme, port or path
 *   Port             8006 (Override with Custom Port)
 *   Username         the API token id, user@realm!tokenname
 *   Password         the token's secret (a UUID)
 *   Access Hash      the certificate's SHA-256 fingerprint to pin
 *                    (Test Connection shows it); empty with "Secure"
 *                    ticked means a CA-signed certificate
 * A username without "!" is a user/password login instead of a token.
 */
final class ServerFields
{
    /** The fields a plugin error names, as the admin sees them. */
    public const LABELS = [
        'server.host' => 'Hostname / IP Address',
        'server.port' => 'Port',
        'server.token_id' => 'Username (the API token id, user@realm!tokenname)',
        'server.token_secret' => 'Password (the API token secret)',
        'server.username' => 'Username',
        'server.password' => 'Password',
        'server.fingerprint' => 'Access Hash (the certificate fingerprint)',
        'server.verify_tls' => 'Secure',
    ];

    /**
     * @param array<string, mixed> $params module parameters
     * @return array<string, mixed>
     */
    public static function fromParams(array $params): array
    {
        return self::fromRow([
            'id' => $params['serverid'] ?? 0,
            'hostname' => $params['serverhostname'] ?? '',
            'ipaddress' => $params['serverip'] ?? '',
            'port' => $params['serverport'] ?? 0,
            'username' => $params['serverusername'] ?? '',
            'password' => $params['serverpassword'] ?? '',
            'accesshash' => $params['serveraccesshash'] ?? '',
            'secure' => $params['serversecure'] ?? '',
        ]);
    }

    /**
     * @param array<string, mixed> $s a tblservers row, password decrypted
     * @return array<string, mixed>
     */
    public static function fromRow(array $s): array
    {
        $user = trim((string) ($s['username'] ?? ''));
        $secret = (string) ($s['password'] ?? '');
        $isToken = strpos($user, '!') !== false;
        $host = trim((string) ($s['hostname'] ?? ''));
        if ($host === '') {
            $host = trim((string) ($s['ipaddress'] ?? ''));
        }
        $fingerprint = trim((string) ($s['accesshash'] ?? ''));
        return [
            'id' => (int) ($s['id'] ?? 0),
            'host' => $host,
            'port' => (int) ($s['port'] ?? 0) ?: 8006,
            'token_id' => $isToken ? $user : '',
            'token_secret' => $isToken ? $secret : '',
            'username' => $isToken ? '' : $user,
            'password' => $isToken ? '' : $secret,
            // A pinned fingerprint replaces CA verification.
            'verify_tls' => !empty($s['secure']) && $s['secure'] !== 'off' && $fingerprint === '',
            'fingerprint' => $fingerprint,
        ];
    }
}
