"""Small simulated transactions and a fitted champion for the batch scoring tests."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression

from fraud_detection import schema
from fraud_detection.features import create_features, feature_columns
from fraud_detection.model import FraudModel, build_model_pipeline
from fraud_detection.simulator import simulate_transactions
from tests.conftest import base_parameters

FEATURES = base_parameters("features")
MODEL = "fraud-detection"
THRESHOLD = 0.3


def day_start(transactions: pd.DataFrame, day: int) -> pd.Timestamp:
    return transactions[schema.TIMESTAMP].min().normalize() + pd.Timedelta(days=day)


def fit_model(transactions: pd.DataFrame, until: pd.Timestamp) -> FraudModel:
    """A logistic regression on the labelled feature rows before ``until``."""
    features = create_features(transactions, FEATURES)
    train = features[features[schema.TIMESTAMP] < until]
    numeric, categorical = feature_columns(train)
    pipeline = build_model_pipeline(
        LogisticRegression(max_iter=500), numeric, categorical, {"mi_sample_size": 3000}
    )
    pipeline.fit(train[numeric + categorical], train[schema.LABEL].astype(int))
    model = FraudModel(pipeline, THRESHOLD, numeric + categorical, "logistic_regression")
    model.input_example = train[numeric + categorical].head(5)
    return model


@pytest.fixture(scope="session")
def simulated() -> pd.DataFrame:
    """45 days: longer than the features' horizon (30 + 7 days)."""
    return simulate_transactions(
        base_parameters("simulation", n_days=45, n_customers=150, n_terminals=300, seed=3)
    )


@pytest.fixture(scope="session")
def fraud_model(simulated) -> FraudModel:
    return fit_model(simulated, day_start(simulated, 38))


@pytest.fixture(scope="session")
def saved_model(fraud_model, tmp_path_factory) -> Path:
    """The model saved in the MLflow format, as the registry stores it."""
    path = tmp_path_factory.mktemp("model") / "fraud_model"
    mlflow.pyfunc.save_model(
        path, python_model=fraud_model, input_example=fraud_model.input_example
    )
    return path


@pytest.fixture
def champion(saved_model) -> dict:
    """What the catalog's ``current_champion`` loads: name, version, run and pyfunc."""
    return {
        "name": MODEL,
        "version": "3",
        "run_id": None,
        "model": mlflow.pyfunc.load_model(str(saved_model)),
    }


@pytest.fixture(scope="module")
def registry(fraud_model, tmp_path_factory):
    """A SQLite-backed MLflow registry (what the default `kedro run` tracks to) with
    the model registered and aliased ``champion``; MLFLOW_TRACKING_URI points at it."""
    db = tmp_path_factory.mktemp("registry") / "mlflow.db"
    uri = f"sqlite:///{db}"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("batch-scoring-tests")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=fraud_model,
            registered_model_name=MODEL,
            input_example=fraud_model.input_example,
        )
    version = str(info.registered_model_version)
    MlflowClient().set_registered_model_alias(MODEL, "champion", version)
    yield {"uri": uri, "version": version}
    mlflow.set_tracking_uri(previous)
    mp.undo()
