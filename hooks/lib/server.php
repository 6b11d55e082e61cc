<?php

/**
 * The Proxmox server object of the panel contract (DESIGN §3), from a
 * WHMCS server as tblservers stores it. WHMCS hands the same fields to a
 * module as $params['server…'] and to the cron as a table row; both are
 * mapped here, once.
 *
 * A username holding "!" is an API token id and the password its secret;
 * otherwise it is a user/password login. The access hash holds the TLS
 * fingerprint that pins a self-signed certificate (and replaces CA
 * verification); without one, "secure" asks for CA verification.
 *
 * @param array{id?:mixed,hostname?:mixed,ipaddress?:mixed,port?:mixed,username?:mixed,password?:mixed,accesshash?:mixed,secure?:mixed} $s
 */
function pvekeep_server_object(array $s): array
{
    $user = (string) ($s['username'] ?? '');
    $secret = (string) ($s['password'] ?? '');
    $isToken = strpos($user, '!') !== false;
    $host = (string) ($s['hostname'] ?? '');
    if ($host === '') {
        $host = (string) ($s['ipaddress'] ?? '');
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
        'verify_tls' => !empty($s['secure']) && $fingerprint === '',
        'fingerprint' => $fingerprint,
    ];
}
