"""What the DAG's tasks resolve before running Kedro: project path and environment
(with their run-time overrides), and a promotion report that belongs to the run."""

from __future__ import annotations

import json
from contextlib import nullcontext

import pytest

from fraud_detection import orchestration
from fraud_detection.orchestration import KedroTarget
from tests.conftest import PROJECT_ROOT


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch):
    for name in ("FRAUD_DETECTION_PROJECT_PATH", "KEDRO_ENV", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(name, raising=False)


def test_target_uses_the_values_written_into_the_dag():
    target = KedroTarget.from_dag(str(PROJECT_ROOT), "airflow", "train_and_promote", "")
    assert target == KedroTarget(PROJECT_ROOT, "airflow", "train_and_promote", None)


def test_environment_variables_override_project_path_and_kedro_env(monkeypatch, tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.kedro]\n")
    monkeypatch.setenv("FRAUD_DETECTION_PROJECT_PATH", str(tmp_path))
    monkeypatch.setenv("KEDRO_ENV", "prod")
    target = KedroTarget.from_dag("/opt/fraud-detection", "airflow", "train_and_promote")
    assert (target.project_path, target.env) == (tmp_path, "prod")


@pytest.mark.parametrize("path", ["relative/project", "/nonexistent/fraud-detection"])
def test_a_path_that_is_not_a_project_fails_with_the_variable_to_set(path):
    with pytest.raises(ValueError, match="FRAUD_DETECTION_PROJECT_PATH"):
        KedroTarget.from_dag(path, "airflow", "train_and_promote")


def test_a_stale_promotion_report_is_not_taken_for_this_run(monkeypatch):
    report = {"promote": True, "reason": "no champion yet", "challenger_run_id": "an-older-run"}

    class Catalog:
        def load(self, name):
            assert name == "promotion_report"
            return json.loads(json.dumps(report))

    class Session:
        def load_context(self):
            return type("Context", (), {"catalog": Catalog()})()

    monkeypatch.setattr(orchestration, "_session", lambda *args, **kwargs: nullcontext(Session()))
    target = KedroTarget(PROJECT_ROOT, "airflow", "train_and_promote")
    with pytest.raises(RuntimeError, match="not by this DAG run's run this-run"):
        orchestration.read_promotion_report(target, "this-run")
    report["challenger_run_id"] = "this-run"
    assert orchestration.read_promotion_report(target, "this-run")["promote"] is True
