# One command to run the main job, one to run the tests. Both create .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export KEDRO_LOGGING_MODULE_ALLOWLIST := pythonjsonlogger

.PHONY: install install-dev run test test-unit lint format viz bench bench-kafka bench-scorer bench-scorer-soak bench-reason-codes bench-features-ablation bench-spark notebook mlflow-ui clean dag airflow-venv airflow-standalone

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet "pip>=24"

# uv (PyPI) installs the dependencies: the same resolution as pip, several times faster
# from its cache (~/.cache/uv), which keeps a clean-checkout `make test` short. It
# compiles the bytecode at install time, as pip does: where PYTHONDONTWRITEBYTECODE is
# set, every process would otherwise compile each module it imports, every time.
UV_VERSION := 0.13.9
UV := $(BIN)/uv
$(UV): | $(BIN)/activate
	$(BIN)/pip install --quiet "uv==$(UV_VERSION)"

# The stamp files re-install when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(UV)
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(UV)
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -e ".[dev,notebook]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/kedro run

# The integration tests start a real S3 server and MLflow server with scripts/s3.sh and
# scripts/mlflow_server.sh; the S3 server's binary is built here once per machine
# (about 10 minutes with Go, then cached in ~/.cache/fraud-detection).
.PHONY: s3-server
s3-server:
	scripts/s3.sh install

# Headless Chromium renders the HTML model report in the tests (Debian packages;
# elsewhere install Chrome/Chromium and set CHROMIUM to its binary).
CHROMIUM ?= $(firstword $(shell command -v chromium chromium-browser google-chrome 2>/dev/null))
export CHROMIUM
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# Debian packages the tests need and the machine lacks: headless Chromium renders the HTML
# model report (elsewhere install Chrome/Chromium and set CHROMIUM to its binary); the
# CeleryExecutor test and the shared online store run on Debian's Redis (scripts/redis.sh)
# and the CeleryExecutor test on PostgreSQL (scripts/postgres.sh), each a throwaway server
# on a free port. `make test` installs both groups in one apt transaction.
BROWSER_PACKAGES = $(if $(CHROMIUM),,chromium chromium-driver)
CELERY_PACKAGES = $(shell command -v redis-server >/dev/null || echo redis-server) \
  $(shell scripts/postgres.sh bindir >/dev/null 2>&1 || echo postgresql)
define apt_install
	@missing="$(strip $(1))"; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null; then \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	  else echo "Install $$missing ($(2))" >&2; exit 1; fi; \
	fi
endef
.PHONY: browser celery-services system-packages
browser:
	$(call apt_install,$(BROWSER_PACKAGES),needed by the model report test; or set CHROMIUM to a Chrome binary)
celery-services:
	$(call apt_install,$(CELERY_PACKAGES),needed by the CeleryExecutor test and the shared online store)
system-packages:
	$(call apt_install,$(BROWSER_PACKAGES) $(CELERY_PACKAGES),needed by the tests)

# The Docker Compose v2 CLI, built once per machine from the Go module proxy (cached in
# ~/.cache/fraud-detection): tests/test_compose_cli.py validates docker-compose.yml with it.
.PHONY: compose-cli
compose-cli:
	scripts/compose.sh install

# The whole suite, as CI runs it: style and layer checks, then every test, the ones
# against real services (Kafka, S3, MLflow, Airflow) included. What the services need is
# fetched and built first, side by side (8.5 minutes one after another on a new machine;
# seconds once cached):
# the Go builds of the S3 server and the Compose CLI keep the cores busy while the Python,
# Debian and Maven downloads wait on the network. Each step's output is printed whole
# when it ends.
TEST_SETUP := lint s3-server compose-cli system-packages kafka-jars test-airflow-venv
.PHONY: kafka-jars test-airflow-venv
test:
	$(MAKE) --no-print-directory -j$(words $(TEST_SETUP)) --output-sync=target $(TEST_SETUP)
	$(BIN)/pytest

# The Kafka broker's jars from Maven Central (cached in ~/.cache/fraud-detection).
kafka-jars:
	scripts/kafka.sh install

# After the project's own install: both build its wheel in the source tree.
test-airflow-venv: install-dev
	$(MAKE) --no-print-directory airflow-venv

# A contributor's inner loop: the tests that need no service, no browser and no
# end-to-end run (a few minutes; markers in pyproject.toml, docs/architecture.md).
test-unit: install-dev
	$(BIN)/pytest -m "not integration and not airflow and not slow and not browser" -p no:cacheprovider

# Style (ruff lint and format) and the import layers of docs/architecture.md.
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

viz: install
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -e ".[viz]"
	$(BIN)/kedro viz run

bench: install-dev
	$(BIN)/python benchmarks/run_benchmarks.py

# Producer and consumer throughput on 1M messages; starts its own broker (scripts/kafka.sh).
bench-kafka: install-dev
	$(BIN)/python benchmarks/kafka_throughput.py

# Real-time scorer: end-to-end latency at 500, 1,000 and 2,000 tx/s, 3 minutes each, on a
# broker it starts (docs/benchmarks.md, "Real-time scorer"); `make bench-scorer-soak`:
# 30 minutes at 1,000 tx/s with new cards all along, the scorer's memory sampled.
bench-scorer-soak: BENCH_SCORER_ARGS = --soak-seconds 1800 --soak-rate 1000
bench-scorer bench-scorer-soak: install-dev
	$(BIN)/python benchmarks/scorer_latency.py $(BENCH_SCORER_ARGS)

# Reason codes' cost per micro-batch and model family, next to the score's.
bench-reason-codes: install-dev
	$(BIN)/python benchmarks/reason_codes.py $(BENCH_REASON_ARGS)

# Optional features on the Handbook data, judged by validation AP only (needs
# HANDBOOK_DATA_DIR): benchmarks/results/feature_ablation.json.
bench-features-ablation: install-dev
	$(BIN)/python benchmarks/feature_ablation.py $(BENCH_ABLATION_ARGS)

# create_features in pandas vs Spark local[2] on 2M, 10M and 30M simulated rows (cached in
# ~/.cache/fraud-detection/bench), and `kedro run --env spark` on the two smallest
# (docs/spark.md). BENCH_SPARK_ARGS="--sizes 50000" for a quick check.
bench-spark: install-dev
	$(BIN)/python benchmarks/spark_features.py $(BENCH_SPARK_ARGS)

# MLflow UI on the local tracking database (kedro-mlflow calls the `mlflow` CLI).
mlflow-ui: install
	PATH="$(CURDIR)/$(BIN):$$PATH" MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/kedro mlflow ui

notebook: install-dev
	$(BIN)/kedro jupyter notebook

clean:
	rm -rf data/0*/*.parquet data/0*/*.json data/0*/*.pkl data/0*/*.png mlflow.db logs/*.log

# --- Airflow -------------------------------------------------------------------------
# `make dag` renders the DAG from the pipelines (kedro-airflow, the template in
# airflow_dags/templates and conf/base/airflow.yml); tests fail when the committed file
# is out of date. One task per stage: nodes are grouped by their pipeline's namespace
# (ingestion, feature_engineering, ...), and every dataset crossing a stage boundary is
# persisted (tests/airflow/test_dag_generation.py checks it).
DAG_PIPELINE := train_and_promote
DAG_TEMPLATE := airflow_dags/templates/fraud_detection_dag.py.j2
DAG_TARGET_DIR ?= airflow_dags
DAG_PARAMS ?=

dag: install-dev
	MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/mlflow.db $(BIN)/kedro airflow create --pipelines=$(DAG_PIPELINE) \
	  --env=airflow --jinja-file=$(DAG_TEMPLATE) --target-dir=$(DAG_TARGET_DIR) --group-by=namespace \
	  $(if $(DAG_PARAMS),--params=$(DAG_PARAMS))

# Apache Airflow 3 in its own venv, next to the project's wheel (rebuilt every time, so
# the venv runs the current code). Versions pinned in infra/airflow/constraints-*.txt.
AIRFLOW_VENV := .venv-airflow
AIRFLOW_VERSION := 3.3.2
AIRFLOW_PYTHON_VERSION = $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
AIRFLOW_CONSTRAINTS = infra/airflow/constraints-$(AIRFLOW_PYTHON_VERSION).txt
# Extras: the CeleryExecutor (the Celery provider: Celery, Flower, the Redis client) and
# PostgreSQL metadata, which it needs (the postgres provider: psycopg2, psycopg 3, and
# asyncpg for the api-server). Pinned in the constraints like the rest.
AIRFLOW_EXTRAS := celery,postgres

$(AIRFLOW_VENV)/bin/activate:
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --quiet --upgrade "pip>=24"

# Re-resolves in place when the project's dependencies or the pins change: the wheel
# first (same version, new metadata), then its dependencies and Airflow. Each build
# uses its own folder, so test sessions running side by side do not race.
$(AIRFLOW_VENV)/.installed: pyproject.toml $(wildcard infra/airflow/constraints-*.txt) | $(AIRFLOW_VENV)/bin/activate $(UV)
	wheels=$$(mktemp -d) && $(BIN)/pip wheel --quiet --no-deps -w $$wheels . \
	  && $(UV) pip install --quiet --compile-bytecode --python $(AIRFLOW_VENV)/bin/python --no-deps --reinstall $$wheels/fraud_detection-*.whl \
	  && $(UV) pip install --quiet --compile-bytecode --python $(AIRFLOW_VENV)/bin/python \
	     $(if $(wildcard $(AIRFLOW_CONSTRAINTS)),-c $(AIRFLOW_CONSTRAINTS)) \
	     "apache-airflow[$(AIRFLOW_EXTRAS)]==$(AIRFLOW_VERSION)" $$wheels/fraud_detection-*.whl \
	  && rm -rf $$wheels
	$(AIRFLOW_VENV)/bin/pip check
	touch $@

airflow-venv: install $(AIRFLOW_VENV)/.installed
	wheels=$$(mktemp -d) && $(BIN)/pip wheel --quiet --no-deps -w $$wheels . \
	  && $(UV) pip install --quiet --compile-bytecode --python $(AIRFLOW_VENV)/bin/python --no-deps --reinstall $$wheels/fraud_detection-*.whl \
	  && rm -rf $$wheels

# Airflow on this checkout (SQLite metadata in airflow_home/, UI on http://127.0.0.1:8080).
# `airflow standalone` starts its components as `airflow ...` from PATH.
airflow-standalone: airflow-venv
	PATH="$(CURDIR)/$(AIRFLOW_VENV)/bin:$$PATH" \
	AIRFLOW_HOME=$(CURDIR)/airflow_home AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/airflow_dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=false FRAUD_DETECTION_PROJECT_PATH=$(CURDIR) KEDRO_ENV=airflow \
	MLFLOW_TRACKING_URI=$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db} \
	$(AIRFLOW_VENV)/bin/airflow standalone

# --- The whole flow on one machine ---------------------------------------------------
# Kafka, the object store, the MLflow server, Airflow 3 (the DAG on the prod
# environment), the real-time scorer and a producer, each started by the project's own
# scripts, without Docker (scripts/stack.sh, docs/stack.md). Ports and rates come from
# the environment: make stack KAFKA_PORT=19092 AIRFLOW_PORT=18080 ...
.PHONY: stack stack-status stack-down stack-train
stack: install s3-server
	scripts/stack.sh up

stack-status:
	@scripts/stack.sh status

# Stops what `make stack` started; STACK_PURGE=1 also deletes its data.
stack-down:
	@scripts/stack.sh down

# One DAG run (train, register, promote); STACK_TRAIN_PARAMS='{"training": {...}}'.
stack-train:
	scripts/stack.sh train
