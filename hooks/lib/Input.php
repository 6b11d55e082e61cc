<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * The request, read once at the edge. WHMCS hands modules $_GET/$_POST
 * HTML-entity-encoded (htmlspecialchars with ENT_QUOTES): every value is
 * decoded here exactly once, so a note typed as `Tom's <b>&` reaches the
 * plugin as typed, and nowhere deeper decodes again.
 */
final class Input
{
    /** Whether this request is a POST (only a POST may change anything). */
    public static function isPost(): bool
    {
        return strtoupper((string) ($_SERVER['REQUEST_METHOD'] ?? '')) === 'POST';
    }

    /** A posted field, decoded; '' when absent or not a string. */
    public static function post(string $name): string
    {
        return self::decode($_POST[$name] ?? '');
    }

    /** A posted whole number; 0 when absent or not one. */
    public static function postInt(string $name): int
    {
        return self::toInt(self::post($name));
    }

    /** A query-string whole number; 0 when absent or not one. */
    public static function queryInt(string $name): int
    {
        return self::toInt(self::decode($_GET[$name] ?? ''));
    }

    /** Whether the query string has the parameter at all. */
    public static function hasQuery(string $name): bool
    {
        return isset($_GET[$name]);
    }

    /**
     * WHMCS's CSRF check. On a missing or wrong token WHMCS ends the
     * request itself with its "Invalid CSRF Protection Token" page; false
     * here means it could not be checked at all, which refuses too.
     */
    public static function checkToken(string $namespace): bool
    {
        if (!function_exists('check_token')) {
            return false;
        }
        return check_token($namespace) !== false;
    }

    /** The token for the module's own forms ('' outside WHMCS). */
    public static function token(): string
    {
        return function_exists('generate_token') ? (string) generate_token('plain') : '';
    }

    /**
     * One value as WHMCS encoded it, decoded.
     *
     * @param mixed $value
     */
    public static function decode($value): string
    {
        return is_string($value) ? html_entity_decode($value, ENT_QUOTES, 'UTF-8') : '';
    }

    private static function toInt(string $s): int
    {
        return preg_match('/^\s*\d{1,18}\s*$/', $s) ? (int) $s : 0;
    }
}
