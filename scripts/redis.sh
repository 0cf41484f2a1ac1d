#!/usr/bin/env bash
# Local Redis for development and CI: the broker of Airflow's CeleryExecutor, on
# loopback, nothing persisted (a broker's queue is rebuilt by the scheduler).
# Uses the system's redis-server (Debian: apt-get install redis-server; `make
# celery-services` installs it).
#
#   scripts/redis.sh start     start in the background, wait until it answers PING
#   scripts/redis.sh stop      stop (SIGTERM, then SIGKILL after REDIS_STOP_TIMEOUT s)
#   scripts/redis.sh status    exit 0 = running and answering, 3 = not running
#   scripts/redis.sh url       print the broker URL (redis://127.0.0.1:<port>/0)
#   scripts/redis.sh logs      show the server log
#
# Settings (environment):
#   REDIS_DATA_DIR       pid, log and working directory (default: <repo>/.services/redis)
#   REDIS_PORT           port on 127.0.0.1 (default: 6379)
#   REDIS_START_TIMEOUT  seconds to wait for PING (default: 20)
#   REDIS_STOP_TIMEOUT   seconds to wait after SIGTERM (default: 10)
#   REDIS_SERVER         the redis-server binary (default: from PATH)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

REDIS_HOST=127.0.0.1
REDIS_PORT=${REDIS_PORT:-6379}
REDIS_DATA_DIR=$(realpath -m "${REDIS_DATA_DIR:-$REPO_ROOT/.services/redis}")
REDIS_START_TIMEOUT=${REDIS_START_TIMEOUT:-20}
REDIS_STOP_TIMEOUT=${REDIS_STOP_TIMEOUT:-10}
PID_FILE=$REDIS_DATA_DIR/redis.pid
PORT_FILE=$REDIS_DATA_DIR/redis.port
LOG_FILE=$REDIS_DATA_DIR/redis.log

log() { printf 'redis: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

redis_server() {
    local bin=${REDIS_SERVER:-$(command -v redis-server || true)}
    [[ -n $bin && -x $bin ]] ||
        die "redis-server not found: install it (Debian/Ubuntu: make celery-services," \
            "or apt-get install redis-server) or set REDIS_SERVER"
    echo "$bin"
}

server_pid() {
    [[ -f $PID_FILE ]] || return 0
    local pid
    pid=$(<"$PID_FILE")
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'redis-server'; then
        echo "$pid"
    fi
}

# PING over the wire protocol with bash alone (redis-cli may not be installed).
ping() {
    local reply
    exec 3<>"/dev/tcp/$REDIS_HOST/$REDIS_PORT" || return 1
    printf 'PING\r\n' >&3
    IFS= read -r -t 2 reply <&3 || reply=""
    exec 3<&- 3>&-
    [[ $reply == "+PONG"* ]]
}

port_in_use() { (exec 3<>"/dev/tcp/$REDIS_HOST/$1") 2>/dev/null; }

log_tail() {
    [[ -f $LOG_FILE ]] || return 0
    log "last lines of $LOG_FILE:"
    tail -n 20 "$LOG_FILE" | sed 's/^/    /' >&2
}

check_same_port() {
    local recorded
    recorded=$(cat "$PORT_FILE" 2>/dev/null || true)
    if [[ -n $recorded && $recorded != "$REDIS_PORT" ]]; then
        die "the server of REDIS_DATA_DIR=$REDIS_DATA_DIR runs on port $recorded (pid $1)," \
            "not REDIS_PORT=$REDIS_PORT"
    fi
}

cmd_start() {
    local pid bin
    pid=$(server_pid)
    if [[ -n $pid ]]; then
        check_same_port "$pid"
        log "already running (pid $pid)"
    else
        bin=$(redis_server)
        port_in_use "$REDIS_PORT" &&
            die "port $REDIS_PORT on $REDIS_HOST is already in use (set REDIS_PORT)"
        mkdir -p "$REDIS_DATA_DIR"
        log "starting Redis on $REDIS_HOST:$REDIS_PORT (log: $LOG_FILE)"
        # No RDB snapshots or AOF: a throwaway broker. The config comes from arguments
        # only (no file), so the system's /etc/redis/redis.conf plays no part.
        (
            cd "$REDIS_DATA_DIR"
            exec "$bin" --bind "$REDIS_HOST" --port "$REDIS_PORT" --dir "$REDIS_DATA_DIR" \
                --save "" --appendonly no --daemonize no --protected-mode yes \
                --logfile "$LOG_FILE"
        ) </dev/null >>"$LOG_FILE" 2>&1 &
        pid=$!
        echo "$pid" >"$PID_FILE"
        echo "$REDIS_PORT" >"$PORT_FILE"
    fi
    local deadline=$((SECONDS + REDIS_START_TIMEOUT))
    until ping 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE" "$PORT_FILE"
            log_tail
            die "redis-server exited during start-up"
        fi
        if ((SECONDS >= deadline)); then
            log_tail
            cmd_stop
            die "no PONG after ${REDIS_START_TIMEOUT}s on $REDIS_HOST:$REDIS_PORT"
        fi
        sleep 0.2
    done
    log "ready: $(cmd_url) (pid $pid)"
}

cmd_stop() {
    local pid
    pid=$(server_pid)
    if [[ -z $pid ]]; then
        rm -f "$PID_FILE" "$PORT_FILE"
        log "not running"
        return 0
    fi
    log "stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + REDIS_STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "still running after ${REDIS_STOP_TIMEOUT}s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE" "$PORT_FILE"
    log "stopped"
}

cmd_status() {
    local pid
    pid=$(server_pid)
    if [[ -z $pid ]]; then
        echo "redis: not running ($REDIS_HOST:$REDIS_PORT)"
        return 3
    fi
    check_same_port "$pid"
    if ping 2>/dev/null; then
        echo "redis: running, healthy (pid $pid, $(cmd_url))"
    else
        echo "redis: running (pid $pid) but not answering PING on $REDIS_HOST:$REDIS_PORT"
        return 1
    fi
}

cmd_url() { echo "redis://$REDIS_HOST:$REDIS_PORT/0"; }

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    url) cmd_url ;;
    logs)
        [[ -f $LOG_FILE ]] || die "no log yet at $LOG_FILE"
        cat "$LOG_FILE"
        ;;
    *)
        echo "usage: $0 {start|stop|status|url|logs}" >&2
        exit 2
        ;;
esac
