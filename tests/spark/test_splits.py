"""The Spark split gives the pandas split's rows and plan; the reduction keeps every
fraud and weights the sampled genuine rows."""

from __future__ import annotations

import pandas as pd
import pytest

from fraud_detection.features import create_features
from fraud_detection.splits import split_out_of_time
from tests.conftest import base_parameters, make_transactions

pytestmark = pytest.mark.spark

SPLIT = {**base_parameters("split"), "n_folds": 2}


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    tx = make_transactions(n=3000, days=70, seed=11, fraud_rate=0.03)
    # A few customers only, so that some are known compromised on the test days.
    tx["customer_id"] = tx["customer_id"].str.slice(0, 2)
    return create_features(tx, base_parameters("features"))


def _spark_table(spark, frame: pd.DataFrame, tmp_path):
    path = tmp_path / "features.parquet"
    frame.to_parquet(path, coerce_timestamps="us", allow_truncated_timestamps=True)
    return spark.read.parquet(str(path))


def test_spark_split_equals_pandas_split(spark, features, tmp_path):
    from fraud_detection.spark.splits import split_out_of_time_spark

    dev, test, plan = split_out_of_time(features, SPLIT)
    s_dev, s_test, s_plan = split_out_of_time_spark(_spark_table(spark, features, tmp_path), SPLIT)
    assert s_plan == plan
    assert (
        plan["counts"]["test_rows"]
        < (features["timestamp"] >= pd.Timestamp(plan["test_start"])).sum()
    )  # known-compromised rows were removed
    for ours, theirs in ((dev, s_dev), (test, s_test)):
        assert sorted(theirs["transaction_id"]) == sorted(ours["transaction_id"])
        assert list(theirs.columns) == list(ours.columns)
        assert theirs["timestamp"].dtype == ours["timestamp"].dtype
        assert theirs["timestamp"].is_monotonic_increasing


def test_spark_reduction_keeps_frauds_and_weights_genuine_rows(spark, features, tmp_path):
    from fraud_detection.spark.splits import split_out_of_time_spark

    params = {**SPLIT, "legit_sample_ratio": 0.2}
    dev, _, plan = split_out_of_time_spark(_spark_table(spark, features, tmp_path), params)
    full, _, _ = split_out_of_time(features, SPLIT)
    genuine = dev["is_fraud"] == 0
    assert dev["is_fraud"].sum() == full["is_fraud"].sum() == plan["counts"]["development_frauds"]
    assert (dev.loc[genuine, "sample_weight"] == 5.0).all()
    assert (dev.loc[~genuine, "sample_weight"] == 1.0).all()
    assert dev.loc[genuine, "sample_weight"].sum() == pytest.approx(
        (full["is_fraud"] == 0).sum(), rel=0.15
    )
    assert plan["counts"]["development_rows_kept"] == len(dev) < len(full)
