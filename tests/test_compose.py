"""docker-compose.yml without a Docker engine: valid against the Compose
specification's JSON schema (vendored in infra/compose), every variable it reads
documented in .env.example, every published port in the README, and every
`depends_on` condition backed by what the dependency offers."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import yaml

from tests.conftest import PROJECT_ROOT

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
SCHEMA = PROJECT_ROOT / "infra" / "compose" / "compose-spec.json"
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}; $$ escapes a literal dollar.
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:[:?-][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_follows_the_compose_specification(compose):
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
    )


def test_schema_rejects_what_compose_would_reject():
    """The check has teeth: a typo in a service key fails it."""
    schema = json.loads(SCHEMA.read_text())
    broken = {"services": {"web": {"image": "nginx", "restrat": "always"}}}
    with pytest.raises(jsonschema.ValidationError, match="restrat"):
        jsonschema.validate(broken, schema)


def test_every_variable_is_documented_in_env_example():
    used = set(VARIABLE.findall(COMPOSE.read_text()))
    documented = set(
        re.findall(
            r"^#?\s*([A-Za-z_][A-Za-z0-9_]*)=", (PROJECT_ROOT / ".env.example").read_text(), re.M
        )
    )
    assert used, "no ${VAR} found: the pattern is broken"
    assert not used - documented, f"add to .env.example: {sorted(used - documented)}"


def published_ports(compose: dict) -> dict[str, list[str]]:
    ports: dict[str, list[str]] = {}
    for name, service in compose["services"].items():
        for entry in service.get("ports", []):
            published = str(entry.get("published") if isinstance(entry, dict) else entry).split(":")
            ports.setdefault(name, []).append(published[-2] if len(published) > 1 else published[0])
    return ports


def test_every_published_port_is_in_the_readme(compose):
    readme = (PROJECT_ROOT / "README.md").read_text()
    production = readme[readme.index("## Production") :]
    ports = published_ports(compose)
    assert {"kafka", "minio", "mlflow", "airflow-apiserver"} <= set(ports)
    missing = [
        f"{name}:{port}"
        for name, values in ports.items()
        for port in values
        if f"localhost:{port}" not in production
    ]
    assert not missing, f"the README's Production section does not mention {missing}"


def test_dependencies_wait_for_health_or_completion(compose):
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for dependency, spec in depends.items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], (
                    f"{name} waits for {dependency}'s health, which has no healthcheck"
                )
            else:
                assert condition == "service_completed_successfully", (
                    f"{name} -> {dependency}: {condition}"
                )


def test_long_running_services_have_healthchecks(compose):
    one_shot = {"minio-init", "airflow-init", "producer"}
    # No port to probe: it exits when unhealthy and its restart policy brings it back.
    restarted = {
        name
        for name, service in compose["services"].items()
        if service.get("restart") == "on-failure"
    }
    assert restarted == {"scorer"}
    missing = [
        name
        for name in compose["services"]
        if name not in one_shot | restarted and "healthcheck" not in compose["services"][name]
    ]
    assert not missing


def test_airflow_runs_the_project_image_with_the_dag(compose):
    airflow = (
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-init",
        "airflow-worker",
        "flower",
    )
    for name in airflow:
        service = compose["services"][name]
        assert service["build"]["dockerfile"] == "Dockerfile", name
        assert service["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000", name
        assert (
            "postgres:5432/airflow" in service["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        ), name
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "AIRFLOW__CORE__DAGS_FOLDER=/opt/fraud-detection/airflow_dags" in dockerfile
    assert (
        "postgres:5432/mlflow"
        in compose["services"]["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"]
    )


def test_dockerfile_declares_its_arguments_and_copies_what_exists():
    """What `docker build` would reject or silently empty, checked without Docker: an
    ARG used in a stage without being declared there (it expands to ''), and COPY
    sources that are not in the repository."""
    lines = (PROJECT_ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    global_args: set[str] = set()
    stage_args: set[str] | None = None
    for line in (raw.strip() for raw in lines):
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        used = set(re.findall(r"\$\{(\w+)\}", rest))
        if instruction == "FROM":
            assert used <= global_args, f"FROM uses undeclared {used - global_args}"
            stage_args = set()
        elif instruction == "ARG":
            (global_args if stage_args is None else stage_args).add(rest.split("=")[0])
        elif instruction == "RUN" or (instruction == "COPY" and "--from" not in rest):
            assert stage_args is not None
            assert used <= stage_args, (
                f"{line!r} uses {used - stage_args}, not declared in its stage"
            )
        if instruction == "COPY" and "--from" not in rest:
            sources = [w for w in rest.split() if not w.startswith("--")][:-1]
            missing = [s for s in sources if not (PROJECT_ROOT / s).exists()]
            assert not missing, f"COPY of missing {missing}"


def test_spark_profile_runs_a_master_and_a_worker_of_the_projects_spark_version(compose):
    """The official image at the minor version of the pyspark the project pins, so
    drivers and cluster speak the same Spark; workers scale (no host port)."""
    services = compose["services"]
    spark = {name for name, s in services.items() if "spark" in s.get("profiles", [])}
    assert spark == {"spark-master", "spark-worker"}
    # pyproject.toml pins one minor, e.g. "pyspark==4.3.*", in the spark and dev extras.
    pins = set(
        re.findall(r'"pyspark==(\d+\.\d+)\.\*"', (PROJECT_ROOT / "pyproject.toml").read_text())
    )
    assert len(pins) == 1, pins
    (minor,) = pins
    for name in spark:
        image, _, tag = services[name]["image"].partition(":")
        assert image == "apache/spark", name
        assert tag.startswith(f"{minor}."), (name, tag)
        assert "java17" in tag and "python3" in tag, tag
    master, worker = services["spark-master"], services["spark-worker"]
    assert master["ports"] == ["7077:7077", "8082:8080"]
    assert "org.apache.spark.deploy.master.Master" in master["command"]
    assert "ports" not in worker
    assert "spark://spark-master:7077" in worker["command"]
    assert worker["depends_on"] == {"spark-master": {"condition": "service_healthy"}}
