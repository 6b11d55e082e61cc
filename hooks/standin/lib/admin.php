<?php

/**
 * The admin area pages the module reaches:
 *
 * admin/clientsservices.php?userid=U&id=N — the service form. The module's
 *   AdminServicesTabFields rows sit inside WHMCS's big service form; "Save
 *   Changes" posts the whole form (token included) and WHMCS calls
 *   AdminServicesTabFieldsSave($params), the module reading $_POST itself.
 *   The module command buttons (Create, Suspend, Unsuspend, Terminate,
 *   Change Package, and AdminCustomButtonArray's) post only the token: NO
 *   module fields. Their answer is shown raw ("Module Command Error" box).
 * admin/configservers.php?action=manage&id=S — a server with WHMCS's "Test
 *   Connection" button: TestConnection($params of the server), its error
 *   shown raw.
 *
 * WHMCS checks the CSRF token on every admin POST itself.
 */

function standin_admin($script)
{
    define('ADMINAREA', true);
    if ((int) ($_SESSION['adminid'] ?? 0) <= 0) {
        standin_redirect('/admin/login.php');
        return;
    }
    if (($_SERVER['REQUEST_METHOD'] ?? 'GET') === 'POST') {
        check_token('WHMCS.admin.default');
    }
    if ($script === 'clientsservices.php') {
        standin_admin_service((int) ($_GET['id'] ?? 0));
    } elseif ($script === 'configservers.php') {
        standin_admin_server((int) ($_GET['id'] ?? 0));
    } else {
        http_response_code(404);
        echo standin_admin_page('Not found', '<p>The stand-in has no admin/' . standin_h($script) . '.</p>');
    }
}

function standin_admin_result($ok, $message, $what)
{
    // WHMCS's admin info boxes: the module's string is printed as returned.
    return $ok
        ? '<div class="successbox" data-standin-result="success"><strong>' . standin_h($what) . ' Success</strong><br>' . ($message === 'success' ? 'The command completed successfully' : $message) . '</div>'
        : '<div class="errorbox" data-standin-result="error"><strong>' . standin_h($what) . ' Error</strong><br>' . $message . '</div>';
}

function standin_admin_service($id)
{
    $svc = standin_service($id);
    if ($svc === null) {
        http_response_code(404);
        echo standin_admin_page('Products/Services', '<p>Service not found.</p>');
        return;
    }
    $base = 'clientsservices.php?userid=' . (int) $svc['userid'] . '&id=' . $id;
    $box = '';
    if (($_SERVER['REQUEST_METHOD'] ?? 'GET') === 'POST') {
        $modop = (string) ($_REQUEST['modop'] ?? '');
        $commands = ['create' => 'Create', 'suspend' => 'Suspend', 'unsuspend' => 'Unsuspend', 'terminate' => 'Terminate',
            'changepackage' => 'ChangePackage'];
        if (isset($commands[$modop])) {
            $extra = $modop === 'suspend' ? ['suspendreason' => html_entity_decode((string) ($_POST['suspreason'] ?? ''), ENT_QUOTES, 'UTF-8')] : [];
            [$ok, $msg] = standin_module_command($commands[$modop], $id, $extra);
            $box = standin_admin_result($ok, $msg, 'Module Command');
        } elseif ($modop === 'custom') {
            [$ok, $msg] = standin_admin_custom((string) ($_REQUEST['ac'] ?? ''), $id);
            $box = standin_admin_result($ok, $msg, 'Module Command');
        } elseif (isset($_POST['standin_save'])) {
            $status = html_entity_decode((string) ($_POST['domainstatus'] ?? $svc['domainstatus']), ENT_QUOTES, 'UTF-8');
            $domain = html_entity_decode((string) ($_POST['domain'] ?? $svc['domain']), ENT_QUOTES, 'UTF-8');
            standin_exec('UPDATE tblhosting SET domainstatus = ?, domain = ? WHERE id = ?', [$status, $domain, $id]);
            if (standin_has('AdminServicesTabFieldsSave')) {
                standin_call('AdminServicesTabFieldsSave', standin_params($id));
            }
            standin_redirect($base . '&success=true', 303);
            return;
        }
        $svc = standin_service($id);
    } elseif (!empty($_GET['success'])) {
        $box = '<div class="successbox" data-standin-result="saved"><strong>Changes Saved Successfully!</strong></div>';
    }

    $params = standin_params($id);
    $fields = standin_has('AdminServicesTabFields') ? (array) standin_call('AdminServicesTabFields', $params) : [];
    $token = generate_token('plain');

    $cmds = [];
    foreach (['create' => 'Create', 'suspend' => 'Suspend', 'unsuspend' => 'Unsuspend', 'terminate' => 'Terminate',
        'changepackage' => 'Change Package'] as $op => $label) {
        $cmds[] = ['standin-cmd-' . $op, $base . '&modop=' . $op, $label, $op];
    }
    if (standin_has('AdminCustomButtonArray')) {
        foreach ((array) standin_call('AdminCustomButtonArray', $params) as $label => $fn) {
            $cmds[] = ['standin-cmd-custom-' . preg_replace('/[^A-Za-z0-9_-]/', '', $fn), $base . '&modop=custom&ac=' . rawurlencode($fn), $label, 'custom-' . $fn];
        }
    }
    $cmdForms = '';
    $cmdButtons = '';
    foreach ($cmds as [$formId, $action, $label, $key]) {
        $cmdForms .= '<form id="' . standin_h($formId) . '" method="post" action="' . standin_h($action) . '"><input type="hidden" name="token" value="' . standin_h($token) . '"></form>';
        if ($key === 'suspend') {
            // WHMCS asks for the reason with the Suspend button.
            $cmdButtons .= '<input type="text" name="suspreason" form="' . standin_h($formId) . '" class="form-control input-sm"'
                . ' style="display:inline-block;width:auto" placeholder="Suspension Reason" data-standin="suspend-reason"> ';
        }
        $cmdButtons .= '<button type="submit" form="' . standin_h($formId) . '" class="btn btn-default" data-standin-command="' . standin_h($key) . '">' . standin_h($label) . '</button> ';
    }

    $statuses = '';
    foreach (['Pending', 'Active', 'Suspended', 'Terminated', 'Cancelled', 'Fraud', 'Completed'] as $st) {
        $statuses .= '<option' . ($st === $svc['domainstatus'] ? ' selected' : '') . '>' . $st . '</option>';
    }
    $rows = '<tr><td class="fieldlabel">Product/Service</td><td class="fieldarea">' . standin_h($svc['product_name']) . '</td></tr>'
        . '<tr><td class="fieldlabel">Domain</td><td class="fieldarea"><input type="text" name="domain" class="form-control input-sm" value="' . standin_h($svc['domain']) . '"></td></tr>'
        . '<tr><td class="fieldlabel">Status</td><td class="fieldarea"><select name="domainstatus" class="form-control input-sm">' . $statuses . '</select></td></tr>'
        . '<tr><td class="fieldlabel">Registration Date</td><td class="fieldarea">' . standin_h(standin_format_date($svc['regdate'])) . '</td></tr>'
        . '<tr><td class="fieldlabel">Next Due Date</td><td class="fieldarea">' . standin_h(standin_format_date($svc['nextduedate'])) . '</td></tr>'
        . '<tr><td class="fieldlabel">Module Commands</td><td class="fieldarea" data-standin="module-commands">' . $cmdButtons . '</td></tr>';
    foreach ($fields as $label => $html) {
        // WHMCS prints the label and the field HTML as the module returns them.
        $rows .= '<tr data-standin="module-field"><td class="fieldlabel">' . $label . '</td><td class="fieldarea">' . $html . '</td></tr>';
    }
    $form = '<form method="post" action="' . standin_h($base) . '" id="frmServiceDetails">'
        . '<input type="hidden" name="token" value="' . standin_h($token) . '"><input type="hidden" name="standin_save" value="1">'
        . '<table class="form">' . $rows . '</table>'
        . '<p class="text-center"><button type="submit" class="btn btn-primary" data-standin="save">Save Changes</button></p></form>';
    echo standin_admin_page('Products/Services', $box . $form . $cmdForms);
}

function standin_admin_server($id)
{
    $s = standin_row('SELECT * FROM tblservers WHERE id = ?', [$id]);
    if (!$s) {
        http_response_code(404);
        echo standin_admin_page('Servers', '<p>Server not found.</p>');
        return;
    }
    $box = '';
    if (($_SERVER['REQUEST_METHOD'] ?? 'GET') === 'POST' && ($_GET['action'] ?? '') === 'testconnection') {
        $r = standin_test_connection($id);
        $box = !empty($r['success'])
            ? '<div class="successbox" data-standin-result="success"><strong>Test Connection Successful</strong></div>'
            : '<div class="errorbox" data-standin-result="error"><strong>Test Connection Failed</strong><br>' . (string) ($r['error'] ?? '') . '</div>';
    }
    $rows = '';
    foreach (['name' => 'Name', 'hostname' => 'Hostname', 'port' => 'Port', 'username' => 'Username', 'accesshash' => 'Access Hash', 'secure' => 'Secure'] as $k => $label) {
        $rows .= '<tr><td class="fieldlabel">' . $label . '</td><td class="fieldarea">' . standin_h($s[$k]) . '</td></tr>';
    }
    $rows .= '<tr><td class="fieldlabel">Password</td><td class="fieldarea">' . ($s['password'] !== '' ? '(encrypted)' : '(empty)') . '</td></tr>';
    $form = '<form method="post" action="configservers.php?action=testconnection&amp;id=' . $id . '">' . generate_token('form')
        . '<button type="submit" class="btn btn-default" data-standin="test-connection">Test Connection</button></form>';
    echo standin_admin_page('Servers', $box . '<table class="form">' . $rows . '</table>' . $form);
}
