<?php

/**
 * Loads the pvekeep JSON-RPC client. The module, its hooks and the cron
 * entry require this one file.
 */

require_once __DIR__ . '/PvekeepException.php';
require_once __DIR__ . '/PvekeepRpcException.php';
require_once __DIR__ . '/PvekeepTransportException.php';
require_once __DIR__ . '/PvekeepClient.php';
require_once __DIR__ . '/server.php';
