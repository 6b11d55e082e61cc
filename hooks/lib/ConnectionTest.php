<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * Test Connection (System Settings > Servers): server.test checks the
 * address, TLS (verified or pinned), the token, its privileges and a backup
 * storage; this turns its answer into one message that names the check
 * that failed, what to do, and the fingerprint to pin. WHMCS prints it raw:
 * it is escaped here.
 */
final class ConnectionTest
{
    /**
     * @param array<string, mixed> $params the server's parameters
     * @return array{success: bool, error: string}
     */
    public static function run(array $params): array
    {
        try {
            $answer = Rpc::call('server.test', [
                'actor' => ['type' => 'system', 'id' => 0],
                'server' => ServerFields::fromParams($params),
            ]);
        } catch (\Throwable $e) {
            return ['success' => false, 'error' => Http::escape(self::reason($e))];
        }
        if (!empty($answer['ok'])) {
            return ['success' => true, 'error' => ''];
        }
        return ['success' => false, 'error' => implode('<br>', array_map([Http::class, 'escape'], self::explain($answer, $params)))];
    }

    /**
     * The failed checks in words, one line each (checks skipped because an
     * earlier one failed are left out), with the fingerprint to pin when TLS
     * was reached but is not trusted yet and the plugin did not say so.
     *
     * @param array<string, mixed> $answer the server.test answer
     * @param array<string, mixed> $params
     * @return list<string>
     */
    public static function explain(array $answer, array $params): array
    {
        $lines = [];
        foreach ((array) ($answer['checks'] ?? []) as $check) {
            $detail = is_array($check) ? (string) ($check['detail'] ?? '') : '';
            if (is_array($check) && empty($check['ok']) && stripos($detail, 'not checked') !== 0) {
                $lines[] = self::checkName((string) ($check['name'] ?? '')) . ': ' . ($detail !== '' ? $detail : 'failed');
            }
        }
        if ($lines === []) {
            $lines[] = 'The Proxmox server did not pass the test.';
        }
        $fingerprint = (string) ($answer['fingerprint'] ?? '');
        $pinned = trim((string) ($params['serveraccesshash'] ?? ''));
        if ($fingerprint !== '' && strcasecmp($fingerprint, $pinned) !== 0 && stripos(implode(' ', $lines), $fingerprint) === false) {
            $lines[] = 'The server\'s certificate fingerprint is ' . $fingerprint
                . '. If that is your Proxmox host\'s certificate (Proxmox UI: node > System > Certificates),'
                . ' paste it into Access Hash to pin it.';
        }
        return $lines;
    }

    /**
     * Why a call failed, for an admin: the plugin's message (it says what
     * is wrong and what to set) with the WHMCS field it names, or why the
     * plugin could not run.
     */
    public static function reason(\Throwable $e): string
    {
        if ($e instanceof \PvekeepRpcException) {
            $data = $e->getData();
            $field = (string) ($data['field'] ?? '');
            $where = isset(ServerFields::LABELS[$field]) ? ' Check the server\'s ' . ServerFields::LABELS[$field] . '.' : '';
            $detail = isset($data['detail']) && is_string($data['detail']) ? ' Proxmox said: ' . $data['detail'] : '';
            return rtrim($e->getMessage(), '.') . '.' . $detail . $where;
        }
        return AdminActions::message($e);
    }

    private static function checkName(string $name): string
    {
        $names = [
            'address' => 'Address',
            'tls' => 'TLS',
            'token' => 'API token',
            'privileges' => 'Privileges',
            'storage' => 'Backup storage',
        ];
        return $names[$name] ?? ucfirst($name);
    }
}
