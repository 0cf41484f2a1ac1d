"""Batch scoring on Spark: the features and the ``mlflow.pyfunc.spark_udf`` scores of a
Spark DataFrame equal the pandas path's, node by node and for a whole
`kedro run --env spark --pipelines batch_scoring` (local[2], a SQLite registry)."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from fraud_detection import schema
from fraud_detection.datasets.mlflow_champion_dataset import MlflowChampionDataset
from fraud_detection.pipelines.batch_scoring.nodes import (
    build_features_to_score,
    score_transactions,
)
from fraud_detection.predictions import PREDICTION_COLUMNS
from tests.e2e.test_default_run import make_project
from tests.pipelines.batch_scoring.conftest import FEATURES, MODEL, day_start
from tests.pipelines.batch_scoring.test_nodes import assert_same_features, window

pytestmark = pytest.mark.spark


def assert_same_predictions(spark_rows: pd.DataFrame, pandas_rows: pd.DataFrame) -> None:
    """Same rows and columns; scores within 1e-9; the rest equal."""
    assert sorted(spark_rows.columns) == sorted(PREDICTION_COLUMNS)
    got = spark_rows.set_index(schema.TRANSACTION_ID).loc[pandas_rows[schema.TRANSACTION_ID]]
    expected = pandas_rows.set_index(schema.TRANSACTION_ID)
    assert len(got) == len(expected) > 100
    np.testing.assert_allclose(got["score"], expected["score"], rtol=0, atol=1e-9)
    for column in ("decision", "threshold", "model_name", "model_version", schema.CUSTOMER_ID):
        assert got[column].tolist() == expected[column].tolist(), column
    assert (
        pd.to_datetime(got[schema.TIMESTAMP]).to_numpy("datetime64[us]")
        == pd.to_datetime(expected[schema.TIMESTAMP]).to_numpy("datetime64[us]")
    ).all()
    assert 0 < expected["decision"].sum() < len(expected)


def test_spark_features_equal_the_pandas_features(spark, simulated):
    params = window(simulated, 40, 43)
    on_spark = build_features_to_score(spark.createDataFrame(simulated), FEATURES, params)
    got = on_spark.toPandas().sort_values([schema.TIMESTAMP, schema.TRANSACTION_ID], kind="stable")
    expected = build_features_to_score(simulated, FEATURES, params)
    assert_same_features(got.reset_index(drop=True), expected)


def test_spark_features_read_pandas_nanosecond_timestamps_as_longs(spark, simulated):
    """Pandas-written parquet read with spark.sql.legacy.parquet.nanosAsLong."""
    params = window(simulated, 40, 41)
    as_longs = simulated.assign(
        **{schema.TIMESTAMP: simulated[schema.TIMESTAMP].to_numpy("datetime64[ns]").astype("int64")}
    )
    on_spark = build_features_to_score(spark.createDataFrame(as_longs), FEATURES, params)
    expected = build_features_to_score(simulated, FEATURES, params)
    assert sorted(on_spark.toPandas()[schema.TRANSACTION_ID]) == sorted(
        expected[schema.TRANSACTION_ID]
    )


def test_spark_udf_scores_equal_the_pandas_scores(spark, simulated, registry):
    champion = MlflowChampionDataset(model_name=MODEL).load()
    assert champion["version"] == registry["version"]
    params = window(simulated, 40, 43)
    on_pandas = score_transactions(build_features_to_score(simulated, FEATURES, params), champion)
    features = build_features_to_score(spark.createDataFrame(simulated), FEATURES, params)
    on_spark = score_transactions(features, champion)
    assert on_spark.columns == PREDICTION_COLUMNS
    assert_same_predictions(on_spark.toPandas(), on_pandas)


@pytest.mark.slow
def test_kedro_run_in_the_spark_environment_scores_like_the_pandas_run(
    spark, simulated, registry, tmp_path, monkeypatch
):
    project = make_project(tmp_path)
    monkeypatch.chdir(project)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "batch-scoring-runs")
    (project / "data/02_intermediate/spark").mkdir(parents=True, exist_ok=True)
    simulated.to_parquet(project / "data/02_intermediate/labelled_transactions.parquet")
    spark.createDataFrame(simulated).write.parquet(
        str(project / "data/02_intermediate/spark/labelled_transactions.parquet")
    )
    runtime = {"batch_scoring": window(simulated, 40, 43)}
    for env in ("local", "spark"):
        bootstrap_project(project)
        with KedroSession.create(project_path=project, env=env, runtime_params=runtime) as s:
            s.run(pipeline_names=["batch_scoring"])
    mlflow.set_tracking_uri(registry["uri"])
    on_pandas = pd.read_parquet(project / "data/07_model_output/batch_predictions.parquet")
    on_spark = pd.read_parquet(project / "data/07_model_output/spark/batch_predictions.parquet")
    assert on_pandas[schema.TIMESTAMP].min() >= day_start(simulated, 40)
    assert set(on_pandas["model_version"]) == {registry["version"]}
    assert on_spark[schema.TIMESTAMP].dt.tz is None  # naive UTC, as the pandas run writes
    assert_same_predictions(on_spark, on_pandas)
