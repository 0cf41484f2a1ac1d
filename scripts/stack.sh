#!/usr/bin/env bash
# The whole production flow on one machine, without Docker: a Kafka broker, the
# S3-compatible object store with its buckets, the MLflow server (artifacts in the
# bucket), Airflow 3 standalone with the training DAG on the prod environment, the
# real-time scorer and a producer streaming simulated transactions at a gentle rate.
# Each service is started by the project's own script or CLI; see docs/stack.md.
#
#   scripts/stack.sh up          start what is not running, wait until every service is
#                                healthy, print the table (a no-op when all are up)
#   scripts/stack.sh status      the table with each service's state; exit 0 = all healthy
#   scripts/stack.sh down        stop every service the stack started (data is kept;
#                                STACK_PURGE=1 also deletes STACK_DIR)
#   scripts/stack.sh stop NAME   stop one service (kafka s3 mlflow airflow scorer producer)
#   scripts/stack.sh train       trigger the training DAG once and wait for its outcome
#   scripts/stack.sh env         the client settings as shell `export` lines
#   scripts/stack.sh peek [TOPIC] [N]   the last N (10) messages of TOPIC (the predictions)
#
# Settings (environment; recorded in STACK_DIR/stack.env by `up`, so later commands and a
# re-run use the ports the stack runs on):
#   STACK_DIR                  pid files, logs and data (default: <repo>/.services/stack)
#   KAFKA_PORT, KAFKA_CONTROLLER_PORT            default 9092, 9093
#   S3_PORT                    default 9000 (with S3_PORT+1..+3 and the same +10000)
#   MLFLOW_PORT                default 5000
#   AIRFLOW_PORT               API server and UI, default 8080
#   AIRFLOW_WORKER_LOG_PORT, AIRFLOW_TRIGGERER_LOG_PORT   default 8793, 8794
#   STACK_RATE                 producer messages per second (default 2)
#   STACK_PRODUCER_ARGS        more fraud-detection-produce options (e.g. "--days 7")
#   STACK_SEED_PARAMS          `kedro run --params` of the simulation that seeds the bucket
#                              with training data (default: conf/base/parameters_simulation)
#   STACK_DAG_PARAMS           `make dag DAG_PARAMS=...` (e.g. retries=0); empty = the
#                              committed DAG in airflow_dags/
#   STACK_TRAIN_PARAMS         (train) the DAG run's kedro_params as JSON (default {})
#   STACK_START_TIMEOUT        seconds to wait for Airflow and the scorer (default 300)
#   STACK_TRAIN_TIMEOUT        seconds `train` waits for the DAG run (default 3600)
#   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY    the local store's keys (scripts/s3.sh)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
STACK_DIR=$(realpath -m "${STACK_DIR:-$REPO_ROOT/.services/stack}")
CONFIG_FILE=$STACK_DIR/stack.env
VENV=$REPO_ROOT/.venv
AIRFLOW_VENV=$REPO_ROOT/.venv-airflow
PYTHON=$VENV/bin/python
DAG_ID=fraud_detection_training_dag
MODEL_NAME=fraud-detection
BUCKET=fraud-detection
MLFLOW_BUCKET=mlflow
TOPIC=transactions
PREDICTIONS_TOPIC=fraud_predictions
LABELS_TOPIC=transaction_labels
SERVICES=(kafka s3 mlflow airflow scorer producer)
# Every process the stack starts carries FRAUD_DETECTION_STACK=$STACK_DIR: the pid checks
# and `down` use it to tell the stack's processes from anything else on the machine.
MARK=FRAUD_DETECTION_STACK=$STACK_DIR
export KEDRO_DISABLE_TELEMETRY=true DO_NOT_TRACK=1
export KEDRO_LOGGING_MODULE_ALLOWLIST=pythonjsonlogger

log() { printf 'stack: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ------------------------------------------------------------------- settings --

SETTINGS=(KAFKA_PORT KAFKA_CONTROLLER_PORT S3_PORT MLFLOW_PORT AIRFLOW_PORT
    AIRFLOW_WORKER_LOG_PORT AIRFLOW_TRIGGERER_LOG_PORT STACK_RATE STACK_PRODUCER_ARGS
    STACK_SEED_PARAMS STACK_DAG_PARAMS AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY)

defaults() {
    KAFKA_PORT=${KAFKA_PORT:-9092}
    KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
    S3_PORT=${S3_PORT:-9000}
    MLFLOW_PORT=${MLFLOW_PORT:-5000}
    AIRFLOW_PORT=${AIRFLOW_PORT:-8080}
    AIRFLOW_WORKER_LOG_PORT=${AIRFLOW_WORKER_LOG_PORT:-8793}
    AIRFLOW_TRIGGERER_LOG_PORT=${AIRFLOW_TRIGGERER_LOG_PORT:-8794}
    STACK_RATE=${STACK_RATE:-2}
    STACK_PRODUCER_ARGS=${STACK_PRODUCER_ARGS:-}
    STACK_SEED_PARAMS=${STACK_SEED_PARAMS:-}
    STACK_DAG_PARAMS=${STACK_DAG_PARAMS:-}
    AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-fraud-detection}
    AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-fraud-detection-secret}
    local name
    for name in KAFKA_PORT KAFKA_CONTROLLER_PORT S3_PORT MLFLOW_PORT AIRFLOW_PORT \
        AIRFLOW_WORKER_LOG_PORT AIRFLOW_TRIGGERER_LOG_PORT; do
        [[ ${!name} =~ ^[0-9]+$ ]] || die "$name must be a port number, not '${!name}'"
    done
    [[ $STACK_RATE =~ ^[0-9]+([.][0-9]+)?$ ]] ||
        die "STACK_RATE must be a number, not '$STACK_RATE'"
}

# While any service of the stack runs, the recorded settings are the ones in force: a
# different value in the environment would address another (absent) stack.
load_settings() {
    [[ -f $CONFIG_FILE ]] || { defaults; return 0; }
    local name wanted=() value
    for name in "${SETTINGS[@]}"; do
        wanted+=("${!name-}")
    done
    # shellcheck disable=SC1090
    source "$CONFIG_FILE"
    if any_running; then
        local i=0
        for name in "${SETTINGS[@]}"; do
            value=${wanted[$i]}
            i=$((i + 1))
            if [[ -n $value && $value != "${!name-}" && $name != AWS_* ]]; then
                die "the stack in $STACK_DIR runs with $name=${!name-}, not $value;" \
                    "stop it first (make stack-down) to change it"
            fi
        done
    else
        local i=0
        for name in "${SETTINGS[@]}"; do
            value=${wanted[$i]}
            i=$((i + 1))
            [[ -n $value ]] && printf -v "$name" '%s' "$value"
        done
    fi
    defaults
}

save_settings() {
    mkdir -p "$STACK_DIR"
    [[ -f $STACK_DIR/.gitignore ]] || echo '*' >"$STACK_DIR/.gitignore"
    local name
    (
        umask 077
        for name in "${SETTINGS[@]}"; do
            printf '%s=%q\n' "$name" "${!name}"
        done >"$CONFIG_FILE"
    )
}

s3_endpoint() { echo "http://127.0.0.1:$S3_PORT"; }
tracking_uri() { echo "http://127.0.0.1:$MLFLOW_PORT"; }
airflow_url() { echo "http://127.0.0.1:$AIRFLOW_PORT"; }
bootstrap() { echo "127.0.0.1:$KAFKA_PORT"; }
password_file() { echo "$STACK_DIR/airflow/simple_auth_manager_passwords.json.generated"; }

# What the project's clients need (the prod environment's .env): see conf/prod.
client_env() {
    printf '%s\n' \
        "AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID" \
        "AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY" \
        "AWS_DEFAULT_REGION=us-east-1" \
        "AWS_ENDPOINT_URL_S3=$(s3_endpoint)" \
        "S3_BUCKET=$BUCKET" \
        "MLFLOW_TRACKING_URI=$(tracking_uri)" \
        "KAFKA_BOOTSTRAP_SERVERS=$(bootstrap)" \
        "KAFKA_TRANSACTIONS_TOPIC=$TOPIC" \
        "KAFKA_PREDICTIONS_TOPIC=$PREDICTIONS_TOPIC"
}

with_client_env() {
    local vars=()
    mapfile -t vars < <(client_env)
    env -u MLFLOW_RUN_ID -u KEDRO_ENV "${vars[@]}" "$@"
}

# ------------------------------------------------------------------ processes --

# The start time of pid $1 (clock ticks since boot, /proc/PID/stat field 22).
start_time() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) } # the command name may hold spaces: fields from the state on
    read -ra fields <<<"$stat"
    echo "${fields[19]}"
}

# The state of pid $1 (R, S, Z, ...).
proc_state() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    echo "${stat%% *}"
}

# true if pid $1 runs and belongs to this stack: a process launched by `launch`
# (its pid and start time are recorded) or one carrying the stack's mark.
ours() {
    local pid=$1
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    [[ -r /proc/$pid/stat ]] || return 0 # no /proc: trust the pid file
    [[ $(proc_state "$pid") != Z ]] || return 1
    # Not the environment alone: setproctitle (Airflow's components use it) overwrites
    # what /proc shows as a process's environment, so a running Airflow would look gone.
    local started
    started="$pid $(start_time "$pid")"
    grep -qxF "$started" "$STACK_DIR"/*/*.started 2>/dev/null && return 0
    tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qxF "$MARK"
}

# pids of every process of this stack (needs /proc)
stack_pids() {
    local entry pid
    for entry in /proc/[0-9]*; do
        pid=${entry#/proc/}
        [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
        tr '\0' '\n' 2>/dev/null <"$entry/environ" | grep -qxF "$MARK" &&
            echo "$pid"
    done
    return 0
}

pid_file() { echo "$STACK_DIR/$1/$1.pid"; }

own_pid() {
    local file pid
    file=$(pid_file "$1")
    [[ -f $file ]] || return 1
    pid=$(<"$file")
    ours "$pid" && echo "$pid"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Launches "$@" in its own session (so stop reaches its children), output to $2's log.
launch() {
    local name=$1
    shift
    mkdir -p "$STACK_DIR/$name"
    local log_file=$STACK_DIR/$name/$name.log
    { wc -c 2>/dev/null <"$log_file" || echo 0; } | tr -d " " >"$STACK_DIR/$name/$name.offset"
    local pid_path
    pid_path=$(pid_file "$name")
    rm -f "$pid_path"
    # setsid forks when its caller leads a process group (job control on): the pid is
    # written by the session leader itself.
    (
        cd "$STACK_DIR/$name"
        exec setsid env "$MARK" bash -c 'echo $$ >"$0"; exec "$@"' "$pid_path" "$@"
    ) </dev/null >>"$log_file" 2>&1 &
    local deadline=$((SECONDS + 10))
    until [[ -s $pid_path ]]; do
        ((SECONDS < deadline)) || die "$name did not start (log: $log_file)"
        sleep 0.1
    done
    local pid
    pid=$(<"$pid_path")
    echo "$pid $(start_time "$pid" || echo unknown)" >"$STACK_DIR/$name/$name.started"
}

# The log of service $1 since its last start.
since_start() {
    local log_file=$STACK_DIR/$1/$1.log offset
    offset=$(cat "$STACK_DIR/$1/$1.offset" 2>/dev/null || echo 0)
    [[ -f $log_file ]] && tail -c +"$((offset + 1))" "$log_file"
    return 0
}

# SIGTERM to the process group led by $1 (or the process alone), SIGKILL if it is
# still there after $2 seconds; returns 1 when it had to kill.
terminate_group() {
    local pid=$1 timeout=$2
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + timeout))
    while kill -0 -- "-$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
    kill -0 -- "-$pid" 2>/dev/null || return 0
    kill -KILL -- "-$pid" 2>/dev/null || true
    return 1
}

stop_group() {
    local name=$1 timeout=${2:-30} pid
    pid=$(own_pid "$name") || { rm -f "$(pid_file "$name")"; log "$name: not running"; return 0; }
    log "$name: stopping (pid $pid and its process group)"
    terminate_group "$pid" "$timeout" ||
        log "$name: still running after ${timeout}s, sent SIGKILL"
    rm -f "$(pid_file "$name")"
}

show_tail() {
    local file=$1
    [[ -f $file ]] || return 0
    log "last lines of $file:"
    tail -n "${2:-30}" "$file" | sed 's/^/    /' >&2
}

# ------------------------------------------------------------------- services --

kafka_sh() {
    env "$MARK" KAFKA_DATA_DIR=$STACK_DIR/kafka KAFKA_PORT=$KAFKA_PORT \
        KAFKA_CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT PYTHON=$PYTHON \
        "$SCRIPT_DIR/kafka.sh" "$@"
}

s3_sh() {
    env "$MARK" S3_DATA_DIR=$STACK_DIR/s3 S3_PORT=$S3_PORT S3_BUCKETS="$BUCKET $MLFLOW_BUCKET" \
        AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
        PYTHON=$PYTHON "$SCRIPT_DIR/s3.sh" "$@"
}

mlflow_sh() {
    env "$MARK" MLFLOW_DATA_DIR=$STACK_DIR/mlflow MLFLOW_PORT=$MLFLOW_PORT MLFLOW_WORKERS=1 \
        MLFLOW_S3_ENDPOINT_URL="$(s3_endpoint)" AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID \
        AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY MLFLOW_BIN=$VENV/bin/mlflow \
        "$SCRIPT_DIR/mlflow_server.sh" "$@"
}

running() {
    case $1 in
        kafka) kafka_sh status >/dev/null 2>&1 || [[ $? == 1 ]] ;;
        s3) s3_sh status >/dev/null 2>&1 || [[ $? == 1 ]] ;;
        mlflow) mlflow_sh status >/dev/null 2>&1 || [[ $? == 1 ]] ;;
        *) own_pid "$1" >/dev/null ;;
    esac
}

any_running() {
    local name
    for name in "${SERVICES[@]}"; do
        running "$name" && return 0
    done
    return 1
}

# The ports of the services that are not running must be free; each is named.
preflight_ports() {
    local busy=() offset
    check() { # service variable port
        port_in_use "$3" && busy+=("port $3 ($2, $1) on 127.0.0.1 is already in use")
        return 0
    }
    if ! running kafka; then
        check kafka KAFKA_PORT "$KAFKA_PORT"
        check kafka KAFKA_CONTROLLER_PORT "$KAFKA_CONTROLLER_PORT"
    fi
    if ! running s3; then
        check s3 S3_PORT "$S3_PORT"
        for offset in 1 2 3; do check s3 "S3_PORT+$offset" $((S3_PORT + offset)); done
        for offset in 0 1 2 3; do
            check s3 "S3_PORT+$((offset + 10000))" $((S3_PORT + offset + 10000))
        done
    fi
    running mlflow || check mlflow MLFLOW_PORT "$MLFLOW_PORT"
    if ! running airflow; then
        check airflow AIRFLOW_PORT "$AIRFLOW_PORT"
        check airflow AIRFLOW_WORKER_LOG_PORT "$AIRFLOW_WORKER_LOG_PORT"
        check airflow AIRFLOW_TRIGGERER_LOG_PORT "$AIRFLOW_TRIGGERER_LOG_PORT"
    fi
    if ((${#busy[@]})); then
        local line
        for line in "${busy[@]}"; do log "error: $line"; done
        die "set the named variables to free ports (make stack KAFKA_PORT=19092 ...)," \
            "or stop what uses them"
    fi
}

start_kafka() {
    kafka_sh start || die "Kafka did not start (log: $STACK_DIR/kafka/kafka.log);" \
        "Java 17+ and Maven are needed (docs/kafka.md)"
    "$PYTHON" - "$(bootstrap)" "$TOPIC" "$PREDICTIONS_TOPIC" "$LABELS_TOPIC" "$TOPIC.dlq" <<'PY' ||
import sys

from kafka import KafkaAdminClient
from kafka.admin import NewTopic

bootstrap, *topics = sys.argv[1:]
admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="stack-topics")
try:
    missing = sorted(set(topics) - set(admin.list_topics()))
    if missing:
        admin.create_topics([NewTopic(t, num_partitions=3, replication_factor=1) for t in missing])
        print(f"kafka: created topics {', '.join(missing)}", file=sys.stderr)
finally:
    admin.close()
PY
        die "could not create the topics on $(bootstrap)"
}

start_s3() {
    s3_sh start || die "the object store did not start (log: $STACK_DIR/s3/weed.log;" \
        "the binary: make s3-server)"
}

start_mlflow() {
    mlflow_sh start || die "the MLflow server did not start (log: $STACK_DIR/mlflow/mlflow.log)"
}

# Training data for the DAG: the simulation pipeline writes the raw transactions to the
# bucket's landing zone, as upstream systems would in production. Once per STACK_DIR.
seed_bucket() {
    if with_client_env "$PYTHON" - "$BUCKET" <<'PY'; then
import os
import sys

import s3fs

fs = s3fs.S3FileSystem(endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"])
sys.exit(0 if fs.exists(f"{sys.argv[1]}/01_raw/transactions.parquet") else 1)
PY
        return 0
    fi
    local seed_log=$STACK_DIR/seed.log params=()
    [[ -n $STACK_SEED_PARAMS ]] && params=(--params "$STACK_SEED_PARAMS")
    log "seeding s3://$BUCKET/01_raw/transactions.parquet with the simulation pipeline" \
        "(log: $seed_log)"
    if ! (cd "$REPO_ROOT" && with_client_env MLFLOW_EXPERIMENT_NAME=simulation \
        "$VENV/bin/kedro" run --env prod --pipelines simulation "${params[@]}") \
        >>"$seed_log" 2>&1; then
        show_tail "$seed_log" 40
        die "the simulation run that seeds the bucket failed (log: $seed_log)"
    fi
}

airflow_env() {
    local home=$STACK_DIR/airflow dags=$REPO_ROOT/airflow_dags
    [[ -n $STACK_DAG_PARAMS ]] && dags=$home/dags
    printf '%s\n' \
        "PATH=$AIRFLOW_VENV/bin:$PATH" \
        "AIRFLOW_HOME=$home" \
        "AIRFLOW__CORE__DAGS_FOLDER=$dags" \
        "AIRFLOW__CORE__LOAD_EXAMPLES=false" \
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=false" \
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=false" \
        "AIRFLOW__API__HOST=127.0.0.1" \
        "AIRFLOW__API__PORT=$AIRFLOW_PORT" \
        "AIRFLOW__API__BASE_URL=$(airflow_url)" \
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL=$(airflow_url)/execution/" \
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=$AIRFLOW_WORKER_LOG_PORT" \
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=$AIRFLOW_TRIGGERER_LOG_PORT" \
        "FRAUD_DETECTION_PROJECT_PATH=$REPO_ROOT" \
        "KEDRO_ENV=prod"
}

airflow_cli() {
    local vars=()
    mapfile -t vars < <(airflow_env)
    (cd "$STACK_DIR/airflow" && with_client_env "${vars[@]}" "$AIRFLOW_VENV/bin/airflow" "$@")
}

start_airflow() {
    # Refreshes the project wheel in .venv-airflow, so the tasks run the current code.
    make --no-print-directory -C "$REPO_ROOT" airflow-venv >&2 ||
        die "make airflow-venv failed (see above)"
    mkdir -p "$STACK_DIR/airflow"
    if [[ -n $STACK_DAG_PARAMS ]]; then
        make --no-print-directory -C "$REPO_ROOT" dag DAG_TARGET_DIR="$STACK_DIR/airflow/dags" \
            DAG_PARAMS="$STACK_DAG_PARAMS" >&2 || die "make dag DAG_PARAMS=$STACK_DAG_PARAMS failed"
    fi
    launch_airflow
}

launch_airflow() {
    local vars=()
    mapfile -t vars < <(airflow_env)
    # Unbuffered, so the log keeps the last words of a component that dies.
    launch airflow env -u MLFLOW_RUN_ID "${vars[@]}" $(client_env) PYTHONUNBUFFERED=1 \
        MLFLOW_EXPERIMENT_NAME=fraud-detection "$AIRFLOW_VENV/bin/airflow" standalone
}

airflow_healthy() {
    "$PYTHON" - "$(airflow_url)/api/v2/monitor/health" <<'PY'
import json
import sys
import urllib.request

try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as response:
        health = json.load(response)
except (OSError, ValueError):
    sys.exit(1)
parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
sys.exit(0 if all((health.get(p) or {}).get("status") == "healthy" for p in parts) else 1)
PY
}

dag_registered() { airflow_cli dags details "$DAG_ID" >/dev/null 2>&1; }

wait_airflow() {
    local pid deadline=$((SECONDS + STACK_START_TIMEOUT))
    pid=$(own_pid airflow) || {
        show_tail "$STACK_DIR/airflow/airflow.log" 40
        die "Airflow exited at once"
    }
    local restarted=""
    until airflow_healthy && dag_registered; do
        if ! ours "$pid"; then
            show_tail "$STACK_DIR/airflow/airflow.log" 40
            # `airflow standalone` has been seen to exit once while its components start
            # on a busy machine, leaving no error in its log: start it once more (the log
            # keeps both attempts), and stop on a second exit.
            [[ -z $restarted ]] ||
                die "Airflow exited during start-up twice (log: $STACK_DIR/airflow/airflow.log)"
            log "Airflow exited during start-up; starting it once more"
            # Its components may outlive it: stop its process group before touching the
            # database. That database may be half created by the exited start (a retry
            # then fails with 'table ... already exists'): the retry starts from a new
            # one, the old one (with its -wal and -shm files) is kept beside it.
            terminate_group "$pid" 30 || true
            local db=$STACK_DIR/airflow/airflow.db suffix
            if [[ -f $db ]]; then
                for suffix in "" -wal -shm -journal; do
                    [[ -f $db$suffix ]] && mv -f "$db$suffix" "$db.failed-start$suffix"
                done
                log "Airflow's database moved to $db.failed-start"
            fi
            restarted=1
            launch_airflow
            pid=$(own_pid airflow) || die "Airflow exited at once (log: $STACK_DIR/airflow/airflow.log)"
            continue
        fi
        if ((SECONDS >= deadline)); then
            show_tail "$STACK_DIR/airflow/airflow.log" 40
            airflow_cli dags list-import-errors >&2 || true
            die "Airflow or the DAG $DAG_ID not ready after ${STACK_START_TIMEOUT}s" \
                "(log: $STACK_DIR/airflow/airflow.log)"
        fi
        sleep 3
    done
}

# The scorer serves the registry's champion; until the first DAG run promotes one, the
# stack's scorer waits for it (`scripts/stack.sh _scorer`), then becomes the scorer.
champion_exists() {
    "$PYTHON" - "$MLFLOW_TRACKING_URI" "$MODEL_NAME" <<'PY'
import sys

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

try:
    MlflowClient(sys.argv[1]).get_model_version_by_alias(sys.argv[2], "champion")
except MlflowException:
    sys.exit(1)
PY
}

run_scorer() {
    if ! champion_exists; then
        log "waiting for models:/$MODEL_NAME@champion at $MLFLOW_TRACKING_URI" \
            "(trigger the DAG: make stack-train)"
        until champion_exists; do sleep 10; done
    fi
    log "champion found: starting fraud-detection-score"
    exec "$VENV/bin/fraud-detection-score" --env prod --project-path "$REPO_ROOT" \
        --bootstrap-servers "$KAFKA_BOOTSTRAP_SERVERS" --transactions-topic "$TOPIC" \
        --predictions-topic "$PREDICTIONS_TOPIC" --labels-topic "$LABELS_TOPIC" \
        --model-check-interval 10 --status-every 60
}

start_scorer() {
    launch scorer env -u MLFLOW_RUN_ID $(client_env) "$SCRIPT_DIR/stack.sh" _scorer
}

# Transactions from the simulator (another seed than the training data), sent at
# STACK_RATE messages per second for as long as the simulated days last; each label to
# the label topic once the replay passes its time (docs/labels.md).
start_producer() {
    launch producer env $(client_env) "$VENV/bin/fraud-detection-produce" --env prod \
        --project-path "$REPO_ROOT" --bootstrap-servers "$(bootstrap)" --topic "$TOPIC" \
        --labels-topic "$LABELS_TOPIC" --rate "$STACK_RATE" --seed 4242 --progress-every 60 $STACK_PRODUCER_ARGS
}

# state of a service for the table: "healthy ...", or why not (exit 1), or not running (3)
state() {
    local pid
    case $1 in
        kafka | s3 | mlflow)
            local out rc=0
            out=$("${1}_sh" status 2>&1) || rc=$?
            case $rc in
                0) echo healthy ;;
                3) echo "not running"; return 3 ;;
                *) echo "not answering"; return 1 ;;
            esac
            ;;
        airflow)
            pid=$(own_pid airflow) || { echo "not running"; return 3; }
            airflow_healthy && echo healthy || { echo "starting or unhealthy"; return 1; }
            ;;
        scorer)
            pid=$(own_pid scorer) || { echo "not running"; return 3; }
            local scorer_log
            scorer_log=$(since_start scorer)
            if [[ $scorer_log != *"Scoring from offsets"* ]]; then
                if [[ $scorer_log == *"champion found"* ]]; then
                    echo "starting: loading the champion, rebuilding the feature state"
                    return 1
                elif [[ $scorer_log == *"waiting for models"* ]]; then
                    echo "healthy, waiting for a champion (make stack-train)"
                else
                    echo "starting"
                    return 1
                fi
            else
                local version
                version=$(printf '%s\n' "$scorer_log" |
                    grep -oE '(Serving [^ ]+ version|now serving) [0-9]+' | tail -n 1 |
                    awk '{print $NF}')
                echo "healthy, scoring${version:+ with version $version}"
            fi
            ;;
        producer)
            pid=$(own_pid producer) || {
                if since_start producer | grep -q 'acknowledged'; then
                    echo "finished (see its log)"
                    return 3
                fi
                echo "not running"
                return 3
            }
            echo "healthy, $STACK_RATE msg/s"
            ;;
    esac
}

address() {
    case $1 in
        kafka) echo "$(bootstrap) topics $TOPIC -> $PREDICTIONS_TOPIC" ;;
        s3) echo "$(s3_endpoint) buckets $BUCKET, $MLFLOW_BUCKET" ;;
        mlflow) echo "$(tracking_uri)" ;;
        airflow) echo "$(airflow_url) (user admin)" ;;
        scorer) echo "$TOPIC -> $PREDICTIONS_TOPIC" ;;
        producer) echo "simulator -> $TOPIC" ;;
    esac
}

log_of() {
    case $1 in
        kafka) echo "$STACK_DIR/kafka/kafka.log" ;;
        s3) echo "$STACK_DIR/s3/weed.log" ;;
        mlflow) echo "$STACK_DIR/mlflow/mlflow.log" ;;
        *) echo "$STACK_DIR/$1/$1.log" ;;
    esac
}

rel() { [[ $1 == "$PWD"/* ]] && echo "${1#"$PWD"/}" || echo "$1"; }

stop_command() {
    local prefix=""
    [[ $STACK_DIR != "$REPO_ROOT/.services/stack" ]] && prefix="STACK_DIR=$(rel "$STACK_DIR") "
    echo "${prefix}scripts/stack.sh stop $1"
}

# Prints the table; exit 0 when every service is healthy (a finished producer counts).
table() {
    local name st rc all=0
    local rows=()
    for name in "${SERVICES[@]}"; do
        rc=0
        st=$(state "$name") || rc=$?
        if ((rc != 0)) && ! [[ $name == producer && $st == finished* ]]; then all=1; fi
        rows+=("$name|$st|$(address "$name")|$(rel "$(log_of "$name")")|$(stop_command "$name")")
    done
    {
        echo "SERVICE|STATE|ADDRESS|LOG|STOP"
        printf '%s\n' "${rows[@]}"
    } | column -t -s '|'
    echo
    echo "Airflow password: $(rel "$(password_file)") (written by airflow standalone)."
    echo "Stop everything: make stack-down" \
        "(data kept in $(rel "$STACK_DIR"); STACK_PURGE=1 deletes it)."
    echo "Train once: make stack-train. Client settings: eval \"\$(scripts/stack.sh env)\"."
    return $all
}

# ------------------------------------------------------------------- commands --

cmd_up() {
    load_settings
    local name all_up=yes
    for name in "${SERVICES[@]}"; do
        running "$name" || all_up=no
    done
    if [[ $all_up == yes ]]; then
        log "already up"
        table
        return
    fi
    preflight_ports
    [[ -x $PYTHON ]] || die "no project venv at $VENV: run make install"
    save_settings
    running s3 || start_s3
    running mlflow || start_mlflow
    running kafka || start_kafka
    seed_bucket
    if ! running airflow; then
        start_airflow
    fi
    wait_airflow
    running scorer || start_scorer
    running producer || start_producer
    # The scorer is healthy once it waits for a champion or scores (loading a champion
    # and replaying the topic into its feature state takes a while).
    local deadline=$((SECONDS + STACK_START_TIMEOUT))
    until state scorer >/dev/null; do
        for name in scorer producer; do
            own_pid "$name" >/dev/null || {
                show_tail "$(log_of "$name")" 30
                die "$name exited during start-up (log: $(log_of "$name"))"
            }
        done
        ((SECONDS < deadline)) || die "the scorer not ready after ${STACK_START_TIMEOUT}s" \
            "(log: $(log_of scorer))"
        sleep 2
    done
    own_pid producer >/dev/null || {
        show_tail "$(log_of producer)" 30
        die "the producer exited during start-up (log: $(log_of producer))"
    }
    log "up"
    table
}

cmd_status() {
    [[ -f $CONFIG_FILE ]] || { echo "no stack in $STACK_DIR (make stack starts one)"; return 3; }
    load_settings
    table
}

cmd_stop() {
    local name=${1:-}
    [[ -f $CONFIG_FILE ]] || { log "no stack in $STACK_DIR"; return 0; }
    load_settings
    case $name in
        kafka) kafka_sh stop ;;
        s3) S3_STOP_TIMEOUT=20 s3_sh stop ;;
        mlflow) mlflow_sh stop ;;
        airflow) stop_group airflow 60 ;;
        scorer) stop_group scorer 60 ;;
        producer) stop_group producer 30 ;;
        *) die "stop needs one of: ${SERVICES[*]}" ;;
    esac
}

cmd_down() {
    if [[ -f $CONFIG_FILE ]]; then
        load_settings
        # Consumers first, storage last.
        local name
        for name in producer scorer airflow mlflow kafka s3; do
            cmd_stop "$name"
        done
    fi
    local left
    left=$(stack_pids)
    if [[ -n $left ]]; then
        log "stopping leftover processes of the stack: $(echo "$left" | tr '\n' ' ')"
        # shellcheck disable=SC2086
        kill -TERM $left 2>/dev/null || true
        sleep 3
        left=$(stack_pids)
        # shellcheck disable=SC2086
        [[ -n $left ]] && kill -KILL $left 2>/dev/null || true
    fi
    if [[ ${STACK_PURGE:-0} == 1 ]]; then
        log "deleting $STACK_DIR"
        rm -rf "$STACK_DIR"
    elif [[ -d $STACK_DIR ]]; then
        log "stopped; data kept in $STACK_DIR (STACK_PURGE=1 make stack-down deletes it)"
    fi
}

# The failed tasks of DAG run $1 and the end of their logs (or of Airflow's log, for a
# task that failed before it started).
show_failed_tasks() {
    local run_id=$1 task file
    local failed=()
    mapfile -t failed < <(airflow_cli tasks states-for-dag-run "$DAG_ID" "$run_id" --output json \
        2>/dev/null | "$PYTHON" -c '
import json, sys
lines = [l for l in sys.stdin.read().splitlines() if l.startswith("[")]
for row in json.loads(lines[-1]) if lines else []:
    if row["state"] == "failed":
        print(row["task_id"])') || true
    for task in "${failed[@]}"; do
        log "task $task failed"
        file=$(ls "$STACK_DIR/airflow/logs/dag_id=$DAG_ID/run_id=$run_id/task_id=$task/"*.log \
            2>/dev/null | tail -n 1)
        if [[ -n $file ]]; then
            show_tail "$file" 40
        else
            grep -F "$task" "$STACK_DIR/airflow/airflow.log" | tail -n 20 >&2 || true
        fi
    done
}

cmd_train() {
    load_settings
    running airflow || die "Airflow of the stack is not running: make stack"
    local params=${STACK_TRAIN_PARAMS:-"{}"} run_id
    run_id="stack__$(date -u +%Y%m%dT%H%M%S)"
    airflow_cli dags trigger "$DAG_ID" --run-id "$run_id" \
        --conf "{\"kedro_params\": $params}" >&2 || die "airflow dags trigger failed"
    log "triggered $DAG_ID run $run_id; follow it at $(airflow_url)/dags/$DAG_ID"
    local deadline=$((SECONDS + ${STACK_TRAIN_TIMEOUT:-3600})) run_state=""
    while ((SECONDS < deadline)); do
        run_state=$(airflow_cli dags list-runs "$DAG_ID" --output json 2>/dev/null |
            "$PYTHON" -c '
import json, sys
lines = [l for l in sys.stdin.read().splitlines() if l.startswith("[")]
runs = json.loads(lines[-1]) if lines else []
print(next((r["state"] for r in runs if r["run_id"] == sys.argv[1]), ""))' "$run_id") || true
        case $run_state in
            success)
                log "run $run_id succeeded"
                airflow_cli tasks states-for-dag-run "$DAG_ID" "$run_id" 2>/dev/null |
                    grep -E 'champion_promoted|challenger_rejected' >&2 || true
                return 0
                ;;
            failed)
                show_failed_tasks "$run_id"
                die "run $run_id failed; task logs under $STACK_DIR/airflow/logs/dag_id=$DAG_ID"
                ;;
        esac
        sleep 10
    done
    die "run $run_id not finished after ${STACK_TRAIN_TIMEOUT:-3600}s" \
        "(state: ${run_state:-unknown})"
}

# The last N messages of a topic (default: the predictions), one JSON value per line.
cmd_peek() {
    load_settings
    running kafka || die "the stack's broker is not running: make stack"
    "$PYTHON" - "$(bootstrap)" "${1:-$PREDICTIONS_TOPIC}" "${2:-10}" <<'PY'
import sys

from kafka import KafkaConsumer, TopicPartition

bootstrap, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="stack-peek")
try:
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        sys.exit(f"no topic {topic}")
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    end = consumer.end_offsets(tps)
    for tp in tps:
        consumer.seek(tp, max(0, end[tp] - n))
    records = []
    while any(consumer.position(tp) < end[tp] for tp in tps):
        for batch in consumer.poll(timeout_ms=1000).values():
            records.extend(batch)
    records.sort(key=lambda r: r.timestamp)
    for record in records[-n:]:
        print(record.value.decode(errors="replace"))
    print(f"{topic}: {sum(end.values())} messages", file=sys.stderr)
finally:
    consumer.close()
PY
}

cmd_env() {
    load_settings
    local line
    while IFS= read -r line; do
        printf 'export %s=%q\n' "${line%%=*}" "${line#*=}"
    done < <(client_env)
}

STACK_START_TIMEOUT=${STACK_START_TIMEOUT:-300}
case ${1:-} in
    up) cmd_up ;;
    status) cmd_status ;;
    down) cmd_down ;;
    stop) cmd_stop "${2:-}" ;;
    train) cmd_train ;;
    env) cmd_env ;;
    peek) cmd_peek "${2:-}" "${3:-}" ;;
    _scorer) run_scorer ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" ;;
    *)
        echo "usage: $0 {up|status|down|stop NAME|train|env|peek [TOPIC] [N]}" >&2
        exit 2
        ;;
esac
