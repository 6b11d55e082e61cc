# pvekeep — see README.md. Every target that needs MariaDB, PHP or Chromium
# runs .ci/bringup.sh first, which installs and starts what is missing.

GO        ?= go
BIN       := bin/pvekeep
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
BRINGUP   := .ci/bringup.sh
PKG_DIR   := dist/modules/servers/pvekeep

.PHONY: build test demo bench compat lint package clean

# Static (no libc at all, so any Linux runs it: DESIGN §9), reproducible paths.
GOBUILD   := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'
ARCHES    := amd64 arm64

build:
	$(GOBUILD) -o $(BIN) ./plugin

# The whole suite against real MariaDB, php-cli, the simulator and an SMTP server.
# PVEKEEP_TEST_DISALLOW_SKIP turns "service not reachable" skips into failures.
# There is no live Proxmox VE here, and we say so (PVEKEEP_TEST_REQUIRE_LIVE_PVE=0);
# `make test PVEKEEP_TEST_REQUIRE_LIVE_PVE=1` with PVEKEEP_TEST_PVE_* set runs the live suite.
PVEKEEP_TEST_REQUIRE_LIVE_PVE ?= 0
# `out=$$(…) && eval` so a failing bring-up stops the target (eval "" is 0).
# The stand-in loads dist/, and plugin/package_test.go checks it: package first.
test: build package
	@out=$$($(BRINGUP)) && eval "$$out" && \
	  PVEKEEP_TEST_DISALLOW_SKIP=1 PVEKEEP_TEST_REQUIRE_LIVE_PVE=$(PVEKEEP_TEST_REQUIRE_LIVE_PVE) \
	  PVEKEEP_BIN=$(CURDIR)/$(BIN) \
	  $(GO) test -count=1 -timeout 20m ./...
	phpunit --colors=never hooks/tests
	.ci/compat.sh --quick

# The module as packaged, in the WHMCS stand-in (hooks/standin), against the
# simulator: prints the pages to open; on a terminal it keeps serving them.
demo: build package
	@out=$$($(BRINGUP) --no-browser) && eval "$$out" && $(BIN) demo --bin $(CURDIR)/$(BIN) --repo $(CURDIR)

# Figures, not assertions (issue 7's Measure): a client page view's plugin
# time from PHP over 200 views, spawned and on the warm socket, Proxmox normal
# and 2 s slow; process start against a hello-world Go binary; the floor.
# Then a restore's reconcile share (a restore takes seconds, so 10 of those),
# and a CreateAccount's time to a running VM at its package, Proxmox's tasks
# and the plugin's own share apart, at simulator speed 20 (5 of those).
# Then issue 9's: one cron tick over 10,000 services on 50 nodes, idle and
# with a seventh of them due (wall, Proxmox calls, statements, peak heap).
bench: build
	@out=$$($(BRINGUP) --no-browser) && eval "$$out" && \
	  PVEKEEP_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench 'PageView|ProcessStart|Floor' -benchtime 200x ./internal/e2e/ && \
	  PVEKEEP_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench 'RestoreReconcile' -benchtime 10x ./internal/e2e/ && \
	  PVEKEEP_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench 'CreateToRunningVM' -benchtime 5x ./internal/e2e/ && \
	  PVEKEEP_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench 'ScheduleTick' -benchtime 1x ./internal/service/

# The PHP WHMCS loads, on PHP 7.4 for real (a cached Debian bullseye root;
# built once) and on the host's PHP: php -l and PHPUnit, then internal/e2e
# with PHP 7.4 as its php (root; ~2 min). Run it before every resolve; `make test`
# runs its static scan and, when the root already exists, php -l and PHPUnit on
# 7.4 (seconds; never the e2e part). Without root: .ci/compat.sh (no e2e).
compat: package
	.ci/compat.sh --e2e

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@for f in $$(git ls-files '*.php'); do php -l $$f >/dev/null || exit 1; done

# A WHMCS-ready modules/servers/pvekeep/ folder (and a tarball of it): what
# WHMCS loads and the binaries, nothing else (no Go, no tests, no stand-in,
# no email .tmpl: the binary embeds those). bin/ and cronjob/ are denied to
# the web server (Apache 2.4 and 2.2 syntax); cron.php runs from the CLI.
# plugin/package_test.go checks the result (make test).
define DENY_HTACCESS
# Nothing here is for the web: the binaries and the CLI cron entry.
<IfModule mod_authz_core.c>
    Require all denied
</IfModule>
<IfModule !mod_authz_core.c>
    Order allow,deny
    Deny from all
</IfModule>
endef
export DENY_HTACCESS

package:
	rm -rf dist && mkdir -p $(PKG_DIR)/bin $(PKG_DIR)/lib $(PKG_DIR)/templates $(PKG_DIR)/lang $(PKG_DIR)/cronjob
	for arch in $(ARCHES); do GOOS=linux GOARCH=$$arch $(GOBUILD) -o $(PKG_DIR)/bin/pvekeep-linux-$$arch ./plugin || exit 1; done
	cp hooks/pvekeep.php hooks/hooks.php $(PKG_DIR)/
	cp hooks/lib/*.php $(PKG_DIR)/lib/
	cp templates/*.tpl $(PKG_DIR)/templates/
	cp lang/*.json $(PKG_DIR)/lang/
	cp cronjob/cron.php $(PKG_DIR)/cronjob/
	printf '%s\n' "$$DENY_HTACCESS" > $(PKG_DIR)/bin/.htaccess
	printf '%s\n' "$$DENY_HTACCESS" > $(PKG_DIR)/cronjob/.htaccess
	cp LICENSE README.md $(PKG_DIR)/
	tar -C dist --owner=0 --group=0 -czf dist/pvekeep-$(VERSION).tar.gz modules

clean:
	rm -rf bin dist
