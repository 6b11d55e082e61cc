<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * The product's module settings (configoption1..24, all WHMCS has; their order is public:
 * append, never reorder) and the Loader dropdowns that fill four of them
 * from the product's Proxmox server (server.options). SimpleMode marks the
 * settings WHMCS shows before "Switch to Advanced Mode".
 */
final class ProductSettings
{
    /** Loader function (in pvekeep.php) => server.options kind. */
    public const LOADERS = [
        'pvekeep_LoadBackupStorages' => 'backup_storages',
        'pvekeep_LoadBridges' => 'bridges',
        'pvekeep_LoadDiskStorages' => 'disk_storages',
        'pvekeep_LoadTemplates' => 'templates',
    ];

    /** Settings that may stay empty ("not managed"): their lists offer that. */
    private const OPTIONAL = ['bridges', 'disk_storages', 'templates'];

    /** @return array<string, array<string, mixed>> */
    public static function options(): array
    {
        $text = function ($size, $description = '', $default = '', $simple = false) {
            $o = ['Type' => 'text', 'Size' => (string) $size, 'Description' => $description];
            if ($default !== '') {
                $o['Default'] = $default;
            }
            if ($simple) {
                $o['SimpleMode'] = true;
            }
            return $o;
        };
        return [
            'Backup Storage' => [
                'Type' => 'text', 'Size' => '25', 'Default' => 'backup', 'SimpleMode' => true,
                'Loader' => 'pvekeep_LoadBackupStorages',
                'Description' => 'Proxmox storage (content "backup") that holds the backups. The product\'s server:'
                    . ' Username = API token id (user@realm!name), Password = its secret,'
                    . ' Access Hash = the certificate fingerprint Test Connection shows.',
            ],
            'Backups' => $text(5, 'Backups quota (0 turns backups off)', '3', true),
            'Snapshots' => $text(5, 'Snapshots quota (0 turns snapshots off)', '3', true),
            'Snapshot Lifetime' => $text(5, 'Days before a snapshot expires: 1 to 10, or 0 = keep', '3', true),
            // configoption5..22: the VM package a restore puts back. Empty
            // means "not managed"; configurable options of the same name override.
            'CPU Cores' => $text(5, 'vCPUs', '', true),
            'RAM' => $text(5, 'GB', '', true),
            'System Disk' => $text(5, 'GB (grow only)', '', true),
            'Additional Disk' => $text(5, 'GB (0 = none)'),
            'System Disk Read Bandwidth' => $text(5, 'MB/s (0 = unlimited)'),
            'System Disk Write Bandwidth' => $text(5, 'MB/s (0 = unlimited)'),
            'System Disk Read IOPS' => $text(5, '0 = unlimited'),
            'System Disk Write IOPS' => $text(5, '0 = unlimited'),
            'Additional Disk Read Bandwidth' => $text(5, 'MB/s (0 = unlimited)'),
            'Additional Disk Write Bandwidth' => $text(5, 'MB/s (0 = unlimited)'),
            'Additional Disk Read IOPS' => $text(5, '0 = unlimited'),
            'Additional Disk Write IOPS' => $text(5, '0 = unlimited'),
            'Network Bandwidth' => $text(5, 'MB/s (0 = unlimited)'),
            'Network Bridge' => ['Loader' => 'pvekeep_LoadBridges'] + $text(10, 'Bridge of the VM\'s network card', 'vmbr0', true),
            'VLAN Tag' => $text(5, '0 = untagged'),
            'Network Model' => $text(10, '', 'virtio'),
            'Disk Storage' => ['Loader' => 'pvekeep_LoadDiskStorages'] + $text(15, 'Storage for a new additional disk', 'local-lvm', true),
            'Operating System' => ['Loader' => 'pvekeep_LoadTemplates'] + $text(6, 'Template VM a reinstall clones', '', true),
            'Snapshot RAM' => [
                'Type' => 'yesno',
                'Description' => 'A client\'s snapshot of a running VM may save its RAM (slower, uses disk space)',
            ],
            // configoption24: WHMCS has no 25th column, so what is left
            // shares one textarea (internal/plan/more.go reads it).
            'More Settings' => [
                'Type' => 'textarea', 'Rows' => '6', 'Cols' => '50',
                'Description' => 'One "key = value" per line, all optional: ipv4_gateway, ipv4_prefix (24),'
                    . ' dns_servers, searchdomain (for dedicated IPs; configurable options "IPv4 Gateway",'
                    . ' "IPv4 Prefix", "DNS Servers" override), node (auto), terminate_grace_days (7),'
                    . ' schedule_window (e.g. 01:00-05:00: the system picks each service\'s backup time),'
                    . ' schedule_retries (3). See the README.',
            ],
        ];
    }

    /**
     * One Loader's list (value => label) from the product's server. WHMCS
     * shows a thrown exception's message to the admin, so it says what to
     * fix.
     *
     * @param array<string, mixed> $params the server's parameters
     * @return array<string, string>
     * @throws \Exception
     */
    public static function load(string $loader, array $params): array
    {
        $kind = self::LOADERS[$loader] ?? '';
        try {
            $answer = Rpc::call('server.options', [
                'actor' => ['type' => 'system', 'id' => 0],
                'server' => ServerFields::fromParams($params),
                'kind' => $kind,
            ]);
        } catch (\Throwable $e) {
            throw new \Exception(Http::escape(
                'Could not read the list from the Proxmox server: ' . ConnectionTest::reason($e)
                . ' Run Test Connection on the product\'s server (System Settings > Servers), or type the value.'
            ));
        }
        $list = in_array($kind, self::OPTIONAL, true) ? ['' => '(not managed)'] : [];
        foreach ((array) ($answer['items'] ?? []) as $item) {
            if (is_array($item) && isset($item['value'])) {
                $list[(string) $item['value']] = (string) ($item['label'] ?? $item['value']);
            }
        }
        return $list;
    }
}
