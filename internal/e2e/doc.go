// Package e2e holds the end-to-end tests: the real module PHP under
// php-cli, spawning the real pvekeep binary, which talks to the Proxmox
// simulator over HTTPS and to a throwaway MariaDB database. Nothing here is
// a double: if these pass, the panel sees what a customer would see. The
// client-area page is rendered by real Smarty 4 (hooks/demo/clientarea.php
// under php -S) and looked at in headless Chromium (clientarea_test.go).
//
// The binary is PVEKEEP_BIN when set (make test builds it), else built once
// by TestMain.
package e2e
