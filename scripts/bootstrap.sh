#!/usr/bin/env bash
# Everything `make demo`, `make test` and `make bench` need on a fresh Debian machine:
# system packages, the local MariaDB and Redis running, the .venv with pinned
# requirements and runner_service installed. Safe to run again: each step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}

say() { printf '==> %s\n' "$*"; }
die() { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root for: $*"; fi; }

# --- system packages -------------------------------------------------------------
missing=()
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
command -v mariadb >/dev/null || missing+=(mariadb-client)
command -v mariadb-install-db >/dev/null || missing+=(mariadb-server)
command -v mariabackup >/dev/null || missing+=(mariadb-backup)  # physical backups (mysql_backup method=physical)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v shellcheck >/dev/null || missing+=(shellcheck)  # ansible-test sanity checks the shell scripts
command -v git >/dev/null || missing+=(git)
[ -x /usr/sbin/cron ] || missing+=(cron)  # the crontab bridge: a test has the real cron daemon fire an entry
# The namespace fleet (devtools/netfleet): hosts with their own sshd, reached with host key checking.
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keyscan >/dev/null || missing+=(openssh-client)
command -v ip >/dev/null || missing+=(iproute2)
command -v unshare >/dev/null || missing+=(util-linux)
command -v redis-sentinel >/dev/null || missing+=(redis-sentinel)  # Redis through Sentinel, no single point of failure
command -v chromium >/dev/null || missing+=(chromium)  # the portal's browser tests (Playwright drives the system browser)
command -v age >/dev/null || missing+=(age)  # backups encrypted at rest (mysql_backup encrypt_recipients)
command -v rclone >/dev/null || missing+=(rclone)  # off-host copies of backups to rclone remotes
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Prometheus and promtool for the /metrics test, which starts its own prometheus: the package
# must leave no daemon running, so no recommends (node-exporter) and, for the install, a
# policy-rc.d that refuses every service start (the one already there, if any, is put back).
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    say "installing Debian package prometheus (no daemon started)"
    as_root apt-get update -qq
    policy=/usr/sbin/policy-rc.d
    kept=$(mktemp)
    if [ -e "$policy" ]; then as_root cp -p "$policy" "$kept"; fi
    # shellcheck disable=SC2016
    as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > "$1" && chmod 755 "$1"' sh "$policy"
    status=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \
        >/dev/null || status=$?
    if [ -s "$kept" ]; then as_root cp -p "$kept" "$policy"; else as_root rm -f "$policy"; fi
    rm -f "$kept"
    [ "$status" -eq 0 ] || die "apt-get install prometheus failed"
fi

# --- services --------------------------------------------------------------------
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    say "starting Redis on 127.0.0.1:6379"
    as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
fi
mariadb_up() { mariadb-admin --connect-timeout=2 ping >/dev/null 2>&1 || mariadb-admin --connect-timeout=2 -h127.0.0.1 -uroot ping >/dev/null 2>&1; }
if ! mariadb_up; then
    say "starting MariaDB"
    as_root install -d -o mysql -g mysql /run/mysqld 2>/dev/null || true
    as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi
for _ in $(seq 1 60); do mariadb_up && break; sleep 1; done
mariadb_up || die "MariaDB did not start (see journal or /var/log/mysql)"
for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.5; done

# --- Python virtualenv -----------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
stamp=$VENV/.dbfleet-requirements
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing pinned requirements into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -r requirements.txt
    "$VENV/bin/python" -m pip install -q --no-deps -e .
    echo "$want" > "$stamp"
fi

# --- ansible-test: it fetches get-pip from a host this machine cannot reach; give it a
# stand-in in its cache that bootstraps pip from the standard library instead.
cache=$HOME/.ansible/test/cache
if [ ! -f "$cache/get_pip_24_2.py" ] || ! cmp -s scripts/get_pip_standin.py "$cache/get_pip_24_2.py"; then
    mkdir -p "$cache"
    cp scripts/get_pip_standin.py "$cache/get_pip_24_2.py"
fi
say "setup done"
