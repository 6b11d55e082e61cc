<?php

/**
 * Loads the module's classes and the WHMCS stand-ins of fixtures/whmcs.php
 * for every test file (each requires this once).
 */

require_once __DIR__ . '/fixtures/whmcs.php';
require_once __DIR__ . '/fixtures/FakePlugin.php';
require_once dirname(__DIR__) . '/lib/Client.php';
