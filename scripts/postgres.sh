#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for development and CI: Airflow's metadata database when
# its tasks run on Celery workers. SQLite takes one writer at a time, and then several
# processes write at once (scheduler, api-server, dag-processor, and the workers' Celery
# results). On loopback only, trust authentication, fsync off: never for data that
# matters. Uses the system's PostgreSQL server programs (Debian: apt-get install
# postgresql; `make celery-services` installs it).
#
#   scripts/postgres.sh start    initdb (first time), start, create the databases
#   scripts/postgres.sh stop     fast shutdown
#   scripts/postgres.sh status   exit 0 = running and accepting connections, 3 = not running
#   scripts/postgres.sh url [DB] print the SQLAlchemy URL of DB (default: the first of PG_DATABASES)
#   scripts/postgres.sh logs     show the server log
#
# Settings (environment):
#   PG_DATA_DIR       cluster, socket and log (default: <repo>/.services/postgres)
#   PG_PORT           port on 127.0.0.1 (default: 5432)
#   PG_USER           superuser created by initdb (default: fraud-detection)
#   PG_DATABASES      databases to create on start (default: "airflow")
#   PG_BINDIR         folder of initdb/pg_ctl (default: PATH, then /usr/lib/postgresql/*/bin)
#   PG_RUN_AS         system user that runs the server when this script runs as root
#                     (PostgreSQL refuses root; default: postgres)
#   PG_START_TIMEOUT  seconds to wait for start-up (default: 60)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

PG_HOST=127.0.0.1
PG_PORT=${PG_PORT:-5432}
PG_USER=${PG_USER:-fraud-detection}
PG_DATABASES=${PG_DATABASES:-airflow}
PG_DATA_DIR=$(realpath -m "${PG_DATA_DIR:-$REPO_ROOT/.services/postgres}")
PG_START_TIMEOUT=${PG_START_TIMEOUT:-60}
PG_RUN_AS=${PG_RUN_AS:-postgres}
CLUSTER=$PG_DATA_DIR/cluster
LOG_FILE=$PG_DATA_DIR/postgres.log

log() { printf 'postgres: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

bindir() {
    if [[ -n ${PG_BINDIR:-} ]]; then
        echo "$PG_BINDIR"
    elif command -v pg_ctl >/dev/null && command -v initdb >/dev/null; then
        dirname "$(command -v pg_ctl)"
    else
        # Debian keeps the server programs out of PATH, one folder per major version.
        local dir
        dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null |
            sort -V | tail -n 1)
        [[ -n $dir && -x $dir/pg_ctl ]] ||
            die "PostgreSQL server programs not found: install them (Debian/Ubuntu:" \
                "make celery-services, or apt-get install postgresql) or set PG_BINDIR"
        echo "$dir"
    fi
}

# Runs a server program as the unprivileged owner of the cluster when we are root.
as_owner() {
    if [[ $(id -u) == 0 ]]; then
        id -u "$PG_RUN_AS" >/dev/null 2>&1 ||
            die "running as root, and PostgreSQL refuses root: create the user $PG_RUN_AS" \
                "or set PG_RUN_AS"
        runuser -u "$PG_RUN_AS" -- "$@"
    else
        "$@"
    fi
}

psql_bin() {
    if [[ -x $(bindir)/psql ]]; then
        echo "$(bindir)/psql"
    else
        command -v psql || die "psql not found"
    fi
}

psql_cmd() {
    "$(psql_bin)" -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$@"
}

running() {
    [[ -f $CLUSTER/postmaster.pid ]] &&
        as_owner "$(bindir)/pg_ctl" -D "$CLUSTER" status >/dev/null 2>&1
}

port_in_use() { (exec 3<>"/dev/tcp/$PG_HOST/$1") 2>/dev/null; }

recorded_port() {
    sed -n 's/^port = \([0-9]*\).*/\1/p' "$CLUSTER/postgresql.auto.conf" 2>/dev/null || true
}

init_cluster() {
    mkdir -p "$PG_DATA_DIR"
    if [[ $(id -u) == 0 ]]; then
        chown "$PG_RUN_AS" "$PG_DATA_DIR"
        as_owner test -w "$PG_DATA_DIR" ||
            die "$PG_RUN_AS cannot write $PG_DATA_DIR (a parent folder is private):" \
                "choose a PG_DATA_DIR it can reach, e.g. under /tmp"
    fi
    log "initdb $CLUSTER (superuser $PG_USER)"
    as_owner "$(bindir)/initdb" -D "$CLUSTER" -U "$PG_USER" --auth=trust --encoding=UTF8 \
        --no-locale --no-instructions >>"$LOG_FILE.init" 2>&1 ||
        { tail -n 20 "$LOG_FILE.init" >&2; die "initdb failed"; }
    # Loopback TCP only; the socket stays in the cluster's folder, not /var/run.
    cat >>"$CLUSTER/postgresql.auto.conf" <<CONF
port = $PG_PORT
listen_addresses = '$PG_HOST'
unix_socket_directories = '$CLUSTER'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
CONF
}

cmd_start() {
    [[ -f $CLUSTER/PG_VERSION ]] || init_cluster
    local recorded
    recorded=$(recorded_port)
    [[ $recorded == "$PG_PORT" ]] ||
        die "the cluster in $PG_DATA_DIR listens on port $recorded, not PG_PORT=$PG_PORT;" \
            "use that port or another PG_DATA_DIR"
    if running; then
        log "already running ($CLUSTER)"
    else
        port_in_use "$PG_PORT" && die "port $PG_PORT on $PG_HOST is already in use (set PG_PORT)"
        log "starting PostgreSQL on $PG_HOST:$PG_PORT (log: $LOG_FILE)"
        touch "$LOG_FILE"
        [[ $(id -u) != 0 ]] || chown "$PG_RUN_AS" "$LOG_FILE"
        as_owner "$(bindir)/pg_ctl" -D "$CLUSTER" -l "$LOG_FILE" -w -t "$PG_START_TIMEOUT" \
            start >/dev/null ||
            { tail -n 20 "$LOG_FILE" >&2; die "pg_ctl start failed"; }
    fi
    local db exists
    for db in $PG_DATABASES; do
        exists=$(psql_cmd -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'") ||
            die "cannot connect to $PG_HOST:$PG_PORT as $PG_USER (see $LOG_FILE)"
        if [[ -z $exists ]]; then
            psql_cmd -d postgres -c "CREATE DATABASE \"$db\"" || die "could not create database $db"
            log "created database $db"
        fi
    done
    log "ready: $(cmd_url)"
}

cmd_stop() {
    if ! running; then
        log "not running"
        return 0
    fi
    as_owner "$(bindir)/pg_ctl" -D "$CLUSTER" -m fast -w stop >/dev/null
    log "stopped"
}

cmd_status() {
    if ! running; then
        echo "postgres: not running ($CLUSTER)"
        return 3
    fi
    if psql_cmd -d postgres -tAc "SELECT 1" >/dev/null 2>&1; then
        echo "postgres: running, accepting connections ($PG_HOST:$PG_PORT, $CLUSTER)"
    else
        echo "postgres: running but not accepting connections on $PG_HOST:$PG_PORT"
        return 1
    fi
}

cmd_url() {
    local db=${1:-${PG_DATABASES%% *}}
    echo "postgresql+psycopg2://$PG_USER@$PG_HOST:$PG_PORT/$db"
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    url) cmd_url "${2:-}" ;;
    bindir) bindir ;;
    logs)
        [[ -f $LOG_FILE ]] || die "no log yet at $LOG_FILE"
        cat "$LOG_FILE"
        ;;
    *)
        echo "usage: $0 {start|stop|status|url [DB]|bindir|logs}" >&2
        exit 2
        ;;
esac
