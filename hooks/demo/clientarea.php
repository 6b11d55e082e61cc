<?php

/**
 * A stand-in for WHMCS's client-area product details page
 * (clientarea.php?action=productdetails&id=N): the real module files and the
 * real templates, rendered by real Smarty 4, for looking at the page in a
 * browser and for the browser tests (internal/e2e/clientarea_test.go).
 *
 *   PVEKEEP_CLIENTAREA=page.json php -S 127.0.0.1:8080 hooks/demo/clientarea.php
 *
 * page.json is {"session_uid": 7, "services": [{…$params…}, …]}: the client
 * logged in to this session and, per service, the $params WHMCS hands the
 * module (as hooks/tests/e2e/driver.php takes them). The file is read on
 * every request, so a test may rewrite it. PVEKEEP_BIN and PVEKEEP_DSN reach
 * the module's client; PVEKEEP_SMARTY_COMPILE_DIR (default: a directory in
 * the system's temporary directory) holds Smarty's compiled templates.
 *
 * Like WHMCS, a POST with modop=custom runs pvekeep_<a>() only when <a> is
 * one of pvekeep_ClientAreaAllowedFunctions() and shows its answer; then the
 * page renders what pvekeep_ClientArea() returns.
 */

if (PHP_SAPI === 'cli-server') {
    $path = parse_url((string) $_SERVER['REQUEST_URI'], PHP_URL_PATH);
    if ($path !== '/clientarea.php') {
        http_response_code(404);
        header('Content-Type: text/plain; charset=utf-8');
        echo "Not found. The page is /clientarea.php?action=productdetails&id=<service id>.\n";
        return;
    }
}

require __DIR__ . '/whmcs_stubs.php';
require dirname(__DIR__) . '/pvekeep.php';
require_once '/usr/share/php/smarty4/Smarty.class.php';

define('CLIENTAREA', true);

// A warning anywhere (a template reading a variable the module did not
// pass, say) fails the page instead of rendering something half right.
set_error_handler(function ($severity, $message, $file, $line) {
    throw new \ErrorException($message, 0, $severity, $file, $line);
});

function h($s)
{
    return htmlspecialchars((string) $s, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

function page($status, $body)
{
    http_response_code($status);
    header('Content-Type: text/html; charset=utf-8');
    echo "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
        "<title>Product Details</title>\n<link rel=\"icon\" href=\"data:,\">\n",
        "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto}",
        ".alert{padding:.6rem 1rem;margin:1rem 0;border:1px solid #ccc}.alert-danger{background:#fdecea}",
        ".text-nowrap{white-space:nowrap}",
        ".alert-success{background:#e8f5e9}.alert-warning{background:#fff8e1}.alert-info{background:#e3f2fd}",
        "table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3rem;border-bottom:1px solid #ddd}</style>\n",
        "</head>\n<body>\n", $body, "\n</body>\n</html>\n";
}

/**
 * The module's own answer to a custom action, as WHMCS words it.
 */
function action_result($result)
{
    if ($result === 'success') {
        return '<div class="alert alert-success" data-demo-result="success">Action Completed Successfully</div>';
    }
    return '<div class="alert alert-danger" data-demo-result="error">The following error occurred: ' . h($result) . '</div>';
}

try {
    $state = json_decode((string) @file_get_contents((string) getenv('PVEKEEP_CLIENTAREA')), true);
    if (!is_array($state)) {
        page(500, '<p data-demo-error>Set PVEKEEP_CLIENTAREA to a JSON file: {"session_uid": …, "services": [$params, …]}.</p>');
        return;
    }
    $_SESSION = ['uid' => (int) ($state['session_uid'] ?? 0)];
    $params = null;
    foreach ($state['services'] ?? [] as $p) {
        if ((int) ($p['serviceid'] ?? 0) === (int) ($_GET['id'] ?? 0)) {
            $params = $p;
        }
    }
    if ($params === null) {
        page(404, '<p data-demo-error>No such service.</p>');
        return;
    }

    $result = '';
    $status = 200;
    if (($_SERVER['REQUEST_METHOD'] ?? '') === 'POST' && ($_POST['modop'] ?? '') === 'custom') {
        $fn = (string) ($_POST['a'] ?? '');
        // Strict: PHP function names ignore case, the allowed list does not.
        if (in_array($fn, pvekeep_ClientAreaAllowedFunctions(), true)) {
            $result = action_result(call_user_func('pvekeep_' . $fn, $params));
        } else {
            $status = 403;
            $result = action_result('This action is not allowed.');
        }
    }

    $area = pvekeep_ClientArea($params);
    $root = dirname(__DIR__, 2);
    $template = realpath($root . '/' . ($area['tabOverviewReplacementTemplate'] ?? ''));
    if ($template === false || strpos($template, $root . '/templates/') !== 0) {
        throw new \RuntimeException('the module named no template under templates/');
    }
    $smarty = new Smarty();
    $compileDir = getenv('PVEKEEP_SMARTY_COMPILE_DIR') ?: sys_get_temp_dir() . '/pvekeep-smarty-' . getmyuid();
    $smarty->setCompileDir($compileDir);
    $smarty->setTemplateDir($root . '/templates');
    $smarty->assign($area['templateVariables'] ?? []);
    $smarty->assign('serviceid', (int) $params['serviceid']);
    page($status, $result . "\n" . $smarty->fetch('file:' . $template));
} catch (\Throwable $e) {
    page(500, '<pre data-demo-error>' . h($e) . '</pre>');
}
