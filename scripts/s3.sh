#!/usr/bin/env bash
# Local S3-compatible object store for development and CI: a SeaweedFS
# server (master + volume + filer + S3 gateway in one process) on loopback,
# with a static identity so every request must be signed with the keys below.
#
#   scripts/s3.sh install   build (once per machine) the pinned `weed` binary
#   scripts/s3.sh start     start in the background, wait until healthy, create buckets
#   scripts/s3.sh stop      stop (SIGTERM, then SIGKILL after S3_STOP_TIMEOUT s)
#   scripts/s3.sh status    exit 0 = running and answering signed requests,
#                           1 = running but not answering, 3 = not running
#   scripts/s3.sh env       print the client settings as shell `export` lines
#   scripts/s3.sh logs [-f] show (or follow) the server log
#
# Settings (environment):
#   S3_DATA_DIR            data, config, pid and log (default: <repo>/.services/s3)
#   S3_PORT                S3 API port on 127.0.0.1 (default: 9000)
#   S3_MASTER_PORT, S3_VOLUME_PORT, S3_FILER_PORT
#                          internal ports (default: S3_PORT+1, +2, +3; gRPC uses port+10000)
#   AWS_ACCESS_KEY_ID      access key   (default: fraud-detection, local use only)
#   AWS_SECRET_ACCESS_KEY  secret key   (default: fraud-detection-secret, local use only)
#   S3_BUCKETS             buckets to create on start (default: "fraud-detection mlflow")
#   S3_START_TIMEOUT       seconds to wait for health (default: 90)
#   S3_STOP_TIMEOUT        seconds to wait after SIGTERM (default: 20)
#   PYTHON                 interpreter with botocore, for health checks and buckets
#                          (default: <repo>/.venv/bin/python, else python3)
#   SEAWEEDFS_VERSION      Go module version of github.com/seaweedfs/seaweedfs
#   WEED_BIN               use this weed binary instead of the cached build
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

# SeaweedFS publishes no semver tags, so the module proxy serves pseudo-versions
# only. This one is SeaweedFS 4.53 (commit 7506e5f91cd6, 2026-11-09).
SEAWEEDFS_MODULE=github.com/seaweedfs/seaweedfs
SEAWEEDFS_VERSION=${SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}
CACHE_DIR=${FRAUD_DETECTION_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fraud-detection}
WEED_BIN=${WEED_BIN:-$CACHE_DIR/bin/weed-$SEAWEEDFS_VERSION}

S3_HOST=127.0.0.1
S3_PORT=${S3_PORT:-9000}
S3_MASTER_PORT=${S3_MASTER_PORT:-$((S3_PORT + 1))}
S3_VOLUME_PORT=${S3_VOLUME_PORT:-$((S3_PORT + 2))}
S3_FILER_PORT=${S3_FILER_PORT:-$((S3_PORT + 3))}
S3_DATA_DIR=$(realpath -m "${S3_DATA_DIR:-$REPO_ROOT/.services/s3}")
S3_BUCKETS=${S3_BUCKETS:-fraud-detection mlflow}
S3_START_TIMEOUT=${S3_START_TIMEOUT:-90}
S3_STOP_TIMEOUT=${S3_STOP_TIMEOUT:-20}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-fraud-detection}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-fraud-detection-secret}
S3_ENDPOINT_URL="http://$S3_HOST:$S3_PORT"

PID_FILE=$S3_DATA_DIR/weed.pid
PORT_FILE=$S3_DATA_DIR/weed.port
LOG_FILE=$S3_DATA_DIR/weed.log
IDENTITY_FILE=$S3_DATA_DIR/s3-identities.json

log() { printf 's3: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

python_bin() {
    if [[ -n ${PYTHON:-} ]]; then
        echo "$PYTHON"
    elif [[ -x $REPO_ROOT/.venv/bin/python ]]; then
        echo "$REPO_ROOT/.venv/bin/python"
    else
        command -v python3 || die "no python found (set PYTHON)"
    fi
}

# Signed S3 calls through botocore (a dependency of s3fs via aiobotocore).
#   s3_client ping            list buckets; exit 0 on success
#   s3_client ensure B1 B2..  create the buckets that do not exist yet
#   s3_client writable B      write and delete a small object in bucket B
s3_client() {
    "$(python_bin)" - "$S3_ENDPOINT_URL" "$@" <<'PY'
import os
import sys

try:
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import ClientError
except ImportError as exc:  # pragma: no cover - environment problem
    sys.exit(f"botocore is not importable by {sys.executable}: {exc}")

endpoint, command, *buckets = sys.argv[1:]
client = botocore.session.get_session().create_client(
    "s3",
    endpoint_url=endpoint,
    region_name="us-east-1",
    config=Config(
        connect_timeout=2,
        read_timeout=10,
        retries={"max_attempts": 1},
        s3={"addressing_style": "path"},
    ),
)
try:
    if command == "ping":
        client.list_buckets()
    elif command == "ensure":
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        for bucket in buckets:
            if bucket in existing:
                continue
            try:
                client.create_bucket(Bucket=bucket)
                print(f"created bucket {bucket}", file=sys.stderr)
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in (
                    "BucketAlreadyOwnedByYou",
                    "BucketAlreadyExists",
                ):
                    raise
    elif command == "writable":
        key = f".s3-start-probe-{os.getpid()}"
        client.put_object(Bucket=buckets[0], Key=key, Body=b"ok")
        client.delete_object(Bucket=buckets[0], Key=key)
    else:
        sys.exit(f"unknown command {command}")
except Exception as exc:
    sys.exit(f"{type(exc).__name__}: {exc}")
PY
}

cmd_install() {
    if [[ -x $WEED_BIN ]]; then
        log "using cached $WEED_BIN"
        return 0
    fi
    if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
        PATH=/usr/local/go/bin:$PATH
    fi
    command -v go >/dev/null || die "go is required to build SeaweedFS ($SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION)"
    # The upstream go.mod has a replace directive, so `go install module@version`
    # refuses it; build from a throwaway module that requires it and repeats
    # the replace instead.
    build_dir=$(mktemp -d "${TMPDIR:-/tmp}/weed-build.XXXXXX")
    trap 'rm -rf "$build_dir"' EXIT
    local upstream_mod
    upstream_mod=$(cd "$build_dir" && GOFLAGS=-mod=mod go mod download -json "$SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION" |
        sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
    [[ -f $upstream_mod ]] || die "could not download $SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION"
    {
        printf 'module fraud-detection/weed-build\n\ngo %s\n\nrequire %s %s\n\n' \
            "$(sed -n 's/^go //p' "$upstream_mod")" "$SEAWEEDFS_MODULE" "$SEAWEEDFS_VERSION"
        grep -E '^replace ' "$upstream_mod" || true
    } >"$build_dir/go.mod"
    log "building $SEAWEEDFS_MODULE/weed@$SEAWEEDFS_VERSION (several minutes on 2 cores)..."
    local started=$SECONDS
    mkdir -p "$(dirname "$WEED_BIN")"
    (cd "$build_dir" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' \
        -o "$build_dir/weed" "$SEAWEEDFS_MODULE/weed") || die "go build failed"
    mv -f "$build_dir/weed" "$WEED_BIN.tmp.$$"
    mv -f "$WEED_BIN.tmp.$$" "$WEED_BIN"
    log "built $WEED_BIN in $((SECONDS - started))s ($(du -h "$WEED_BIN" | cut -f1))"
}

# pid of the running server, or nothing (stale pid files are ignored)
server_pid() {
    [[ -f $PID_FILE ]] || return 0
    local pid
    pid=$(<"$PID_FILE")
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'weed'; then
        echo "$pid"
    fi
}

port_in_use() { (exec 3<>"/dev/tcp/$S3_HOST/$1") 2>/dev/null; }

log_tail() {
    if [[ -f $LOG_FILE ]]; then
        log "last lines of $LOG_FILE:"
        tail -n "${1:-30}" "$LOG_FILE" | sed 's/^/    /' >&2
    fi
}

write_identities() {
    local value
    for value in "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"; do
        [[ $value != *[\"\\]* && $value != *[[:cntrl:]]* ]] ||
            die "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY must not contain quotes, backslashes or control characters"
    done
    (
        umask 077
        cat >"$IDENTITY_FILE" <<JSON
{
  "identities": [
    {
      "name": "fraud-detection-admin",
      "credentials": [
        {"accessKey": "$AWS_ACCESS_KEY_ID", "secretKey": "$AWS_SECRET_ACCESS_KEY"}
      ],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    }
  ]
}
JSON
    )
}

# wait_healthy PID STARTED: STARTED=yes if this invocation launched PID
wait_healthy() {
    local pid=$1 started=$2 deadline=$((SECONDS + S3_START_TIMEOUT)) err=""
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE" "$PORT_FILE"
            log "server process $pid exited during start-up"
            log_tail 40
            exit 1
        fi
        # Cheap probe first: the gateway answers 403 to an unsigned request.
        if [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "$S3_ENDPOINT_URL/" || true) != 000 ]]; then
            if err=$(s3_client ping 2>&1); then
                return 0
            fi
            if [[ $err == *InvalidAccessKeyId* || $err == *SignatureDoesNotMatch* ]]; then
                die "the server rejects AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY ($err); it was started with other keys: run scripts/s3.sh restart with the keys you want"
            fi
        fi
        sleep 1
    done
    log "not healthy after ${S3_START_TIMEOUT}s at $S3_ENDPOINT_URL${err:+ (last error: $err)}"
    log_tail 40
    if [[ $started == yes ]]; then
        log "stopping the server that did not become healthy"
        cmd_stop
    fi
    exit 1
}

# Listing works as soon as the filer is up, but writes need the master, which on a
# restart waits for its raft election (10-15 s): wait until a write succeeds.
wait_writable() {
    local bucket=$1 deadline=$((SECONDS + S3_START_TIMEOUT)) err=""
    until err=$(s3_client writable "$bucket" 2>&1); do
        if ((SECONDS >= deadline)); then
            log_tail 20
            die "bucket $bucket not writable after ${S3_START_TIMEOUT}s (last error: $err)"
        fi
        sleep 1
    done
}

# The server of this data dir runs on the port recorded at start; refuse to
# mix it up with another S3_PORT.
check_same_port() {
    local recorded
    recorded=$(cat "$PORT_FILE" 2>/dev/null || true)
    if [[ -n $recorded && $recorded != "$S3_PORT" ]]; then
        die "the server of S3_DATA_DIR=$S3_DATA_DIR runs on port $recorded (pid $1), not S3_PORT=$S3_PORT; use that port, stop it first, or choose another S3_DATA_DIR"
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
        [[ -x $WEED_BIN ]] || cmd_install
        local port
        for port in "$S3_PORT" "$S3_MASTER_PORT" "$S3_VOLUME_PORT" "$S3_FILER_PORT" \
            $((S3_PORT + 10000)) $((S3_MASTER_PORT + 10000)) $((S3_VOLUME_PORT + 10000)) $((S3_FILER_PORT + 10000)); do
            port_in_use "$port" && die "port $port on $S3_HOST is already in use (set S3_PORT or stop the other server)"
        done
        mkdir -p "$S3_DATA_DIR/data"
        write_identities
        log "starting SeaweedFS S3 on $S3_ENDPOINT_URL (data: $S3_DATA_DIR, log: $LOG_FILE)"
        # cwd = data dir so no stray master.toml/filer.toml is picked up from
        # the caller's cwd; AWS_* are dropped so the identity file is the only
        # source of credentials.
        (
            cd "$S3_DATA_DIR"
            exec env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
                "$WEED_BIN" -logtostderr=true server \
                -ip="$S3_HOST" -ip.bind="$S3_HOST" \
                -dir="$S3_DATA_DIR/data" \
                -master.port="$S3_MASTER_PORT" \
                -master.volumeSizeLimitMB=256 \
                -master.telemetry=false \
                -master.electionTimeout=2s \
                -volume.port="$S3_VOLUME_PORT" \
                -volume.max=0 \
                -volume.preStopSeconds=0 \
                -filer \
                -filer.port="$S3_FILER_PORT" \
                -s3 \
                -s3.port="$S3_PORT" \
                -s3.config="$IDENTITY_FILE" \
                -s3.autoCreateBucket=false \
                -s3.port.iceberg=0 \
                -s3.port.lance=0
        ) </dev/null >>"$LOG_FILE" 2>&1 &
        pid=$!
        echo "$pid" >"$PID_FILE"
        echo "$S3_PORT" >"$PORT_FILE"
    fi
    wait_healthy "$pid" "$started"
    # shellcheck disable=SC2086 # S3_BUCKETS is a space-separated list
    s3_client ensure $S3_BUCKETS || { log_tail 20; die "could not create buckets: $S3_BUCKETS"; }
    wait_writable ${S3_BUCKETS%% *}
    log "ready: $S3_ENDPOINT_URL (pid $pid, buckets: $S3_BUCKETS)"
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
    local deadline=$((SECONDS + S3_STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "still running after ${S3_STOP_TIMEOUT}s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    fi
    rm -f "$PID_FILE" "$PORT_FILE"
    log "stopped"
}

cmd_status() {
    local pid err
    pid=$(server_pid)
    if [[ -z $pid ]]; then
        echo "s3: not running ($S3_ENDPOINT_URL)"
        return 3
    fi
    check_same_port "$pid"
    if err=$(s3_client ping 2>&1); then
        echo "s3: running, healthy (pid $pid, $S3_ENDPOINT_URL, data $S3_DATA_DIR)"
    else
        echo "s3: running (pid $pid) but not answering signed requests at $S3_ENDPOINT_URL: $err"
        return 1
    fi
}

cmd_env() {
    printf 'export AWS_ACCESS_KEY_ID=%q\n' "$AWS_ACCESS_KEY_ID"
    printf 'export AWS_SECRET_ACCESS_KEY=%q\n' "$AWS_SECRET_ACCESS_KEY"
    printf 'export AWS_DEFAULT_REGION=%q\n' "${AWS_DEFAULT_REGION:-us-east-1}"
    printf 'export AWS_ENDPOINT_URL_S3=%q\n' "$S3_ENDPOINT_URL"
    printf 'export MLFLOW_S3_ENDPOINT_URL=%q\n' "$S3_ENDPOINT_URL"
}

cmd_logs() {
    [[ -f $LOG_FILE ]] || die "no log yet at $LOG_FILE"
    if [[ ${1:-} == -f ]]; then
        exec tail -n 50 -F "$LOG_FILE"
    fi
    cat "$LOG_FILE"
}

case ${1:-} in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop && cmd_start ;;
    status) cmd_status ;;
    env) cmd_env ;;
    logs) cmd_logs "${2:-}" ;;
    *)
        echo "usage: $0 {install|start|stop|restart|status|env|logs [-f]}" >&2
        exit 2
        ;;
esac
