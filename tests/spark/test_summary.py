"""The model report's data summary of a Spark table equals that of the pandas table."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import make_transactions

pytestmark = pytest.mark.spark


def test_spark_summary_equals_pandas_summary(spark):
    from fraud_detection.pipelines.reporting.nodes import _transaction_stats
    from fraud_detection.spark.summary import transaction_stats

    tx = make_transactions(n=500, days=20, seed=4, fraud_rate=0.1)
    tx["is_fraud"] = tx["is_fraud"].astype("Int8").mask(tx.index % 7 == 0)
    ours = _transaction_stats(tx)
    theirs = transaction_stats(spark.createDataFrame(tx.astype({"timestamp": "datetime64[us]"})))
    pd.testing.assert_frame_equal(
        theirs.pop("daily").astype({"transactions": "int64", "frauds": "int64"}),
        ours.pop("daily").astype({"transactions": "int64", "frauds": "int64"}),
        check_dtype=False,
    )
    assert theirs == ours
    assert ours["labelled"] < ours["rows"]
