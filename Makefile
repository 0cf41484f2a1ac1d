# One command to run the main job, one to run the tests. Both create .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export KEDRO_LOGGING_MODULE_ALLOWLIST := pythonjsonlogger

.PHONY: install install-dev run test test-unit lint format viz bench notebook mlflow-ui clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet "pip>=24"

# The stamp files re-install when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet -e ".[dev,notebook]"
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

test: install-dev s3-server
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

viz: install
	$(BIN)/pip install --quiet -e ".[viz]"
	$(BIN)/kedro viz run

bench: install-dev
	$(BIN)/python benchmarks/run_benchmarks.py

# MLflow UI on the local tracking database (kedro-mlflow calls the `mlflow` CLI).
mlflow-ui: install
	PATH="$(CURDIR)/$(BIN):$$PATH" MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/kedro mlflow ui

notebook: install-dev
	$(BIN)/kedro jupyter notebook

clean:
	rm -rf data/0*/*.parquet data/0*/*.json data/0*/*.pkl data/0*/*.png mlflow.db logs/*.log
