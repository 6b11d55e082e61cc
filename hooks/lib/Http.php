<?php

namespace WHMCS\Module\Server\Pvekeep;

/**
 * The few answers the module gives the browser itself: a redirect after a
 * POST (with a flash message for the next page view) and the page's JSON
 * poll. Both end the request.
 */
final class Http
{
    /** The product details page of a service, relative to WHMCS's root. */
    public static function servicePage(int $serviceId): string
    {
        return 'clientarea.php?action=productdetails&id=' . $serviceId;
    }

    /**
     * Keeps a message for the service's next page view (shown once), in
     * the card named ('' = the page's top, the backups card).
     */
    public static function flash(int $serviceId, string $kind, string $text, string $card = ''): void
    {
        $_SESSION['pvekeep_flash'][$serviceId] = ['kind' => $kind, 'text' => $text] + ($card !== '' ? ['card' => $card] : []);
    }

    /**
     * The message kept for this service, removed as it is read.
     *
     * @return array{kind: string, text: string, card?: string}|null
     */
    public static function takeFlash(int $serviceId): ?array
    {
        $flash = $_SESSION['pvekeep_flash'][$serviceId] ?? null;
        unset($_SESSION['pvekeep_flash'][$serviceId]);
        if (!is_array($flash)) {
            return null;
        }
        $out = ['kind' => (string) ($flash['kind'] ?? ''), 'text' => (string) ($flash['text'] ?? '')];
        return isset($flash['card']) && is_string($flash['card']) ? $out + ['card' => $flash['card']] : $out;
    }

    /**
     * 303 See Other to the service's page, so F5 never posts again.
     */
    public static function seeOther(int $serviceId): void
    {
        header('Location: ' . self::servicePage($serviceId), true, 303);
        exit;
    }

    /**
     * @param array<string, mixed> $body
     */
    public static function json(array $body): void
    {
        header('Content-Type: application/json; charset=utf-8');
        header('Cache-Control: no-store');
        echo json_encode($body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PARTIAL_OUTPUT_ON_ERROR);
        exit;
    }

    /** Text for WHMCS to print raw (its alerts do not escape). */
    public static function escape(string $text): string
    {
        return htmlspecialchars($text, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
    }
}
