"""The Spark engine equals the pandas engine: same columns, counts exactly, every other
value within 1e-9, on the Handbook's April rows and on simulated data with late labels,
ties in time and empty windows. Tables reach Spark as the pipeline gives them: parquet
files written by pandas with microsecond timestamps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraud_detection.features import build_spec, create_features, feature_names
from tests.conftest import (
    HANDBOOK_MAPPING,
    base_parameters,
    handbook_dir,
    make_transactions,
)

pytestmark = pytest.mark.spark

FEATURES = base_parameters("features")


def _spark_features(spark, transactions: pd.DataFrame, params: dict, tmp_path) -> pd.DataFrame:
    from fraud_detection.features.spark_engine import create_features_spark

    path = tmp_path / "validated.parquet"
    transactions.to_parquet(path, coerce_timestamps="us", allow_truncated_timestamps=True)
    return create_features_spark(spark.read.parquet(str(path)), params).toPandas()


def assert_same_features(
    pandas_out: pd.DataFrame, spark_out: pd.DataFrame, params: dict = FEATURES
) -> None:
    """Same columns in the same order and rows; counts equal, the rest within 1e-9.

    Standard deviations are compared as variances: a window of equal amounts has
    variance 0, which both engines get as a difference of prefix sums up to a rounding
    residue near 1e-12 (the engines round their prefix sums independently), and the
    square root magnifies that residue to 1e-6. The z-score divides by that standard
    deviation, so it is compared where the variance is clear of such residues.
    """
    assert list(spark_out.columns) == feature_names(build_spec(params))
    assert list(spark_out.columns) == list(pandas_out.columns)
    assert len(spark_out) == len(pandas_out)
    a = pandas_out.set_index("transaction_id").sort_index()
    b = spark_out.set_index("transaction_id").sort_index()
    assert a.index.equals(b.index)
    assert (a["timestamp"] == b["timestamp"].astype("datetime64[ns]")).all()
    for col in ("customer_id", "terminal_id", "merchant_category", "currency", "country"):
        assert (a[col].astype(str) == b[col].astype(str)).all(), col
    labels = a["is_fraud"].astype("Float64")
    assert labels.isna().equals(b["is_fraud"].isna())
    assert (labels.dropna() == b["is_fraud"].dropna().astype(float)).all()
    numeric = [
        c
        for c in a.columns
        if c not in {"timestamp", "is_fraud"} and pd.api.types.is_numeric_dtype(a[c])
    ]
    assert len(numeric) > 30
    for col in numeric:
        x, y = a[col].to_numpy(np.float64), b[col].to_numpy(np.float64)
        if "_nb_tx_" in col or a[col].dtype.kind == "i":
            np.testing.assert_array_equal(y, x, err_msg=col)
        elif "_std_" in col:
            np.testing.assert_allclose(y**2, x**2, rtol=1e-9, atol=1e-9, err_msg=col)
        elif col.startswith("amount_zscore_customer_"):
            std = a[col.replace("amount_zscore_customer_", "customer_std_amount_")].to_numpy()
            clear = std**2 > 1e-6
            assert (~clear & (std > 0)).mean() < 1e-3, col
            np.testing.assert_allclose(y[clear], x[clear], rtol=1e-9, atol=1e-9, err_msg=col)
        else:
            np.testing.assert_allclose(y, x, rtol=1e-9, atol=1e-9, err_msg=col)


def _with_ties_and_late_labels(seed: int) -> pd.DataFrame:
    tx = make_transactions(n=2500, days=50, seed=seed, fraud_rate=0.1)
    rng = np.random.default_rng(seed)
    # Same second for neighbours (same customer, terminal or not): ties in time.
    tied = rng.choice(len(tx) - 1, 300, replace=False)
    tx.loc[tied + 1, "timestamp"] = tx.loc[tied, "timestamp"].to_numpy()
    tx.loc[tied[:100] + 1, "customer_id"] = tx.loc[tied[:100], "customer_id"].to_numpy()
    tx.loc[tied[100:200] + 1, "amount"] = tx.loc[tied[100:200], "amount"].to_numpy()
    # Labels still unknown (late), mostly on the latest rows.
    late = rng.uniform(size=len(tx)) < np.linspace(0.02, 0.6, len(tx))
    tx["is_fraud"] = tx["is_fraud"].astype("Int8").mask(late)
    # A customer seen once, and a merchant category used once: empty past windows.
    tx.loc[len(tx) - 1, ["customer_id", "merchant_category"]] = ["C_once", "jewellery"]
    return tx


def test_spark_equals_pandas_with_ties_late_labels_and_empty_windows(spark, tmp_path):
    tx = _with_ties_and_late_labels(seed=5)
    ties = tx.duplicated(["customer_id", "timestamp"], keep=False)
    assert ties.sum() >= 100 and tx["is_fraud"].isna().sum() > 300
    pandas_out = create_features(tx, FEATURES)
    spark_out = _spark_features(spark, tx, FEATURES, tmp_path)
    assert_same_features(pandas_out, spark_out)
    # The cases are really there: rows that see no labelled past, first rows of a key.
    assert (pandas_out["terminal_nb_tx_1d"] == 0).sum() > 100
    assert (pandas_out["customer_seconds_since_prev_tx"] == 30 * 86400).sum() >= 13


def test_spark_equals_pandas_with_the_optional_terminal_amount_and_recency_features(
    spark, tmp_path
):
    tx = _with_ties_and_late_labels(seed=6)
    params = {
        **FEATURES,
        "terminal_amount_windows": ["7D", "30D"],
        "customer_terminal_recency": True,
    }
    assert_same_features(
        create_features(tx, params), _spark_features(spark, tx, params, tmp_path), params
    )


def test_tied_rows_see_only_the_ones_that_arrived_before(spark, tmp_path):
    rows = pd.DataFrame(
        {
            "transaction_id": ["b", "a", "c"],
            "timestamp": pd.to_datetime(["2025-01-01 10:00"] * 3).astype("datetime64[ns]"),
            "customer_id": "c1",
            "terminal_id": "m1",
            "merchant_category": "grocery",
            "amount": [20.0, 10.0, 40.0],
            "currency": "EUR",
            "country": "FR",
            "channel": "pos",
            "is_fraud": pd.array([0, 0, 1], dtype="Int8"),
        }
    )
    out = _spark_features(spark, rows, FEATURES, tmp_path).set_index("transaction_id")
    # Arrival (file order) decides: b first, then a, then c.
    assert out.loc["b", "customer_nb_tx_1h"] == 1
    assert out.loc["a", "customer_nb_tx_1h"] == 2
    assert out.loc["c", "customer_nb_tx_1h"] == 3
    assert out.loc["c", "customer_avg_amount_1h"] == pytest.approx(70.0 / 3)
    assert_same_features(create_features(rows, FEATURES), out.reset_index())


def test_session_not_in_utc_fails_naming_the_setting(spark, tmp_path):
    from fraud_detection.features.spark_engine import create_features_spark

    tx = make_transactions(n=20, seed=1)
    frame = spark.createDataFrame(tx.astype({"timestamp": "datetime64[us]"}))
    spark.conf.set("spark.sql.session.timeZone", "Europe/Paris")
    try:
        with pytest.raises(ValueError, match=r"spark.sql.session.timeZone is 'Europe/Paris'"):
            create_features_spark(frame, FEATURES)
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")


def test_spark_equals_pandas_on_the_handbook_april_rows(spark, tmp_path):
    """April 2018, the month of the Handbook's published features: its rows' windows
    start in April too (the data starts on April 1st), so these are their values."""
    from fraud_detection.quality import standardise_columns, validate_transactions

    folder = handbook_dir()
    raw = pd.read_parquet(
        folder / "transactions.parquet", filters=[("TX_DATETIME", "<", pd.Timestamp("2018-05-01"))]
    )
    assert len(raw) == 288_062
    params = base_parameters("ingestion", column_mapping=HANDBOOK_MAPPING)
    valid, quarantine, _ = validate_transactions(standardise_columns(raw, params), params)
    assert quarantine.empty
    features = {**FEATURES, "customer_windows": ["1D", "7D", "30D"], "label_delay": "7D"}
    pandas_out = create_features(valid, features)
    spark_out = _spark_features(spark, valid, features, tmp_path)
    assert_same_features(pandas_out, spark_out, features)
