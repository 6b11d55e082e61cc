<?php

/**
 * The page around the module's output, imitating WHMCS's two public client
 * themes: twenty-one (Bootstrap 4.6, cards: header.tpl, includes/sidebar.tpl,
 * clientareaproductdetails.tpl of WHMCS/templates-twenty-one) and six
 * (Bootstrap 3.4, panels: the same files of WHMCS/templates-six). The
 * Bootstrap CSS is the npm registry's (bootstrap@4.6.2 / bootstrap@3.4.1,
 * fetched by .ci/bringup.sh); the few theme rules below imitate the look of
 * the themes' own stylesheets (written here, not copied).
 */

const STANDIN_THEMES = ['twenty-one' => 'bootstrap@4.6.2', 'six' => 'bootstrap@3.4.1'];

/** The client theme of this session: ?systpl= switches it (as WHMCS), else the Template setting. */
function standin_theme()
{
    $pick = (string) ($_GET['systpl'] ?? '');
    if (isset(STANDIN_THEMES[$pick]) && session_status() === PHP_SESSION_ACTIVE) {
        $_SESSION['Template'] = $pick;
    }
    $t = (string) ($_SESSION['Template'] ?? standin_settings()['Template']);
    return isset(STANDIN_THEMES[$t]) ? $t : 'twenty-one';
}

function standin_css_path($package)
{
    return rtrim(standin_env('WHMCS_STANDIN_ASSETS', STANDIN_REPO . '/.cache/npm'), '/') . '/' . $package . '/dist/css/bootstrap.min.css';
}

/** Serves /assets/css/<package>.css from the npm cache; true when it handled the path. */
function standin_serve_asset($path)
{
    if (!preg_match('~^/assets/css/(bootstrap@[0-9.]+)\.css$~', $path, $m)) {
        return false;
    }
    $file = standin_css_path($m[1]);
    if (!in_array($m[1], STANDIN_THEMES, true) || !is_file($file)) {
        http_response_code(404);
        header('Content-Type: text/plain');
        echo "missing $file: run .ci/bringup.sh (it fetches the theme CSS from the npm registry)\n";
        return true;
    }
    header('Content-Type: text/css');
    header('Cache-Control: max-age=3600');
    readfile($file);
    return true;
}

function standin_theme_css($theme)
{
    $common = 'body{font-size:14px}'
        . '#main-body{padding:20px 0 40px}'
        . '.product-status{color:#fff;border-radius:4px;overflow:hidden;margin-bottom:15px;text-align:center}'
        . '.product-status .product-icon{padding:15px 10px}'
        . '.product-status .product-icon h3{font-size:1.4em;margin:.3em 0 .2em}'
        . '.product-status .product-icon h4{font-size:1em;margin:0;color:#fff;opacity:.85}'
        . '.product-status .product-status-text{background:rgba(0,0,0,.15);padding:6px;font-weight:600}'
        . '.product-status-active{background:#46a546}.product-status-pending{background:#888}'
        . '.product-status-suspended{background:#ff8c00}.product-status-terminated,.product-status-cancelled,.product-status-fraud{background:#9a9a9a}'
        . '.product-details h4{font-size:.95em;font-weight:600;margin:1em 0 .2em;color:#555}'
        . '.product-actions-wrapper{margin-top:10px}'
        . '.product-details-tab-container{padding:20px;border:1px solid #ddd;border-top:0;margin-bottom:20px}'
        . '.standin-footer{padding:20px 0;color:#888;font-size:12px}';
    if ($theme === 'six') {
        return $common . 'body{background:#fff}'
            . '#header{padding:15px 0;border-bottom:1px solid #eee}#header .logo{font-size:22px;color:#333;text-decoration:none}'
            . '#main-menu .navbar{border-radius:0;margin:0}'
            . '.header-lined h1{font-size:26px;margin:0 0 15px;padding-bottom:10px;border-bottom:1px solid #eee}'
            . '.panel-sidebar .panel-title{font-size:15px}'
            . '.product-details-tab-container{background:#fff}';
    }
    return $common . 'body.primary-bg-color{background:#f6f6f6}'
        . '.header .navbar{background:#fff;border-bottom:1px solid #e5e5e5}.header .navbar-brand{font-weight:600;color:#333}'
        . '.master-breadcrumb{background:#fff;border-bottom:1px solid #e5e5e5}.master-breadcrumb .breadcrumb{background:none;margin:0;padding:.6rem 0}'
        . '.card-sidebar .card-title{font-size:1rem}'
        . '.primary-content>h1{font-size:1.6rem;margin-bottom:1rem}'
        . '.product-details-tab-container{background:#fff;border-radius:0 0 4px 4px}';
}

/**
 * A sidebar panel (twenty-one .card-sidebar, six .panel-sidebar) of links:
 * [['label' => …, 'href' => …, 'active' => bool, 'attrs' => '…'], …].
 */
function standin_sidebar_panel($theme, $title, array $links)
{
    $items = '';
    foreach ($links as $l) {
        $cls = 'list-group-item' . ($theme === 'twenty-one' ? ' list-group-item-action' : '') . (!empty($l['active']) ? ' active' : '');
        $items .= '<a href="' . standin_h($l['href']) . '" class="' . $cls . '"' . ($l['attrs'] ?? '') . '>' . standin_h($l['label']) . '</a>';
    }
    if ($theme === 'six') {
        return '<div class="panel panel-sidebar panel-default"><div class="panel-heading"><h3 class="panel-title">' . standin_h($title)
            . '</h3></div><div class="list-group">' . $items . '</div></div>';
    }
    return '<div class="mb-3 card card-sidebar"><div class="card-header"><h3 class="card-title m-0">' . standin_h($title)
        . '</h3></div><div class="list-group list-group-flush">' . $items . '</div></div>';
}

/** The whole client-area page. $content and $sidebar are HTML. */
function standin_client_page($theme, $title, $sidebar, $content)
{
    $s = standin_settings();
    $css = '/assets/css/' . STANDIN_THEMES[$theme] . '.css';
    $head = '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        . '<meta name="viewport" content="width=device-width, initial-scale=1">'
        . '<title>' . standin_h($title) . ' - ' . standin_h($s['CompanyName']) . '</title><link rel="icon" href="data:,">'
        . '<link href="' . $css . '" rel="stylesheet"><style>' . standin_theme_css($theme) . '</style>'
        // as includes/head.tpl: the token for scripts
        . '<script>var csrfToken = ' . json_encode(generate_token('plain')) . ';</script>'
        . '</head>';
    $company = standin_h($s['CompanyName']);
    if ($theme === 'six') {
        return $head . '<body data-standin-theme="six">'
            . '<section id="header"><div class="container"><a href="clientarea.php" class="logo">' . $company . '</a></div></section>'
            . '<section id="main-menu"><nav class="navbar navbar-default"><div class="container"><ul class="nav navbar-nav">'
            . '<li><a href="clientarea.php">Home</a></li><li class="active"><a href="clientarea.php?action=products">Services</a></li>'
            . '</ul></div></nav></section>'
            . '<section id="main-body"><div class="container"><div class="row">'
            . '<div class="col-md-9 col-md-push-3 main-content"><div class="header-lined"><h1>' . standin_h($title) . '</h1></div>' . $content . '</div>'
            . '<div class="col-md-3 col-md-pull-9 sidebar">' . $sidebar . '</div>'
            . '</div></div></section>'
            . '<section id="footer"><div class="container standin-footer">Copyright &copy; ' . $company . ' (WHMCS stand-in, theme six)</div></section>'
            . '</body></html>';
    }
    return $head . '<body class="primary-bg-color" data-standin-theme="twenty-one">'
        . '<header id="header" class="header"><div class="navbar navbar-light"><div class="container">'
        . '<a class="navbar-brand" href="clientarea.php">' . $company . '</a>'
        . '<ul class="nav"><li class="nav-item"><a class="nav-link" href="clientarea.php">Home</a></li>'
        . '<li class="nav-item"><a class="nav-link" href="clientarea.php?action=products">Services</a></li></ul>'
        . '</div></div></header>'
        . '<nav class="master-breadcrumb" aria-label="breadcrumb"><div class="container"><ol class="breadcrumb">'
        . '<li class="breadcrumb-item"><a href="clientarea.php">Client Area</a></li>'
        . '<li class="breadcrumb-item active" aria-current="page">' . standin_h($title) . '</li></ol></div></nav>'
        . '<section id="main-body"><div class="container"><div class="row">'
        . '<div class="col-lg-4 col-xl-3"><div class="sidebar">' . $sidebar . '</div></div>'
        . '<div class="col-lg-8 col-xl-9 primary-content"><h1>' . standin_h($title) . '</h1>' . $content . '</div>'
        . '</div></div></section>'
        . '<footer id="footer" class="footer"><div class="container standin-footer">Copyright &copy; ' . $company . ' (WHMCS stand-in, theme twenty-one)</div></footer>'
        . '</body></html>';
}

/**
 * includes/alert.tpl of both themes: the message is printed as given (raw).
 */
function standin_alert($type, $rawMsg, $id = '', $extra = '')
{
    return '<div class="alert alert-' . ($type === 'error' ? 'danger' : $type) . ' text-center"' . ($id !== '' ? ' id="' . $id . '"' : '')
        . $extra . '>' . $rawMsg . '</div>';
}

/** The admin area (WHMCS's admin is Bootstrap 3): a plain frame. */
function standin_admin_page($title, $content)
{
    return '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>' . standin_h($title) . ' - WHMCS stand-in admin</title>'
        . '<link rel="icon" href="data:,"><link href="/assets/css/bootstrap@3.4.1.css" rel="stylesheet">'
        . '<style>body{background:#f2f2f2;font-size:13px}.contentarea{background:#fff;padding:20px;margin:20px auto;max-width:1100px}'
        . '.form td.fieldlabel{width:20%;text-align:right;background:#efefef;padding:6px 10px;font-weight:600}.form td.fieldarea{padding:6px 10px}'
        . 'table.form{width:100%;border:1px solid #ddd;margin-bottom:15px}table.form td{border-bottom:1px solid #eee;vertical-align:top}'
        . '.successbox,.errorbox{padding:10px 15px;margin-bottom:15px;border-radius:3px}.successbox{background:#dff0d8;border:1px solid #c3e6cb}'
        . '.errorbox{background:#f2dede;border:1px solid #ebccd1}</style>'
        . '<script>var csrfToken = ' . json_encode(generate_token('plain')) . ';</script></head>'
        . '<body data-standin-area="admin"><nav class="navbar navbar-inverse" style="border-radius:0"><div class="container"><span class="navbar-brand">WHMCS admin (stand-in)</span></div></nav>'
        . '<div class="contentarea"><h1>' . standin_h($title) . '</h1>' . $content . '</div></body></html>';
}
