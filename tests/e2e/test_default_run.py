"""End to end: the default pipeline in a KedroSession, tracked to a real MLflow
(SQLite) database, twice, with the registry's alias checked after each run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow

MODEL = "fraud-detection"

SMALL_RUN = {
    "simulation": {"n_days": 50, "n_customers": 400, "n_terminals": 800, "seed": 7},
    "split": {"n_folds": 2},
    "training": {
        "families": ["logistic_regression", "xgboost"],
        "n_iter": 2,
        "candidates": {"xgboost": {"init": {"n_estimators": 60}}},
    },
    "promotion": {"min_average_precision": 0.05, "min_roc_auc": 0.6},
}


def make_project(tmp_path: Path) -> Path:
    """A copy of the project's configuration in a fresh folder, so runs write their
    data and MLflow database there."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("conf", "data", "logs"):
        shutil.copytree(
            PROJECT_ROOT / name,
            project / name,
            ignore=shutil.ignore_patterns("*.parquet", "*.json", "*.pkl", "*.png", "*.log"),
        )
    (project / "src").mkdir()  # the package itself is installed
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, project / name)
    return project


def run(project: Path, runtime_params: dict, pipeline: str | None = None) -> None:
    bootstrap_project(project)
    with KedroSession.create(project_path=project, runtime_params=runtime_params) as session:
        session.run(pipeline_names=[pipeline] if pipeline else None)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    path = make_project(tmp_path_factory.mktemp("e2e"))
    mp = pytest.MonkeyPatch()
    mp.chdir(path)
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path / 'mlflow.db'}")
    mp.setenv("MLFLOW_EXPERIMENT_NAME", "e2e")
    yield path
    mp.undo()


@pytest.fixture(scope="module")
def first_run(project):
    run(project, SMALL_RUN)
    return project


def test_default_run_registers_and_promotes_a_champion(first_run):
    client = MlflowClient()
    champion = client.get_model_version_by_alias(MODEL, "champion")
    run_data = client.get_run(champion.run_id).data
    for metric in (
        "test_average_precision",
        "test_roc_auc",
        "test_precision",
        "test_recall",
        "test_f1",
        "test_card_precision_at_100",
        "test_baseline_average_precision",
        "decision_threshold",
    ):
        assert metric in run_data.metrics, metric
    assert run_data.tags["promotion.decision"] == "promoted"
    assert run_data.params["split.n_folds"] == "2"
    artifacts = {a.path for a in client.list_artifacts(champion.run_id)}
    assert {
        "pr_curve.png",
        "roc_curve.png",
        "confusion_matrix.png",
        "feature_importance.png",
        "score_distribution.png",
        "evaluation_report.json",
        "promotion_report.json",
        "model_report.html",
        "feature_effects.json",
    } <= artifacts
    report = json.loads((first_run / "data/08_reporting/promotion_report.json").read_text())
    assert report["promote"] is True and report["champion"] is None


def test_counts_add_up_and_quarantine_is_persisted(first_run):
    dq = json.loads((first_run / "data/08_reporting/data_quality_report.json").read_text())
    raw = pd.read_parquet(first_run / "data/01_raw/transactions.parquet")
    assert dq["rows_in"] == len(raw) == dq["rows_valid"] + dq["rows_quarantined"]
    assert (first_run / "data/02_intermediate/quarantined_transactions.parquet").exists()


def test_champion_from_registry_scores_like_the_pipeline(first_run):
    test_set = pd.read_parquet(first_run / "data/05_model_input/test_set.parquet")
    predictions = pd.read_parquet(first_run / "data/07_model_output/test_predictions.parquet")
    selected = json.loads((first_run / "data/06_models/model_selection.json").read_text())[
        "selected"
    ]
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    assert model.metadata.signature is not None
    out = model.predict(test_set)
    pd.testing.assert_series_equal(
        out["score"], predictions[f"score_{selected}"], check_names=False, rtol=1e-12
    )


def test_equal_or_worse_challenger_is_never_promoted(first_run):
    client = MlflowClient()
    before = client.get_model_version_by_alias(MODEL, "champion").version
    # Same data and settings: an equal model does not beat the champion by the margin.
    run(first_run, SMALL_RUN, pipeline="train_and_promote")
    assert client.get_model_version_by_alias(MODEL, "champion").version == before
    # A crippled challenger (almost no regularisation budget) with the floors off:
    # it reaches the comparison and loses it.
    worse = {
        **SMALL_RUN,
        "training": {
            "families": ["logistic_regression"],
            "search": "grid",
            "candidates": {
                "logistic_regression": {
                    "search_space": {"classifier__C": [1.0e-7]},
                    "resampling": ["none"],
                }
            },
        },
        "promotion": {"min_average_precision": 0.0, "min_roc_auc": 0.0},
    }
    run(first_run, worse, pipeline="train_and_promote")
    assert client.get_model_version_by_alias(MODEL, "champion").version == before
    versions = client.search_model_versions(f"name='{MODEL}'")
    assert len(versions) == 3
    report = json.loads((first_run / "data/08_reporting/promotion_report.json").read_text())
    assert report["promote"] is False and "does not beat champion" in report["reason"]
    # The champion's training window was recorded on its run and checked: it ends
    # before the test window starts, so the two were compared.
    assert report["comparable"] is True
    assert report["champion"]["training_window"]["end"] <= report["test_window"]["start"]
    assert (
        report["challenger"]["metrics"]["average_precision"]
        < report["champion"]["metrics"]["average_precision"]
    )
    latest = max(versions, key=lambda v: int(v.version))
    assert client.get_run(latest.run_id).data.tags["promotion.decision"] == "rejected"


def test_notebook_runs_against_the_catalog(first_run, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(
        PROJECT_ROOT / "notebooks" / "fraud_detection_walkthrough.ipynb", as_version=4
    )
    (first_run / "notebooks").mkdir(exist_ok=True)
    monkeypatch.setenv("FRAUD_DETECTION_PROJECT", str(first_run))
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(first_run / "notebooks")}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "rows_in" in text and "selected:" in text
    assert sum(1 for o in outputs if "image/png" in o.get("data", {})) == 5


def test_monitoring_compares_a_window_with_the_champions_reference(first_run):
    """The monitoring pipeline on the champion: the last week of the training data
    itself shows no drift; the same simulation with doubled amounts does."""
    from fraud_detection.simulator import simulate_transactions
    from tests.conftest import base_parameters

    current = first_run / "data/01_raw/current_transactions.parquet"
    shutil.copy(first_run / "data/01_raw/transactions.parquet", current)
    run(first_run, SMALL_RUN, pipeline="monitoring")
    verdict = json.loads((first_run / "data/08_reporting/monitoring_verdict.json").read_text())
    assert verdict["drift_detected"] is False, verdict["reasons"]
    champion = MlflowClient().get_model_version_by_alias(MODEL, "champion")
    assert verdict["model_version"] == str(champion.version)
    assert "reference_profile.json" in {
        a.path for a in MlflowClient().list_artifacts(champion.run_id)
    }

    shifted = simulate_transactions(
        base_parameters("simulation", **SMALL_RUN["simulation"], mean_amount=[15.0, 300.0])
    )
    shifted.to_parquet(current)
    run(first_run, SMALL_RUN, pipeline="monitoring")
    verdict = json.loads((first_run / "data/08_reporting/monitoring_verdict.json").read_text())
    assert verdict["drift_detected"] is True and verdict["recommendation"] == "retrain"
    assert "amount" in verdict["drifted_features"]
    monitoring_run = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("e2e").experiment_id],
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )[0]
    assert monitoring_run.data.metrics["monitoring_drift_detected"] == 1.0
    assert {"drift_report.html", "drift.png"} <= {
        a.path for a in MlflowClient().list_artifacts(monitoring_run.info.run_id)
    }
