"""Real Apache Airflow 3 for the DAG tests: the venv built by `make airflow-venv`,
SQLite metadata in a temporary AIRFLOW_HOME, the DAG generated with retries 0 and run
on a temporary copy of the project."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

AIRFLOW_BIN = PROJECT_ROOT / ".venv-airflow" / "bin" / "airflow"
DAG_ID = "fraud_detection_training_dag"
# The DAG run's kedro_params: the smallest training that still clears the promotion
# floors on SMALL_RUN's simulated data (one family, one setting), to keep the runs short.
DAG_PARAMS = {
    "split": {"n_folds": 2},
    "training": {"families": ["logistic_regression"], "n_iter": 1},
    "promotion": {"min_average_precision": 0.05, "min_roc_auc": 0.6},
}


def make(*args: str, timeout: float = 1800) -> None:
    result = subprocess.run(["make", "--no-print-directory", *args], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        pytest.fail(f"make {' '.join(args)} failed (exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


@pytest.fixture(scope="session")
def airflow_venv() -> Path:
    """.venv-airflow with the current project wheel (a no-op past the first build,
    apart from rebuilding the wheel)."""
    make("airflow-venv")
    return AIRFLOW_BIN


@dataclass
class Airflow:
    """The `airflow` CLI on a temporary AIRFLOW_HOME whose DAG folder holds the DAG."""

    home: Path
    dags: Path
    env: dict[str, str] = field(default_factory=dict)

    def __call__(self, *args: str, timeout: float = 1500, extra_env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(AIRFLOW_BIN), *args], cwd=self.home, env={**self.env, **(extra_env or {})},
                              capture_output=True, text=True, timeout=timeout, check=False)

    def json(self, *args: str) -> list[dict]:
        result = self(*args, "--output", "json")
        assert result.returncode == 0, result.stderr[-3000:]
        # Warnings (e.g. no graphviz) come first on stdout; the table is one JSON line.
        for line in reversed(result.stdout.splitlines()):
            if line.startswith(("[{", "[]")):
                return json.loads(line)
        raise AssertionError(f"no JSON in the output of airflow {' '.join(args)}:\n{result.stdout[-3000:]}")

    def task_states(self, run_id: str) -> dict[str, str]:
        return {row["task_id"]: row["state"] for row in self.json("tasks", "states-for-dag-run", DAG_ID, run_id)}


def airflow_env(home: Path, dags: Path, project: Path, kedro_env: str) -> dict[str, str]:
    """What the Airflow processes see: their own settings, the project's, no run id."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__", "MLFLOW_", "KEDRO_ENV"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "FRAUD_DETECTION_PROJECT_PATH": str(project),
        "KEDRO_ENV": kedro_env,
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "MLFLOW_EXPERIMENT_NAME": "airflow-dag",
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "KEDRO_LOGGING_MODULE_ALLOWLIST": "pythonjsonlogger",
    })
    return env


def start_airflow(root: Path, project: Path, kedro_env: str = "airflow", extra_env: Mapping[str, str] | None = None) -> Airflow:
    """Generates the DAG (retries 0: a failing task fails the test at once) and
    migrates a fresh SQLite metadata database; ``extra_env`` reaches every task."""
    home, dags = root / "airflow_home", root / "dags"
    home.mkdir()
    make("dag", f"DAG_TARGET_DIR={dags}", "DAG_PARAMS=retries=0", timeout=300)
    airflow = Airflow(home=home, dags=dags, env={**airflow_env(home, dags, project, kedro_env), **(extra_env or {})})
    result = airflow("db", "migrate", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return airflow
