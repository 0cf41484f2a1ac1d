"""The Spark ingestion checks give the pandas checks' rows, reasons and report."""

from __future__ import annotations

import pandas as pd
import pytest

from fraud_detection import quality
from fraud_detection.errors import DataQualityError
from tests.conftest import base_parameters, make_transactions

pytestmark = pytest.mark.spark

PARAMS = base_parameters("ingestion", reference_time="2025-03-01", max_invalid_share=0.5)


def _messy() -> pd.DataFrame:
    tx = make_transactions(n=60, seed=3).astype({"amount": "object", "is_fraud": "object"})
    tx["timestamp"] = tx["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S").astype(object)
    tx.loc[1, "amount"] = -5.0
    tx.loc[2, "amount"] = "12,50"
    tx.loc[3, "customer_id"] = None
    tx.loc[4, "customer_id"] = "   "
    tx.loc[5, "is_fraud"] = 2
    tx.loc[6, "timestamp"] = "1999-12-31 23:00:00"
    tx.loc[7, "timestamp"] = "2025-06-01 00:00:00"
    tx.loc[8, "timestamp"] = "not a date"
    tx.loc[9, "transaction_id"] = tx.loc[10, "transaction_id"]
    tx.loc[11, "is_fraud"] = None
    return tx.astype({"amount": "string", "is_fraud": "string"})


def test_spark_checks_quarantine_the_same_rows_for_the_same_reasons(spark):
    from fraud_detection.spark.quality import (
        standardise_columns_spark,
        validate_transactions_spark,
    )

    raw = _messy()
    valid, quarantine, report = quality.validate_transactions(
        quality.standardise_columns(raw, PARAMS), PARAMS
    )
    s_valid, s_quarantine, s_report = validate_transactions_spark(
        standardise_columns_spark(spark.createDataFrame(raw), PARAMS), PARAMS
    )
    assert s_report == report
    assert report["rows_quarantined"] == 9
    theirs = s_quarantine.toPandas().set_index("transaction_id")["quarantine_reason"]
    ours = quarantine.set_index("transaction_id")["quarantine_reason"]
    assert theirs.sort_index().to_dict() == ours.sort_index().to_dict()
    s_valid_pd = s_valid.toPandas().sort_values("transaction_id").reset_index(drop=True)
    valid = valid.sort_values("transaction_id").reset_index(drop=True)
    assert list(s_valid_pd["transaction_id"]) == list(valid["transaction_id"])
    assert (s_valid_pd["amount"] == valid["amount"]).all()
    assert s_valid_pd["is_fraud"].isna().sum() == valid["is_fraud"].isna().sum() == 1


def test_spark_gate_stops_the_run_with_the_counts(spark):
    from fraud_detection.spark.quality import (
        enforce_quality_limit_spark,
        validate_transactions_spark,
    )

    strict = {**PARAMS, "max_invalid_share": 0.01, "quality_gate_min_rows": 10}
    frame = spark.createDataFrame(_messy())
    screened, _, report = validate_transactions_spark(frame, strict)
    with pytest.raises(DataQualityError, match=r"9 of 60 transactions \(15.00%\) failed"):
        enforce_quality_limit_spark(screened, report, strict)
    assert enforce_quality_limit_spark(screened, report, PARAMS) is screened


def test_missing_mapped_column_is_named(spark):
    from fraud_detection.spark.quality import standardise_columns_spark

    frame = spark.createDataFrame(make_transactions(n=5))
    params = {**PARAMS, "column_mapping": {"amount": "TX_AMOUNT"}}
    with pytest.raises(ValueError, match=r"source column\(s\) \['TX_AMOUNT'\]"):
        standardise_columns_spark(frame, params)
