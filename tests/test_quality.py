import numpy as np
import pandas as pd
import pytest

from fraud_detection.quality import (
    QUARANTINE_REASON,
    DataQualityError,
    enforce_quality_limit,
    standardise_columns,
    validate_transactions,
)
from tests.conftest import base_parameters

PARAMS = base_parameters("ingestion", column_mapping={}, reference_time="2025-06-01")


def test_column_mapping_renames_and_fills_optional_columns():
    raw = pd.DataFrame(
        {
            "ID": [1],
            "TS": ["2025-01-01 10:00:00"],
            "CUST": [7],
            "TERM": [3],
            "AMT": [12.5],
            "FRAUD": [0],
            "extra": ["x"],
        }
    )
    mapping = {
        "transaction_id": "ID",
        "timestamp": "TS",
        "customer_id": "CUST",
        "terminal_id": "TERM",
        "amount": "AMT",
        "is_fraud": "FRAUD",
    }
    out = standardise_columns(raw, {**PARAMS, "column_mapping": mapping})
    assert list(out.columns[:10]) == [
        "transaction_id",
        "timestamp",
        "customer_id",
        "terminal_id",
        "merchant_category",
        "amount",
        "currency",
        "country",
        "channel",
        "is_fraud",
    ]
    assert out.loc[0, "currency"] == "EUR" and out.loc[0, "merchant_category"] == "unknown"
    assert out.loc[0, "extra"] == "x"


def test_missing_required_column_names_it():
    raw = pd.DataFrame(
        {
            "transaction_id": ["a"],
            "timestamp": ["2025-01-01"],
            "customer_id": ["c"],
            "terminal_id": ["t"],
        }
    )
    with pytest.raises(ValueError, match=r"Required column\(s\) \['amount'\] are missing"):
        standardise_columns(raw, {**PARAMS, "column_mapping": {}})


def test_mapping_to_absent_source_column_names_it():
    with pytest.raises(ValueError, match="source column\\(s\\) \\['TX_AMOUNT'\\]"):
        standardise_columns(
            pd.DataFrame({"a": [1]}), {**PARAMS, "column_mapping": {"amount": "TX_AMOUNT"}}
        )


def test_unknown_parameter_key_is_named():
    with pytest.raises(ValueError, match="max_invalid_shar"):
        validate_transactions(pd.DataFrame(), {"column_mapping": {}, "max_invalid_shar": 0.1})


def test_bad_rows_are_quarantined_with_every_reason(transactions):
    bad = transactions.copy()
    bad["amount"] = bad["amount"].astype(object)
    bad.loc[0, "amount"] = "not-a-number"
    bad.loc[1, "amount"] = -5.0
    bad.loc[2, "timestamp"] = pd.Timestamp("2030-01-01")
    bad.loc[3, "transaction_id"] = bad.loc[4, "transaction_id"]
    bad.loc[5, "customer_id"] = None
    bad.loc[6, "is_fraud"] = 3
    bad.loc[7, ["amount", "customer_id"]] = [-1.0, None]
    params = {**PARAMS, "max_invalid_share": 0.5}
    valid, quarantine, report = validate_transactions(bad, params)
    assert report["rows_in"] == len(bad) == len(valid) + len(quarantine)
    reasons = dict(zip(quarantine["transaction_id"], quarantine[QUARANTINE_REASON], strict=True))
    assert reasons[bad.loc[0, "transaction_id"]] == "bad_type_amount"
    assert reasons[bad.loc[1, "transaction_id"]] == "amount_out_of_range"
    assert reasons[bad.loc[2, "transaction_id"]] == "timestamp_in_future"
    assert "duplicate_transaction_id" in quarantine[QUARANTINE_REASON].tolist()
    assert reasons[bad.loc[6, "transaction_id"]] == "label_not_0_or_1"
    assert set(reasons[bad.loc[7, "transaction_id"]].split(";")) == {
        "missing_customer_id",
        "amount_out_of_range",
    }
    assert report["rows_quarantined"] == 7  # rows 0-2 and 4-7: row 3 keeps the id first
    # The first of two rows with the same id is kept, the later one quarantined.
    assert (valid["transaction_id"] == bad.loc[4, "transaction_id"]).sum() == 1
    assert valid["amount"].dtype == "float64" and str(valid["timestamp"].dtype) == "datetime64[ns]"


def test_unknown_labels_are_valid_and_stay_null(transactions):
    late = transactions.copy()
    late["is_fraud"] = late["is_fraud"].astype("Float64")
    late.loc[:9, "is_fraud"] = pd.NA
    valid, quarantine, _ = validate_transactions(late, PARAMS)
    assert quarantine.empty
    assert valid["is_fraud"].isna().sum() == 10


def test_run_fails_when_invalid_share_exceeds_limit_after_quarantining(transactions):
    bad = transactions.copy()
    bad.loc[: len(bad) // 5, "amount"] = -1.0
    screened, quarantine, report = validate_transactions(bad, PARAMS)
    assert len(quarantine) == report["rows_quarantined"] == len(bad) // 5 + 1
    with pytest.raises(
        DataQualityError,
        match=(
            r"failed validation, above the limit params:ingestion.max_invalid_share=5.00%"
            r".*amount_out_of_range"
        ),
    ) as err:
        enforce_quality_limit(screened, report, PARAMS)
    assert err.value.report == report


def test_quality_limit_passes_valid_rows_through(transactions):
    screened, _, report = validate_transactions(transactions, PARAMS)
    assert enforce_quality_limit(screened, report, PARAMS) is screened


def test_counts_that_do_not_add_up_stop_the_run(transactions):
    screened, _, report = validate_transactions(transactions, PARAMS)
    with pytest.raises(DataQualityError, match="do not add up"):
        enforce_quality_limit(screened.iloc[1:], report, PARAMS)


def test_validation_does_not_mutate_its_input(transactions):
    before = transactions.copy()
    validate_transactions(transactions, PARAMS)
    pd.testing.assert_frame_equal(transactions, before)


@pytest.mark.parametrize("blank", ["", "   ", "\t"])
@pytest.mark.parametrize("column", ["transaction_id", "customer_id", "terminal_id"])
def test_blank_or_whitespace_ids_are_quarantined_as_missing(transactions, column, blank):
    bad = transactions.copy()
    bad.loc[3, column] = blank
    valid, quarantine, report = validate_transactions(bad, PARAMS)
    assert quarantine[QUARANTINE_REASON].tolist() == [f"missing_{column}"]
    assert len(valid) == len(bad) - 1 and valid[column].notna().all()
    assert report["quarantined_by_reason"] == {f"missing_{column}": 1}


def test_timestamps_outside_the_nanosecond_range_are_quarantined_not_raised(transactions):
    text = transactions.copy()
    text["timestamp"] = text["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S").astype(object)
    text.loc[1, "timestamp"] = "0001-01-01T00:00:00"
    text.loc[2, "timestamp"] = "9999-01-01T00:00:00"
    microseconds = transactions.copy()
    microseconds["timestamp"] = microseconds["timestamp"].astype("datetime64[us]")
    microseconds.loc[1, "timestamp"] = pd.Timestamp("0001-01-01").as_unit("us")
    for bad in (text, microseconds):
        valid, quarantine, _ = validate_transactions(bad, {**PARAMS, "max_invalid_share": 0.5})
        reasons = dict(
            zip(quarantine["transaction_id"], quarantine[QUARANTINE_REASON], strict=True)
        )
        assert reasons[bad.loc[1, "transaction_id"]] == "timestamp_too_old"
        if bad is text:
            assert reasons[bad.loc[2, "transaction_id"]] == "timestamp_in_future"
        assert len(valid) + len(quarantine) == len(bad)


@pytest.mark.parametrize("amount", [1e308, float("inf"), "Infinity", "-1e308"])
def test_huge_or_infinite_amounts_are_out_of_range(transactions, amount):
    bad = transactions.copy()
    bad["amount"] = bad["amount"].astype(object)
    bad.loc[4, "amount"] = amount
    valid, quarantine, _ = validate_transactions(bad, PARAMS)
    assert quarantine[QUARANTINE_REASON].tolist() == ["amount_out_of_range"]
    assert np.isfinite(valid["amount"]).all() and valid["amount"].max() <= 1e6


def test_a_batch_below_the_gate_minimum_passes_with_its_bad_rows_quarantined(transactions):
    small = transactions.iloc[:20].copy()
    small.loc[small.index[0], "customer_id"] = " "  # 1 of 20: 5% would be the limit
    small.loc[small.index[1], "amount"] = -1.0
    params = {**PARAMS, "quality_gate_min_rows": 100}
    screened, quarantine, report = validate_transactions(small, params)
    assert len(quarantine) == 2 and report["invalid_share"] == 0.1
    assert enforce_quality_limit(screened, report, params) is screened
    with pytest.raises(DataQualityError, match="is judged again by the next run"):
        enforce_quality_limit(screened, report, {**params, "quality_gate_min_rows": 20})
