"""MlflowFraudModelDataset: a fresh instance (another task's process) loads the model
that the active MLflow run logged, and says clearly when there is none."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from kedro.io import DatasetError

from fraud_detection.datasets.mlflow_model_dataset import MlflowFraudModelDataset


class ConstantScore(mlflow.pyfunc.PythonModel):
    """A pyfunc model small enough to log in a unit test."""

    def __init__(self, score: float):
        self.score = score

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return pd.DataFrame({"score": [self.score] * len(model_input)})


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """One SQLite tracking database for the module: creating one takes seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def tracking(database, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(database)
    mlflow.set_experiment("model-dataset")
    yield
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def dataset() -> MlflowFraudModelDataset:
    # Explicit requirements: MLflow would otherwise infer them in a subprocess (slow).
    return MlflowFraudModelDataset(
        save_args={"name": "fraud_model", "pip_requirements": ["pandas"]}
    )


def test_a_fresh_instance_loads_the_latest_model_of_the_active_run(tracking):
    frame = pd.DataFrame({"amount": [1.0, 2.0]})
    with mlflow.start_run() as run:
        dataset().save(ConstantScore(0.1))
        dataset().save(ConstantScore(0.7))  # a retried task logs the model again
    # Another process joins the same run (as MLFLOW_RUN_ID makes kedro-mlflow do).
    with mlflow.start_run(run_id=run.info.run_id):
        model = dataset().load()
    assert model.metadata.run_id == run.info.run_id
    assert model.predict(frame)["score"].tolist() == [0.7, 0.7]


def test_models_of_other_runs_are_never_loaded(tracking):
    with mlflow.start_run():
        dataset().save(ConstantScore(0.1))
    with (
        mlflow.start_run() as other,
        pytest.raises(
            DatasetError, match=f"run {other.info.run_id} has logged no model named 'fraud_model'"
        ),
    ):
        dataset().load()


def test_load_without_an_active_run_names_the_cause(tracking):
    with pytest.raises(DatasetError, match="no MLflow run is active"):
        dataset().load()


def test_the_instance_that_saved_loads_its_own_model(tracking):
    ds = dataset()
    with mlflow.start_run():
        ds.save(ConstantScore(0.3))
        assert ds.load().predict(pd.DataFrame({"a": [1]}))["score"].tolist() == [0.3]


class WindowedScore(ConstantScore):
    def __init__(self, score: float, training_window: dict[str, str]):
        super().__init__(score)
        self.training_window = training_window


def test_training_window_is_recorded_on_the_run_and_read_back_with_the_champion(tracking):
    from fraud_detection.datasets.mlflow_champion_dataset import MlflowChampionDataset

    window = {"start": "2025-01-01 00:00:00", "end": "2025-01-08 00:00:00"}
    registered = MlflowFraudModelDataset(
        save_args={
            "name": "fraud_model",
            "pip_requirements": ["pandas"],
            "registered_model_name": "windowed-model",
        }
    )
    with mlflow.start_run() as run:
        registered.save(WindowedScore(0.2, window))
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert tags["training_window.start"] == window["start"]
    assert tags["training_window.end"] == window["end"]
    champion = MlflowChampionDataset(model_name="windowed-model")
    assert champion.load() is None  # no alias yet
    mlflow.MlflowClient().set_registered_model_alias("windowed-model", "champion", "1")
    loaded = champion.load()
    assert loaded["training_window"] == window and loaded["run_id"] == run.info.run_id
