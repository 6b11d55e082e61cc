#!/usr/bin/env bash
# fresh-debian.sh checks that `make demo` and `make test` work on a pristine
# Debian bookworm, installing what they need themselves (.ci/bringup.sh).
# It is not part of `make test`: it needs root, debootstrap and ~10 minutes.
#
#   sudo .ci/fresh-debian.sh            # the committed HEAD of this checkout
#   FRESH_SKIP_TEST=1 sudo .ci/fresh-debian.sh   # `make demo` only
#
# The first run builds a base root once (debootstrap minbase, plus what a
# workplace machine has before any project script runs: ca-certificates,
# git, make, gcc and this machine's Go) and keeps it as $FRESH_BASE_TAR.
# Every run extracts it anew to $FRESH_ROOT, clones HEAD into it and runs,
# in a chroot: `make demo`, `make test`, then `make demo` again after
# shutting MariaDB down (bring-up's own start path, not the package's).
# Logs: $FRESH_ROOT.{demo,test,demo2}.log; a summary on stderr.
#
# Deviations from a truly fresh machine, both because the chroot shares the
# host's network: its MariaDB runs with skip-networking (the host's may
# hold :3306; the project uses the socket only), and the host's extra CA
# certificates are copied in (outbound HTTPS may be intercepted).
set -uo pipefail

FRESH_ROOT=${FRESH_ROOT:-/tmp/pvekeep-fresh}
FRESH_BASE_TAR=${FRESH_BASE_TAR:-/tmp/pvekeep-fresh-base.tar}
MIRROR=${FRESH_MIRROR:-http://deb.debian.org/debian}
SRC=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel) || exit 2
R=$FRESH_ROOT

log() { echo "fresh-debian: $*" >&2; }

[ "$(id -u)" = 0 ] || { log "run as root"; exit 2; }
[ -x /usr/local/go/bin/go ] || { log "needs Go at /usr/local/go"; exit 2; }

mounted_under() { awk -v r="$1" '$2 == r || index($2, r "/") == 1 {f=1} END {exit !f}' /proc/mounts; }

# Processes whose root is the chroot: only those started there.
chroot_pids() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$R" ] && echo "${p#/proc/}"
  done
}

cleanup() {
  if [ -S "$R/run/mysqld/mysqld.sock" ]; then
    chroot "$R" mariadb-admin -S /run/mysqld/mysqld.sock shutdown >/dev/null 2>&1 || true
  fi
  for _ in $(seq 1 10); do [ -z "$(chroot_pids)" ] && break; sleep 1; done
  for p in $(chroot_pids); do kill -KILL "$p" 2>/dev/null || true; done
  for m in dev/shm dev/pts dev sys proc; do
    mountpoint -q "$R/$m" && { umount "$R/$m" || umount -l "$R/$m"; }
  done
  mounted_under "$R" && log "still mounted under $R"
}

build_base() {
  local b=$R.base
  log "building the base root once ($FRESH_BASE_TAR)"
  command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >&2 || return 1
  rm -rf "$b"
  debootstrap --variant=minbase bookworm "$b" "$MIRROR" >&2 || return 1
  if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    mkdir -p "$b/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$b/usr/local/share/ca-certificates/" || return 1
  fi
  chroot "$b" /bin/sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates git make gcc libc6-dev && update-ca-certificates && apt-get clean && rm -rf /var/lib/apt/lists/*' >&2 || return 1
  cp -a /usr/local/go "$b/usr/local/go"
  tar -C "$b" -cf "$FRESH_BASE_TAR" . && rm -rf "$b"
}

if mounted_under "$R" || [ -n "$(chroot_pids)" ]; then
  log "$R is still in use (mounts or processes); refusing to replace it"
  exit 2
fi
[ -f "$FRESH_BASE_TAR" ] || build_base || { log "could not build the base root"; exit 2; }
rm -rf "$R" && mkdir -p "$R" && tar -C "$R" -xf "$FRESH_BASE_TAR" || exit 2

trap cleanup EXIT
trap 'exit 130' INT TERM
mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys"
mount --bind /dev "$R/dev"
mount --bind /dev/pts "$R/dev/pts"
mount -t tmpfs -o mode=1777 shm "$R/dev/shm"
cp /etc/resolv.conf "$R/etc/resolv.conf"
mkdir -p "$R/etc/mysql/mariadb.conf.d"
printf '[mysqld]\nskip-networking\n' > "$R/etc/mysql/mariadb.conf.d/99-fresh-debian.cnf"
git clone -q "$SRC" "$R/root/pvekeep" || exit 2
log "checking $(git -C "$R/root/pvekeep" log -1 --format='%h %s')"

step() { # name, log file, command
  local t0=$SECONDS rc
  chroot "$R" /usr/bin/env -i PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root GOFLAGS=-buildvcs=false LANG=C.UTF-8 TERM=dumb /bin/bash -c "cd /root/pvekeep && $3" > "$2" 2>&1
  rc=$?
  log "$1: exit $rc in $((SECONDS - t0))s (log $2)"
  return $rc
}

step "make demo (fresh)" "$R.demo.log" "make demo"; demo=$?
test=skipped
if [ -z "${FRESH_SKIP_TEST:-}" ]; then
  step "make test" "$R.test.log" "make test"; test=$?
fi
chroot "$R" mariadb-admin -S /run/mysqld/mysqld.sock shutdown >/dev/null 2>&1
for _ in $(seq 1 50); do [ -S "$R/run/mysqld/mysqld.sock" ] || break; sleep 0.2; done
step "make demo (MariaDB stopped)" "$R.demo2.log" "make demo"; demo2=$?

log "demo=$demo test=$test demo2=$demo2"
[ "$demo" = 0 ] && { [ "$test" = 0 ] || [ "$test" = skipped ]; } && [ "$demo2" = 0 ]
