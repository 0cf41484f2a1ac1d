"""MlflowChildRunsDataset: one nested run per entry under the active run."""

from __future__ import annotations

import json

import mlflow
import pytest
from kedro.io import DatasetError

from fraud_detection.datasets.mlflow_child_runs_dataset import MlflowChildRunsDataset


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("child-runs")
    yield
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


RUNS = [
    {"name": "window 0", "params": {"test_start": "2025-01-01"}, "metrics": {"ap": 0.6}},
    {
        "name": "window 1",
        "params": {"test_start": "2025-01-08"},
        "metrics": {"ap": 0.7},
        "tags": {"backtest.window": 1},
    },
]


def test_children_are_nested_under_the_active_run_and_closed(tracking):
    with mlflow.start_run() as parent:
        MlflowChildRunsDataset(artifact_file="windows.json").save(RUNS)
        assert mlflow.active_run().info.run_id == parent.info.run_id
    children = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        order_by=["params.test_start"],
        output_format="list",
    )
    assert [c.info.run_name for c in children] == ["window 0", "window 1"]
    assert [c.data.metrics["ap"] for c in children] == [0.6, 0.7]
    assert all(c.info.status == "FINISHED" for c in children)
    assert children[1].data.tags["backtest.window"] == "1"
    path = mlflow.artifacts.download_artifacts(
        run_id=parent.info.run_id, artifact_path="windows.json"
    )
    assert json.loads(open(path).read())[0]["name"] == "window 0"


def test_saving_without_an_active_run_names_the_cause(tracking):
    with pytest.raises(DatasetError, match="no MLflow run is active"):
        MlflowChildRunsDataset().save(RUNS)
