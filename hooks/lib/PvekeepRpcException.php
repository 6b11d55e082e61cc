<?php

/**
 * The plugin answered with a JSON-RPC error object: an application error
 * (code 1000-1099 with data.reason, DESIGN §3) or a protocol error (-32xxx).
 * The message is the plugin's own, safe to show; translate by getReason().
 */
final class PvekeepRpcException extends PvekeepException
{
    /** @var mixed */
    private $data;

    /** @var string */
    private $method;

    /**
     * @param mixed $data the error's data member, null when absent
     */
    public function __construct(string $message, int $code, $data = null, string $method = '')
    {
        parent::__construct($message, $code);
        $this->data = $data;
        $this->method = $method;
    }

    /**
     * The error's data as an array ([] when absent or not an object).
     *
     * @return array<string, mixed>
     */
    public function getData(): array
    {
        return is_array($this->data) ? $this->data : [];
    }

    /**
     * The error's data exactly as decoded (null when absent).
     *
     * @return mixed
     */
    public function getRawData()
    {
        return $this->data;
    }

    /**
     * data.reason, the stable string the panel maps to a translated message
     * ("" when the error has none, e.g. protocol errors).
     */
    public function getReason(): string
    {
        $reason = $this->getData()['reason'] ?? '';
        return is_string($reason) ? $reason : '';
    }

    /** The JSON-RPC method that failed. */
    public function getMethod(): string
    {
        return $this->method;
    }
}
