<?php

/**
 * The plugin could not be asked or did not answer properly: spawn or
 * connect failure, timeout (the child was killed), an answer that is not
 * JSON-RPC, or an exit without an answer. Carries the tail of the plugin's
 * stderr for the module log. Never carries the request (it holds secrets).
 */
final class PvekeepTransportException extends PvekeepException
{
    /** @var string */
    private $stderr;

    /** @var int|null */
    private $exitCode;

    public function __construct(
        string $message,
        string $stderr = '',
        ?int $exitCode = null,
        ?\Throwable $previous = null
    ) {
        parent::__construct($message, 0, $previous);
        $this->stderr = $stderr;
        $this->exitCode = $exitCode;
    }

    /** The tail of what the plugin wrote to stderr (its log), maybe empty. */
    public function getStderr(): string
    {
        return $this->stderr;
    }

    /** The plugin's exit code when it exited, else null (killed, socket mode). */
    public function getExitCode(): ?int
    {
        return $this->exitCode;
    }
}
