<?php

declare(strict_types=1);

use PHPUnit\Framework\TestCase;

require_once __DIR__ . '/../lib/Client.php';

/**
 * PvekeepClient against fake plugins: tests/fixtures/fake_plugin.php
 * spawned per call, and tests/fixtures/fake_socket_server.php on a unix
 * socket. Run: phpunit hooks/tests/PvekeepClientTest.php
 */
final class PvekeepClientTest extends TestCase
{
    /** @var resource|null */
    private static $socketServer = null;
    private static string $socketDir = '';
    private static string $socketPath = '';

    public static function setUpBeforeClass(): void
    {
        self::$socketDir = sys_get_temp_dir() . '/pvkphp' . bin2hex(random_bytes(4));
        mkdir(self::$socketDir, 0700);
        self::$socketPath = self::$socketDir . '/s.sock';
        $spec = [0 => ['pipe', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']];
        $proc = proc_open([PHP_BINARY, __DIR__ . '/fixtures/fake_socket_server.php', self::$socketPath], $spec, $pipes);
        self::assertIsResource($proc);
        self::$socketServer = $proc;
        $deadline = microtime(true) + 10;
        while (!file_exists(self::$socketPath)) {
            if (microtime(true) > $deadline) {
                self::fail('fake socket server did not come up');
            }
            usleep(10000);
        }
    }

    public static function tearDownAfterClass(): void
    {
        if (is_resource(self::$socketServer)) {
            proc_terminate(self::$socketServer, 9);
            proc_close(self::$socketServer);
        }
        @unlink(self::$socketPath);
        @rmdir(self::$socketDir);
    }

    /**
     * @param array<string, mixed> $options
     */
    private function spawnClient(array $options = []): PvekeepClient
    {
        return new PvekeepClient($options + [
            'mode' => 'spawn',
            'binary' => PHP_BINARY,
            'args' => [__DIR__ . '/fixtures/fake_plugin.php', 'serve'],
            'timeout' => 10,
        ]);
    }

    /**
     * @param array<string, mixed> $options
     */
    private function socketClient(array $options = []): PvekeepClient
    {
        return new PvekeepClient($options + ['socket' => 'unix:' . self::$socketPath, 'timeout' => 10]);
    }

    /**
     * @return array<string, array{0: string}>
     */
    public function modes(): array
    {
        return ['spawned per call' => ['spawn'], 'unix socket' => ['socket']];
    }

    private function client(string $mode): PvekeepClient
    {
        return $mode === 'spawn' ? $this->spawnClient() : $this->socketClient();
    }

    /** @dataProvider modes */
    public function testResultIsReturnedAsArray(string $mode): void
    {
        $params = ['service_id' => 42, 'note' => "ünïcode \"quoted\"\nnewline", 'nested' => ['a' => [1, 2]]];
        $this->assertSame($params, $this->client($mode)->call('echo', $params));
    }

    /** @dataProvider modes */
    public function testEmptyParamsAreSentAsObject(string $mode): void
    {
        $this->assertSame([], $this->client($mode)->call('echo', []));
    }

    /** @dataProvider modes */
    public function testApplicationErrorBecomesRpcExceptionWithCodeDataAndReason(string $mode): void
    {
        try {
            $this->client($mode)->call('fail', ['service_id' => 1]);
            $this->fail('no exception');
        } catch (PvekeepRpcException $e) {
            $this->assertSame(1003, $e->getCode());
            $this->assertSame('the VM is busy (backup)', $e->getMessage());
            $this->assertSame(['reason' => 'locked', 'lock' => 'backup', 'job_id' => 7], $e->getData());
            $this->assertSame('locked', $e->getReason());
            $this->assertSame('fail', $e->getMethod());
        }
    }

    /** @dataProvider modes */
    public function testUnknownMethodBecomesRpcExceptionWithoutReason(string $mode): void
    {
        try {
            $this->client($mode)->call('nope', []);
            $this->fail('no exception');
        } catch (PvekeepRpcException $e) {
            $this->assertSame(-32601, $e->getCode());
            $this->assertSame('', $e->getReason());
            $this->assertSame([], $e->getData());
        }
    }

    /** @dataProvider modes */
    public function testRefusalWithNullIdBecomesRpcException(string $mode): void
    {
        $client = $this->client($mode);
        try {
            $client->call('refuse', []);
            $this->fail('no exception');
        } catch (PvekeepRpcException $e) {
            $this->assertSame(-32600, $e->getCode());
        }
        $this->assertSame(['next' => 1], $client->call('echo', ['next' => 1]));
    }

    /**
     * @return array<string, array{0: string, 1: string, 2: string}>
     */
    public function badAnswers(): array
    {
        $cases = [];
        foreach (['spawn', 'socket'] as $mode) {
            $cases["garbage line ($mode)"] = [$mode, 'garbage', 'not JSON'];
            $cases["JSON that is not JSON-RPC ($mode)"] = [$mode, 'notrpc', 'not a JSON-RPC 2.0 response'];
            $cases["answer to another id ($mode)"] = [$mode, 'wrongid', 'does not match request id'];
            $cases["scalar result ($mode)"] = [$mode, 'scalar', 'result is not an object'];
        }
        return $cases;
    }

    /** @dataProvider badAnswers */
    public function testBadAnswerBecomesTransportException(string $mode, string $method, string $want): void
    {
        $client = $this->client($mode);
        try {
            $client->call($method, ['token_secret' => 'S3CRET-never-shown']);
            $this->fail('no exception');
        } catch (PvekeepTransportException $e) {
            $this->assertStringContainsString($want, $e->getMessage());
            $this->assertStringNotContainsString('S3CRET', $e->getMessage() . $e->getStderr());
        }
        // The client stays usable (socket mode reconnects after a desync).
        $this->assertSame(['again' => true], $client->call('echo', ['again' => true]));
    }

    public function testSpawnTimeoutKillsTheChild(): void
    {
        $client = $this->spawnClient(['timeout' => 1.0]);
        $start = microtime(true);
        try {
            $client->call('sleep', []);
            $this->fail('no exception');
        } catch (PvekeepTransportException $e) {
            $this->assertStringContainsString('killed', $e->getMessage());
            $this->assertMatchesRegularExpression('/pid=(\d+)/', $e->getStderr());
            preg_match('/pid=(\d+)/', $e->getStderr(), $m);
            $this->assertFileDoesNotExist('/proc/' . $m[1], 'the timed-out child still runs');
        }
        $this->assertLessThan(8.0, microtime(true) - $start, 'the call outlived its timeout by far');
    }

    public function testSocketTimeoutDropsTheConnection(): void
    {
        $client = $this->socketClient(['timeout' => 0.5]);
        $first = $client->call('conn', []);
        try {
            $client->call('hang', []);
            $this->fail('no exception');
        } catch (PvekeepTransportException $e) {
            $this->assertStringContainsString('no answer', $e->getMessage());
        }
        $after = $client->call('conn', []);
        $this->assertNotSame($first['conn'], $after['conn'], 'a timed-out connection was reused');
    }

    public function testChattyStderrDoesNotBlockTheAnswer(): void
    {
        $client = $this->spawnClient();
        $this->assertSame(['chatty' => true], $client->call('chatty', []));
        $this->assertGreaterThanOrEqual(64 * 1024, strlen($client->lastStderr()));
        $this->assertStringEndsWith("END-OF-CHATTER\n", $client->lastStderr());
        $this->assertSame(0, $client->lastExitCode());
    }

    public function testExitWithoutAnswerReportsExitCodeAndStderr(): void
    {
        try {
            $this->spawnClient()->call('crash', ['password' => 'S3CRET-never-shown']);
            $this->fail('no exception');
        } catch (PvekeepTransportException $e) {
            $this->assertSame(3, $e->getExitCode());
            $this->assertStringContainsString('code 3', $e->getMessage());
            $this->assertStringContainsString('panic: boom', $e->getStderr());
            $this->assertStringNotContainsString('S3CRET', $e->getMessage() . $e->getStderr());
        }
    }

    public function testMissingBinaryIsTransportException(): void
    {
        $this->expectException(PvekeepTransportException::class);
        $this->expectExceptionMessage('missing or not executable');
        (new PvekeepClient(['binary' => '/nonexistent/pvekeep']))->call('echo', []);
    }

    public function testSpawnPassesDsnAndConfigButNotTheWholeEnvironment(): void
    {
        putenv('PVEKEEP_TEST_NOT_PASSED=leaked');
        try {
            $got = $this->spawnClient(['dsn' => 'u:p@unix(/run/mysqld/mysqld.sock)/whmcs', 'config' => '/etc/pvekeep.toml'])
                ->call('env', []);
        } finally {
            putenv('PVEKEEP_TEST_NOT_PASSED');
        }
        $this->assertSame('u:p@unix(/run/mysqld/mysqld.sock)/whmcs', $got['dsn']);
        $this->assertSame('/etc/pvekeep.toml', $got['config']);
        $this->assertFalse($got['leak']);
        $this->assertSame(['serve'], $got['argv']);
    }

    public function testSocketConnectionIsReusedAcrossCalls(): void
    {
        $client = $this->socketClient();
        $a = $client->call('conn', []);
        $b = $client->call('conn', []);
        $this->assertSame($a['conn'], $b['conn']);
        $this->assertSame($a['calls'] + 1, $b['calls']);
    }

    public function testSocketReconnectsAfterServerClosedTheConnection(): void
    {
        $client = $this->socketClient();
        $a = $client->call('conn', []);
        $this->assertSame(['bye' => true], $client->call('bye', []));
        $b = $client->call('conn', []);
        $this->assertNotSame($a['conn'], $b['conn']);
    }

    public function testSocketThatNeverAnswersIsATransportErrorAndTheClientRecovers(): void
    {
        $client = $this->socketClient();
        $client->call('conn', []);
        try {
            $client->call('drop', []); // kept connection: one resend, then give up
            $this->fail('a server that closes without answering must be a transport error');
        } catch (PvekeepTransportException $e) {
            $this->assertStringContainsString('closed the connection without answering', $e->getMessage());
        }
        $this->assertArrayHasKey('conn', $client->call('conn', []));
    }

    public function testSocketConnectFailureIsTransportException(): void
    {
        $this->expectException(PvekeepTransportException::class);
        $this->expectExceptionMessage('cannot connect');
        (new PvekeepClient(['socket' => self::$socketDir . '/nobody.sock', 'timeout' => 2]))->call('echo', []);
    }

    public function testListParamsAreRefused(): void
    {
        $this->expectException(InvalidArgumentException::class);
        $this->spawnClient()->call('echo', [1, 2]);
    }

    /**
     * @return array<string, array{0: array<string, string>, 1: array<string, string>, 2: string}>
     */
    public function environments(): array
    {
        return [
            'defaults to spawn' => [[], [], 'spawn'],
            'socket env picks socket mode' => [['PVEKEEP_SOCKET' => 'unix:/run/pvekeep.sock'], [], 'socket'],
            'explicit mode wins' => [['PVEKEEP_SOCKET' => '/run/p.sock', 'PVEKEEP_MODE' => 'spawn'], [], 'spawn'],
            'config overrides env' => [['PVEKEEP_MODE' => 'spawn'], ['mode' => 'socket', 'socket' => '/x.sock'], 'socket'],
        ];
    }

    /**
     * @dataProvider environments
     * @param array<string, string> $env
     * @param array<string, string> $config
     */
    public function testFromEnvironmentChoosesMode(array $env, array $config, string $want): void
    {
        $names = ['PVEKEEP_MODE', 'PVEKEEP_SOCKET', 'PVEKEEP_BINARY', 'PVEKEEP_BIN', 'PVEKEEP_TIMEOUT'];
        $saved = [];
        foreach ($names as $n) {
            $saved[$n] = getenv($n);
            putenv($n);
        }
        foreach ($env as $n => $v) {
            putenv("$n=$v");
        }
        try {
            $client = PvekeepClient::fromEnvironment($config);
        } finally {
            foreach ($saved as $n => $v) {
                putenv($v === false ? $n : "$n=$v");
            }
        }
        $mode = (new ReflectionProperty(PvekeepClient::class, 'mode'));
        $mode->setAccessible(true);
        $this->assertSame($want, $mode->getValue($client));
    }
}
