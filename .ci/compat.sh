#!/usr/bin/env bash
# compat.sh checks that the PHP WHMCS loads runs on PHP 7.4 and on the
# host's PHP (8.2): WHMCS 8 still supports 7.4 (DESIGN §9).
#
#   .ci/compat.sh            # scan, then php -l and PHPUnit on the host's PHP and on 7.4
#   .ci/compat.sh --scan     # the static scan only (fast)
#   .ci/compat.sh --quick    # what `make test` runs: the scan, then php -l and PHPUnit on
#                            # 7.4 when the root already exists (seconds); without the root
#                            # (or a way to chroot) it says the full check is `make compat`
#                            # and passes on the scan. Never builds the root; skips the
#                            # host's PHP (make test runs PHPUnit itself).
#   .ci/compat.sh --e2e      # also internal/e2e with its `php` being 7.4 (root; minutes)
#
# The checks, cheapest first:
#  1. a static scan (.ci/compat-scan.php, tokenizer) for syntax and functions
#     newer than PHP 7.4: a quick first line, not the proof;
#  2. `php -l` on every PHP file WHMCS loads and PHPUnit (hooks/tests) on the
#     host's PHP;
#  3. the same on PHP 7.4 for real: Debian bullseye's php7.4-cli and
#     phpunit 9 in a debootstrap root kept at $COMPAT_ROOT (outside git,
#     built once when missing: about a minute and 270 MB; then each run
#     takes seconds). The files are copied into the root; nothing is mounted;
#  4. with --e2e, internal/e2e with PHP 7.4 as its `php` (below).
#
# What WHMCS loads: every .php of dist/modules/servers/pvekeep/ (`make
# package`); without a package, hooks/ and cronjob/ minus the tests and the
# demo. PHPUnit runs hooks/tests/ as `make test` does.
#
# Needs: php-cli, phpunit and smarty4 on the host (.ci/bringup.sh installs them;
# smarty4 is copied into the root, bullseye has none);
# for 7.4, root once to build the root (debootstrap, installed if missing)
# and then root or unprivileged user namespaces (`unshare -r`) to chroot.
# Environment: COMPAT_ROOT, COMPAT_MIRROR (default http://deb.debian.org/debian).
set -uo pipefail

ROOT=${COMPAT_ROOT:-/var/cache/pvekeep-compat/bullseye}
# What the root holds: the host's PHP modules that WHMCS needs too (pdo_mysql:
# the stand-in reads the panel's tables, as WHMCS does).
PKGS="php7.4-cli php7.4-xml php7.4-mbstring php7.4-mysql phpunit"
MIRROR=${COMPAT_MIRROR:-http://deb.debian.org/debian}
SRC=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel) || exit 2
PKG=$SRC/dist/modules/servers/pvekeep

log() { echo "compat: $*" >&2; }

scan_only=""
quick=""
e2e=""
for arg in "$@"; do
  case "$arg" in
    --scan) scan_only=1 ;;
    --quick) quick=1 ;;
    --e2e) e2e=1 ;;
    *) log "unknown argument $arg"; exit 2 ;;
  esac
done

command -v php >/dev/null || { log "needs php-cli on the host (run .ci/bringup.sh as root once)"; exit 2; }

# loaded_files: the PHP files WHMCS loads, relative to $SRC.
loaded_files() {
  if [ -f "$PKG/pvekeep.php" ]; then
    (cd "$SRC" && find "${PKG#"$SRC"/}" -name '*.php' | sort)
  else
    (cd "$SRC" && git ls-files -co --exclude-standard -- 'hooks/*.php' 'cronjob/*.php' |
      grep -v -e '^hooks/tests/' -e '^hooks/demo/' -e '^hooks/standin/' | sort)
  fi
}
mapfile -t FILES < <(loaded_files)
[ ${#FILES[@]} -gt 0 ] || { log "no PHP files found"; exit 2; }
if [ -f "$PKG/pvekeep.php" ]; then
  log "checking ${#FILES[@]} files of ${PKG#"$SRC"/}"
else
  log "no package (make package); checking ${#FILES[@]} files of hooks/ and cronjob/"
fi

fail=0
t0=$SECONDS

# 1. The static scan.
if ! php "$SRC/.ci/compat-scan.php" --self-test; then
  log "scan: its self-test FAILED (.ci/compat-scan.php)"; fail=1
elif (cd "$SRC" && php .ci/compat-scan.php "${FILES[@]}"); then
  log "scan: no PHP >= 8.0 syntax or functions"
else
  log "scan: FAILED"; fail=1
fi
[ -n "$scan_only" ] && exit $fail

# not_checked MESSAGE: under --quick, PHP 7.4 could not be run; say so and
# what the full check is, and let the scan decide (make test stays usable
# on a machine without the root).
not_checked() {
  log "PHP 7.4: $1; NOT CHECKED here, only scanned: the full check is \`make compat\` (root)"
  exit $fail
}
if [ -n "$quick" ] && [ ! -x "$ROOT/usr/bin/php7.4" ]; then
  not_checked "no root at $ROOT"
fi

# lint_and_test LABEL PHP PHPUNIT DIR LOG RUNNER...: php -l over FILES, then
# PHPUnit, in DIR (the checkout, or its copy in the root) through RUNNER.
lint_and_test() {
  local label=$1 phpbin=$2 phpunit=$3 dir=$4 plog=$5; shift 5
  local runner=("$@") bad=0 f out
  for f in "${FILES[@]}"; do
    if ! out=$("${runner[@]}" sh -c 'cd "$1" && "$2" -l "$3"' sh "$dir" "$phpbin" "$f" 2>&1); then
      echo "$out" >&2; bad=1
    fi
  done
  if [ $bad = 0 ]; then log "$label: php -l clean (${#FILES[@]} files)"; else log "$label: php -l FAILED"; fail=1; fi
  if "${runner[@]}" sh -c 'cd "$1" && "$2" --colors=never hooks/tests' sh "$dir" "$phpunit" >"$plog" 2>&1; then
    log "$label: PHPUnit $(grep -E '^OK' "$plog" | tail -1)"
  else
    tail -n 40 "$plog" >&2
    log "$label: PHPUnit FAILED (log $plog)"; fail=1
  fi
}

# 2. The host's PHP (not under --quick: make test runs PHPUnit itself).
host_ver=$(php -r 'echo PHP_MAJOR_VERSION, ".", PHP_MINOR_VERSION;')
if [ -z "$quick" ]; then
  command -v phpunit >/dev/null || { log "needs phpunit on the host (run .ci/bringup.sh as root once)"; exit 2; }
  host_log=${TMPDIR:-/tmp}/pvekeep-compat-$(id -u)-phpunit-host.log
  lint_and_test "PHP $host_ver (host)" php phpunit "$SRC" "$host_log" env
fi

# 3. PHP 7.4 in the bullseye root.
build_root() {
  local tmp=$ROOT.tmp t=$SECONDS
  if [ "$(id -u)" != 0 ]; then
    log "no PHP 7.4 root at $ROOT: building it needs root once (sudo make compat), a minute or two"
    return 1
  fi
  log "building the PHP 7.4 root at $ROOT (debootstrap bullseye, once)"
  command -v debootstrap >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2 ||
      { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2; }
  } || return 1
  mkdir -p "$(dirname "$ROOT")" && rm -rf "$tmp" || return 1
  debootstrap --variant=minbase bullseye "$tmp" "$MIRROR" >"$ROOT.build.log" 2>&1 ||
    { tail -n 20 "$ROOT.build.log" >&2; return 1; }
  # Name resolution for apt in the root (the mirror is plain http).
  cp /etc/resolv.conf "$tmp/etc/resolv.conf" 2>/dev/null
  PKGS=$PKGS chroot "$tmp" /bin/sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PKGS && apt-get clean && rm -rf /var/lib/apt/lists/*' >>"$ROOT.build.log" 2>&1 ||
    { tail -n 20 "$ROOT.build.log" >&2; return 1; }
  chroot "$tmp" php7.4 -v >/dev/null || return 1
  mv "$tmp" "$ROOT" || return 1
  log "built $ROOT in $((SECONDS - t))s (log $ROOT.build.log)"
}

if [ ! -x "$ROOT/usr/bin/php7.4" ]; then
  # One builder at a time; a second run waits and then finds the root.
  if mkdir -p "$(dirname "$ROOT")" 2>/dev/null && exec 9>>"$(dirname "$ROOT")/.lock"; then
    flock 9
  fi
  [ -x "$ROOT/usr/bin/php7.4" ] || build_root || { log "PHP 7.4: no root, NOT CHECKED"; exit 2; }
fi

# A root built before a package joined the list gets it (root and network).
if [ "$(id -u)" = 0 ] && ! chroot "$ROOT" dpkg-query -W $PKGS >/dev/null 2>&1; then
  [ -n "$quick" ] && not_checked "$ROOT lacks some of $PKGS (make compat adds them)"
  log "adding to $ROOT: $PKGS"
  PKGS=$PKGS chroot "$ROOT" /bin/sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PKGS && apt-get clean && rm -rf /var/lib/apt/lists/*' >>"$ROOT.build.log" 2>&1 ||
    { tail -n 20 "$ROOT.build.log" >&2; log "could not add packages to $ROOT"; exit 2; }
fi

# Smarty 4 (the tests render the templates with it) is not in bullseye;
# the host's copy (.ci/bringup.sh installs it) runs on 7.4 as well.
SMARTY=/usr/share/php/smarty4
if [ -f "$SMARTY/Smarty.class.php" ] && ! cmp -s "$SMARTY/Smarty.class.php" "$ROOT$SMARTY/Smarty.class.php"; then
  if [ "$(id -u)" = 0 ]; then
    rm -rf "$ROOT$SMARTY" && mkdir -p "$ROOT$SMARTY" && cp -a "$SMARTY/." "$ROOT$SMARTY/" ||
      { log "could not copy $SMARTY into $ROOT"; exit 2; }
  else
    log "$ROOT lacks the host's $SMARTY (a root run of this script copies it)"
  fi
fi

if [ "$(id -u)" = 0 ]; then
  in_root=(chroot "$ROOT")
elif unshare -r true 2>/dev/null; then
  in_root=(unshare -r chroot "$ROOT")
else
  [ -n "$quick" ] && not_checked "chroot needs root or unprivileged user namespaces (unshare -r)"
  log "PHP 7.4: chroot needs root or unprivileged user namespaces (unshare -r); NOT CHECKED"
  exit 2
fi

# Bind mounts made by run_e2e, undone however the script ends.
MOUNTS=()
E2E_TMP=""
unmount_all() {
  local i p
  # First what this run left running in the root (an interrupted test's
  # php -S): such processes carry COMPAT_RUN=<this run's temp dir>.
  if [ -n "$E2E_TMP" ]; then
    for p in /proc/[0-9]*; do
      [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] || continue
      tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qxF "COMPAT_RUN=$E2E_TMP" && kill -KILL "${p#/proc/}" 2>/dev/null
    done
    sleep 0.5
  fi
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}"
  done
  MOUNTS=()
  # Remove the e2e temp dir only once nothing is mounted from it any more.
  if [ -n "$E2E_TMP" ]; then
    if awk -v r="$ROOT" 'index($2, r "/") == 1 {f=1} END {exit !f}' /proc/mounts; then
      log "still mounted under $ROOT, leaving $E2E_TMP"
    else
      rm -rf "$E2E_TMP"
    fi
    E2E_TMP=""
  fi
}
work=$(mktemp -d "$ROOT/tmp/pvekeep.XXXXXX") || exit 2
trap 'unmount_all; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
# The checkout as it is (tracked and new files), plus the package.
(cd "$SRC" && git ls-files -co --exclude-standard -z | tar --null -T - -cf - 2>/dev/null) | tar -C "$work" -xf - || exit 2
[ -d "$SRC/dist/modules" ] && { tar -C "$SRC" --exclude='dist/modules/*/*/bin' -cf - dist/modules | tar -C "$work" -xf - || exit 2; }
v74=$("${in_root[@]}" php7.4 -r 'echo PHP_VERSION;')
lint_and_test "PHP $v74 (bullseye root)" php7.4 phpunit "/tmp/${work##*/}" "${TMPDIR:-/tmp}/pvekeep-compat-$(id -u)-phpunit-7.4.log" "${in_root[@]}"

# 4. (--e2e) The Go end-to-end tests, whose every PHP run (the module's
# entry points through driver.php, the cron, the stand-in behind `php -S`)
# is then PHP 7.4: `php` on PATH is .ci/compat-php74, which runs php7.4 in
# the root.
# The checkout (read-only), a private TMPDIR and MariaDB's socket directory
# are bind-mounted at the same paths inside, so every path the tests pass
# works unchanged. The plugin is built static (the root's glibc is 2.31).
# COMPAT_E2E_RUN narrows it (go test -run).
E2E_LOG=${TMPDIR:-/tmp}/pvekeep-compat-$(id -u)-e2e-7.4.log
fails() { sed -n 's/^ *--- FAIL: \([^ ]*\).*/\1/p' "$1" | sort -u; } # every failed (sub)test of a go test log
run_e2e() {
  local tmp rc t=$SECONDS out failed="" only74="" ok=1
  if [ "$(id -u)" != 0 ]; then
    log "e2e on PHP 7.4: needs root (bind mounts into $ROOT); NOT RUN"
    return 2
  fi
  command -v go >/dev/null || { log "e2e on PHP 7.4: needs go; NOT RUN"; return 2; }
  # One e2e run per root at a time: the mounts are shared.
  exec 8>>"$(dirname "$ROOT")/.e2e.lock" && flock 8 || return 2
  tmp=$(mktemp -d /tmp/pvekeep-compat-e2e.XXXXXX) || return 2
  E2E_TMP=$tmp
  bind() { # path [ro]
    mkdir -p "$ROOT$1" && mount --bind "$1" "$ROOT$1" || return 1
    MOUNTS+=("$ROOT$1")
    [ "${2:-}" != ro ] || mount -o remount,bind,ro "$ROOT$1"
  }
  mount -t proc proc "$ROOT/proc" && MOUNTS+=("$ROOT/proc") || ok=""
  bind "$SRC" ro || ok=""
  bind "$tmp" || ok=""
  mkdir -p /run/mysqld && bind /run/mysqld || ok=""
  mkdir -p "$tmp/bin" && ln -s "$SRC/.ci/compat-php74" "$tmp/bin/php" || ok=""
  if [ -z "$ok" ]; then
    log "e2e on PHP 7.4: could not prepare the root"; rc=2
  elif ! (cd "$SRC" && CGO_ENABLED=0 go build -trimpath -o "$tmp/pvekeep" ./plugin); then
    rc=2
  elif ! out=$("$SRC/.ci/bringup.sh"); then
    rc=2
  elif [ "$(cd "$tmp" && COMPAT_ROOT=$ROOT PATH="$tmp/bin:$PATH" php -r 'echo PHP_MAJOR_VERSION, ".", PHP_MINOR_VERSION;')" != 7.4 ]; then
    log "e2e on PHP 7.4: the php wrapper does not run 7.4"; rc=2
  else
    (cd "$SRC" && eval "$out" && export COMPAT_ROOT="$ROOT" COMPAT_RUN="$tmp" && TMPDIR=$tmp PATH="$tmp/bin:$PATH" PVEKEEP_BIN=$tmp/pvekeep \
      PVEKEEP_TEST_DISALLOW_SKIP=1 go test -count=1 -timeout 20m ${COMPAT_E2E_RUN:+-run "$COMPAT_E2E_RUN"} \
      ./internal/e2e/ >"$E2E_LOG" 2>&1)
    rc=$?
    # Failures: are they 7.4's? Run the failed tests again on the host's PHP.
    failed=$(sed -n 's/^--- FAIL: \([^ ]*\).*/\1/p' "$E2E_LOG" | paste -sd'|' -)
    if [ "$rc" != 0 ] && [ -n "$failed" ]; then
      (cd "$SRC" && eval "$out" && TMPDIR=$tmp PVEKEEP_BIN=$tmp/pvekeep PVEKEEP_TEST_DISALLOW_SKIP=1 \
        go test -count=1 -timeout 20m -run "^($failed)\$" ./internal/e2e/ >"$E2E_LOG.host" 2>&1)
      only74=$(comm -23 <(fails "$E2E_LOG") <(fails "$E2E_LOG.host"))
    fi
  fi
  unmount_all
  if [ "$rc" = 0 ]; then
    log "PHP $v74 (bullseye root): internal/e2e ok in $((SECONDS - t))s"
  else
    [ -f "$E2E_LOG" ] && tail -n 40 "$E2E_LOG" >&2
    log "PHP $v74 (bullseye root): internal/e2e FAILED (log $E2E_LOG)"
    if [ -n "$failed" ]; then
      if [ -n "$only74" ]; then
        log "failing on 7.4 only (they pass on the host's PHP $host_ver):"; printf '  %s\n' $only74 >&2
      else
        log "every one of these also fails on the host's PHP $host_ver (log $E2E_LOG.host):"
        log "not a 7.4 difference, but what they check after the failure is unchecked on 7.4 too"
      fi
    fi
  fi
  return "$rc"
}
if [ -n "$e2e" ]; then
  run_e2e || fail=1
fi

log "done in $((SECONDS - t0))s: $([ $fail = 0 ] && echo ok || echo FAILED)"
exit $fail
