from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from fraud_detection.validation import StartupValidationError, validate_environment
from tests.e2e.test_default_run import make_project


def test_every_problem_is_listed_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("FRAUD_TEST_MISSING", raising=False)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    problems = validate_environment(
        {
            "required_env_vars": ["FRAUD_TEST_MISSING"],
            "packages": {"pandas": "999.0", "surely-not-installed-pkg": "1.0"},
            "writable_paths": [str(blocker / "sub")],
        },
        tmp_path,
    )
    assert any("FRAUD_TEST_MISSING is not set: add it to .env" in p for p in problems)
    assert any(
        p.startswith("Package pandas") and "older than the required 999.0" in p for p in problems
    )
    assert any("surely-not-installed-pkg is not installed" in p for p in problems)
    assert any("is not writable" in p for p in problems)
    assert len(problems) == 4


def test_unknown_check_is_refused(tmp_path):
    assert validate_environment({"kafak": {}}, tmp_path) == [
        "Unknown start-up check(s) in validation.yml: ['kafak']."
    ]


def test_clean_environment_passes(tmp_path):
    assert (
        validate_environment({"packages": {"pandas": "2.0"}, "writable_paths": ["data"]}, tmp_path)
        == []
    )


def test_run_fails_before_any_node_naming_the_missing_variable(tmp_path, monkeypatch):
    project = make_project(tmp_path)
    monkeypatch.chdir(project)
    monkeypatch.delenv("HANDBOOK_TRANSACTIONS_PATH", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
    bootstrap_project(project)
    with pytest.raises(
        StartupValidationError,
        match="(?s)environment .handbook.*HANDBOOK_TRANSACTIONS_PATH is not set",
    ):
        with KedroSession.create(project_path=project, env="handbook") as session:
            session.run(pipeline_names=["train_and_promote"])
    assert not list(Path(project, "data").rglob("*.parquet"))
