<?php

/**
 * WHMCS's global functions a module may call (contract-7 "The WHMCS
 * surface"): logModuleCall, logActivity, encrypt, decrypt, generate_token,
 * check_token, add_hook; and the stand-in's own helpers (run_hook is
 * WHMCS's, not the module's).
 */

/**
 * tblconfiguration as an array, over the defaults a fresh WHMCS install has
 * (a stand-in database may lack the rows).
 */
function standin_settings()
{
    static $settings = null;
    if ($settings === null) {
        $settings = [
            'CompanyName' => 'Example Hosting', 'Email' => 'billing@example.test', 'Language' => 'english',
            'DateFormat' => 'DD/MM/YYYY', 'SystemURL' => 'http://127.0.0.1/', 'Template' => 'twenty-one',
            'Charset' => 'utf-8',
        ];
        foreach (standin_rows('SELECT setting, value FROM tblconfiguration') as $r) {
            $settings[$r['setting']] = $r['value'];
        }
        $GLOBALS['CONFIG'] = $settings;
    }
    return $settings;
}

function standin_cc_hash()
{
    return standin_env('WHMCS_STANDIN_CC_HASH', 'pvekeep-standin-cc-encryption-hash');
}

/**
 * WHMCS's encrypt(): reversible with the installation's $cc_encryption_hash.
 * WHMCS's own cipher is not public; the stand-in uses AES-256-CBC keyed by
 * SHA-256 of the hash, base64(iv . ciphertext) — internal/seed writes the same.
 */
function encrypt($string)
{
    $iv = random_bytes(16);
    $ct = openssl_encrypt((string) $string, 'aes-256-cbc', hash('sha256', standin_cc_hash(), true), OPENSSL_RAW_DATA, $iv);
    return base64_encode($iv . $ct);
}

/** WHMCS's decrypt(): the plain text, or "" for anything it cannot decrypt (as WHMCS). */
function decrypt($string)
{
    $raw = base64_decode((string) $string, true);
    if ($raw === false || strlen($raw) < 32) {
        return '';
    }
    $pt = openssl_decrypt(substr($raw, 16), 'aes-256-cbc', hash('sha256', standin_cc_hash(), true), OPENSSL_RAW_DATA, substr($raw, 0, 16));
    return $pt === false ? '' : $pt;
}

/**
 * WHMCS's logModuleCall: arrays are printed as text, then every string in
 * $replaceVars is masked in request, response and processed data; written to
 * tblmodulelog (WHMCS writes only when module logging is on; here always).
 */
function logModuleCall($module, $action, $request, $response, $processedData = '', $replaceVars = [])
{
    $text = function ($v) use ($replaceVars) {
        $s = is_string($v) ? $v : print_r($v, true);
        foreach ((array) $replaceVars as $secret) {
            $secret = (string) $secret;
            if ($secret !== '') {
                $s = str_replace($secret, str_repeat('*', strlen($secret)), $s);
            }
        }
        return $s;
    };
    $row = [$module, $action, $text($request), $text($response), $text($processedData)];
    standin_exec('INSERT INTO tblmodulelog (date, module, action, request, response, arrdata) VALUES (NOW(), ?, ?, ?, ?, ?)', $row);
    $file = getenv('PVEKEEP_MODULE_LOG');
    if ($file) {
        file_put_contents($file, json_encode(['module' => $module, 'action' => $action, 'request' => $row[2],
            'response' => $row[3], 'processed' => $row[4]]) . "\n", FILE_APPEND | LOCK_EX);
    }
}

/** WHMCS's logActivity: a line in tblactivitylog, with who did it. */
function logActivity($message, $userId = 0)
{
    $adminId = defined('ADMINAREA') ? (int) ($_SESSION['adminid'] ?? 0) : 0;
    $user = $adminId ? 'Admin ' . $adminId : (!empty($_SESSION['uid']) ? 'Client' : 'System');
    standin_exec('INSERT INTO tblactivitylog (date, description, user, userid, user_id, admin_id, ipaddr) VALUES (NOW(), ?, ?, ?, 0, ?, ?)',
        [(string) $message, $user, (int) $userId, $adminId, (string) ($_SERVER['REMOTE_ADDR'] ?? '')]);
}

/** The session's CSRF token, made on first use (WHMCS keeps one per session). */
function standin_session_token()
{
    if (session_status() !== PHP_SESSION_ACTIVE) {
        // The CLI has no session: a token that no request can carry.
        static $cli = null;
        return $cli ?: ($cli = bin2hex(random_bytes(20)));
    }
    if (empty($_SESSION['tkval'])) {
        $_SESSION['tkval'] = bin2hex(random_bytes(20));
    }
    return $_SESSION['tkval'];
}

/**
 * WHMCS's generate_token($type): 'plain' the token; 'link' "&token=…";
 * 'form' (default) a hidden input named token.
 */
function generate_token($type = 'form')
{
    $t = standin_session_token();
    if ($type === 'plain') {
        return $t;
    }
    if ($type === 'link') {
        return '&token=' . $t;
    }
    return '<input type="hidden" name="token" value="' . $t . '" />';
}

/**
 * WHMCS's check_token(): the request's token (GET or POST) must be the
 * session's; otherwise WHMCS itself stops the request with its "Invalid CSRF
 * Protection Token" page (HTTP 200), and nothing after the call runs.
 */
function check_token($namespace = 'WHMCS.default', $token = null)
{
    $given = $token !== null ? (string) $token : (string) ($_REQUEST['token'] ?? '');
    if ($given !== '' && session_status() === PHP_SESSION_ACTIVE && !empty($_SESSION['tkval'])
        && hash_equals((string) $_SESSION['tkval'], $given)) {
        return true;
    }
    standin_csrf_failure();
}

function standin_csrf_failure()
{
    while (ob_get_level() > 0) {
        ob_end_clean();
    }
    if (PHP_SAPI === 'cli') {
        fwrite(STDERR, "Invalid CSRF Protection Token\n");
        exit(1);
    }
    http_response_code(200);
    header('Content-Type: text/html; charset=utf-8');
    echo '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Oops!</title><link rel="icon" href="data:,"></head>',
        '<body><div style="margin:50px auto;max-width:600px;font-family:sans-serif" id="whmcs-csrf-failure">',
        '<h1>Oops!</h1><p><strong>Invalid CSRF Protection Token</strong></p>',
        '<p>Please go back and try again.</p></div></body></html>';
    exit;
}

/** WHMCS's add_hook($hookPoint, $priority, $function). */
function add_hook($hookPoint, $priority, $function)
{
    if (!is_callable($function)) {
        throw new \InvalidArgumentException("add_hook($hookPoint): not callable");
    }
    $GLOBALS['standin_hooks'][$hookPoint][] = [(int) $priority, count($GLOBALS['standin_hooks'][$hookPoint] ?? []), $function];
}

/**
 * WHMCS's run_hook: each function of the point in priority order (lower
 * first), its answers collected.
 */
function run_hook($hookPoint, array $vars)
{
    $hooks = $GLOBALS['standin_hooks'][$hookPoint] ?? [];
    usort($hooks, function ($a, $b) {
        return [$a[0], $a[1]] <=> [$b[0], $b[1]];
    });
    $results = [];
    foreach ($hooks as $h) {
        $r = call_user_func($h[2], $vars);
        if ($r !== null) {
            $results[] = $r;
        }
    }
    return $results;
}

/** Whether a PreModule* answer aborts the command, as WHMCS reads it. */
function standin_hook_aborts(array $results)
{
    foreach ($results as $r) {
        if (is_array($r) && !empty($r['abortcmd'])) {
            return true;
        }
    }
    return false;
}

/**
 * WHMCS sanitises request input: every value (nested too) HTML-entity
 * encoded (htmlspecialchars, ENT_QUOTES) before any code sees it.
 */
function standin_encode_input($v)
{
    if (is_array($v)) {
        $out = [];
        foreach ($v as $k => $x) {
            $out[$k] = standin_encode_input($x);
        }
        return $out;
    }
    return htmlspecialchars((string) $v, ENT_QUOTES, 'UTF-8');
}

/** WHMCS's date format setting (DD/MM/YYYY …) applied to a Y-m-d date. */
function standin_format_date($ymd)
{
    if ($ymd === null || $ymd === '' || strpos((string) $ymd, '0000-00-00') === 0) {
        return '-';
    }
    $t = strtotime((string) $ymd);
    $fmt = strtr(standin_settings()['DateFormat'], ['DD' => 'd', 'MM' => 'm', 'YYYY' => 'Y']);
    return date($fmt, $t);
}

function standin_redirect($url, $code = 302)
{
    http_response_code($code);
    header('Location: ' . $url);
}
