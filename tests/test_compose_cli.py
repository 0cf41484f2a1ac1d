"""docker-compose.yml through the Compose v2 CLI itself (built by scripts/compose.sh,
`make compose-cli`): `config` interpolates, merges and validates the file as `docker
compose up` would, without a Docker engine. The variables come from .env.example only,
so a variable missing there fails here."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "flower",
)


@pytest.fixture(scope="module")
def compose_bin() -> str:
    result = subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "compose.sh"), "path"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"the Compose CLI is not built: run `make compose-cli` ({result.stderr.strip()})"
        )
    return result.stdout.strip()


def compose(
    compose_bin: str,
    *args: str,
    file=COMPOSE_FILE,
    profiles: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """`docker-compose` on ``file`` with .env.example and no variable of ours from the
    shell (only ``env``), as a user's `docker compose` with a fresh .env sees it."""
    clean = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "TMPDIR", "LANG"}}
    profile_args = [arg for profile in profiles for arg in ("--profile", profile)]
    return subprocess.run(
        [
            compose_bin,
            "--project-directory",
            str(PROJECT_ROOT),
            "-f",
            str(file),
            "--env-file",
            str(ENV_EXAMPLE),
            *profile_args,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**clean, **(env or {})},
    )


def declared_profiles() -> list[str]:
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return sorted(
        {profile for service in services.values() for profile in service.get("profiles", [])}
    )


def test_the_file_declares_the_flower_and_spark_profiles():
    assert {"flower", "spark"} <= set(declared_profiles())


@pytest.mark.parametrize(
    "profiles",
    [(), *[(p,) for p in declared_profiles()]],
    ids=lambda p: "+".join(p) or "default",
)
def test_compose_cli_accepts_the_file_with_each_profile(compose_bin, profiles):
    result = compose(compose_bin, "config", "--quiet", profiles=profiles)
    assert result.returncode == 0, result.stderr
    # Compose warns, and goes on with a blank, for a variable that .env.example lacks.
    assert "variable is not set" not in result.stderr, result.stderr


def test_compose_cli_rejects_an_invalid_file(compose_bin, tmp_path):
    """The check has teeth: a misspelt service key fails it, naming the key."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  web:\n    image: nginx\n    restrat: always\n")
    result = compose(compose_bin, "config", "--quiet", file=broken)
    assert result.returncode != 0 and "restrat" in result.stderr, result.stderr


def services(compose_bin: str, *profiles: str) -> list[str]:
    result = compose(compose_bin, "config", "--services", profiles=profiles)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_flower_runs_only_with_its_profile(compose_bin):
    default = services(compose_bin)
    assert {"redis", "airflow-worker", "airflow-scheduler"} <= set(default)
    assert "flower" not in default
    assert set(services(compose_bin, "flower")) == {*default, "flower"}


def test_spark_runs_only_with_its_profile(compose_bin):
    default = services(compose_bin)
    assert not {"spark-master", "spark-worker"} & set(default)
    assert set(services(compose_bin, "spark")) == {*default, "spark-master", "spark-worker"}


def test_spark_worker_takes_its_size_from_the_environment(compose_bin):
    result = compose(
        compose_bin,
        "config",
        "--format",
        "json",
        profiles=("spark",),
        env={"SPARK_WORKER_CORES": "6", "SPARK_WORKER_MEMORY": "12g"},
    )
    assert result.returncode == 0, result.stderr
    spark = json.loads(result.stdout)["services"]
    command = spark["spark-worker"]["command"]
    assert command[command.index("--cores") + 1] == "6"
    assert command[command.index("--memory") + 1] == "12g"
    assert [p["published"] for p in spark["spark-master"]["ports"]] == ["7077", "8082"]
    assert "ports" not in spark["spark-worker"]


def resolved(compose_bin: str, env: dict[str, str] | None = None) -> dict:
    result = compose(compose_bin, "config", "--format", "json", profiles=("flower",), env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"]


def test_airflow_runs_on_celery_workers_by_default(compose_bin):
    resolved_services = resolved(compose_bin)
    for name in AIRFLOW_SERVICES:
        environment = resolved_services[name]["environment"]
        assert environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert environment["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0", name
    worker = resolved_services["airflow-worker"]
    assert "exec airflow celery worker" in worker["command"][-1]
    assert {"redis", "airflow-apiserver", "mlflow"} <= set(worker["depends_on"])
    assert resolved_services["flower"]["command"] == ["celery", "flower"]
    assert [p["published"] for p in resolved_services["flower"]["ports"]] == ["5555"]


def test_workers_can_be_scaled(compose_bin):
    """`--scale airflow-worker=N` needs replicas that do not clash: no fixed container
    name, no host port."""
    worker = resolved(compose_bin)["airflow-worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


def test_one_variable_switches_to_the_local_executor(compose_bin):
    resolved_services = resolved(compose_bin, env={"AIRFLOW_EXECUTOR": "LocalExecutor"})
    for name in AIRFLOW_SERVICES:
        assert (
            resolved_services[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        ), name


def test_env_example_values_reach_the_services_without_their_comments(compose_bin):
    """Compose's .env parser reads `KEY=   # comment` as the value `# comment`: a copied
    .env.example must not hand a service a comment as a key or password."""
    leaked = {
        f"{name}.{key}": value
        for name, service in resolved(compose_bin).items()
        for key, value in (service.get("environment") or {}).items()
        if value and value.lstrip().startswith("#")
    }
    assert not leaked
