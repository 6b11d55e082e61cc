<?php

/**
 * Times client page views' plugin calls from PHP, the way the module makes
 * them: every view is a new PHP request, so a new PvekeepClient per view.
 * `spawn` starts the binary per call (the default), `socket` connects to a
 * warm `pvekeep serve --listen` (one connection per view). Prints one JSON
 * line with the latencies in milliseconds. Used by `make bench` (internal/e2e).
 *
 *   php bench.php '{"mode":"spawn","n":200,"budget_s":60,"warmup":3,
 *                   "calls":[{"method":"backups.list","params":{…}}]}'
 *
 * A view's time is the sum of its calls. The run stops early once budget_s
 * seconds have gone by (a slow Proxmox must not keep `make bench` for an
 * hour); `n` in the output is how many views were timed.
 */

require dirname(__DIR__, 2) . '/lib/Client.php';

$cmd = json_decode($argv[1] ?? '', true);
$n = (int) ($cmd['n'] ?? 200);
$budget = (float) ($cmd['budget_s'] ?? 60);
$options = ['timeout' => 30];
if (($cmd['mode'] ?? 'spawn') === 'socket') {
    $options['socket'] = $cmd['socket'];
}
$calls = $cmd['calls'] ?? [];

$view = function () use ($options, $calls) {
    $client = PvekeepClient::fromEnvironment($options);
    $t0 = hrtime(true);
    foreach ($calls as $c) {
        $client->call($c['method'], $c['params']);
    }
    $ms = (hrtime(true) - $t0) / 1e6;
    $client->close();
    return $ms;
};

for ($i = 0; $i < (int) ($cmd['warmup'] ?? 0); $i++) {
    $view();
}
$times = [];
$start = hrtime(true);
for ($i = 0; $i < $n; $i++) {
    $times[] = $view();
    if ((hrtime(true) - $start) / 1e9 > $budget) {
        break;
    }
}
sort($times);
$pick = function ($q) use ($times) {
    return $times[min(count($times) - 1, (int) floor($q * count($times)))];
};
echo json_encode(['n' => count($times), 'p50_ms' => $pick(0.50), 'p99_ms' => $pick(0.99), 'max_ms' => end($times)]) . "\n";
