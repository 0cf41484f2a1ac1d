#!/usr/bin/env bash
# Run a local single-node Apache Kafka broker (KRaft combined mode,
# broker + controller in one JVM) without Docker.
#
# The broker jars come from Maven Central through infra/kafka/pom.xml and are
# cached outside the repository (~/.cache/fraud-detection/kafka-<version>/libs).
#
# Usage: scripts/kafka.sh <command> [options]
#
# Commands:
#   install   resolve the broker jars (once per machine; --force to redo)
#   start     install if needed, format storage if needed, start the broker in
#             the background and wait until it answers (no-op if running)
#   stop      stop the broker (SIGTERM, then SIGKILL after a timeout)
#   restart   stop, then start
#   status    print whether the broker runs; exit 0 = running and answering,
#             1 = process runs but does not answer, 3 = not running
#   logs      print the tail of the broker log (-f to follow)
#   env       print the client settings as shell `export` lines
#             (eval "$(scripts/kafka.sh env)")
#
# Options (each has an environment variable, the option wins):
#   --data-dir DIR          KAFKA_DATA_DIR          default <repo>/.services/kafka
#   --port N                KAFKA_PORT              default 9092
#   --controller-port N     KAFKA_CONTROLLER_PORT   default 9093
#   --host ADDR             KAFKA_HOST              default 127.0.0.1 (listen and
#                                                   advertise address; clients must reach it)
#   --timeout SECONDS       KAFKA_START_TIMEOUT     default 60 (start)
#                           KAFKA_STOP_TIMEOUT      default 30 (stop)
#   --force                 (install) resolve again even if cached
#
# Other environment variables:
#   KAFKA_VERSION           broker version (default: <kafka.version> in infra/kafka/pom.xml)
#   KAFKA_LIBS_DIR          where the jars go (default
#                           ${FRAUD_DETECTION_CACHE_DIR:-~/.cache/fraud-detection}/kafka-<version>/libs)
#   KAFKA_HEAP_OPTS         default "-Xms128m -Xmx512m"
#   KAFKA_JVM_OPTS          extra JVM options
#   KAFKA_EXTRA_PROPERTIES  extra server.properties lines, appended as given
#   KAFKA_READY_CHECK       auto (default) | python | java: how to probe readiness
#   PYTHON                  interpreter with kafka-python (default <repo>/.venv/bin/python)
#   JAVA_HOME / JAVA        Java 17+ to run the broker with
#   MVN                     Maven command (default mvn)
#
# Files in the data dir: server.properties, log4j2*.properties, kafka.pid,
# kafka.log (broker log), kafka.out (JVM stdout/stderr), data/ (log.dirs).
# Removing the data dir (after stop) gives a fresh, empty cluster.

set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"
POM="$REPO_ROOT/infra/kafka/pom.xml"

log() { printf 'kafka: %s\n' "$*" >&2; }
die() { printf 'kafka: error: %s\n' "$*" >&2; exit "${2:-1}"; }

usage() {
  sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

# ---------------------------------------------------------------- arguments --

CMD="${1:-}"
[ $# -gt 0 ] && shift

FORCE=0
FOLLOW=0
OPT_TIMEOUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --data-dir) KAFKA_DATA_DIR="${2:?--data-dir needs a value}"; shift 2 ;;
    --data-dir=*) KAFKA_DATA_DIR="${1#*=}"; shift ;;
    --port) KAFKA_PORT="${2:?--port needs a value}"; shift 2 ;;
    --port=*) KAFKA_PORT="${1#*=}"; shift ;;
    --controller-port) KAFKA_CONTROLLER_PORT="${2:?--controller-port needs a value}"; shift 2 ;;
    --controller-port=*) KAFKA_CONTROLLER_PORT="${1#*=}"; shift ;;
    --host) KAFKA_HOST="${2:?--host needs a value}"; shift 2 ;;
    --host=*) KAFKA_HOST="${1#*=}"; shift ;;
    --timeout) OPT_TIMEOUT="${2:?--timeout needs a value}"; shift 2 ;;
    --timeout=*) OPT_TIMEOUT="${1#*=}"; shift ;;
    --force) FORCE=1; shift ;;
    -f|--follow) FOLLOW=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option: $1 (see scripts/kafka.sh --help)" 2 ;;
  esac
done

pom_kafka_version() {
  sed -n 's:.*<kafka\.version>\([^<]*\)</kafka\.version>.*:\1:p' "$POM" | head -n 1
}

KAFKA_VERSION="${KAFKA_VERSION:-$(pom_kafka_version)}"
[ -n "$KAFKA_VERSION" ] || die "cannot read <kafka.version> from $POM"
CACHE_ROOT="${FRAUD_DETECTION_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fraud-detection}"
KAFKA_LIBS_DIR="${KAFKA_LIBS_DIR:-$CACHE_ROOT/kafka-$KAFKA_VERSION/libs}"
KAFKA_DATA_DIR="${KAFKA_DATA_DIR:-$REPO_ROOT/.services/kafka}"
KAFKA_HOST="${KAFKA_HOST:-127.0.0.1}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:-}"
KAFKA_READY_CHECK="${KAFKA_READY_CHECK:-auto}"
PYTHON="${PYTHON:-$REPO_ROOT/.venv/bin/python}"
MVN="${MVN:-mvn}"
if [ "$CMD" = stop ]; then
  STOP_TIMEOUT="${OPT_TIMEOUT:-${KAFKA_STOP_TIMEOUT:-30}}"
  START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
else
  START_TIMEOUT="${OPT_TIMEOUT:-${KAFKA_START_TIMEOUT:-60}}"
  STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
fi

case "$KAFKA_PORT$KAFKA_CONTROLLER_PORT$START_TIMEOUT$STOP_TIMEOUT" in
  *[!0-9]*) die "ports and timeouts must be whole numbers" 2 ;;
esac
[ "$KAFKA_PORT" != "$KAFKA_CONTROLLER_PORT" ] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ" 2

# Relative data dirs are taken from the caller's cwd; make it absolute since
# the broker runs with its own paths.
case "$KAFKA_DATA_DIR" in
  /*) ;;
  *) KAFKA_DATA_DIR="$PWD/$KAFKA_DATA_DIR" ;;
esac

PID_FILE="$KAFKA_DATA_DIR/kafka.pid"
PROPS_FILE="$KAFKA_DATA_DIR/server.properties"
LOG4J_FILE="$KAFKA_DATA_DIR/log4j2.properties"
TOOLS_LOG4J_FILE="$KAFKA_DATA_DIR/log4j2-tools.properties"
LOG_FILE="$KAFKA_DATA_DIR/kafka.log"
OUT_FILE="$KAFKA_DATA_DIR/kafka.out"
LOG_DIRS="$KAFKA_DATA_DIR/data"
BOOTSTRAP="$KAFKA_HOST:$KAFKA_PORT"

# ------------------------------------------------------------------- helpers --

java_bin() {
  if [ -n "${JAVA:-}" ]; then
    printf '%s\n' "$JAVA"
  elif [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
    printf '%s\n' "$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then
    command -v java
  else
    die "no java found (Java 17 or newer is needed; set JAVA_HOME)"
  fi
}

check_java() {
  local java major
  java="$(java_bin)"
  major="$("$java" -XshowSettings:properties -version 2>&1 \
    | sed -n 's/^ *java\.specification\.version = \([0-9.]*\).*/\1/p' | head -n 1)"
  major="${major#1.}"; major="${major%%.*}"
  if [ -z "$major" ] || [ "$major" -lt 17 ]; then
    die "Kafka $KAFKA_VERSION needs Java 17 or newer, $java is ${major:-unknown}"
  fi
}

libs_ready() {
  [ -f "$KAFKA_LIBS_DIR/.complete" ] && compgen -G "$KAFKA_LIBS_DIR/kafka_2.13-*.jar" >/dev/null
}

classpath() { printf '%s/*\n' "$KAFKA_LIBS_DIR"; }

# pid of the broker recorded in the data dir, if that process still runs and
# still is our broker (guards against a reused pid).
running_pid() {
  local pid args
  [ -f "$PID_FILE" ] || return 1
  pid="$(tr -dc '0-9' <"$PID_FILE")"
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  args="$(ps -o args= -p "$pid" 2>/dev/null || true)"
  case "$args" in
    *kafka.Kafka*"$PROPS_FILE"*) printf '%s\n' "$pid"; return 0 ;;
  esac
  return 1
}

# true if something accepts TCP connections on host:port
port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

has_python_client() {
  [ -x "$PYTHON" ] || command -v "$PYTHON" >/dev/null 2>&1 || return 1
  "$PYTHON" -c 'import kafka' >/dev/null 2>&1
}

# One readiness probe: the broker answers a metadata request.
probe_python() {
  "$PYTHON" - "$BOOTSTRAP" <<'PY' >/dev/null 2>&1
import sys
from kafka import KafkaAdminClient
admin = KafkaAdminClient(
    bootstrap_servers=sys.argv[1],
    client_id="kafka-sh-readiness",
    request_timeout_ms=5000,
    bootstrap_timeout_ms=5000,
    reconnect_backoff_max_ms=500,
)
try:
    admin.list_topics()
finally:
    admin.close()
PY
}

probe_java() {
  local t=()
  command -v timeout >/dev/null 2>&1 && t=(timeout 30)
  ${t[@]+"${t[@]}"} "$(java_bin)" -Xmx128m -cp "$(classpath)" \
    -Dlog4j2.configurationFile="$TOOLS_LOG4J_FILE" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --list \
    >/dev/null 2>&1
}

probe() {
  case "$PROBE_KIND" in
    python) probe_python ;;
    java) probe_java ;;
  esac
}

choose_probe() {
  case "$KAFKA_READY_CHECK" in
    python) has_python_client || die "KAFKA_READY_CHECK=python but '$PYTHON' cannot import kafka"; PROBE_KIND=python ;;
    java) PROBE_KIND=java ;;
    auto) if has_python_client; then PROBE_KIND=python; else PROBE_KIND=java; fi ;;
    *) die "KAFKA_READY_CHECK must be auto, python or java" 2 ;;
  esac
}

show_log_tail() {
  local f
  for f in "$OUT_FILE" "$LOG_FILE"; do
    if [ -s "$f" ]; then
      printf -- '----- last lines of %s -----\n' "$f" >&2
      tail -n 40 "$f" >&2
    fi
  done
}

with_lock() {
  # Serialise concurrent start/stop on the same data dir where flock exists.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$KAFKA_DATA_DIR/.kafka.sh.lock"
    flock -w 90 9 || die "another scripts/kafka.sh holds $KAFKA_DATA_DIR/.kafka.sh.lock"
  fi
}

ensure_data_dir() {
  mkdir -p "$KAFKA_DATA_DIR"
  # Keep the data dir out of git even where .gitignore does not list it.
  [ -f "$KAFKA_DATA_DIR/.gitignore" ] || echo '*' >"$KAFKA_DATA_DIR/.gitignore"
}

# ------------------------------------------------------------------ commands --

cmd_install() {
  if [ "$FORCE" -eq 0 ] && libs_ready; then
    log "Kafka $KAFKA_VERSION jars already in $KAFKA_LIBS_DIR"
    return 0
  fi
  if [ "$FORCE" -eq 1 ] && running_pid >/dev/null; then
    die "the broker runs from $KAFKA_LIBS_DIR; stop it before 'install --force'"
  fi
  command -v "$MVN" >/dev/null 2>&1 || die "Maven ('$MVN') is needed to resolve the Kafka jars"
  check_java
  local tmp
  mkdir -p "$(dirname -- "$KAFKA_LIBS_DIR")"
  tmp="$(mktemp -d "$(dirname -- "$KAFKA_LIBS_DIR")/.libs.XXXXXX")"
  log "resolving Kafka $KAFKA_VERSION from Maven Central into $KAFKA_LIBS_DIR"
  # Maven 3.8 prints colour codes even in quiet batch mode: strip them.
  if ! "$MVN" -q -B -Dstyle.color=never -f "$POM" \
      -Dkafka.version="$KAFKA_VERSION" \
      dependency:copy-dependencies \
      -DincludeScope=runtime \
      -DoutputDirectory="$tmp" 2>&1 | sed $'s/\x1b\\[[0-9;]*m//g' >&2; then
    rm -rf "$tmp"
    die "Maven could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (see above)"
  fi
  compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || { rm -rf "$tmp"; die "no kafka_2.13 jar was resolved"; }
  printf '%s\n' "$KAFKA_VERSION" >"$tmp/.complete"
  rm -rf "$KAFKA_LIBS_DIR"
  mv "$tmp" "$KAFKA_LIBS_DIR"
  local jars=("$KAFKA_LIBS_DIR"/*.jar)
  log "installed ${#jars[@]} jars ($(du -sh "$KAFKA_LIBS_DIR" | cut -f1))"
}

write_configs() {
  cat >"$PROPS_FILE" <<EOF
# Written by scripts/kafka.sh on every start; edits here are overwritten.
# Single-node KRaft cluster: this process is both broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT

listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT

log.dirs=$LOG_DIRS

# One node: every internal topic has a single replica.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1

group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true

num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=168
log.segment.bytes=104857600
EOF
  if [ -n "${KAFKA_EXTRA_PROPERTIES:-}" ]; then
    printf '\n# KAFKA_EXTRA_PROPERTIES\n%s\n' "$KAFKA_EXTRA_PROPERTIES" >>"$PROPS_FILE"
  fi

  cat >"$LOG4J_FILE" <<EOF
# Written by scripts/kafka.sh on every start.
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = $LOG_FILE
appender.file.filePattern = $LOG_FILE.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
EOF

  # The storage tool and the Java readiness probe log warnings to stderr only.
  cat >"$TOOLS_LOG4J_FILE" <<'EOF'
# Written by scripts/kafka.sh on every start.
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
EOF
}

# A Kafka Uuid: 16 random bytes, URL-safe base64 without padding (22 chars),
# as `kafka-storage random-uuid` prints, without starting a JVM for it. Like
# Kafka, avoid a leading '-', which a command line would take for an option.
new_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    case "$id" in -*) continue ;; esac
    [ "${#id}" -eq 22 ] && { printf '%s\n' "$id"; return 0; }
  done
}

format_storage_if_needed() {
  if [ -f "$LOG_DIRS/meta.properties" ]; then
    return 0
  fi
  local java cluster_id
  java="$(java_bin)"
  cluster_id="$(new_cluster_id)"
  log "formatting $LOG_DIRS (cluster id $cluster_id)"
  if ! "$java" -Xmx256m -cp "$(classpath)" -Dlog4j2.configurationFile="$TOOLS_LOG4J_FILE" \
      kafka.tools.StorageTool format --config "$PROPS_FILE" --cluster-id "$cluster_id" \
      >>"$OUT_FILE" 2>&1; then
    show_log_tail
    die "formatting the storage in $LOG_DIRS failed"
  fi
}

# Wait until broker $1 answers on $BOOTSTRAP; fail with the log tail if it
# exits or does not answer within START_TIMEOUT seconds.
wait_ready() {
  local pid="$1" started="$2"
  local deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      show_log_tail
      die "the broker exited during startup (pid $pid); full logs: $LOG_FILE, $OUT_FILE"
    fi
    if port_open "$KAFKA_HOST" "$KAFKA_PORT" && probe; then
      log "ready on $BOOTSTRAP after $((SECONDS - started))s (pid $pid)"
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      show_log_tail
      die "the broker did not answer on $BOOTSTRAP within ${START_TIMEOUT}s (pid $pid still runs; 'scripts/kafka.sh stop' ends it)"
    fi
    sleep 0.5
  done
}

cmd_start() {
  ensure_data_dir
  with_lock
  local pid
  if pid="$(running_pid)"; then
    # Already running: succeed once it answers (it may still be starting).
    choose_probe
    if port_open "$KAFKA_HOST" "$KAFKA_PORT" && probe; then
      log "already running (pid $pid) on $BOOTSTRAP"
      return 0
    fi
    log "already running (pid $pid), waiting for it to answer on $BOOTSTRAP"
    wait_ready "$pid" "$SECONDS"
    return 0
  fi
  rm -f "$PID_FILE"

  if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    die "port $KAFKA_HOST:$KAFKA_PORT is already in use by another process (set KAFKA_PORT or --port)"
  fi
  if port_open "$KAFKA_HOST" "$KAFKA_CONTROLLER_PORT"; then
    die "controller port $KAFKA_HOST:$KAFKA_CONTROLLER_PORT is already in use (set KAFKA_CONTROLLER_PORT or --controller-port)"
  fi

  libs_ready || cmd_install
  check_java
  choose_probe

  : >"$OUT_FILE"
  write_configs
  format_storage_if_needed

  local java
  java="$(java_bin)"
  # shellcheck disable=SC2086  # word splitting of the option strings is wanted
  set -- "$java" $KAFKA_HEAP_OPTS \
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$LOG4J_FILE" -Dlog4j2.shutdownHookEnabled=false \
    -Dkafka.logs.dir="$KAFKA_DATA_DIR" \
    $KAFKA_JVM_OPTS \
    -cp "$(classpath)" kafka.Kafka "$PROPS_FILE"

  local started=$SECONDS
  log "starting Kafka $KAFKA_VERSION on $BOOTSTRAP (controller $KAFKA_HOST:$KAFKA_CONTROLLER_PORT, data $KAFKA_DATA_DIR)"
  # The inner shell writes its own pid and then becomes java (exec), so the
  # pid file names the broker. setsid detaches it from the caller's session;
  # 9>&- keeps the broker from inheriting (and holding) the start/stop lock.
  local launcher=()
  command -v setsid >/dev/null 2>&1 && launcher=(setsid)
  # shellcheck disable=SC2016  # $$, $0 and $@ belong to the inner shell
  ${launcher[@]+"${launcher[@]}"} bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" "$@" \
    </dev/null >>"$OUT_FILE" 2>&1 9>&- &

  local waited=0
  while [ ! -s "$PID_FILE" ] && [ "$waited" -lt 50 ]; do sleep 0.1; waited=$((waited + 1)); done
  [ -s "$PID_FILE" ] || { show_log_tail; die "the broker process did not start"; }
  pid="$(tr -dc '0-9' <"$PID_FILE")"
  wait_ready "$pid" "$started"
}

cmd_stop() {
  [ -d "$KAFKA_DATA_DIR" ] || { log "not running (no data dir $KAFKA_DATA_DIR)"; return 0; }
  with_lock
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  log "stopping pid $pid (SIGTERM, up to ${STOP_TIMEOUT}s)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "still running after ${STOP_TIMEOUT}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    # A metadata request when kafka-python is at hand, else a TCP connect.
    if port_open "$KAFKA_HOST" "$KAFKA_PORT" && { ! has_python_client || probe_python; }; then
      echo "kafka: running (pid $pid, $BOOTSTRAP, data $KAFKA_DATA_DIR)"
      return 0
    fi
    echo "kafka: process runs (pid $pid) but does not answer on $BOOTSTRAP"
    return 1
  fi
  echo "kafka: not running (data $KAFKA_DATA_DIR)"
  return 3
}

cmd_logs() {
  [ -f "$LOG_FILE" ] || die "no log yet at $LOG_FILE"
  if [ "$FOLLOW" -eq 1 ]; then tail -n 50 -F "$LOG_FILE"; else tail -n 100 "$LOG_FILE"; fi
}

cmd_env() {
  printf 'export KAFKA_BOOTSTRAP_SERVERS=%q\n' "$BOOTSTRAP"
}

case "$CMD" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  status) cmd_status ;;
  logs) cmd_logs ;;
  env) cmd_env ;;
  ""|-h|--help|help) usage ;;
  *) die "unknown command '$CMD' (install|start|stop|restart|status|logs|env)" 2 ;;
esac
