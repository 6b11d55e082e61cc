<?php

/**
 * clientarea.php: the client's product details page (action=productdetails)
 * and the services list, as WHMCS runs them:
 *
 * - only a logged-in client, only their own service (another's redirects to
 *   the services list: WHMCS never calls the module for it);
 * - modop=custom&a=NAME from GET or POST runs <module>_NAME($params) only
 *   for names in ClientAreaAllowedFunctions (or ClientAreaCustomButtonArray)
 *   and only for an Active service; anything else is ignored, as WHMCS does.
 *   The stand-in does not check the token for it: the module must.
 *   A non-"success" answer is printed RAW after "Action Failed" in the
 *   theme's alert (clientareaproductdetails.tpl + includes/alert.tpl);
 * - ClientArea($params) is called only for an Active service; its
 *   tabOverviewModuleOutputTemplate (or legacy templatefile) is rendered by
 *   Smarty with templateVariables into the module-client-area pane;
 *   tabOverviewReplacementTemplate replaces the billing card, as in the
 *   themes; a string answer is taken as HTML. If the module prints and exits
 *   (a JSON poll answer, a redirect), that is the response.
 * - the billing details (product, status, dates, amounts, cancel button)
 *   are always there.
 */

const STANDIN_SMARTY = '/usr/share/php/smarty4/Smarty.class.php';

/** WHMCS's English strings the stand-in shows (lang/english.php keys). */
const STANDIN_LANG = [
    'moduleactionsuccess' => 'Action Completed Successfully!',
    'moduleactionfailed' => 'Action Failed',
    'clientareahostingregdate' => 'Registration Date',
    'recurringamount' => 'Recurring Amount',
    'firstpaymentamount' => 'First Payment Amount',
    'orderbillingcycle' => 'Billing Cycle',
    'clientareahostingnextduedate' => 'Next Due Date',
    'orderpaymentmethod' => 'Payment Method',
    'suspendreason' => 'Suspension Reason',
    'clientareacancelrequestbutton' => 'Request Cancellation',
    'clientareahostingdomain' => 'Domain',
    'visitwebsite' => 'Visit Website',
    'manage' => 'Manage',
    'clientareaproducts' => 'My Products & Services',
    'clientareaproductdetails' => 'Product Details',
    'clientareaactive' => 'Active', 'clientareapending' => 'Pending', 'clientareasuspended' => 'Suspended',
    'clientareaterminated' => 'Terminated', 'clientareacancelled' => 'Cancelled', 'clientareafraud' => 'Fraud',
    'clientareacompleted' => 'Completed',
];

function standin_clientarea()
{
    define('CLIENTAREA', true);
    $uid = (int) ($_SESSION['uid'] ?? 0);
    if ($uid <= 0) {
        standin_redirect('/login.php');
        return;
    }
    $theme = standin_theme();
    $action = (string) ($_GET['action'] ?? '');
    if ($action === 'productdetails') {
        standin_product_details($theme, $uid, (int) ($_REQUEST['id'] ?? 0));
        return;
    }
    standin_services_list($theme, $uid);
}

function standin_status_text($status)
{
    return STANDIN_LANG['clientarea' . strtolower($status)] ?? $status;
}

function standin_money($amount)
{
    return '$' . number_format((float) $amount, 2) . ' USD';
}

function standin_services_list($theme, $uid)
{
    $rows = '';
    foreach (standin_rows('SELECT h.id, h.domain, h.domainstatus, h.nextduedate, p.name FROM tblhosting h
        JOIN tblproducts p ON p.id = h.packageid WHERE h.userid = ? ORDER BY h.id', [$uid]) as $r) {
        $rows .= '<tr><td><a href="clientarea.php?action=productdetails&amp;id=' . (int) $r['id'] . '">' . standin_h($r['name']) . '</a><br><small>'
            . standin_h($r['domain']) . '</small></td><td>' . standin_h(standin_format_date($r['nextduedate'])) . '</td><td>'
            . standin_h(standin_status_text($r['domainstatus'])) . '</td></tr>';
    }
    $content = '<div class="table-responsive"><table class="table" data-standin="services"><thead><tr><th>Product/Service</th>'
        . '<th>Next Due Date</th><th>Status</th></tr></thead><tbody>' . $rows . '</tbody></table></div>';
    echo standin_client_page($theme, STANDIN_LANG['clientareaproducts'], '', $content);
}

/**
 * Renders a module template by name relative to the module folder (with or
 * without ".tpl"), as WHMCS resolves ClientArea's template names.
 */
function standin_module_template($name, array $vars)
{
    $dir = standin_module_dir();
    $name = (string) $name;
    if (substr($name, -4) !== '.tpl') {
        $name .= '.tpl';
    }
    $path = realpath($dir . '/' . ltrim($name, '/'));
    if ($path === false || strpos($path, $dir . '/') !== 0 || !is_file($path)) {
        throw new \RuntimeException("ClientArea named template $name, which is not a file in the module folder $dir");
    }
    require_once STANDIN_SMARTY;
    $smarty = new \Smarty();
    $smarty->setCompileDir(standin_data_dir('smarty'));
    $smarty->setTemplateDir($dir);
    $smarty->assign($vars);
    return $smarty->fetch('file:' . $path);
}

function standin_product_details($theme, $uid, $id)
{
    $svc = standin_service($id);
    if ($svc === null || (int) $svc['userid'] !== $uid) {
        standin_redirect('clientarea.php?action=products');
        return;
    }
    $params = standin_params($id);
    $active = $svc['domainstatus'] === 'Active';

    $alerts = '';
    if (($_REQUEST['modop'] ?? '') === 'custom' && $active) {
        $a = (string) ($_REQUEST['a'] ?? '');
        $allowed = standin_has('ClientAreaAllowedFunctions') ? array_values((array) standin_call('ClientAreaAllowedFunctions')) : [];
        if (standin_has('ClientAreaCustomButtonArray')) {
            $allowed = array_merge($allowed, array_values((array) standin_call('ClientAreaCustomButtonArray', $params)));
        }
        if ($a !== '' && in_array($a, $allowed, true)) {
            $result = standin_call($a, $params);
            if (!is_string($result)) {
                throw new \UnexpectedValueException("custom function $a returned " . gettype($result) . ', not a string');
            }
            $alerts .= $result === 'success'
                ? standin_alert('success', STANDIN_LANG['moduleactionsuccess'], 'alertModuleCustomButtonSuccess')
                : standin_alert('error', STANDIN_LANG['moduleactionfailed'] . ' ' . $result, 'alertModuleCustomButtonFailed');
            $params = standin_params($id); // as WHMCS: the page after the action reads the service again
        }
    }

    $moduleOutput = '';
    $replacement = null;
    if ($active) { // as WHMCS: module output only for an Active service
        list($moduleOutput, $replacement) = standin_module_client_area($params);
    }

    $content = $alerts . standin_product_overview($theme, $svc, $moduleOutput, $replacement);
    $sidebar = standin_sidebar_panel($theme, 'Overview', [
        ['label' => 'Information', 'href' => 'clientarea.php?action=productdetails&id=' . $id, 'active' => true],
    ]);
    if ($active && standin_has('ClientAreaCustomButtonArray')) {
        $links = [];
        foreach ((array) standin_call('ClientAreaCustomButtonArray', $params) as $label => $fn) {
            $links[] = ['label' => $label, 'href' => 'clientarea.php?action=productdetails&id=' . $id . '&modop=custom&a=' . $fn,
                'attrs' => ' data-standin-custom-button="' . standin_h($fn) . '"'];
        }
        if ($links) {
            $sidebar .= standin_sidebar_panel($theme, 'Actions', $links);
        }
    }
    $sidebar .= standin_sidebar_panel($theme, 'Actions', [
        ['label' => STANDIN_LANG['clientareacancelrequestbutton'], 'href' => 'clientarea.php?action=cancel&id=' . $id],
    ]);
    echo standin_client_page($theme, STANDIN_LANG['clientareaproductdetails'], $sidebar, $content);
}

/**
 * Calls the module's ClientArea and renders what it returns: [module output
 * HTML, replacement HTML or null]. The caller decides whether WHMCS would
 * call it at all (an Active service only).
 */
function standin_module_client_area(array $params)
{
    $moduleOutput = '';
    $replacement = null;
    if (!standin_has('ClientArea')) {
        return [$moduleOutput, $replacement];
    }
    $ca = standin_call('ClientArea', $params);
    if (is_string($ca)) {
        $moduleOutput = $ca;
    } elseif (is_array($ca)) {
        $vars = array_merge(standin_template_base_vars($params), (array) ($ca['templateVariables'] ?? $ca['vars'] ?? []));
        if (!empty($ca['tabOverviewReplacementTemplate'])) {
            $replacement = standin_module_template($ca['tabOverviewReplacementTemplate'], $vars);
        } elseif (!empty($ca['tabOverviewModuleOutputTemplate'])) {
            $moduleOutput = standin_module_template($ca['tabOverviewModuleOutputTemplate'], $vars);
        } elseif (!empty($ca['templatefile'])) {
            $moduleOutput = standin_module_template($ca['templatefile'], $vars);
        }
    } elseif ($ca !== null) {
        throw new \UnexpectedValueException('ClientArea returned ' . gettype($ca));
    }
    return [$moduleOutput, $replacement];
}

/**
 * The module's ClientArea for service $id as its owner sees it, called
 * WHATEVER the service's status (cli.php client-area). WHMCS calls it only
 * for an Active service; this shows what the module does on its own when it
 * is called for another (a future WHMCS, a hook, a theme that calls it).
 *
 * @return array{status: string, html: string}
 */
function standin_client_area_direct($id)
{
    $svc = standin_service((int) $id);
    if ($svc === null) {
        throw new \InvalidArgumentException("no service $id");
    }
    define('CLIENTAREA', true);
    $_SESSION = ['uid' => (int) $svc['userid']];
    list($moduleOutput, $replacement) = standin_module_client_area(standin_params((int) $id));
    return ['status' => (string) $svc['domainstatus'], 'html' => $replacement !== null ? $replacement : $moduleOutput];
}

/** What WHMCS gives every client-area template besides the module's own variables. */
function standin_template_base_vars(array $params)
{
    $s = standin_settings();
    return [
        'token' => generate_token('plain'), 'WEB_ROOT' => '', 'systemurl' => $s['SystemURL'], 'template' => standin_theme(),
        'language' => (string) ($_SESSION['Language'] ?? $s['Language']), 'LANG' => STANDIN_LANG, 'companyname' => $s['CompanyName'],
        'id' => $params['serviceid'], 'serviceid' => $params['serviceid'], 'domain' => $params['domain'],
        'rawstatus' => strtolower($params['status']), 'loggedin' => true,
    ];
}

/**
 * The overview tab of clientareaproductdetails.tpl: the billing card, then
 * the domain / manage pane holding the module output (text-center, as the
 * themes have it).
 */
function standin_product_overview($theme, array $svc, $moduleOutput, $replacement)
{
    $id = (int) $svc['id'];
    $six = $theme === 'six';
    $L = STANDIN_LANG;
    $status = $svc['domainstatus'];
    if ($replacement !== null) {
        $billing = $replacement;
    } else {
        $right = '<h4>' . $L['clientareahostingregdate'] . '</h4><span data-standin="regdate">' . standin_h(standin_format_date($svc['regdate'])) . '</span>';
        if ((float) $svc['firstpaymentamount'] !== (float) $svc['amount']) {
            $right .= '<h4>' . $L['firstpaymentamount'] . '</h4>' . standin_h(standin_money($svc['firstpaymentamount']));
        }
        $right .= '<h4>' . $L['recurringamount'] . '</h4><span data-standin="amount">' . standin_h(standin_money($svc['amount'])) . '</span>'
            . '<h4>' . $L['orderbillingcycle'] . '</h4>' . standin_h($svc['billingcycle'])
            . '<h4>' . $L['clientareahostingnextduedate'] . '</h4><span data-standin="nextduedate">' . standin_h(standin_format_date($svc['nextduedate'])) . '</span>'
            . '<h4>' . $L['orderpaymentmethod'] . '</h4>' . standin_h($svc['paymentmethod']);
        if ($svc['suspendreason'] !== '' && $status === 'Suspended') {
            $right .= '<h4>' . $L['suspendreason'] . '</h4>' . standin_h($svc['suspendreason']);
        }
        $left = '<div class="product-status product-status-' . standin_h(strtolower($status)) . ($six ? '' : ' mb-3') . '">'
            . '<div class="product-icon text-center"><h3 data-standin="product">' . standin_h($svc['product_name']) . '</h3><h4>' . standin_h($svc['group_name']) . '</h4></div>'
            . '<div class="product-status-text" data-standin="status">' . standin_h(standin_status_text($status)) . '</div></div>'
            . '<div class="row product-actions-wrapper"><div class="' . ($six ? 'col-xs-12' : 'col-12') . '">'
            . '<a href="clientarea.php?action=cancel&amp;id=' . $id . '" class="btn btn-block btn-danger" data-standin="cancel">'
            . $L['clientareacancelrequestbutton'] . '</a></div></div>';
        $row = '<div class="row"><div class="col-md-6">' . $left . '</div><div class="col-md-6 text-center">' . $right . '</div></div>';
        $billing = $six
            ? '<div class="product-details clearfix" data-standin="billing">' . $row . '</div>'
            : '<div class="card" data-standin="billing"><div class="card-body"><div class="product-details">' . $row . '</div></div></div>';
    }

    $tabs = '';
    if ($svc['domain'] !== '' || $moduleOutput !== '') {
        $pane = $svc['domain'] !== '' ? 'domain' : 'manage';
        $label = $pane === 'domain' ? $L['clientareahostingdomain'] : $L['manage'];
        $inner = '';
        if ($pane === 'domain') {
            $inner .= '<div class="row"><div class="' . ($six ? 'col-sm-5' : 'col-sm-5') . ' text-right"><strong>' . $L['clientareahostingdomain']
                . '</strong></div><div class="col-sm-7 text-left">' . standin_h($svc['domain']) . '</div></div><br>'
                . '<p><a href="http://' . standin_h($svc['domain']) . '" class="btn btn-default' . ($six ? '' : ' btn-light') . '" target="_blank">'
                . $L['visitwebsite'] . '</a></p>';
        }
        if ($moduleOutput !== '') {
            $inner .= '<div class="text-center module-client-area" data-standin="module-output">' . $moduleOutput . '</div>';
        }
        if ($six) {
            $tabs = '<ul class="nav nav-tabs nav-tabs-overflow"><li class="active"><a href="#' . $pane . '" data-toggle="tab">' . $label . '</a></li></ul>'
                . '<div class="tab-content product-details-tab-container"><div class="tab-pane fade in active text-center" id="' . $pane . '">'
                . $inner . '</div></div>';
        } else {
            $tabs = '<ul class="nav nav-tabs responsive-tabs-sm"><li class="nav-item"><a href="#' . $pane . '" data-toggle="tab" class="nav-link active">'
                . $label . '</a></li></ul>'
                . '<div class="tab-content bg-white product-details-tab-container"><div class="tab-pane fade show active text-center" role="tabpanel" id="'
                . $pane . '">' . $inner . '</div></div>';
        }
    }
    return '<div class="tab-content margin-bottom"><div class="tab-pane fade ' . ($six ? 'in' : 'show') . ' active" id="tabOverview">'
        . $billing . $tabs . '</div></div>';
}
