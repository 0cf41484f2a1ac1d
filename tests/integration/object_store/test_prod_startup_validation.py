"""Wrong keys, a missing bucket, servers down: `kedro run --env prod` stops at start-up
with the validation error naming what to fix, before any node runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from fraud_detection.validation import StartupValidationError
from tests.e2e.test_default_run import make_project
from tests.integration.object_store.conftest import BUCKET, Services, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("prod-validation"))


@pytest.fixture
def prod_env(project: Path, services: Services, monkeypatch) -> dict[str, str]:
    monkeypatch.chdir(project)
    for name, value in services.client_env.items():
        monkeypatch.setenv(name, value)
    return services.client_env


def run_prod(project: Path) -> None:
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="prod") as session:
        session.run()


def validation_error(project: Path) -> tuple[StartupValidationError, float]:
    started = time.monotonic()
    with pytest.raises(StartupValidationError) as error:
        run_prod(project)
    return error.value, time.monotonic() - started


@pytest.mark.parametrize(
    "case",
    [
        (
            "AWS_ACCESS_KEY_ID",
            "nobody",
            "does not know the access key in AWS_ACCESS_KEY_ID (InvalidAccessKeyId)",
        ),
        (
            "AWS_SECRET_ACCESS_KEY",
            "not-the-secret",
            "rejects the secret in AWS_SECRET_ACCESS_KEY (SignatureDoesNotMatch)",
        ),
        (
            "S3_BUCKET",
            "no-such-bucket",
            "Bucket 'no-such-bucket' does not exist at http://127.0.0.1:",
        ),
    ],
    ids=["wrong-access-key", "wrong-secret", "missing-bucket"],
)
def test_bad_object_store_settings_stop_the_run_before_any_node(
    project, prod_env, services, monkeypatch, case
):
    variable, value, expected = case
    objects_before = set(services.fs().find(BUCKET))
    monkeypatch.setenv(variable, value)
    error, _ = validation_error(project)
    assert len(error.problems) == 1, error.problems
    assert expected in error.problems[0]
    assert "environment 'prod'" in str(error)
    assert set(services.fs().find(BUCKET)) == objects_before  # no node ran, no probe left behind


def test_servers_down_are_both_reported_within_seconds(project, prod_env, monkeypatch):
    s3_down, mlflow_down = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_down)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_down)
    error, seconds = validation_error(project)
    assert error.problems == [
        f"Object store {s3_down} is not reachable (EndpointConnectionError): "
        "start it (`scripts/s3.sh start` locally) "
        "or set AWS_ENDPOINT_URL_S3 to the address of the store.",
        f"MLflow server {mlflow_down} is not reachable (ConnectionError): "
        "start it (`scripts/mlflow_server.sh start` locally) "
        "or set MLFLOW_TRACKING_URI to the server's URL.",
    ]
    assert seconds < 30


def test_missing_settings_are_listed_by_name(project, prod_env, monkeypatch):
    for name in ("AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name)
    error, _ = validation_error(project)
    text = "\n".join(error.problems)
    assert "Environment variable AWS_SECRET_ACCESS_KEY is not set" in text
    assert "Environment variable MLFLOW_TRACKING_URI is not set" in text
    assert "no access key configured" in text
    assert "tracking_uri is empty: set MLFLOW_TRACKING_URI" in text


def test_cli_prints_the_validation_error_and_runs_no_node(project, prod_env):
    env = {**os.environ, **prod_env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    kedro = Path(sys.executable).with_name("kedro")
    result = subprocess.run(
        [str(kedro), "run", "--env", "prod"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Running node" not in output
    # The terminal shows Kedro's rich traceback; the error and its problem list come
    # last, after the traceback's frames (wrapped to the terminal's width).
    end = " ".join(output.rsplit("╯", 1)[-1].split())
    assert end.startswith(
        "StartupValidationError: Start-up validation failed "
        "for Kedro environment 'prod' (1 problem(s)):"
    ), end
    assert "rejects the secret in AWS_SECRET_ACCESS_KEY" in end
