"""The real-time scorer's features equal ``create_features`` on the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraud_detection import schema
from fraud_detection.features import create_features
from fraud_detection.scoring.features import OnlineFeatures
from fraud_detection.simulator import simulate_transactions
from tests.conftest import base_parameters

PARAMS = {
    **base_parameters("features"),
    "customer_windows": ["1h", "1D", "7D", "30D"],
    "terminal_windows": ["1D", "7D", "30D"],
    "terminal_activity_windows": ["1h", "1D"],
    "category_risk_windows": ["7D"],
    "novelty_window": "30D",
    "label_delay": "7D",
}


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    # 45 days: longer than the state's horizon (30 + 7 days), so rows are evicted.
    return simulate_transactions(
        base_parameters("simulation", n_days=45, n_customers=120, n_terminals=300, seed=11)
    )


def assert_features_equal(online: pd.DataFrame, batch: pd.DataFrame) -> None:
    """Same columns, dtypes and rows; numbers within 1e-9 (relative above 1)."""
    assert list(online.columns) == list(batch.columns)
    batch = batch.set_index(schema.TRANSACTION_ID).loc[online[schema.TRANSACTION_ID]].reset_index()
    assert (online.dtypes == batch.dtypes).all(), online.dtypes[online.dtypes != batch.dtypes]
    for column in online.columns:
        if column == schema.LABEL or not pd.api.types.is_numeric_dtype(batch[column]):
            assert online[column].astype("str").tolist() == batch[column].astype("str").tolist(), (
                column
            )
            continue
        np.testing.assert_allclose(
            online[column].to_numpy(float),
            batch[column].to_numpy(float),
            rtol=1e-9,
            atol=1e-9,
            err_msg=column,
        )


def stream(online: OnlineFeatures, transactions: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Feeds ``transactions`` in arrival order, in micro-batches of random sizes."""
    rng = np.random.default_rng(seed)
    parts, start = [], 0
    while start < len(transactions):
        size = int(rng.integers(1, 300))
        parts.append(online.update(transactions.iloc[start : start + size]))
        start += size
    return pd.concat(parts, ignore_index=True)


def test_streamed_features_equal_create_features(simulated):
    online = OnlineFeatures(PARAMS)
    streamed = stream(online, simulated)
    assert len(streamed) == len(simulated)
    assert_features_equal(streamed, create_features(simulated, PARAMS))
    # Bounded state: only rows within the horizon of the newest one are kept.
    horizon_start = simulated[schema.TIMESTAMP].max() - online.horizon
    assert online.stats.rows == int((simulated[schema.TIMESTAMP] > horizon_start).sum())


def test_labels_arriving_late_on_their_own_count_like_labels_in_the_data(simulated):
    online = OnlineFeatures(PARAMS)
    unlabelled = simulated.assign(**{schema.LABEL: pd.NA})
    # Each transaction's label arrives three days after it (within the 7-day delay).
    due = simulated[schema.TIMESTAMP] + pd.Timedelta("3D")
    parts, labelled_upto = [], 0
    order = np.argsort(due.to_numpy(), kind="stable")
    for start in range(0, len(simulated), 250):
        batch = unlabelled.iloc[start : start + 250]
        now = batch[schema.TIMESTAMP].iloc[0]
        ready = order[labelled_upto:][due.to_numpy()[order[labelled_upto:]] <= now]
        online.apply_labels(
            simulated[schema.TRANSACTION_ID].to_numpy()[ready].tolist(),
            simulated[schema.LABEL].to_numpy()[ready].tolist(),
        )
        labelled_upto += len(ready)
        parts.append(online.update(batch))
    batch_features = create_features(simulated, PARAMS)
    streamed = pd.concat(parts, ignore_index=True)
    # The label column itself is what arrived with the transaction (none); the
    # features built from labels equal the batch ones, which saw every label.
    assert_features_equal(
        streamed.drop(columns=schema.LABEL), batch_features.drop(columns=schema.LABEL)
    )
    assert online.stats.labels_applied == labelled_upto


def test_a_label_for_an_unseen_transaction_waits_for_it():
    online = OnlineFeatures(PARAMS)
    online.apply_labels(["T1"], [1])
    assert online.stats.labels_pending == 1
    row = {
        "transaction_id": "T1",
        "timestamp": pd.Timestamp("2025-01-01"),
        "customer_id": "C1",
        "terminal_id": "M1",
        "merchant_category": "grocery",
        "amount": 10.0,
        "currency": "EUR",
        "country": "FR",
        "channel": "pos",
        "is_fraud": pd.NA,
    }
    later = {
        **row,
        "transaction_id": "T2",
        "timestamp": pd.Timestamp("2025-01-09"),
        "customer_id": "C2",
    }
    online.update(pd.DataFrame([row]))
    features = online.update(pd.DataFrame([later]))
    assert features["terminal_nb_tx_30d"].tolist() == [1.0]
    assert features["terminal_risk_30d"].tolist() == [1.0]


def test_repeated_transaction_ids_are_skipped_and_change_nothing(simulated):
    head = simulated.iloc[:2000]
    online = OnlineFeatures(PARAMS)
    first = online.update(head.iloc[:1500])
    again = online.update(pd.concat([head.iloc[1000:1500], head.iloc[1500:]]))
    assert online.stats.duplicates == 500
    assert len(first) + len(again) == 2000
    assert_features_equal(
        pd.concat([first, again], ignore_index=True), create_features(head, PARAMS)
    )


def test_fast_path_on_decoded_messages_equals_the_frame_path(simulated):
    from fraud_detection.scoring.features import TransactionRecords, clean_category

    head = simulated.iloc[:3000].copy()
    head.loc[head.index[::9], "channel"] = "  POS "
    head.loc[head.index[::13], "country"] = None
    by_frame = OnlineFeatures(PARAMS)
    by_records = OnlineFeatures(PARAMS)
    frames, batches = [], []
    for start in range(0, len(head), 97):
        chunk = head.iloc[start : start + 97]
        frames.append(by_frame.update(chunk))
        batches.append(by_records.update_records(TransactionRecords.from_frame(chunk)).frame())
    expected, got = pd.concat(frames, ignore_index=True), pd.concat(batches, ignore_index=True)
    assert list(got.columns) == list(expected.columns)
    for column in expected.columns:
        if pd.api.types.is_numeric_dtype(expected[column]) and column != schema.LABEL:
            np.testing.assert_array_equal(
                got[column].to_numpy(float), expected[column].to_numpy(float), err_msg=column
            )
        else:
            assert got[column].astype(str).tolist() == expected[column].astype(str).tolist(), column
    assert [clean_category(v) for v in (None, float("nan"), "", "  Fr ", 3)] == [
        "unknown",
        "unknown",
        "unknown",
        "fr",
        "3",
    ]


def _row(tid: str, when: pd.Timestamp, customer: str, terminal: str, amount: float) -> dict:
    return {
        "transaction_id": tid,
        "timestamp": when,
        "customer_id": customer,
        "terminal_id": terminal,
        "merchant_category": "grocery",
        "amount": amount,
        "currency": "EUR",
        "country": "FR",
        "channel": "pos",
        "is_fraud": 0,
    }


def test_a_row_later_than_the_horizon_gets_window_sums_not_the_whole_history():
    # C1 makes 100 transactions in four days (enough for its state to be compacted),
    # traffic 50 days later pushes them past the horizon, then a C1 row stamped among
    # the old ones arrives. It is scored alone: its windows hold only itself.
    start = pd.Timestamp("2025-01-01")
    rng = np.random.default_rng(0)
    old = [
        _row(f"A{i}", start + pd.Timedelta(hours=i), "C1", "M1", float(rng.gamma(2.0, 30.0)))
        for i in range(100)
    ]
    late = pd.DataFrame([_row("L0", start + pd.Timedelta(hours=99.5), "C1", "M3", 42.0)])
    online = OnlineFeatures(PARAMS)
    online.update(pd.DataFrame(old))
    online.update(pd.DataFrame([_row("B0", start + pd.Timedelta("50D"), "C2", "M2", 10.0)]))
    assert_features_equal(online.update(late), create_features(late, PARAMS))
