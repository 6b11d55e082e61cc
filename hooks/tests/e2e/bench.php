<?php

/**
 * Times backups.list round trips from PHP, the way the module makes them:
 * `spawn` starts the binary per call (the default), `socket` reuses one
 * connection to a warm `pvekeep serve --listen`. Prints one JSON line with
 * the latencies in milliseconds. Used by `make bench` (internal/e2e).
 *
 *   php bench.php '{"mode":"spawn","n":200,"params":{…backups.list params…}}'
 */

require dirname(__DIR__, 2) . '/lib/Client.php';

$cmd = json_decode($argv[1] ?? '', true);
$n = (int) ($cmd['n'] ?? 200);
$options = ['timeout' => 30];
if (($cmd['mode'] ?? 'spawn') === 'socket') {
    $options['socket'] = $cmd['socket'];
}
$client = PvekeepClient::fromEnvironment($options);
$times = [];
for ($i = 0; $i < $n; $i++) {
    $t0 = hrtime(true);
    $client->call('backups.list', $cmd['params']);
    $times[] = (hrtime(true) - $t0) / 1e6;
}
sort($times);
$pick = function ($q) use ($times) {
    return $times[min(count($times) - 1, (int) floor($q * count($times)))];
};
echo json_encode(['n' => $n, 'p50_ms' => $pick(0.50), 'p99_ms' => $pick(0.99), 'max_ms' => end($times)]) . "\n";
