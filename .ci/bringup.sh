#!/usr/bin/env bash
# bringup.sh makes a machine ready to build, test and demo pvekeep.
#
# On a fresh Debian machine, run as root, it installs what is missing
# (mariadb-server, php-cli with its MySQL driver, phpunit, smarty4, chromium,
# npm), starts MariaDB if it is not running, checks that the admin DSN the
# tests use can create databases, and fetches the WHMCS stand-in's theme CSS
# (bootstrap@4.6.2 for twenty-one, bootstrap@3.4.1 for six) from the npm
# registry into .cache/npm (outside git). It is idempotent and takes well under a second when everything
# is already in place. The tests make one throwaway database per test
# (internal/dbtest); `--create-db` makes one more for a whole run and prints
# its DSN (used by the demo and the benchmarks).
#
# Output: shell assignments on stdout (PVEKEEP_TEST_DSN=…, and PVEKEEP_DSN=…
# with --create-db), progress on stderr. Use: eval "$(.ci/bringup.sh)".
set -euo pipefail

log() { echo "bringup: $*" >&2; }

create_db=""
want_browser=1
for arg in "$@"; do
  case "$arg" in
    --create-db) create_db=1 ;;
    --no-browser) want_browser="" ;;
    *) log "unknown argument $arg"; exit 2 ;;
  esac
done

sock=${PVEKEEP_MYSQL_SOCKET:-/run/mysqld/mysqld.sock}
admin_dsn=${PVEKEEP_TEST_DSN:-"root@unix(${sock})/"}

# --- packages -------------------------------------------------------------
missing=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || missing+=(mariadb-client)
command -v php >/dev/null 2>&1 || missing+=(php-cli)
# The WHMCS stand-in (hooks/standin) reads WHMCS's tables through PDO.
{ command -v php >/dev/null 2>&1 && php -m 2>/dev/null | grep -qx pdo_mysql; } || missing+=(php-mysql)
command -v phpunit >/dev/null 2>&1 || missing+=(phpunit)
[ -f /usr/share/php/smarty4/Smarty.class.php ] || missing+=(smarty4)
if [ -n "$want_browser" ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing packages ${missing[*]}; run this script as root (or install them) once"
    exit 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine often has empty package lists: update once, then install.
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# --- MariaDB --------------------------------------------------------------
db_up() { mariadb --protocol=socket -S "$sock" -uroot -e 'SELECT 1' >/dev/null 2>&1; }

if ! db_up; then
  log "starting MariaDB"
  # Without systemd (containers, chroots) the package's postinst does not start
  # the server, so start mariadbd here. Match on its pid file, not on the
  # executable alone: `--exec` would take any mariadbd on the machine (another
  # instance, a container's or a chroot host's) for ours and start nothing.
  mdb_log=/var/log/mysql/bringup-mariadbd.log
  if [ -d /run/systemd/system ]; then
    systemctl start mariadb >&2 || true
  else
    install -d -o mysql -g mysql /run/mysqld /var/log/mysql 2>/dev/null || mkdir -p /run/mysqld /var/log/mysql
    if [ ! -d /var/lib/mysql/mysql ]; then
      log "initialising the MariaDB data directory"
      mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    fi
    start-stop-daemon --start --oknodo --background --output "$mdb_log" \
      --pidfile /run/mysqld/mysqld.pid --exec /usr/sbin/mariadbd -- --user=mysql >&2
  fi
  for _ in $(seq 1 100); do
    db_up && break
    sleep 0.2
  done
  if ! db_up; then
    log "MariaDB did not come up on $sock"
    [ ! -s "$mdb_log" ] || tail -n 20 "$mdb_log" >&2
    exit 1
  fi
fi

# --- theme CSS for the WHMCS stand-in ---------------------------------------
# The stand-in's pages use the Bootstrap the real themes are built on, as the
# npm registry ships it. `npm pack` fetches the package tarball (through npm's
# own cache) without installing anything; only dist/css is kept.
assets=${WHMCS_STANDIN_ASSETS:-"$(cd "$(dirname "$0")/.." && pwd)/.cache/npm"}
for pkg in bootstrap@4.6.2 bootstrap@3.4.1; do
  css="$assets/$pkg/dist/css/bootstrap.min.css"
  [ -s "$css" ] && continue
  log "fetching $pkg from the npm registry"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack "$pkg" --silent >/dev/null 2>&1) || { log "npm pack $pkg failed"; rm -rf "$tmp"; exit 1; }
  mkdir -p "$assets/$pkg"
  tar -xzf "$tmp"/*.tgz -C "$assets/$pkg" --strip-components=1 package/dist/css package/LICENSE
  rm -rf "$tmp"
  [ -s "$css" ] || { log "$pkg has no dist/css/bootstrap.min.css"; exit 1; }
done

echo "PVEKEEP_TEST_DSN='${admin_dsn}'"
echo "export PVEKEEP_TEST_DSN"
echo "WHMCS_STANDIN_ASSETS='${assets}'"
echo "export WHMCS_STANDIN_ASSETS"

if [ -n "$create_db" ]; then
  name="pvekeep_run_$(date +%s)_$$"
  mariadb --protocol=socket -S "$sock" -uroot \
    -e "CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
  log "created database ${name}"
  echo "PVEKEEP_DSN='root@unix(${sock})/${name}'"
  echo "export PVEKEEP_DSN"
fi
