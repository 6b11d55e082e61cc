<?php

/**
 * A module that trusts WHMCS, for TestStandinIsAsHarshAsWHMCS: it prints
 * what it is given and returns HTML, so the test sees what the stand-in
 * (like WHMCS) does with that. Not the real module.
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

function pvekeep_MetaData()
{
    return ['DisplayName' => 'stand-in fixture', 'APIVersion' => '1.1', 'RequiresServer' => true];
}

function pvekeep_ConfigOptions()
{
    return [];
}

function pvekeep_ClientAreaAllowedFunctions()
{
    return ['shout', 'sloppy'];
}

/** Returns the request's "say" inside HTML: WHMCS prints it raw. */
function pvekeep_shout(array $params)
{
    return '<b id="fixture-raw">' . $_REQUEST['say'] . '</b>';
}

/** Reads a key that is not there: a warning, which the stand-in makes fatal. */
function pvekeep_sloppy(array $params)
{
    $none = [];
    return $none['missing'];
}

function pvekeep_ClientArea(array $params)
{
    return [
        'tabOverviewModuleOutputTemplate' => 'templates/fixture', // no .tpl: WHMCS accepts both
        'templateVariables' => ['said' => isset($_GET['say']) ? $_GET['say'] : ''],
    ];
}

/**
 * The module commands: "success", except for a service whose domain is
 * refuse.example.test, where each answers a refusal (as HTML, to be shown
 * as WHMCS shows it).
 */
function fixture_command(array $params)
{
    return ($params['domain'] ?? '') === 'refuse.example.test' ? 'refused <i>by</i> the fixture' : 'success';
}

function pvekeep_CreateAccount(array $params)
{
    return fixture_command($params);
}

function pvekeep_SuspendAccount(array $params)
{
    return fixture_command($params);
}

function pvekeep_UnsuspendAccount(array $params)
{
    return fixture_command($params);
}

function pvekeep_TerminateAccount(array $params)
{
    return fixture_command($params);
}

function pvekeep_ChangePackage(array $params)
{
    return fixture_command($params);
}
