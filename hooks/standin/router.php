<?php

/**
 * The WHMCS stand-in, served by PHP's built-in server:
 *
 *   WHMCS_STANDIN_DSN='root@unix(/run/mysqld/mysqld.sock)/whmcs' \
 *     php -S 127.0.0.1:8080 hooks/standin/router.php
 *
 * Pages:
 *   /clientarea.php?action=productdetails&id=N[&systpl=six|twenty-one]   the client's product page
 *   /clientarea.php?action=products                                      the client's services
 *   /admin/clientsservices.php?userid=U&id=N                             the admin's service form
 *   /admin/configservers.php?action=manage&id=S                          a server, with Test Connection
 *   /standin/login?uid=U[&adminid=A][&language=german][&systpl=six][&next=/clientarea.php…]
 *   /standin/logout                                                      (tests and demo only)
 *
 * See lib/boot.php for its environment and docs/whmcs.md for what it imitates.
 */

if (PHP_SAPI !== 'cli-server') {
    fwrite(STDERR, "router.php runs under `php -S`; the command line entry is cli.php\n");
    exit(2);
}

$path = (string) parse_url((string) $_SERVER['REQUEST_URI'], PHP_URL_PATH);
if ($path === '/favicon.ico') {
    http_response_code(204); // the themes' icon is not the module's business
    return true;
}

ob_start();
try {
    require __DIR__ . '/lib/boot.php';
    require __DIR__ . '/lib/theme.php';
    if (standin_serve_asset($path)) {
        return true;
    }
    session_save_path(standin_data_dir('sessions'));
    // Cookies ignore the port: one name per stand-in keeps two on one host apart.
    session_name('WHMCSstandin' . (int) $_SERVER['SERVER_PORT']);
    session_start();

    // WHMCS sanitises request input before anything runs.
    $_GET = standin_encode_input($_GET);
    $_POST = standin_encode_input($_POST);
    $_REQUEST = standin_encode_input($_REQUEST);

    // WHMCS loads every active module's hooks.php on every request.
    standin_load_module();

    switch ($path) {
        case '/':
        case '/index.php':
        case '/clientarea.php':
            require __DIR__ . '/lib/clientarea.php';
            standin_clientarea();
            break;
        case '/admin/clientsservices.php':
        case '/admin/configservers.php':
            require __DIR__ . '/lib/admin.php';
            standin_admin(basename($path));
            break;
        case '/standin/login':
            standin_login();
            break;
        case '/standin/logout':
            $_SESSION = [];
            session_regenerate_id(true);
            echo 'logged out';
            break;
        case '/login.php':
        case '/admin/login.php':
            http_response_code(200);
            echo standin_admin_page('Login', '<p data-standin="login-required">Login required. (Tests and the demo log in through /standin/login.)</p>');
            break;
        default:
            http_response_code(404);
            header('Content-Type: text/plain; charset=utf-8');
            echo "Not found: the stand-in serves /clientarea.php, /admin/clientsservices.php, /admin/configservers.php, /standin/login\n";
    }
} catch (\Throwable $e) {
    while (ob_get_level() > 0) {
        ob_end_clean();
    }
    // Strict: any warning or exception fails the page, loudly, in the page and in php -S's log.
    error_log('WHMCS stand-in: ' . $e);
    http_response_code(500);
    header('Content-Type: text/html; charset=utf-8');
    echo '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Error</title><link rel="icon" href="data:,"></head><body>',
        '<h1>Oops! Something went wrong</h1><pre data-standin="error">', htmlspecialchars((string) $e, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8'), '</pre></body></html>';
}

/**
 * The tests' and the demo's login switch: a client (uid), an admin
 * (adminid) or both, and the session's language (default: the client's own,
 * as WHMCS sets it at login) and theme.
 */
function standin_login()
{
    session_regenerate_id(true);
    $_SESSION = [];
    $uid = (int) ($_GET['uid'] ?? 0);
    $admin = (int) ($_GET['adminid'] ?? 0);
    if ($uid > 0) {
        $c = standin_row('SELECT id, language FROM tblclients WHERE id = ?', [$uid]);
        if (!$c) {
            throw new \RuntimeException("no client $uid");
        }
        $_SESSION['uid'] = $uid;
        if ($c['language'] !== '') {
            $_SESSION['Language'] = $c['language'];
        }
    }
    if ($admin > 0) {
        $_SESSION['adminid'] = $admin;
    }
    if (!empty($_GET['language'])) {
        $_SESSION['Language'] = html_entity_decode((string) $_GET['language'], ENT_QUOTES, 'UTF-8');
    }
    if (!empty($_GET['systpl']) && isset(STANDIN_THEMES[$_GET['systpl']])) {
        $_SESSION['Template'] = $_GET['systpl'];
    }
    $next = html_entity_decode((string) ($_GET['next'] ?? ''), ENT_QUOTES, 'UTF-8');
    if ($next !== '' && $next[0] === '/' && substr($next, 0, 2) !== '//') {
        standin_redirect($next, 303);
        return;
    }
    header('Content-Type: text/plain; charset=utf-8');
    echo 'logged in', $uid ? " as client $uid" : '', $admin ? " as admin $admin" : '', "\n";
}
