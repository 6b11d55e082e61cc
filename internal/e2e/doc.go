// Package e2e holds the end-to-end tests: the real module PHP under
// php-cli, spawning the real pvekeep binary, which talks to the Proxmox
// simulator over HTTPS and to a throwaway MariaDB database. Nothing here is
// a double: if these pass, the panel sees what a customer would see. The
// pages are served by the WHMCS stand-in (hooks/standin under php -S,
// loading the packaged module from dist/, docs/whmcs.md), rendered by real
// Smarty 4 inside the twenty-one and six themes' Bootstrap, and looked at in
// headless Chromium (browser_test.go, clientarea_test.go, standin_test.go).
//
// The binary is PVEKEEP_BIN when set (make test builds it), else built once
// by TestMain.
package e2e
