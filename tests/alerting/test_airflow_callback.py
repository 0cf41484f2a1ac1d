"""The Airflow task failure callback sends through the same sinks as the Kedro hook,
configured from the project's conf and .env, and never raises."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest

from fraud_detection.alerting import airflow_failure_callback
from fraud_detection.alerting.events import ALERTED_MARKER
from fraud_detection.errors import DataQualityError
from tests.alerting.conftest import body_text, free_port
from tests.conftest import PROJECT_ROOT


@pytest.fixture
def project(tmp_path):
    """The project's configuration without its .env, so a developer's real sinks
    never receive test alerts."""
    shutil.copytree(PROJECT_ROOT / "conf", tmp_path / "conf")
    return tmp_path


def airflow_context(exception=None):
    ti = SimpleNamespace(
        dag_id="fraud_detection_training_dag",
        task_id="training",
        try_number=2,
        log_url="http://airflow.example.test/log?task_id=training",
    )
    dag_run = SimpleNamespace(
        dag_id="fraud_detection_training_dag", run_id="scheduled__2026-11-28T00:00:00+00:00"
    )
    return {"task_instance": ti, "ti": ti, "dag_run": dag_run, "exception": exception}


def test_task_failure_alerts_with_task_dag_run_and_mlflow_run(project, receivers_env):
    webhook, smtp = receivers_env
    error = RuntimeError("xgboost ran out of memory")
    airflow_failure_callback(
        airflow_context(error), project_path=project, env="local", mlflow_run_id="f00d"
    )
    (post,) = webhook.events()
    assert (
        post["text"] == "[local] Pipeline run failed in node fraud_detection_training_dag.training"
    )
    text = str(post)
    for fragment in (
        "RuntimeError: xgboost ran out of memory",
        "scheduled__2026-11-28T00:00:00+00:00",
        "f00d",
        "try number",
        "task log",
    ):
        assert fragment in text, fragment
    assert "fraud_detection_training_dag.training" in body_text(smtp.messages[0])
    assert getattr(error, ALERTED_MARKER) is True


def test_data_quality_failure_in_a_task_keeps_its_counts(project, receivers_env):
    webhook, _ = receivers_env
    report = {
        "rows_in": 10,
        "rows_valid": 5,
        "rows_quarantined": 5,
        "invalid_share": 0.5,
        "max_invalid_share": 0.05,
        "quarantined_by_reason": {"duplicate_transaction_id": 5},
    }
    airflow_failure_callback(
        airflow_context(DataQualityError("5 of 10 failed", report=report)),
        project_path=project,
        env="local",
    )
    (post,) = webhook.events()
    assert "Data-quality limit exceeded" in post["text"] and "duplicate_transaction_id" in str(post)


def test_failure_already_alerted_by_the_kedro_run_is_not_sent_twice(project, receivers_env):
    webhook, smtp = receivers_env
    error = RuntimeError("boom")
    setattr(error, ALERTED_MARKER, True)
    airflow_failure_callback(airflow_context(error), project_path=project, env="local")
    assert webhook.posts == [] and smtp.messages == []


def test_failure_without_an_exception_still_alerts(project, receivers_env):
    webhook, _ = receivers_env
    airflow_failure_callback(airflow_context(None), project_path=project, env="local")
    (post,) = webhook.events()
    assert "AirflowTaskFailed" in str(post) and "no exception reported" in str(post)


def test_callback_never_raises_with_dead_sinks_or_a_missing_project(project, monkeypatch, tmp_path):
    monkeypatch.setenv("ALERT_WEBHOOK_URL", f"http://127.0.0.1:{free_port()}/")
    airflow_failure_callback(airflow_context(RuntimeError("x")), project_path=project, env="local")
    airflow_failure_callback(
        airflow_context(RuntimeError("x")), project_path=tmp_path / "nowhere", env="nope"
    )
    airflow_failure_callback({}, project_path=project)
