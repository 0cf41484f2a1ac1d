"""The generated DAG on Airflow 3's CeleryExecutor, as docker-compose.yml runs it, without
Docker: a Redis broker (scripts/redis.sh) and PostgreSQL metadata (scripts/postgres.sh),
then the api-server, scheduler and dag-processor, two `airflow celery worker` processes
and Flower, all started here. A cluster policy sends the Kedro node tasks to the
`kedro` queue, which only the second worker serves, so both workers must run tasks
for the DAG run to succeed; each reports its own hostname, as on separate machines."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.airflow.test_dag_generation import dag_literal
from tests.conftest import PROJECT_ROOT
from tests.e2e.test_default_run import SMALL_RUN, make_project, run
from tests.integration.airflow.conftest import (
    AIRFLOW_BIN,
    DAG_ID,
    DAG_PARAMS,
    Airflow,
    airflow_env,
)
from tests.integration.kafka.conftest import free_port

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

SCRIPTS = PROJECT_ROOT / "scripts"
RUN_ID = "celery-executor-test"
KEDRO_QUEUE = "kedro"
# The tasks that run Kedro nodes: one per pipeline stage (namespace) of the DAG.
KEDRO_TASKS = sorted(dag_literal("NODE_GROUPS"))
# Celery node name and the hostname each worker reports for its task instances.
WORKERS = {"default": "orchestration-worker", KEDRO_QUEUE: "training-worker"}
# The DAG's branches after model selection run side by side on the training worker.
WORKER_CONCURRENCY = {"default": "1", KEDRO_QUEUE: "2"}
FLOWER_LOGIN = "flower:flower-test-password"
DAG_RUN_TIMEOUT_S = 1200

# $AIRFLOW_HOME/config is on every Airflow process's sys.path: the cluster policy that
# the dag-processor applies, and the hostname the workers report.
LOCAL_SETTINGS = f'''
def task_policy(task):
    """The Kedro stage tasks go to the queue of the training worker."""
    if task.task_id in {KEDRO_TASKS!r}:
        task.queue = "{KEDRO_QUEUE}"
'''
WORKER_IDENTITY = """
import os


def hostname():
    return os.environ["CELERY_TEST_WORKER_HOSTNAME"]
"""


def script(name: str, command: str, env: dict[str, str], timeout: float = 120) -> str:
    result = subprocess.run(
        [str(SCRIPTS / name), command],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/{name} {command} failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip()


@dataclass
class Postgres:
    data_dir: Path
    port: int

    @property
    def env(self) -> dict[str, str]:
        return {"PG_DATA_DIR": str(self.data_dir), "PG_PORT": str(self.port)}

    def query(self, sql: str) -> list[list[str]]:
        """Rows of ``sql`` on the metadata database, as text."""
        url = f"postgresql://fraud-detection@127.0.0.1:{self.port}/airflow"
        result = subprocess.run(
            ["psql", "-X", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return [line.split("\t") for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    # Not under pytest's tmp dir: when this runs as root, the server runs as the
    # `postgres` user (PostgreSQL refuses root), which cannot enter root's private dirs.
    server = Postgres(Path(tempfile.mkdtemp(prefix="fraud-detection-pg-")), free_port())
    try:
        script("postgres.sh", "start", server.env)
        yield server
    finally:
        script("postgres.sh", "stop", server.env)
        shutil.rmtree(server.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    env = {
        "REDIS_DATA_DIR": str(tmp_path_factory.mktemp("redis")),
        "REDIS_PORT": str(free_port()),
    }
    script("redis.sh", "start", env)
    try:
        yield script("redis.sh", "url", env)
    finally:
        script("redis.sh", "stop", env)


@dataclass
class Processes:
    """Long-running Airflow processes, each in its own session, logging to a file."""

    logs: Path
    started: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, args: list[str], env: dict[str, str], cwd: Path) -> None:
        log = (self.logs / f"{name}.log").open("w")
        self.started[name] = subprocess.Popen(
            [str(AIRFLOW_BIN), *args],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def check_alive(self) -> None:
        for name, process in self.started.items():
            if process.poll() is not None:
                pytest.fail(f"airflow {name} exited ({process.returncode}):\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 60) -> str:
        return "\n".join((self.logs / f"{name}.log").read_text().splitlines()[-lines:])

    def stop(self) -> None:
        for process in self.started.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        for process in self.started.values():
            try:
                process.wait(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def http_get(url: str, auth: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        # Flower's worker list waits for the workers' replies: generous on a busy machine.
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def wait_for(what: str, check, processes: Processes, timeout: float, interval: float = 2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check_alive()
        if result := check():
            return result
        time.sleep(interval)
    logs = "\n\n".join(f"--- {name}\n{processes.tail(name, 30)}" for name in processes.started)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project copy with small simulated raw transactions (the DAG's input)."""
    path = make_project(tmp_path_factory.mktemp("celery-project"))
    mp = pytest.MonkeyPatch()
    mp.chdir(path)
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path / 'mlflow.db'}")
    mp.setenv("MLFLOW_EXPERIMENT_NAME", "seed-data")  # not the DAG's experiment
    mp.delenv("MLFLOW_RUN_ID", raising=False)
    run(path, SMALL_RUN, pipeline="simulation")
    mp.undo()
    return path


@dataclass
class CeleryAirflow:
    airflow: Airflow
    postgres: Postgres
    processes: Processes
    flower_url: str


@pytest.fixture(scope="module")
def celery_airflow(generated_dags, project, postgres, redis_url, tmp_path_factory):
    home = tmp_path_factory.mktemp("celery-airflow")
    (home / "config").mkdir()
    (home / "config" / "airflow_local_settings.py").write_text(LOCAL_SETTINGS)
    (home / "config" / "celery_test_worker.py").write_text(WORKER_IDENTITY)
    api_port, flower_port = free_port(), free_port()
    env = {
        **airflow_env(home, generated_dags, project, "airflow"),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
            f"postgresql+psycopg2://fraud-detection@127.0.0.1:{postgres.port}/airflow"
        ),
        "AIRFLOW__CELERY__BROKER_URL": redis_url,
        "AIRFLOW__CELERY__OPERATION_TIMEOUT": "30",  # sending to Redis on a busy machine
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        # Shared by the api-server and the scheduler, which signs the tasks' tokens.
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        # Only the run this test triggers: no scheduled run of the @daily DAG.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
    }
    airflow = Airflow(home=home, dags=generated_dags, env=env)
    result = airflow("db", "migrate", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    processes = Processes(logs=home)
    try:
        processes.start(
            "api-server",
            ["api-server", "-H", "127.0.0.1", "-p", str(api_port), "-w", "1"],
            env,
            home,
        )
        processes.start("scheduler", ["scheduler"], env, home)
        processes.start("dag-processor", ["dag-processor"], env, home)
        for queue, name in WORKERS.items():
            worker_env = {
                **env,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "celery_test_worker.hostname",
                "CELERY_TEST_WORKER_HOSTNAME": name,
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            }
            args = [
                "celery",
                "worker",
                "--celery-hostname",
                f"{name}@%h",
                "--queues",
                queue,
                "--concurrency",
                WORKER_CONCURRENCY[queue],
            ]
            processes.start(name, args, worker_env, home)
        processes.start(
            "flower",
            [
                "celery",
                "flower",
                "-H",
                "127.0.0.1",
                "-p",
                str(flower_port),
                "-A",
                FLOWER_LOGIN,
            ],
            env,
            home,
        )
        flower_url = f"http://127.0.0.1:{flower_port}"
        wait_for(
            "the api-server",
            lambda: http_get(f"http://127.0.0.1:{api_port}/api/v2/version")[0] == 200,
            processes,
            timeout=300,
        )
        wait_for(
            "both workers in Flower",
            lambda: len(flower_workers(flower_url)) == 2,
            processes,
            timeout=300,
        )
        wait_for(
            "the DAG from the dag-processor",
            lambda: postgres.query(f"SELECT 1 FROM serialized_dag WHERE dag_id = '{DAG_ID}'"),
            processes,
            timeout=300,
        )
        yield CeleryAirflow(airflow, postgres, processes, flower_url)
    finally:
        processes.stop()


def flower_workers(flower_url: str) -> dict:
    status, body = http_get(f"{flower_url}/api/workers?refresh=1", auth=FLOWER_LOGIN)
    return json.loads(body) if status == 200 else {}


def trigger_and_wait(celery_airflow: CeleryAirflow, run_id: str) -> dict[str, dict[str, str]]:
    """Triggers a DAG run and waits for its end: task id -> state, queue, hostname."""
    airflow, postgres = celery_airflow.airflow, celery_airflow.postgres
    result = airflow(
        "dags",
        "trigger",
        DAG_ID,
        "--run-id",
        run_id,
        "--conf",
        json.dumps({"kedro_params": DAG_PARAMS}),
        timeout=300,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    state = wait_for(
        f"the DAG run {run_id} to finish",
        lambda: next(
            (
                row[0]
                for row in postgres.query(
                    f"SELECT state FROM dag_run WHERE dag_id = '{DAG_ID}' AND run_id = '{run_id}'"
                )
                if row[0] in {"success", "failed"}
            ),
            None,
        ),
        celery_airflow.processes,
        timeout=DAG_RUN_TIMEOUT_S,
        interval=5,
    )
    rows = postgres.query(
        "SELECT task_id, state, queue, coalesce(hostname, '') FROM task_instance"
        f" WHERE dag_id = '{DAG_ID}' AND run_id = '{run_id}'"
    )
    tasks = {task: {"state": s, "queue": q, "hostname": h} for task, s, q, h in rows}
    failed = sorted(t for t, ti in tasks.items() if ti["state"] not in {"success", "skipped"})
    logs = "\n\n".join(f"--- {n}\n{celery_airflow.processes.tail(n, 40)}" for n in WORKERS.values())
    assert state == "success", f"DAG run {state}; tasks not successful: {failed}\n{logs}"
    return tasks


@pytest.fixture(scope="module")
def dag_run(celery_airflow) -> dict[str, dict[str, str]]:
    """The first triggered DAG run, run to its end."""
    result = celery_airflow.airflow("dags", "unpause", DAG_ID, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return trigger_and_wait(celery_airflow, RUN_ID)


def dag_runs_in_mlflow(project: Path) -> tuple[MlflowClient, list]:
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("airflow-dag")
    return client, client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time ASC"]
    )


def test_the_dag_imports_without_errors(celery_airflow):
    airflow = celery_airflow.airflow
    assert airflow.json("dags", "list-import-errors") == []
    assert DAG_ID in {d["dag_id"] for d in airflow.json("dags", "list")}


def test_dag_run_succeeds_with_tasks_on_both_celery_workers(dag_run):
    assert dag_run.pop("challenger_rejected")["state"] == "skipped"
    assert {ti["state"] for ti in dag_run.values()} == {"success"}, dag_run
    by_queue: dict[str, set[str]] = {}
    for task_id, ti in dag_run.items():
        by_queue.setdefault(ti["queue"], set()).add(task_id)
        assert ti["hostname"] == WORKERS[ti["queue"]], (task_id, ti)
    assert by_queue[KEDRO_QUEUE] == set(KEDRO_TASKS)
    assert {
        "validate_environment",
        "start_mlflow_run",
        "promotion_outcome",
    } <= by_queue["default"]


def test_dag_run_promotes_its_model_in_one_mlflow_run(dag_run, project):
    client, runs = dag_runs_in_mlflow(project)
    assert len(runs) == 1, [r.info.run_id for r in runs]
    mlflow_run = runs[0]
    assert mlflow_run.data.tags["airflow.run_id"] == RUN_ID
    assert mlflow_run.data.tags["promotion.decision"] == "promoted"
    assert {"test_average_precision", "test_roc_auc"} <= set(mlflow_run.data.metrics)
    assert mlflow_run.data.params["split.n_folds"] == "2"  # the DAG run's kedro_params
    assert {"pr_curve.png", "evaluation_report.json", "promotion_report.json"} <= {
        a.path for a in client.list_artifacts(mlflow_run.info.run_id)
    }
    champion = client.get_model_version_by_alias("fraud-detection", "champion")
    assert champion.run_id == mlflow_run.info.run_id


def test_flower_answers_and_lists_both_workers_with_their_queues(celery_airflow, dag_run):
    url = celery_airflow.flower_url
    assert http_get(f"{url}/healthcheck") == (200, "OK")
    assert http_get(f"{url}/api/workers")[0] == 401  # the API needs the login
    expected = {name: {queue} for queue, name in WORKERS.items()}
    seen: list[dict] = []

    def queues_by_worker() -> bool:
        # A worker busy with a task may miss one inspect round: ask again.
        seen.append(
            {
                name.split("@")[0]: {q["name"] for q in info.get("active_queues") or []}
                for name, info in flower_workers(url).items()
            }
        )
        return seen[-1] == expected

    deadline = time.monotonic() + 120
    while not queues_by_worker() and time.monotonic() < deadline:
        time.sleep(3)
    assert seen[-1] == expected


def test_the_compose_worker_healthcheck_pings_a_live_worker_only(celery_airflow):
    """docker-compose.yml's airflow-worker health check, run against a real worker: it
    answers for a live node and fails for one that is not there."""
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    healthcheck = compose["services"]["airflow-worker"]["healthcheck"]["test"]
    assert healthcheck[0] == "CMD-SHELL" and '"celery@$${HOSTNAME}"' in healthcheck[1]
    env = {
        **celery_airflow.airflow.env,
        "PATH": f"{AIRFLOW_BIN.parent}:{os.environ['PATH']}",
    }

    def ping(node: str) -> subprocess.CompletedProcess:
        command = healthcheck[1].replace('"celery@$${HOSTNAME}"', node)
        return subprocess.run(
            ["bash", "-c", command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    live = ping(f"{WORKERS[KEDRO_QUEUE]}@{socket.gethostname()}")
    assert live.returncode == 0 and "pong" in live.stdout, live.stdout + live.stderr
    assert ping("celery@no-such-worker").returncode != 0


def test_a_second_run_with_an_equal_model_keeps_the_champion(celery_airflow, dag_run, project):
    """Same data, same parameters: the challenger is not better, the branch says so and
    the alias stays where the first run put it."""
    client, _ = dag_runs_in_mlflow(project)
    champion = client.get_model_version_by_alias("fraud-detection", "champion").version
    second = trigger_and_wait(celery_airflow, f"{RUN_ID}-2")
    assert second["champion_promoted"]["state"] == "skipped"
    assert second["challenger_rejected"]["state"] == "success"
    client, runs = dag_runs_in_mlflow(project)
    assert len(runs) == 2 and runs[1].data.tags["airflow.run_id"] == f"{RUN_ID}-2"
    assert runs[1].data.tags["promotion.decision"] == "rejected"
    assert client.get_model_version_by_alias("fraud-detection", "champion").version == champion
