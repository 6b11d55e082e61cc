<?php

/**
 * pvekeep — WHMCS server module for Proxmox KVM backups.
 *
 * The entry points WHMCS calls, each handing over to one class in lib/
 * (namespace WHMCS\Module\Server\Pvekeep): Lifecycle (create, suspend,
 * unsuspend, change package, terminate), ClientAreaView (the page and its
 * poll), ClientActions (the page's forms), AdminView and AdminActions (the
 * admin's fields and buttons), ProductSettings and ConnectionTest (setup),
 * Rpc (every plugin call, logged by ModuleLog). No SQL, no Proxmox calls,
 * no business rules here: those live in the plugin.
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

require_once __DIR__ . '/lib/Client.php';

use WHMCS\Module\Server\Pvekeep\AdminActions;
use WHMCS\Module\Server\Pvekeep\AdminView;
use WHMCS\Module\Server\Pvekeep\ClientActions;
use WHMCS\Module\Server\Pvekeep\ClientAreaView;
use WHMCS\Module\Server\Pvekeep\ConnectionTest;
use WHMCS\Module\Server\Pvekeep\Lifecycle;
use WHMCS\Module\Server\Pvekeep\ProductSettings;

function pvekeep_MetaData()
{
    return [
        'DisplayName' => 'pvekeep (Proxmox KVM backups)',
        'APIVersion' => '1.1',
        'RequiresServer' => true,
        'DefaultSSLPort' => '8006',
    ];
}

/** Product settings: configoption1..22, in their public order. */
function pvekeep_ConfigOptions()
{
    return ProductSettings::options();
}

function pvekeep_LoadBackupStorages(array $params)
{
    return ProductSettings::load(__FUNCTION__, $params);
}

function pvekeep_LoadBridges(array $params)
{
    return ProductSettings::load(__FUNCTION__, $params);
}

function pvekeep_LoadDiskStorages(array $params)
{
    return ProductSettings::load(__FUNCTION__, $params);
}

function pvekeep_LoadTemplates(array $params)
{
    return ProductSettings::load(__FUNCTION__, $params);
}

function pvekeep_TestConnection(array $params)
{
    return ConnectionTest::run($params);
}

/**
 * A new order: the plugin clones the product's template into a new VM,
 * sets its cloud-init (hostname, user, password, SSH key, IP), puts it at
 * the package and starts it, as a job the cron carries on.
 */
function pvekeep_CreateAccount(array $params)
{
    return Lifecycle::run('CreateAccount', $params);
}

/** Stops the VM; the client's actions are refused until Unsuspend. */
function pvekeep_SuspendAccount(array $params)
{
    return Lifecycle::run('SuspendAccount', $params);
}

function pvekeep_UnsuspendAccount(array $params)
{
    return Lifecycle::run('UnsuspendAccount', $params);
}

/** Puts the VM at the new package; disks only grow (a shrink is refused). */
function pvekeep_ChangePackage(array $params)
{
    return Lifecycle::run('ChangePackage', $params);
}

/**
 * Stops and destroys the VM; its backups are removed after the grace the
 * product's More Settings give (terminate_grace_days).
 */
function pvekeep_TerminateAccount(array $params)
{
    return Lifecycle::run('TerminateAccount', $params);
}

/** The overview tab's backups block, or the page's JSON poll. */
function pvekeep_ClientArea(array $params)
{
    return ClientAreaView::page($params);
}

/** What the page's forms post to; WHMCS refuses any other name. */
function pvekeep_ClientAreaAllowedFunctions()
{
    return array_keys(ClientActions::ACTIONS);
}

/**
 * WHMCS turns these into GET links in the sidebar: nothing that changes
 * anything belongs there, so there are none (the page has the forms).
 */
function pvekeep_ClientAreaCustomButtonArray()
{
    return [];
}

function pvekeep_backupCreate(array $params)
{
    return ClientActions::respond('backupCreate', $params);
}

function pvekeep_backupRemove(array $params)
{
    return ClientActions::respond('backupRemove', $params);
}

/**
 * Overwrites the VM with the backup (its disks and snapshots are replaced;
 * the page says so before the click), then the plugin puts the VM back to
 * the package and emails the client.
 */
function pvekeep_backupRestore(array $params)
{
    return ClientActions::respond('backupRestore', $params);
}

function pvekeep_restoreRetry(array $params)
{
    return ClientActions::respond('restoreRetry', $params);
}

function pvekeep_restoreReinstall(array $params)
{
    return ClientActions::respond('restoreReinstall', $params);
}

/** The weekday grid: which days a backup is taken, at what time, in which zone. */
function pvekeep_scheduleSave(array $params)
{
    return ClientActions::respond('scheduleSave', $params);
}

/** Keep (or stop keeping) a backup: a kept one is never rotated away. */
function pvekeep_backupProtect(array $params)
{
    return ClientActions::respond('backupProtect', $params);
}

function pvekeep_snapshotCreate(array $params)
{
    return ClientActions::respond('snapshotCreate', $params);
}

/**
 * Puts the VM back to the snapshot: what changed since is lost (the page
 * says so before the click); the VM runs afterwards if it ran before.
 */
function pvekeep_snapshotRollback(array $params)
{
    return ClientActions::respond('snapshotRollback', $params);
}

function pvekeep_snapshotRemove(array $params)
{
    return ClientActions::respond('snapshotRemove', $params);
}

/** Retry and Reinstall are listed only while a failed restore offers them. */
function pvekeep_AdminCustomButtonArray(array $params = [])
{
    return AdminActions::buttons($params);
}

function pvekeep_adminBackupCreate(array $params)
{
    return AdminActions::run('adminBackupCreate', $params);
}

function pvekeep_adminBackupRestore(array $params)
{
    return AdminActions::run('adminBackupRestore', $params);
}

function pvekeep_adminBackupRemove(array $params)
{
    return AdminActions::run('adminBackupRemove', $params);
}

function pvekeep_adminRestoreRetry(array $params)
{
    return AdminActions::run('adminRestoreRetry', $params);
}

/** Only for a failed restore, and only once confirmed in the fields below. */
function pvekeep_adminRestoreReinstall(array $params)
{
    return AdminActions::run('adminRestoreReinstall', $params);
}

function pvekeep_AdminServicesTabFields(array $params)
{
    return AdminView::fields($params);
}

function pvekeep_AdminServicesTabFieldsSave(array $params)
{
    AdminView::save($params);
}
