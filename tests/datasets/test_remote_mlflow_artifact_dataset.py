"""RemoteMlflowArtifactDataset on fsspec's in-memory filesystem (a non-local protocol,
as s3:// is): the catalog copy is versioned, the run gets the same bytes."""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import matplotlib.pyplot as plt
import mlflow
import pytest
from kedro.io import DatasetError, Version

from fraud_detection.datasets.remote_mlflow_artifact_dataset import (
    RemoteMlflowArtifactDataset,
)


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> str:
    """One SQLite tracking database for the module: creating one takes seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def tracking(database, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(database)
    mlflow.set_experiment("remote-artifacts")
    yield
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


@pytest.fixture
def memory():
    fs = fsspec.filesystem("memory")
    if fs.exists("/reports"):
        fs.rm("/reports", recursive=True)
    return fs


def _artifact(run_id: str, name: str) -> bytes:
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name)).read_bytes()


def test_versioned_save_keeps_the_catalog_copy_and_logs_the_same_bytes(tracking, memory):
    dataset = RemoteMlflowArtifactDataset(
        dataset={
            "type": "json.JSONDataset",
            "filepath": "memory:///reports/evaluation_report.json",
        },
        version=Version(None, "2026-01-01T00.00.00.000Z"),
    )
    with mlflow.start_run() as run:
        dataset.save({"auc": 0.9})
    stored = memory.cat(
        "/reports/evaluation_report.json/2026-01-01T00.00.00.000Z/evaluation_report.json"
    )
    assert json.loads(stored) == {"auc": 0.9}
    assert _artifact(run.info.run_id, "evaluation_report.json") == stored
    assert dataset.load() == {"auc": 0.9}
    assert dataset.exists()


def test_plot_goes_to_the_artifact_folder(tracking, memory):
    dataset = RemoteMlflowArtifactDataset(
        dataset={
            "type": "matplotlib.MatplotlibDataset",
            "filepath": "memory:///reports/pr_curve.png",
            "save_args": {"dpi": 50},
        },
        artifact_path="plots",
    )
    figure, axis = plt.subplots()
    axis.plot([0, 1], [1, 0])
    with mlflow.start_run() as run:
        dataset.save(figure)
    assert _artifact(run.info.run_id, "plots/pr_curve.png") == memory.cat("/reports/pr_curve.png")


def test_without_an_active_run_the_file_is_saved_but_not_logged(tracking, memory, caplog):
    dataset = RemoteMlflowArtifactDataset(
        dataset={"type": "json.JSONDataset", "filepath": "memory:///reports/r.json"}
    )
    dataset.save({"a": 1})
    assert memory.exists("/reports/r.json")
    assert mlflow.active_run() is None
    assert "not logged to MLflow" in caplog.text


def test_failed_catalog_save_logs_nothing(tracking, monkeypatch):
    dataset = RemoteMlflowArtifactDataset(
        dataset={"type": "json.JSONDataset", "filepath": "memory:///reports/r.json"}
    )

    def refuse(data: object) -> None:
        raise DatasetError("store down")

    monkeypatch.setattr(dataset._dataset, "save", refuse)
    with mlflow.start_run() as run, pytest.raises(DatasetError, match="store down"):
        dataset.save({"a": 1})
    assert mlflow.MlflowClient().list_artifacts(run.info.run_id) == []


def test_wrapped_dataset_needs_a_filepath():
    with pytest.raises(DatasetError, match="needs 'type' and 'filepath'"):
        RemoteMlflowArtifactDataset(dataset={"type": "json.JSONDataset"})
