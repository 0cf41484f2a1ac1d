"""`kedro run --pipelines batch_scoring` against a real MLflow tracking server
(scripts/mlflow_server.sh, artifacts in the S3 store of scripts/s3.sh): a model trained
and registered on the server as ``champion`` scores a back-fill window, and every
prediction equals what the real-time scorer produces for the same rows (``OnlineFeatures``
state built from the same history, the champion loaded by ``ChampionWatcher``), on
pandas and on Spark (``mlflow.pyfunc.spark_udf`` loading the version from the server)."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient
from xgboost import XGBClassifier

from fraud_detection import schema
from fraud_detection.datasets.mlflow_champion_dataset import MlflowChampionDataset
from fraud_detection.features import create_features, feature_columns
from fraud_detection.model import FraudModel, build_model_pipeline
from fraud_detection.pipelines.batch_scoring.nodes import (
    build_features_to_score,
    score_transactions,
)
from fraud_detection.predictions import PREDICTION_COLUMNS
from fraud_detection.scoring.champion import ChampionWatcher
from fraud_detection.scoring.features import OnlineFeatures, TransactionRecords
from fraud_detection.simulator import simulate_transactions
from tests.conftest import base_parameters
from tests.e2e.test_default_run import make_project
from tests.integration.object_store.conftest import Services, services  # noqa: F401 (the servers fixture)

pytestmark = pytest.mark.integration

MODEL = "fraud-detection"
FEATURES = base_parameters("features")


def register(features: pd.DataFrame) -> str:
    """Fits a small XGBoost model on labelled feature rows, registers it on the server
    and moves the ``champion`` alias to it."""
    numeric, categorical = feature_columns(features)
    pipeline = build_model_pipeline(
        XGBClassifier(n_estimators=40, max_depth=3, n_jobs=1),
        numeric,
        categorical,
        {"mi_sample_size": 3000},
    )
    pipeline.fit(features[numeric + categorical], features[schema.LABEL].astype(int))
    model = FraudModel(pipeline, 0.3, numeric + categorical, "xgboost")
    mlflow.set_experiment("batch-scoring-model")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            registered_model_name=MODEL,
            input_example=features[numeric + categorical].head(3),
        )
    version = str(info.registered_model_version)
    MlflowClient().set_registered_model_alias(MODEL, "champion", version)
    return version


@pytest.fixture(scope="module")
def backfill(services: Services, tmp_path_factory):  # noqa: F811
    """Two days back-filled by the pipeline, and the same days through the scorer's path."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", services.tracking_uri)
    mp.setenv("MLFLOW_EXPERIMENT_NAME", "batch-scoring-integration")
    mlflow.set_tracking_uri(services.tracking_uri)
    transactions = simulate_transactions(
        base_parameters("simulation", n_days=40, n_customers=250, n_terminals=500, seed=5)
    )
    start = transactions[schema.TIMESTAMP].min().normalize() + pd.Timedelta("38D")
    features = create_features(transactions, FEATURES)
    version = register(features[features[schema.TIMESTAMP] < start - pd.Timedelta("7D")])

    project = make_project(tmp_path_factory.mktemp("batch-scoring"))
    mp.chdir(project)
    transactions.to_parquet(project / "data/02_intermediate/labelled_transactions.parquet")
    bootstrap_project(project)
    runtime = {"batch_scoring": {"start": str(start), "end": None}}
    with KedroSession.create(project_path=project, runtime_params=runtime) as session:
        session.run(pipeline_names=["batch_scoring"])
    predictions = pd.read_parquet(project / "data/07_model_output/batch_predictions.parquet")

    # The real-time scorer's path: its feature state fed the history, then the window's
    # transactions as they arrive (unlabelled), scored by the champion it loads.
    online = OnlineFeatures(FEATURES)
    watcher = ChampionWatcher(
        f"models:/{MODEL}@champion", check_interval_s=0, required_columns=online.feature_names()
    )
    model = watcher.load()
    history = transactions[transactions[schema.TIMESTAMP] < start]
    window = transactions[transactions[schema.TIMESTAMP] >= start]
    online.update_records(TransactionRecords.from_frame(history), build=False)
    batch = online.update_records(
        TransactionRecords.from_frame(window.assign(**{schema.LABEL: np.nan}))
    )
    scores, decisions = model.predict_batch(batch)
    served = pd.DataFrame(
        {
            schema.TRANSACTION_ID: batch.transaction_id,
            "score": scores,
            "decision": decisions,
            "threshold": model.threshold,
            "model_version": model.version,
        }
    )
    yield {
        "predictions": predictions,
        "served": served,
        "transactions": transactions,
        "runtime": runtime,
        "window": window,
        "version": version,
    }
    mp.undo()


def test_backfill_scores_every_transaction_of_the_window_once(backfill):
    predictions, window = backfill["predictions"], backfill["window"]
    assert list(predictions.columns) == PREDICTION_COLUMNS
    assert len(window) > 300
    assert sorted(predictions[schema.TRANSACTION_ID]) == sorted(window[schema.TRANSACTION_ID])
    assert set(predictions["model_name"]) == {MODEL}
    assert set(predictions["model_version"]) == {backfill["version"]}


def assert_scores_like_the_scorer(predictions: pd.DataFrame, backfill: dict) -> None:
    served = backfill["served"].set_index(schema.TRANSACTION_ID)
    batch = predictions.set_index(schema.TRANSACTION_ID).loc[served.index]
    assert len(predictions) == len(served) == len(backfill["window"])
    np.testing.assert_allclose(batch["score"], served["score"], rtol=0, atol=1e-9)
    assert (batch["decision"] == served["decision"]).all()
    assert (batch["threshold"] == served["threshold"]).all()
    assert (batch["model_version"] == served["model_version"]).all()
    assert 0 < batch["decision"].sum() < len(batch)


def test_backfill_scores_equal_the_real_time_scorers(backfill):
    assert_scores_like_the_scorer(backfill["predictions"], backfill)


def test_spark_backfill_scores_equal_the_real_time_scorers(backfill, spark):
    """spark_udf downloads the champion's version from the server (proxied artifacts)."""
    features = build_features_to_score(
        spark.createDataFrame(backfill["transactions"]),
        FEATURES,
        backfill["runtime"]["batch_scoring"],
    )
    predictions = score_transactions(features, MlflowChampionDataset(model_name=MODEL).load())
    assert_scores_like_the_scorer(predictions.toPandas(), backfill)
