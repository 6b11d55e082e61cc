<?php

/**
 * The module as WHMCS loads and calls it: hooks.php on every request (WHMCS
 * loads the hooks of every active module at start), the module file when a
 * module function is needed, $params built from WHMCS's tables.
 */

const STANDIN_MODULE = 'pvekeep';

function standin_load_module()
{
    static $loaded = false;
    if (!$loaded) {
        $dir = standin_module_dir();
        if (is_file($dir . '/hooks.php')) {
            require_once $dir . '/hooks.php';
        }
        require_once $dir . '/pvekeep.php';
        $loaded = true;
    }
}

function standin_has($fn)
{
    standin_load_module();
    return function_exists(STANDIN_MODULE . '_' . $fn);
}

function standin_call($fn, ...$args)
{
    standin_load_module();
    $name = STANDIN_MODULE . '_' . $fn;
    if (!function_exists($name)) {
        throw new \RuntimeException("the module has no $name()");
    }
    return $name(...$args);
}

/** The module's MetaData (empty when it has none). */
function standin_meta()
{
    return standin_has('MetaData') ? (array) standin_call('MetaData') : [];
}

/** "value|Display Name" → "value", as WHMCS passes option and field names to modules. */
function standin_before_pipe($s)
{
    $i = strpos((string) $s, '|');
    return $i === false ? (string) $s : substr((string) $s, 0, $i);
}

/**
 * The server fields of $params from a tblservers row (or none: "server" false
 * and empty fields). The password is stored encrypted and handed decrypted.
 */
function standin_server_params($server)
{
    if (!$server) {
        return ['server' => false, 'serverid' => 0, 'serverip' => '', 'serverhostname' => '', 'serverusername' => '',
            'serverpassword' => '', 'serveraccesshash' => '', 'serversecure' => false, 'serverhttpprefix' => 'http', 'serverport' => ''];
    }
    $secure = $server['secure'] === 'on' || $server['secure'] === '1';
    $port = (string) ($server['port'] ?? '');
    if ($port === '' || $port === '0') {
        $meta = standin_meta();
        $port = (string) ($secure ? ($meta['DefaultSSLPort'] ?? '') : ($meta['DefaultNonSSLPort'] ?? ''));
    }
    return [
        'server' => true, 'serverid' => (int) $server['id'], 'serverip' => (string) $server['ipaddress'],
        'serverhostname' => (string) $server['hostname'], 'serverusername' => (string) $server['username'],
        'serverpassword' => decrypt($server['password']), 'serveraccesshash' => (string) $server['accesshash'],
        'serversecure' => $secure, 'serverhttpprefix' => $secure ? 'https' : 'http', 'serverport' => $port,
    ];
}

function standin_clientsdetails(array $c)
{
    return [
        'userid' => (int) $c['id'], 'id' => (int) $c['id'], 'uuid' => $c['uuid'], 'firstname' => $c['firstname'],
        'lastname' => $c['lastname'], 'fullname' => trim($c['firstname'] . ' ' . $c['lastname']),
        'companyname' => $c['companyname'], 'email' => $c['email'], 'address1' => $c['address1'],
        'address2' => $c['address2'], 'city' => $c['city'], 'fullstate' => $c['state'], 'state' => $c['state'],
        'postcode' => $c['postcode'], 'countrycode' => $c['country'], 'country' => $c['country'],
        'phonenumber' => $c['phonenumber'], 'status' => $c['status'], 'language' => $c['language'],
        'currency' => (int) $c['currency'], 'groupid' => (int) $c['groupid'], 'credit' => $c['credit'],
    ];
}

/** A service's row with its product, or null. */
function standin_service($serviceId)
{
    return standin_row('SELECT h.*, p.name AS product_name, p.type AS product_type, p.servertype, p.servergroup, g.name AS group_name
        FROM tblhosting h JOIN tblproducts p ON p.id = h.packageid LEFT JOIN tblproductgroups g ON g.id = p.gid
        WHERE h.id = ?', [(int) $serviceId]);
}

/**
 * $params for a service, as WHMCS builds them (developers.whmcs.com
 * provisioning-modules/module-parameters).
 */
function standin_params($serviceId)
{
    $h = standin_service($serviceId);
    if ($h === null) {
        throw new \RuntimeException("no service $serviceId");
    }
    $p = standin_row('SELECT * FROM tblproducts WHERE id = ?', [(int) $h['packageid']]);
    $c = standin_row('SELECT * FROM tblclients WHERE id = ?', [(int) $h['userid']]);
    $server = (int) $h['server'] > 0 ? standin_row('SELECT * FROM tblservers WHERE id = ?', [(int) $h['server']]) : null;

    $params = [
        'accountid' => (int) $h['id'], 'serviceid' => (int) $h['id'], 'addonId' => 0, 'userid' => (int) $h['userid'],
        'domain' => (string) $h['domain'], 'username' => (string) $h['username'], 'password' => decrypt($h['password']),
        'dedicatedip' => (string) $h['dedicatedip'], 'assignedips' => (string) $h['assignedips'],
        'packageid' => (int) $p['id'], 'pid' => (int) $p['id'], 'serverid' => (int) $h['server'],
        'status' => (string) $h['domainstatus'], 'type' => (string) $p['type'], 'producttype' => (string) $p['type'],
        'moduletype' => (string) $p['servertype'],
    ];
    for ($i = 1; $i <= 24; $i++) {
        $params['configoption' . $i] = (string) $p['configoption' . $i];
    }

    $custom = [];
    foreach (standin_rows("SELECT f.fieldname, v.value FROM tblcustomfields f
        LEFT JOIN tblcustomfieldsvalues v ON v.fieldid = f.id AND v.relid = ?
        WHERE f.type = 'product' AND f.relid = ? ORDER BY f.sortorder, f.id", [(int) $h['id'], (int) $p['id']]) as $r) {
        $custom[standin_before_pipe($r['fieldname'])] = (string) ($r['value'] ?? '');
    }
    $params['customfields'] = $custom;

    // Configurable options of the groups linked to the product, with the
    // service's choice: a dropdown/radio gives its sub-option's value (before
    // "|"), yes/no and quantity give the quantity.
    $options = [];
    foreach (standin_rows('SELECT o.id, o.optionname, o.optiontype, hc.optionid AS chosen, hc.qty, s.optionname AS subname
        FROM tblproductconfiglinks l JOIN tblproductconfigoptions o ON o.gid = l.gid
        LEFT JOIN tblhostingconfigoptions hc ON hc.configid = o.id AND hc.relid = ?
        LEFT JOIN tblproductconfigoptionssub s ON s.id = hc.optionid
        WHERE l.pid = ? ORDER BY o.`order`, o.id', [(int) $h['id'], (int) $p['id']]) as $r) {
        $type = (int) $r['optiontype'];
        $name = standin_before_pipe($r['optionname']);
        if ($type === 3 || $type === 4) {
            $options[$name] = (int) ($r['qty'] ?? 0);
        } else {
            $options[$name] = $r['subname'] === null ? '' : standin_before_pipe($r['subname']);
        }
    }
    $params['configoptions'] = $options;
    $params['model'] = new \WHMCS\Service\Service($h);
    $params += standin_server_params($server);
    $params['clientsdetails'] = $c ? standin_clientsdetails($c) : [];
    return $params;
}

/** The first server of the module in a server group (or any, for group 0). */
function standin_group_server($groupId)
{
    if ((int) $groupId > 0) {
        $s = standin_row('SELECT s.* FROM tblservergroupsrel r JOIN tblservers s ON s.id = r.serverid
            WHERE r.groupid = ? AND s.type = ? ORDER BY s.id LIMIT 1', [(int) $groupId, STANDIN_MODULE]);
        if ($s) {
            return $s;
        }
    }
    return standin_row('SELECT * FROM tblservers WHERE type = ? AND disabled = 0 ORDER BY id LIMIT 1', [STANDIN_MODULE]);
}

/**
 * A module command as WHMCS runs it from the admin area (or the system):
 * PreModule<Command> hooks first (abortcmd stops it with WHMCS's own
 * message), then the function, then on "success" the status change and
 * AfterModule<Command>. Returns [ok, message].
 */
function standin_module_command($command, $serviceId, array $extra = [])
{
    $functions = [
        'Create' => 'CreateAccount', 'Suspend' => 'SuspendAccount', 'Unsuspend' => 'UnsuspendAccount',
        'Terminate' => 'TerminateAccount', 'ChangePackage' => 'ChangePackage', 'ChangePassword' => 'ChangePassword',
        'Renew' => 'Renew',
    ];
    $newStatus = ['Create' => 'Active', 'Suspend' => 'Suspended', 'Unsuspend' => 'Active', 'Terminate' => 'Terminated'];
    if (!isset($functions[$command])) {
        throw new \InvalidArgumentException("unknown module command $command");
    }
    $params = standin_params($serviceId) + $extra;
    if (standin_hook_aborts(run_hook('PreModule' . $command, ['params' => $params]))) {
        return [false, 'Function Aborted by Action Hook Code'];
    }
    if (!standin_has($functions[$command])) {
        return [false, 'Function Not Supported by Module'];
    }
    $result = standin_call($functions[$command], $params);
    if ($result !== 'success') {
        run_hook('AfterModule' . $command . 'Failed', ['params' => $params, 'failureResponseMessage' => $result]);
        return [false, (string) $result];
    }
    if (isset($newStatus[$command])) {
        standin_exec('UPDATE tblhosting SET domainstatus = ? WHERE id = ?', [$newStatus[$command], (int) $serviceId]);
    }
    if ($command === 'Suspend') {
        standin_exec('UPDATE tblhosting SET suspendreason = ? WHERE id = ?', [(string) ($extra['suspendreason'] ?? ''), (int) $serviceId]);
    }
    run_hook('AfterModule' . $command, ['params' => $params]);
    return [true, 'success'];
}

/** An admin custom button (AdminCustomButtonArray): PreModuleCustom, then the function. */
function standin_admin_custom($function, $serviceId)
{
    $params = standin_params($serviceId);
    $buttons = standin_has('AdminCustomButtonArray') ? (array) standin_call('AdminCustomButtonArray', $params) : [];
    if (!in_array($function, array_values($buttons), true)) {
        return [false, 'Invalid Access Attempt'];
    }
    if (standin_hook_aborts(run_hook('PreModuleCustom', ['params' => $params]))) {
        return [false, 'Function Aborted by Action Hook Code'];
    }
    $result = standin_call($function, $params);
    return [$result === 'success', (string) $result];
}

/** TestConnection for a tblservers row: the server fields only, as WHMCS's Test Connection button sends them. */
function standin_test_connection($serverId)
{
    $s = standin_row('SELECT * FROM tblservers WHERE id = ?', [(int) $serverId]);
    if (!$s) {
        throw new \RuntimeException("no server $serverId");
    }
    if (!standin_has('TestConnection')) {
        return ['success' => false, 'error' => 'Test Connection is not supported by the module'];
    }
    $params = standin_server_params($s);
    unset($params['server']);
    $r = standin_call('TestConnection', $params);
    if (!is_array($r) || !array_key_exists('success', $r)) {
        throw new \UnexpectedValueException('TestConnection must return [success, error]; got ' . var_export($r, true));
    }
    return $r;
}

/**
 * ConfigOptions for a product, each Loader called with the server params of
 * the product's server group; a Loader's exception becomes the field's error.
 */
function standin_config_options($productId)
{
    $p = standin_row('SELECT * FROM tblproducts WHERE id = ?', [(int) $productId]);
    if (!$p) {
        throw new \RuntimeException("no product $productId");
    }
    $server = standin_group_server($p['servergroup']);
    $params = standin_server_params($server);
    $out = [];
    $i = 0;
    foreach ((array) standin_call('ConfigOptions', $params) as $key => $field) {
        $i++;
        // WHMCS stores configoption1..24 and knows six field types; a 25th
        // setting or another type would never reach the module.
        if ($i > 24) {
            throw new \UnexpectedValueException("ConfigOptions: setting $i ($key): WHMCS supports up to 24");
        }
        $type = is_array($field) ? ($field['Type'] ?? '') : '';
        if (!in_array($type, ['text', 'password', 'yesno', 'dropdown', 'radio', 'textarea'], true)) {
            throw new \UnexpectedValueException("ConfigOptions: setting $key has type '$type', not one WHMCS renders");
        }
        $row = ['n' => $i, 'key' => $key, 'field' => $field, 'value' => (string) $p['configoption' . $i]];
        if (isset($field['Loader'])) {
            try {
                $row['options'] = call_user_func($field['Loader'], $params);
            } catch (\Throwable $e) {
                $row['error'] = $e->getMessage();
            }
        }
        $out[] = $row;
    }
    return $out;
}
