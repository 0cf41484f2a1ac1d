#!/usr/bin/env bash
# Local MLflow tracking server for development and CI: SQLite backend store,
# artifacts proxied by the server (--serve-artifacts) into an S3 bucket.
# Start the object store first (scripts/s3.sh start).
#
#   scripts/mlflow_server.sh start    start in the background and wait for /health
#   scripts/mlflow_server.sh stop     stop (SIGTERM to its process group, then SIGKILL)
#   scripts/mlflow_server.sh status   exit 0 = running and /health answers,
#                                     1 = running but not answering, 3 = not running
#   scripts/mlflow_server.sh env      print `export MLFLOW_TRACKING_URI=...`
#   scripts/mlflow_server.sh logs [-f]  show (or follow) the server log
#
# Settings (environment):
#   MLFLOW_DATA_DIR               SQLite db, pid and log (default: <repo>/.services/mlflow)
#   MLFLOW_PORT                   port on 127.0.0.1 (default: 5000)
#   MLFLOW_WORKERS                server worker processes (default: 2)
#   MLFLOW_ARTIFACTS_DESTINATION  where proxied artifacts go (default: s3://mlflow/)
#   MLFLOW_S3_ENDPOINT_URL        S3 endpoint (default: http://127.0.0.1:${S3_PORT:-9000})
#   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
#                                 S3 keys (default: the local ones of scripts/s3.sh)
#   MLFLOW_SERVER_ARGS            extra arguments for `mlflow server`
#                                 (e.g. "--allowed-hosts mlflow.example.org")
#   MLFLOW_SERVER_ENABLE_JOB_EXECUTION
#                                 MLflow's background job runner (GenAI scorers and
#                                 the like; about 8 extra processes); default: false
#   MLFLOW_START_TIMEOUT          seconds to wait for /health (default: 120)
#   MLFLOW_STOP_TIMEOUT           seconds to wait after SIGTERM (default: 20)
#   MLFLOW_BIN                    mlflow executable (default: <repo>/.venv/bin/mlflow)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

MLFLOW_HOST=127.0.0.1
MLFLOW_PORT=${MLFLOW_PORT:-5000}
MLFLOW_WORKERS=${MLFLOW_WORKERS:-2}
MLFLOW_DATA_DIR=$(realpath -m "${MLFLOW_DATA_DIR:-$REPO_ROOT/.services/mlflow}")
MLFLOW_ARTIFACTS_DESTINATION=${MLFLOW_ARTIFACTS_DESTINATION:-s3://mlflow/}
MLFLOW_START_TIMEOUT=${MLFLOW_START_TIMEOUT:-120}
MLFLOW_STOP_TIMEOUT=${MLFLOW_STOP_TIMEOUT:-20}
export MLFLOW_S3_ENDPOINT_URL=${MLFLOW_S3_ENDPOINT_URL:-http://127.0.0.1:${S3_PORT:-9000}}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-fraud-detection}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-fraud-detection-secret}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}
if [[ -z ${MLFLOW_BIN:-} ]]; then
    if [[ -x $REPO_ROOT/.venv/bin/mlflow ]]; then
        MLFLOW_BIN=$REPO_ROOT/.venv/bin/mlflow
    else
        MLFLOW_BIN=$(command -v mlflow || true)
    fi
fi

TRACKING_URI="http://$MLFLOW_HOST:$MLFLOW_PORT"
PID_FILE=$MLFLOW_DATA_DIR/mlflow.pid
PORT_FILE=$MLFLOW_DATA_DIR/mlflow.port
LOG_FILE=$MLFLOW_DATA_DIR/mlflow.log

log() { printf 'mlflow: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# pid (= process group id) of the running server, or nothing
server_pid() {
    [[ -f $PID_FILE ]] || return 0
    local pid
    pid=$(<"$PID_FILE")
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'mlflow'; then
        echo "$pid"
    fi
}

healthy() { [[ $(curl -s -m 3 "$TRACKING_URI/health" || true) == OK ]]; }

log_tail() {
    if [[ -f $LOG_FILE ]]; then
        log "last lines of $LOG_FILE:"
        tail -n "${1:-30}" "$LOG_FILE" | sed 's/^/    /' >&2
    fi
}

preflight() {
    [[ -n $MLFLOW_BIN && -x $MLFLOW_BIN ]] || die "mlflow not found (create the project venv or set MLFLOW_BIN)"
    (exec 3<>"/dev/tcp/$MLFLOW_HOST/$MLFLOW_PORT") 2>/dev/null &&
        die "port $MLFLOW_PORT on $MLFLOW_HOST is already in use (set MLFLOW_PORT or stop the other server)"
    if [[ $MLFLOW_ARTIFACTS_DESTINATION == s3://* ]]; then
        # The server writes artifacts with boto3; without it every upload fails.
        local python
        python=$(head -n1 "$MLFLOW_BIN" | sed -n 's/^#!//p')
        if [[ -n $python && -x $python ]] && ! "$python" -c 'import boto3' 2>/dev/null; then
            die "boto3 is not installed for $python; the server needs it for $MLFLOW_ARTIFACTS_DESTINATION"
        fi
        [[ $(curl -s -o /dev/null -m 3 -w '%{http_code}' "$MLFLOW_S3_ENDPOINT_URL/" || true) != 000 ]] ||
            die "S3 endpoint $MLFLOW_S3_ENDPOINT_URL is not answering (run scripts/s3.sh start first)"
    fi
}

# The server of this data dir runs on the port recorded at start; refuse to
# mix it up with another MLFLOW_PORT.
check_same_port() {
    local recorded
    recorded=$(cat "$PORT_FILE" 2>/dev/null || true)
    if [[ -n $recorded && $recorded != "$MLFLOW_PORT" ]]; then
        die "the server of MLFLOW_DATA_DIR=$MLFLOW_DATA_DIR runs on port $recorded (pid $1), not MLFLOW_PORT=$MLFLOW_PORT; use that port, stop it first, or choose another MLFLOW_DATA_DIR"
    fi
}

cmd_start() {
    local pid started=no
    pid=$(server_pid)
    if [[ -n $pid ]]; then
        check_same_port "$pid"
        log "already running (pid $pid)"
    else
        started=yes
        preflight
        mkdir -p "$MLFLOW_DATA_DIR"
        log "starting on $TRACKING_URI (backend: $MLFLOW_DATA_DIR/mlflow.db, artifacts: $MLFLOW_ARTIFACTS_DESTINATION via $MLFLOW_S3_ENDPOINT_URL, log: $LOG_FILE)"
        # setsid: own process group, so stop reaches the server's worker processes too.
        # shellcheck disable=SC2086 # MLFLOW_SERVER_ARGS is split on purpose
        (
            cd "$MLFLOW_DATA_DIR"
            exec setsid "$MLFLOW_BIN" server \
                --backend-store-uri "sqlite:///$MLFLOW_DATA_DIR/mlflow.db" \
                --serve-artifacts \
                --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION" \
                --host "$MLFLOW_HOST" \
                --port "$MLFLOW_PORT" \
                --workers "$MLFLOW_WORKERS" \
                ${MLFLOW_SERVER_ARGS:-}
        ) </dev/null >>"$LOG_FILE" 2>&1 &
        pid=$!
        echo "$pid" >"$PID_FILE"
        echo "$MLFLOW_PORT" >"$PORT_FILE"
    fi
    local deadline=$((SECONDS + MLFLOW_START_TIMEOUT))
    until healthy; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE" "$PORT_FILE"
            log "server process $pid exited during start-up"
            log_tail 40
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            log "$TRACKING_URI/health not answering after ${MLFLOW_START_TIMEOUT}s"
            log_tail 40
            if [[ $started == yes ]]; then
                log "stopping the server that did not become healthy"
                cmd_stop
            fi
            exit 1
        fi
        sleep 1
    done
    log "ready: $TRACKING_URI (pid $pid)"
}

cmd_stop() {
    local pid
    pid=$(server_pid)
    if [[ -z $pid ]]; then
        rm -f "$PID_FILE" "$PORT_FILE"
        log "not running"
        return 0
    fi
    log "stopping pid $pid and its process group"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + MLFLOW_STOP_TIMEOUT))
    while kill -0 -- "-$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.5
    done
    if kill -0 -- "-$pid" 2>/dev/null; then
        log "still running after ${MLFLOW_STOP_TIMEOUT}s, sending SIGKILL"
        kill -KILL -- "-$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    fi
    rm -f "$PID_FILE" "$PORT_FILE"
    log "stopped"
}

cmd_status() {
    local pid
    pid=$(server_pid)
    if [[ -z $pid ]]; then
        echo "mlflow: not running ($TRACKING_URI)"
        return 3
    fi
    check_same_port "$pid"
    if healthy; then
        echo "mlflow: running, healthy (pid $pid, $TRACKING_URI, artifacts $MLFLOW_ARTIFACTS_DESTINATION via $MLFLOW_S3_ENDPOINT_URL)"
    else
        echo "mlflow: running (pid $pid) but $TRACKING_URI/health is not answering"
        return 1
    fi
}

cmd_logs() {
    [[ -f $LOG_FILE ]] || die "no log yet at $LOG_FILE"
    if [[ ${1:-} == -f ]]; then
        exec tail -n 50 -F "$LOG_FILE"
    fi
    cat "$LOG_FILE"
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop && cmd_start ;;
    status) cmd_status ;;
    env) printf 'export MLFLOW_TRACKING_URI=%q\n' "$TRACKING_URI" ;;
    logs) cmd_logs "${2:-}" ;;
    *)
        echo "usage: $0 {start|stop|restart|status|env|logs [-f]}" >&2
        exit 2
        ;;
esac
