# pvekeep — see README.md. Every target that needs MariaDB, PHP or Chromium
# runs .ci/bringup.sh first, which installs and starts what is missing.

GO        ?= go
BIN       := bin/pvekeep
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
BRINGUP   := .ci/bringup.sh
PKG_DIR   := dist/modules/servers/pvekeep

.PHONY: build test demo bench compat lint package clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./plugin

# The whole suite against real MariaDB, php-cli, the simulator and an SMTP server.
# PVEKEEP_TEST_DISALLOW_SKIP turns "service not reachable" skips into failures.
# There is no live Proxmox VE here, and we say so (PVEKEEP_TEST_REQUIRE_LIVE_PVE=0);
# `make test PVEKEEP_TEST_REQUIRE_LIVE_PVE=1` with PVEKEEP_TEST_PVE_* set runs the live suite.
PVEKEEP_TEST_REQUIRE_LIVE_PVE ?= 0
# `out=$$(…) && eval` so a failing bring-up stops the target (eval "" is 0).
test: build
	@out=$$($(BRINGUP)) && eval "$$out" && \
	  PVEKEEP_TEST_DISALLOW_SKIP=1 PVEKEEP_TEST_REQUIRE_LIVE_PVE=$(PVEKEEP_TEST_REQUIRE_LIVE_PVE) \
	  PVEKEEP_BIN=$(CURDIR)/$(BIN) \
	  $(GO) test -count=1 -timeout 20m ./...
	phpunit --colors=never hooks/tests
	.ci/compat.sh --scan

demo: build
	@out=$$($(BRINGUP) --no-browser) && eval "$$out" && $(BIN) demo --bin $(CURDIR)/$(BIN)

# Figures, not assertions (issue 7's Measure): a client page view's plugin
# time from PHP over 200 views, spawned and on the warm socket, Proxmox normal
# and 2 s slow; process start against a hello-world Go binary; the floor.
# Then a restore's reconcile share (a restore takes seconds, so 10 of those).
bench: build
	@out=$$($(BRINGUP) --no-browser) && eval "$$out" && \
	  PVEKEEP_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench 'PageView|ProcessStart|Floor' -benchtime 200x ./internal/e2e/ && \
	  PVEKEEP_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench 'RestoreReconcile' -benchtime 10x ./internal/e2e/

# The PHP WHMCS loads, on PHP 7.4 for real (a cached Debian bullseye root;
# built once, needs root then) and on the host's PHP: php -l and PHPUnit.
# Run it before every resolve; `make test` runs only its fast static scan.
compat: package
	.ci/compat.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@for f in $$(git ls-files '*.php'); do php -l $$f >/dev/null || exit 1; done

# A WHMCS-ready modules/servers/pvekeep/ folder (and a tarball of it).
package: build
	rm -rf dist && mkdir -p $(PKG_DIR)/bin
	cp hooks/pvekeep.php hooks/hooks.php $(PKG_DIR)/ 2>/dev/null || cp hooks/pvekeep.php $(PKG_DIR)/
	cp -r hooks/lib $(PKG_DIR)/lib
	[ ! -d templates ] || cp -r templates $(PKG_DIR)/templates
	[ ! -d lang ] || cp -r lang $(PKG_DIR)/lang
	[ ! -d cronjob ] || cp -r cronjob $(PKG_DIR)/cronjob
	cp $(BIN) $(PKG_DIR)/bin/pvekeep
	cp LICENSE README.md $(PKG_DIR)/
	tar -C dist -czf dist/pvekeep-$(VERSION).tar.gz modules

clean:
	rm -rf bin dist
