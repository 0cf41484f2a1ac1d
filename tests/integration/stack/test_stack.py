"""`make stack` end to end on free ports: every service comes up healthy, a re-run is a
no-op, a taken port is named, one DAG run trains, registers and promotes a champion in
Airflow 3 on the prod environment (S3 + MLflow server), 1,000 transactions streamed to
the stack's topic come back as 1,000 predictions of that champion, and `stack-down`
leaves no process behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import s3fs
from mlflow.tracking import MlflowClient

from fraud_detection import schema
from fraud_detection.simulator import simulate_transactions
from tests.conftest import PROJECT_ROOT, base_parameters
from tests.integration.airflow.conftest import DAG_ID, DAG_PARAMS
from tests.integration.kafka.conftest import Broker
from tests.integration.object_store.conftest import free_port, free_s3_port

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

SCRIPT = PROJECT_ROOT / "scripts" / "stack.sh"
SERVICES = ("kafka", "s3", "mlflow", "airflow", "scorer", "producer")
MODEL = "fraud-detection"
N_TRANSACTIONS = 1000
PREFIX = "stack-test-"
# Small training data (the e2e tests' simulation) and a small live stream, so the DAG
# run and the producer's simulation take seconds, not minutes.
SEED_PARAMS = (
    "simulation.n_days=50,simulation.n_customers=400,simulation.n_terminals=800,simulation.seed=7"
)
PRODUCER_ARGS = "--days 10 --customers 200 --terminals 400"


def stack_env(root: Path, **overrides: str) -> dict[str, str]:
    """The caller's environment without service settings, with free ports."""
    prefixes = ("AIRFLOW", "MLFLOW_", "KAFKA_", "S3_", "AWS_", "STACK_", "KEDRO_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(
        {
            "STACK_DIR": str(root),
            "KAFKA_PORT": str(free_port()),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            "S3_PORT": str(free_s3_port()),
            "MLFLOW_PORT": str(free_port()),
            "AIRFLOW_PORT": str(free_port()),
            "AIRFLOW_WORKER_LOG_PORT": str(free_port()),
            "AIRFLOW_TRIGGERER_LOG_PORT": str(free_port()),
            "AWS_ACCESS_KEY_ID": "stack-test-key",
            "AWS_SECRET_ACCESS_KEY": "stack-test-secret-0123456789",
            "STACK_RATE": "5",
            "STACK_PRODUCER_ARGS": PRODUCER_ARGS,
            "STACK_SEED_PARAMS": SEED_PARAMS,
            "STACK_DAG_PARAMS": "retries=0",
        }
    )
    env.update(overrides)
    return env


def stack_processes(root: Path) -> list[str]:
    """Command lines of the processes that carry the stack's mark."""
    mark = f"FRAUD_DETECTION_STACK={root}".encode()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if mark in (proc / "environ").read_bytes().split(b"\0"):
                found.append(
                    (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
        except OSError:  # exited meanwhile, or not ours to read
            continue
    return found


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Stack:
    root: Path
    env: dict[str, str]
    up: subprocess.CompletedProcess

    def make(self, *args: str, timeout: float = 1800, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["make", "--no-print-directory", *args],
            cwd=PROJECT_ROOT,
            env={**self.env, **extra},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def port(self, name: str) -> int:
        return int(self.env[name])

    @property
    def broker(self) -> Broker:
        return Broker(
            data_dir=self.root / "kafka",
            port=self.port("KAFKA_PORT"),
            controller_port=self.port("KAFKA_CONTROLLER_PORT"),
        )

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.port('MLFLOW_PORT')}"

    def pids(self) -> dict[str, str]:
        files = {
            "kafka": "kafka/kafka.pid",
            "s3": "s3/weed.pid",
            "mlflow": "mlflow/mlflow.pid",
        }
        return {
            name: (self.root / files.get(name, f"{name}/{name}.pid")).read_text().strip()
            for name in SERVICES
        }

    def log(self, name: str) -> str:
        return (self.root / name / f"{name}.log").read_text(errors="replace")


def champion_run_experiment(client: MlflowClient, run_id: str) -> str:
    return client.get_run(run_id).info.experiment_id


def failure(result: subprocess.CompletedProcess, what: str) -> str:
    return (
        f"{what} failed (exit {result.returncode}):\n{result.stdout[-3000:]}\n"
        f"{result.stderr[-5000:]}"
    )


def test_a_taken_port_is_named_and_nothing_starts(tmp_path):
    env = stack_env(tmp_path / "stack")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env["MLFLOW_PORT"] = str(port)
        result = subprocess.run(
            ["bash", str(SCRIPT), "up"],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode != 0
    assert f"port {port} (MLFLOW_PORT, mlflow) on 127.0.0.1 is already in use" in result.stderr
    assert stack_processes(tmp_path / "stack") == []


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    env = stack_env(root)
    up = subprocess.run(
        ["make", "--no-print-directory", "stack"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    running = Stack(root=root, env=env, up=up)
    try:
        if up.returncode != 0:
            pytest.fail(failure(up, "make stack"))
        yield running
    finally:
        # Data kept: the logs of a failed run stay in pytest's temporary folder.
        running.make("stack-down", timeout=300)


def test_every_service_comes_up_healthy_and_is_listed(stack):
    rows = {
        line.split()[0]: line for line in stack.up.stdout.splitlines() if line.split()[:1] != []
    }
    for name in SERVICES:
        assert name in rows, stack.up.stdout
        assert rows[name].split()[1].rstrip(",") == "healthy", rows[name]
    assert "waiting for a champion" in rows["scorer"]
    assert f"127.0.0.1:{stack.port('AIRFLOW_PORT')}" in rows["airflow"]
    assert str(stack.root / "airflow" / "airflow.log") in rows["airflow"]
    assert (stack.root / "airflow" / "simple_auth_manager_passwords.json.generated").is_file()
    status = stack.make("stack-status")
    assert status.returncode == 0, failure(status, "make stack-status")


def test_make_stack_again_is_a_no_op_that_prints_the_table(stack):
    before = stack.pids()
    again = stack.make("stack", timeout=600)
    assert again.returncode == 0, failure(again, "make stack (again)")
    assert "already up" in again.stderr
    assert all(name in again.stdout for name in SERVICES)
    assert stack.pids() == before


def test_one_dag_run_promotes_a_champion_that_scores_the_stream(stack, tmp_path):
    train = stack.make("stack-train", timeout=1800, STACK_TRAIN_PARAMS=json.dumps(DAG_PARAMS))
    assert train.returncode == 0, failure(train, "make stack-train")

    client = MlflowClient(stack.tracking_uri)
    champion = client.get_model_version_by_alias(MODEL, "champion")
    tags = client.get_run(champion.run_id).data.tags
    assert tags["airflow.dag_id"] == DAG_ID and tags["kedro.env"] == "prod"
    assert tags["promotion.decision"] == "promoted"
    # One MLflow run holds the whole DAG run (each task is its own Kedro session), and
    # the run's datasets and artifacts are in the bucket, not on local disk.
    dag_runs = client.search_runs(
        [champion_run_experiment(client, champion.run_id)],
        filter_string=f"tags.`airflow.run_id` = '{tags['airflow.run_id']}'",
    )
    assert [r.info.run_id for r in dag_runs] == [champion.run_id]
    assert {"pr_curve.png", "promotion_report.json"} <= {
        a.path for a in client.list_artifacts(champion.run_id)
    }
    bucket = s3fs.S3FileSystem(
        key=stack.env["AWS_ACCESS_KEY_ID"],
        secret=stack.env["AWS_SECRET_ACCESS_KEY"],
        endpoint_url=f"http://127.0.0.1:{stack.port('S3_PORT')}",
        skip_instance_cache=True,
    )
    assert bucket.ls("fraud-detection/08_reporting/promotion_report.json")
    assert bucket.ls("fraud-detection/06_models")

    deadline = time.monotonic() + 120  # the scorer checks for a champion every 10 s
    while "Scoring from offsets" not in stack.log("scorer"):
        assert time.monotonic() < deadline, stack.log("scorer")[-4000:]
        time.sleep(1)

    # 1,000 transactions of their own customers and terminals, through the producer CLI.
    frame = simulate_transactions(
        base_parameters("simulation", n_days=10, n_customers=150, n_terminals=300, seed=11)
    )
    assert len(frame) >= N_TRANSACTIONS
    frame = frame.head(N_TRANSACTIONS).copy()
    for column in (schema.TRANSACTION_ID, "customer_id", "terminal_id"):
        frame[column] = PREFIX + frame[column].astype(str)
    path = tmp_path / "transactions.parquet"
    frame.to_parquet(path)
    produce = subprocess.run(
        [
            str(PROJECT_ROOT / ".venv/bin/fraud-detection-produce"),
            "--file",
            str(path),
            "--topic",
            "transactions",
            "--bootstrap-servers",
            stack.broker.bootstrap,
            "--project-path",
            str(PROJECT_ROOT),
            "--env",
            "prod",
        ],
        cwd=PROJECT_ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert produce.returncode == 0, failure(produce, "fraud-detection-produce")

    expected = set(frame[schema.TRANSACTION_ID])
    deadline = time.monotonic() + 240
    while True:
        predictions: dict[str, list[dict]] = {}
        for record in stack.broker.read_all("fraud_predictions"):
            message = orjson.loads(record.value)
            if message["transaction_id"].startswith(PREFIX):
                predictions.setdefault(message["transaction_id"], []).append(message)
        if set(predictions) >= expected or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert set(predictions) == expected, (
        f"{len(predictions)} of {N_TRANSACTIONS} scored:\n{stack.log('scorer')[-3000:]}"
    )
    served = {
        (m["model_name"], str(m["model_version"]))
        for copies in predictions.values()
        for m in copies
    }
    assert served == {(MODEL, str(champion.version))}


def test_stack_down_stops_every_process_and_keeps_the_data(stack):
    assert stack_processes(stack.root), "the stack should be running before stack-down"
    down = stack.make("stack-down", timeout=300)
    assert down.returncode == 0, failure(down, "make stack-down")
    assert stack_processes(stack.root) == []
    ports = (
        "KAFKA_PORT",
        "S3_PORT",
        "MLFLOW_PORT",
        "AIRFLOW_PORT",
        "AIRFLOW_WORKER_LOG_PORT",
    )
    assert [name for name in ports if port_open(stack.port(name))] == []
    assert (stack.root / "mlflow" / "mlflow.db").is_file() and (stack.root / "s3" / "data").is_dir()
    status = stack.make("stack-status")
    assert status.returncode != 0 and "not running" in status.stdout
