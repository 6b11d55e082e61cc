<?php

/**
 * JSON-RPC 2.0 client for the pvekeep plugin: one JSON object per line each
 * way (DESIGN §1, §8).
 *
 * Two modes:
 *  - "spawn" (default): every call proc_open()s `<binary> serve`, writes the
 *    request line, closes stdin and reads the answer line, draining stderr at
 *    the same time so a chatty plugin never blocks. On timeout the child is
 *    killed (SIGKILL; the plugin's jobs are durable, so that is safe).
 *  - "socket": talks to `pvekeep serve --listen unix:/path`; the connection
 *    is kept and reused for the following calls of this client.
 *
 * Errors: an error answer becomes PvekeepRpcException (code, message, data,
 * reason); everything else that goes wrong becomes PvekeepTransportException
 * with the plugin's stderr attached. Neither ever includes the request.
 */
final class PvekeepClient
{
    public const MODE_SPAWN = 'spawn';
    public const MODE_SOCKET = 'socket';

    /** Default seconds a call may take, spawn included. */
    public const DEFAULT_TIMEOUT = 30.0;

    /** Longest answer line accepted, in bytes. */
    private const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

    /** How much of the plugin's stderr is kept (the tail), in bytes. */
    private const STDERR_KEEP_BYTES = 64 * 1024;

    /** Seconds to wait for the child to exit after it has answered. */
    private const EXIT_GRACE = 2.0;

    /** @var string */
    private $mode;
    /** @var string */
    private $binary;
    /** @var list<string> */
    private $args;
    /** @var string */
    private $socket;
    /** @var float */
    private $timeout;
    /** @var float */
    private $connectTimeout;
    /** @var array<string, string> */
    private $env;

    /** @var int */
    private $nextId = 1;
    /** @var resource|null */
    private $conn = null;
    /** @var string */
    private $connBuffer = '';
    /** @var string */
    private $lastStderr = '';
    /** @var int|null */
    private $lastExitCode = null;

    /**
     * Options:
     *  - mode: "spawn" (default) or "socket"
     *  - binary: path of the pvekeep binary (spawn; default ../bin/pvekeep next to lib/)
     *  - args: arguments after the binary (spawn; default ["serve"])
     *  - socket: unix socket path, "/path" or "unix:/path" (socket mode)
     *  - timeout: seconds per call, default 30
     *  - connect_timeout: seconds to connect the socket, default min(timeout, 5)
     *  - dsn, config: PVEKEEP_DSN / PVEKEEP_CONFIG for the spawned plugin
     *  - env: more environment variables for the spawned plugin (name => value)
     *
     * The spawned plugin gets a small environment, not the web server's:
     * PATH, LANG, TZ, HOME when set, PVEKEEP_DSN, PVEKEEP_CONFIG, plus env.
     *
     * @param array<string, mixed> $options
     */
    public function __construct(array $options = [])
    {
        $mode = (string) ($options['mode'] ?? '');
        $socket = self::socketPath((string) ($options['socket'] ?? ''));
        if ($mode === '') {
            $mode = $socket !== '' ? self::MODE_SOCKET : self::MODE_SPAWN;
        }
        if ($mode !== self::MODE_SPAWN && $mode !== self::MODE_SOCKET) {
            throw new \InvalidArgumentException('pvekeep: mode must be "spawn" or "socket", not "' . $mode . '"');
        }
        if ($mode === self::MODE_SOCKET && $socket === '') {
            throw new \InvalidArgumentException('pvekeep: socket mode needs a socket path');
        }
        $timeout = (float) ($options['timeout'] ?? self::DEFAULT_TIMEOUT);
        if ($timeout <= 0) {
            $timeout = self::DEFAULT_TIMEOUT;
        }
        $this->mode = $mode;
        $this->binary = (string) ($options['binary'] ?? '') ?: dirname(__DIR__) . '/bin/pvekeep';
        $this->args = array_values(array_map('strval', $options['args'] ?? ['serve']));
        $this->socket = $socket;
        $this->timeout = $timeout;
        $this->connectTimeout = (float) ($options['connect_timeout'] ?? min($timeout, 5.0));

        $env = [];
        // PVEKEEP_TEST_CRASH_AFTER_STEP: only the kill tests set it (the
        // plugin kills itself after that step); unset, it is not passed.
        foreach (['PATH', 'LANG', 'TZ', 'HOME', 'PVEKEEP_TEST_CRASH_AFTER_STEP'] as $name) {
            $value = getenv($name);
            if (is_string($value) && $value !== '') {
                $env[$name] = $value;
            }
        }
        $env['PATH'] = $env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin';
        foreach (['dsn' => 'PVEKEEP_DSN', 'config' => 'PVEKEEP_CONFIG'] as $key => $name) {
            $value = isset($options[$key]) ? (string) $options[$key] : (string) getenv($name);
            if ($value !== '') {
                $env[$name] = $value;
            }
        }
        foreach ((array) ($options['env'] ?? []) as $name => $value) {
            $env[(string) $name] = (string) $value;
        }
        $this->env = $env;
    }

    /**
     * A client configured from the environment, overridden by $config (for
     * example values from WHMCS's configuration.php):
     *
     *   PVEKEEP_MODE            mode      "spawn" | "socket"
     *   PVEKEEP_BINARY (or PVEKEEP_BIN)   binary
     *   PVEKEEP_SOCKET          socket    "/run/pvekeep.sock" or "unix:/run/pvekeep.sock"
     *   PVEKEEP_TIMEOUT         timeout   seconds
     *   PVEKEEP_DSN             dsn       passed on to the spawned plugin
     *   PVEKEEP_CONFIG          config    passed on to the spawned plugin
     *
     * @param array<string, mixed> $config
     */
    public static function fromEnvironment(array $config = []): self
    {
        $fromEnv = [
            'mode' => getenv('PVEKEEP_MODE'),
            'binary' => getenv('PVEKEEP_BINARY') ?: getenv('PVEKEEP_BIN'),
            'socket' => getenv('PVEKEEP_SOCKET'),
            'timeout' => getenv('PVEKEEP_TIMEOUT'),
        ];
        $options = [];
        foreach ($fromEnv as $key => $value) {
            if (is_string($value) && $value !== '') {
                $options[$key] = $value;
            }
        }
        foreach ($config as $key => $value) {
            if ($value !== null && $value !== '') {
                $options[$key] = $value;
            }
        }
        return new self($options);
    }

    /**
     * Calls one method and returns its result (an object, as an array; a
     * null result is []).
     *
     * @param array<string, mixed> $params sent as a JSON object
     * @return array<mixed>
     * @throws PvekeepRpcException       the plugin answered with an error
     * @throws PvekeepTransportException the plugin could not be asked or did not answer properly
     */
    public function call(string $method, array $params = []): array
    {
        // A list would go out as a JSON array (array_is_list is PHP 8.1+).
        if ($params !== [] && array_keys($params) === range(0, count($params) - 1)) {
            throw new \InvalidArgumentException('pvekeep: params of ' . $method . ' must be an object (string keys)');
        }
        $id = $this->nextId++;
        $line = json_encode(
            [
                'jsonrpc' => '2.0',
                'id' => $id,
                'method' => $method,
                'params' => $params === [] ? new \stdClass() : $params,
            ],
            JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE
                | JSON_PRESERVE_ZERO_FRACTION | JSON_INVALID_UTF8_SUBSTITUTE
        ) . "\n";

        $this->lastStderr = '';
        $this->lastExitCode = null;
        $answer = $this->mode === self::MODE_SOCKET ? $this->exchangeSocket($line) : $this->exchangeSpawn($line);
        return $this->decode($answer, $id, $method);
    }

    /** Whether calls go to a socket (no binary is spawned). */
    public function usesSocket(): bool
    {
        return $this->mode === self::MODE_SOCKET;
    }

    /** The tail of the plugin's stderr from the last spawned call. */
    public function lastStderr(): string
    {
        return $this->lastStderr;
    }

    /** The exit code of the last spawned plugin, null if unknown or killed. */
    public function lastExitCode(): ?int
    {
        return $this->lastExitCode;
    }

    /** Closes the socket connection, if any. */
    public function close(): void
    {
        if (is_resource($this->conn)) {
            fclose($this->conn);
        }
        $this->conn = null;
        $this->connBuffer = '';
    }

    public function __destruct()
    {
        $this->close();
    }

    /**
     * @return array<mixed>
     */
    private function decode(string $answer, int $id, string $method): array
    {
        try {
            $msg = json_decode($answer, true, 512, JSON_THROW_ON_ERROR | JSON_BIGINT_AS_STRING);
        } catch (\JsonException $e) {
            throw new PvekeepTransportException(
                'pvekeep: ' . $method . ': answer is not JSON: ' . self::preview($answer),
                $this->lastStderr,
                $this->lastExitCode,
                $e
            );
        }
        if (
            !is_array($msg) || ($msg['jsonrpc'] ?? null) !== '2.0'
            || (array_key_exists('result', $msg) === array_key_exists('error', $msg))
        ) {
            throw new PvekeepTransportException(
                'pvekeep: ' . $method . ': answer is not a JSON-RPC 2.0 response: ' . self::preview($answer),
                $this->lastStderr,
                $this->lastExitCode
            );
        }
        // An error with id null is the plugin refusing our line itself
        // (-32700/-32600): still that request's answer, so the stream is in step.
        $refused = ($msg['id'] ?? null) === null && array_key_exists('error', $msg);
        if (!$refused && ($msg['id'] ?? null) !== $id) {
            $this->close(); // the stream is out of step; never read another call's answer
            throw new PvekeepTransportException(
                'pvekeep: ' . $method . ': answer id ' . json_encode($msg['id'] ?? null)
                    . ' does not match request id ' . $id,
                $this->lastStderr,
                $this->lastExitCode
            );
        }
        if (array_key_exists('error', $msg)) {
            $err = $msg['error'];
            if (!is_array($err) || !is_int($err['code'] ?? null) || !is_string($err['message'] ?? null)) {
                throw new PvekeepTransportException(
                    'pvekeep: ' . $method . ': malformed error object: ' . self::preview($answer),
                    $this->lastStderr,
                    $this->lastExitCode
                );
            }
            throw new PvekeepRpcException($err['message'], $err['code'], $err['data'] ?? null, $method);
        }
        $result = $msg['result'];
        if ($result === null) {
            return [];
        }
        if (!is_array($result)) {
            throw new PvekeepTransportException(
                'pvekeep: ' . $method . ': result is not an object: ' . self::preview($answer),
                $this->lastStderr,
                $this->lastExitCode
            );
        }
        return $result;
    }

    /**
     * Runs the plugin once: request on stdin, answer on stdout, stderr
     * drained concurrently, everything under one deadline.
     */
    private function exchangeSpawn(string $line): string
    {
        if (!is_file($this->binary) || !is_executable($this->binary)) {
            throw new PvekeepTransportException('pvekeep: binary ' . $this->binary . ' is missing or not executable');
        }
        $deadline = microtime(true) + $this->timeout;
        $spec = [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']];
        $pipes = [];
        $proc = @proc_open(array_merge([$this->binary], $this->args), $spec, $pipes, null, $this->env);
        if (!is_resource($proc)) {
            $why = error_get_last()['message'] ?? 'unknown error';
            throw new PvekeepTransportException('pvekeep: cannot start ' . $this->binary . ': ' . $why);
        }
        [$stdin, $stdout, $stderr] = [$pipes[0], $pipes[1], $pipes[2]];
        foreach ($pipes as $p) {
            stream_set_blocking($p, false);
        }

        $pending = $line;
        $out = '';
        $answer = null;
        $answerAt = 0.0;
        $outOpen = true;
        $errOpen = true;
        $stdinOpen = true;
        $timedOut = false;
        while ($answer === null ? ($outOpen || $errOpen) : $errOpen) {
            $now = microtime(true);
            $until = $answer === null ? $deadline : min($deadline, $answerAt + self::EXIT_GRACE);
            if ($now >= $until) {
                $timedOut = $answer === null;
                break;
            }
            $read = [];
            if ($answer === null && $outOpen) {
                $read[] = $stdout;
            }
            if ($errOpen) {
                $read[] = $stderr;
            }
            $write = $stdinOpen && $pending !== '' ? [$stdin] : [];
            $except = null;
            if ($read === [] && $write === []) {
                break;
            }
            [$sec, $usec] = self::splitSeconds($until - $now);
            $n = @stream_select($read, $write, $except, $sec, $usec);
            if ($n === false) {
                continue; // interrupted by a signal; the deadline still holds
            }
            if ($write !== []) {
                $written = @fwrite($stdin, $pending);
                if ($written === false) {
                    $pending = ''; // the child stopped reading; its answer (or exit) tells why
                } else {
                    $pending = (string) substr($pending, $written);
                }
                if ($pending === '') {
                    fclose($stdin);
                    $stdinOpen = false;
                }
            }
            foreach ($read as $r) {
                $chunk = fread($r, 65536);
                $chunk = is_string($chunk) ? $chunk : '';
                if ($r === $stdout) {
                    $out .= $chunk;
                    $nl = strpos($out, "\n");
                    if ($nl !== false) {
                        $answer = substr($out, 0, $nl);
                        $answerAt = microtime(true);
                    } elseif (strlen($out) > self::MAX_ANSWER_BYTES) {
                        $this->kill($proc, $pipes);
                        throw new PvekeepTransportException(
                            'pvekeep: answer longer than ' . self::MAX_ANSWER_BYTES . ' bytes',
                            $this->lastStderr
                        );
                    }
                    if ($chunk === '' && feof($r)) {
                        $outOpen = false;
                    }
                } else {
                    $this->appendStderr($chunk);
                    if ($chunk === '' && feof($r)) {
                        $errOpen = false;
                    }
                }
            }
        }

        if ($timedOut) {
            $this->kill($proc, $pipes);
            throw new PvekeepTransportException(
                sprintf('pvekeep: no answer within %.1f s; the plugin was killed', $this->timeout),
                $this->lastStderr
            );
        }
        if ($stdinOpen) {
            fclose($stdin);
        }
        fclose($stdout);
        fclose($stderr);
        $this->lastExitCode = $this->waitExit($proc, $answer === null ? $deadline : microtime(true) + self::EXIT_GRACE);

        if ($answer === null) {
            if (trim($out) !== '') {
                $answer = $out; // a last line without "\n"
            } else {
                throw new PvekeepTransportException(
                    'pvekeep: the plugin exited'
                        . ($this->lastExitCode === null ? '' : ' with code ' . $this->lastExitCode)
                        . ' without answering',
                    $this->lastStderr,
                    $this->lastExitCode
                );
            }
        }
        return $answer;
    }

    /**
     * Waits until the child exits; kills it at the deadline.
     *
     * @param resource $proc
     */
    private function waitExit($proc, float $deadline): ?int
    {
        // The child exits right after its answer: look again soon, then
        // back off, so a page view does not sleep a fixed 2 ms on it.
        $pause = 100;
        while (true) {
            $status = proc_get_status($proc);
            if (!$status['running']) {
                proc_close($proc);
                if ($status['signaled']) {
                    return 128 + (int) $status['termsig'];
                }
                return $status['exitcode'] >= 0 ? (int) $status['exitcode'] : null;
            }
            if (microtime(true) >= $deadline) {
                proc_terminate($proc, 9);
                proc_close($proc);
                return null;
            }
            usleep($pause);
            $pause = min(2000, $pause * 2);
        }
    }

    /**
     * @param resource $proc
     * @param array<int, resource> $pipes
     */
    private function kill($proc, array $pipes): void
    {
        proc_terminate($proc, 9);
        foreach ($pipes as $p) {
            if (is_resource($p)) {
                fclose($p);
            }
        }
        proc_close($proc);
    }

    private function appendStderr(string $chunk): void
    {
        $this->lastStderr .= $chunk;
        if (strlen($this->lastStderr) > 2 * self::STDERR_KEEP_BYTES) {
            $this->lastStderr = substr($this->lastStderr, -self::STDERR_KEEP_BYTES);
        }
    }

    /**
     * One request/answer on the kept socket connection. A kept connection
     * the server closes before answering was closed while idle (a restart,
     * or the close raced our request): `pvekeep serve` answers every
     * request it has read before it closes, so the request was never
     * processed and is sent once more on a fresh connection.
     */
    private function exchangeSocket(string $line): string
    {
        $reused = is_resource($this->conn);
        $answer = $this->exchangeSocketOnce($line);
        if ($answer === null && $reused) {
            $answer = $this->exchangeSocketOnce($line);
        }
        if ($answer === null) {
            throw new PvekeepTransportException('pvekeep: ' . $this->socket . ' closed the connection without answering');
        }
        return $answer;
    }

    /**
     * @return string|null the answer line, or null when the server closed
     *                     the connection before a single byte of answer
     */
    private function exchangeSocketOnce(string $line): ?string
    {
        $deadline = microtime(true) + $this->timeout;
        $conn = $this->connection();
        try {
            $pending = $line;
            while ($pending !== '') {
                $this->waitFor($conn, false, $deadline);
                $written = @fwrite($conn, $pending);
                if ($written === false) {
                    throw new PvekeepTransportException('pvekeep: writing to ' . $this->socket . ' failed');
                }
                $pending = (string) substr($pending, $written);
            }
            while (($nl = strpos($this->connBuffer, "\n")) === false) {
                if (strlen($this->connBuffer) > self::MAX_ANSWER_BYTES) {
                    throw new PvekeepTransportException(
                        'pvekeep: answer longer than ' . self::MAX_ANSWER_BYTES . ' bytes'
                    );
                }
                $this->waitFor($conn, true, $deadline);
                $chunk = fread($conn, 65536);
                if ($chunk === false || ($chunk === '' && feof($conn))) {
                    if ($this->connBuffer === '') {
                        $this->close();
                        return null;
                    }
                    throw new PvekeepTransportException(
                        'pvekeep: ' . $this->socket . ' closed the connection in the middle of an answer'
                    );
                }
                $this->connBuffer .= $chunk;
            }
        } catch (PvekeepTransportException $e) {
            $this->close(); // a late answer must never be read as the next call's
            throw $e;
        }
        $answer = substr($this->connBuffer, 0, $nl);
        $this->connBuffer = (string) substr($this->connBuffer, $nl + 1);
        return $answer;
    }

    /**
     * The kept connection, or a new one when there is none or the server
     * closed it meanwhile (a restart).
     *
     * @return resource
     */
    private function connection()
    {
        if (is_resource($this->conn)) {
            $read = [$this->conn];
            $write = null;
            $except = null;
            // Between calls nothing may arrive: readable means EOF or junk.
            if (@stream_select($read, $write, $except, 0, 0) === 0 && $this->connBuffer === '') {
                return $this->conn;
            }
            $this->close();
        }
        $errno = 0;
        $errstr = '';
        $conn = @stream_socket_client('unix://' . $this->socket, $errno, $errstr, $this->connectTimeout);
        if ($conn === false) {
            throw new PvekeepTransportException(
                'pvekeep: cannot connect to ' . $this->socket . ': ' . $errstr . ' (' . $errno . ')'
            );
        }
        stream_set_blocking($conn, false);
        $this->conn = $conn;
        $this->connBuffer = '';
        return $conn;
    }

    /**
     * @param resource $conn
     */
    private function waitFor($conn, bool $forRead, float $deadline): void
    {
        while (true) {
            $left = $deadline - microtime(true);
            if ($left <= 0) {
                throw new PvekeepTransportException(
                    sprintf('pvekeep: no answer from %s within %.1f s', $this->socket, $this->timeout)
                );
            }
            $read = $forRead ? [$conn] : null;
            $write = $forRead ? null : [$conn];
            $except = null;
            [$sec, $usec] = self::splitSeconds($left);
            $n = @stream_select($read, $write, $except, $sec, $usec);
            if ($n > 0) {
                return;
            }
        }
    }

    private static function socketPath(string $socket): string
    {
        foreach (['unix://', 'unix:'] as $prefix) {
            if (strncmp($socket, $prefix, strlen($prefix)) === 0) {
                return substr($socket, strlen($prefix));
            }
        }
        return $socket;
    }

    /**
     * @return array{0: int, 1: int}
     */
    private static function splitSeconds(float $seconds): array
    {
        $seconds = max(0.0, $seconds);
        $sec = (int) floor($seconds);
        return [$sec, (int) (($seconds - $sec) * 1e6)];
    }

    private static function preview(string $answer): string
    {
        $answer = preg_replace('/[^\x20-\x7e]/', '?', $answer) ?? '';
        return strlen($answer) > 200 ? substr($answer, 0, 200) . '…' : $answer;
    }
}
