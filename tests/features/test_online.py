"""The online engine (the real-time scorer's features) equals ``create_features``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraud_detection import schema
from fraud_detection.features import build_spec, create_features, feature_names
from fraud_detection.features.online import OnlineFeatures, TransactionRecords, clean_category
from fraud_detection.simulator import simulate_transactions
from tests.conftest import base_parameters, make_transactions
from tests.features.parity import assert_columns_are_spec, assert_frames_match

PARAMS = {
    **base_parameters("features"),
    "customer_windows": ["1h", "1D", "7D", "30D"],
    "terminal_windows": ["1D", "7D", "30D"],
    "terminal_activity_windows": ["1h", "1D"],
    "category_risk_windows": ["7D"],
    "novelty_window": "30D",
    "label_delay": "7D",
}
SPEC = build_spec(PARAMS)


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    # 45 days: longer than the state's horizon (30 + 7 days), so rows are evicted.
    return simulate_transactions(
        base_parameters("simulation", n_days=45, n_customers=120, n_terminals=300, seed=11)
    )


def assert_features_equal(online: pd.DataFrame, batch: pd.DataFrame) -> None:
    """Same columns (``feature_names(spec)``), dtypes and rows; counts exact, other
    numbers within 1e-9 (relative above 1)."""
    assert_frames_match(online, batch, SPEC)


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
    assert streamed[schema.LABEL].isna().all()
    assert_features_equal(
        streamed, batch_features.assign(**{schema.LABEL: streamed[schema.LABEL].iloc[0]})
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


def test_every_path_outputs_exactly_the_spec_columns(simulated):
    head = simulated.iloc[:500]
    assert_columns_are_spec(create_features(head, PARAMS), SPEC)
    online = OnlineFeatures(SPEC)
    assert online.feature_names() == feature_names(SPEC)
    assert_columns_are_spec(online.update(head.iloc[:250]), SPEC)
    assert_columns_are_spec(online.update(head.iloc[:0]), SPEC)
    records = OnlineFeatures(PARAMS).update_records(TransactionRecords.from_frame(head))
    assert_columns_are_spec(records.frame(), SPEC)


def arrival_reference(arrived: pd.DataFrame, params: dict) -> pd.DataFrame:
    """What the online engine promises, row by row in arrival order: ``create_features``
    over the rows that arrived before with a time newer than the cutoff (the newest
    time so far minus the horizon), and the row itself."""
    horizon = build_spec(params).horizon
    times = arrived[schema.TIMESTAMP]
    rows, newest = [], None
    for i in range(len(arrived)):
        newest = times.iloc[i] if newest is None else max(newest, times.iloc[i])
        past = arrived.iloc[:i]
        seen = pd.concat([past[past[schema.TIMESTAMP] > newest - horizon], arrived.iloc[[i]]])
        features = create_features(seen, params)
        rows.append(
            features[features[schema.TRANSACTION_ID] == arrived.iloc[i][schema.TRANSACTION_ID]]
        )
    return pd.concat(rows, ignore_index=True)


def test_late_rows_ties_and_empty_windows_equal_the_batch_over_what_the_state_holds():
    tx = make_transactions(n=180, days=75, seed=7, fraud_rate=0.3)
    rng = np.random.default_rng(7)
    # Ties: every 5th row shares the previous row's time (often its customer too).
    tie = np.arange(1, len(tx), 5)
    tx.loc[tie, schema.TIMESTAMP] = tx[schema.TIMESTAMP].to_numpy()[tie - 1]
    tx.loc[tie[::2], schema.CUSTOMER_ID] = tx[schema.CUSTOMER_ID].to_numpy()[tie[::2] - 1]
    # Empty windows: customers, terminals and a category seen once; unknown labels.
    lone = rng.choice(len(tx), 18, replace=False)
    tx.loc[lone, schema.CUSTOMER_ID] = [f"new{i}" for i in range(len(lone))]
    tx.loc[lone[:10], schema.TERMINAL_ID] = [f"lone{i}" for i in range(10)]
    tx.loc[lone[10:15], schema.MERCHANT_CATEGORY] = "jewellery"
    tx[schema.LABEL] = tx[schema.LABEL].astype("Int8")
    tx.loc[rng.choice(len(tx), 30, replace=False), schema.LABEL] = pd.NA
    # Late arrival: rows delivered hours, weeks or more than the horizon (37 days) late.
    delay = pd.Series(pd.Timedelta(0), index=tx.index)
    for days, count in ((0.3, 30), (12.0, 10), (25.0, 6), (45.0, 6)):
        early = len(tx) // 2  # early enough for the stream to go on after they arrive
        delay[rng.choice(early, count, replace=False)] = pd.Timedelta(days=days)
    arrival = tx.assign(_due=tx[schema.TIMESTAMP] + delay).sort_values("_due", kind="stable")
    arrival = arrival.drop(columns="_due").reset_index(drop=True)
    # Micro-batches of random sizes; the engine orders each batch by time.
    online, parts, arrived, start = OnlineFeatures(PARAMS), [], [], 0
    while start < len(arrival):
        batch = arrival.iloc[start : start + int(rng.integers(1, 12))]
        parts.append(online.update(batch))
        arrived.append(batch.sort_values(schema.TIMESTAMP, kind="stable"))
        start += len(batch)
    streamed = pd.concat(parts, ignore_index=True)
    arrived = pd.concat(arrived, ignore_index=True)
    assert online.stats.rows_beyond_horizon > 0 and online.stats.late_rows > 15
    assert_features_equal(streamed, arrival_reference(arrived, PARAMS))


def ever_new_customers(days: int, per_day: int, seed: int = 0) -> pd.DataFrame:
    """Each day ``per_day`` new cards, each used a few times over the next three days."""
    rng = np.random.default_rng(seed)
    n_tx = rng.integers(1, 6, days * per_day)
    customer = np.repeat([f"D{d}C{c}" for d in range(days) for c in range(per_day)], n_tx)
    day = np.repeat(np.repeat(np.arange(days), per_day), n_tx)
    seconds = day * 86_400 + rng.uniform(0, 3 * 86_400, len(customer)).round()
    n = len(customer)
    tx = pd.DataFrame(
        {
            "timestamp": pd.Timestamp("2025-01-01") + pd.to_timedelta(seconds, unit="s"),
            "customer_id": customer,
            "terminal_id": rng.choice([f"M{i}" for i in range(60)], n),
            "merchant_category": rng.choice(["grocery", "travel", "online_retail"], n),
            "amount": rng.gamma(2.0, 30.0, n).round(2),
            "currency": "EUR",
            "country": rng.choice(["FR", "BE", "DE"], n),
            "channel": rng.choice(["pos", "ecommerce"], n),
            "is_fraud": (rng.uniform(size=n) < 0.05).astype("int64"),
        }
    ).sort_values("timestamp", kind="stable")
    tx.insert(0, "transaction_id", [f"T{i:07d}" for i in range(n)])
    return tx.reset_index(drop=True)


def held_keys(ingested: pd.DataFrame, cutoff: pd.Timestamp) -> int:
    """Keys of every aggregation with a row newer than ``cutoff`` (all rows labelled)."""
    recent = ingested[ingested[schema.TIMESTAMP] > cutoff]
    return sum(len(recent.drop_duplicates(list(agg.keys))) for agg in SPEC.aggregations)


def test_state_stays_bounded_with_ever_new_customers_and_features_equal_batch():
    tx = ever_new_customers(days=120, per_day=20)
    online, parts, keys = OnlineFeatures(PARAMS), [], []
    for _, batch in tx.groupby(tx[schema.TIMESTAMP].dt.floor("D"), sort=True):
        parts.append(online.update(batch))
        newest = batch[schema.TIMESTAMP].max()
        # Exactly the keys with a row newer than the cutoff are held, no others.
        ingested = tx[tx[schema.TIMESTAMP] <= newest]
        assert online.stats.keys == held_keys(ingested, newest - online.horizon), newest
        keys.append(online.stats.keys)
    assert_features_equal(pd.concat(parts, ignore_index=True), create_features(tx, PARAMS))
    assert online.stats.customers < tx[schema.CUSTOMER_ID].nunique() / 3
    assert online.stats.evicted_keys > 2 * online.stats.keys
    # Flat: once the horizon is filled, the state stays within the traffic's noise.
    steady = keys[online.horizon.days + 3 :]
    assert max(steady) < 1.1 * min(steady)


def test_rows_past_the_horizon_are_evicted_whatever_order_the_partitions_arrive_in(simulated):
    """One partition replayed after another: the second's old rows arrive after the
    first's recent ones. Every row at or before the cutoff is still dropped as soon as
    the cutoff passes it (held in arrival order, they waited behind the first
    partition's newest rows and went in one burst)."""
    first = simulated[schema.TIMESTAMP].min()
    history = simulated[simulated[schema.TIMESTAMP] < first + pd.Timedelta(days=40)]
    live = simulated.iloc[len(history) :]
    in_a = pd.util.hash_pandas_object(history[schema.CUSTOMER_ID], index=False) % 2 == 0
    online = OnlineFeatures(PARAMS)
    for part in (history[in_a], history[~in_a]):  # partition A's 40 days, then B's
        for start in range(0, len(part), 250):
            online.update(part.iloc[start : start + 250], build=False)
    for start in range(0, len(live), 50):
        batch = live.iloc[start : start + 50]
        online.update(batch, build=False)
        newest = simulated[schema.TIMESTAMP].iloc[: len(history) + start + len(batch)].max()
        seen = simulated.iloc[: len(history) + start + len(batch)]
        held = int((seen[schema.TIMESTAMP] > newest - online.horizon).sum())
        assert online.stats.rows == held, newest


EXTRA = {**PARAMS, "terminal_amount_windows": ["7D", "30D"], "customer_terminal_recency": True}


def test_optional_terminal_amount_and_recency_features_equal_create_features(simulated):
    """The optional features (terminal amount statistics, customer-terminal recency)
    come from the spec alone: the online engine gives the batch's values."""
    spec = build_spec(EXTRA)
    assert {
        "terminal_amount_avg_amount_30d",
        "amount_to_terminal_amount_avg_30d",
        "customer_terminal_seconds_since_prev_tx",
    } <= set(feature_names(spec))
    streamed = stream(OnlineFeatures(EXTRA), simulated, seed=3)
    batch = create_features(simulated, EXTRA)
    assert_frames_match(streamed, batch, spec)
    # The new columns carry information: repeat visits and a spread of terminal amounts.
    assert (batch["customer_terminal_seconds_since_prev_tx"] < 30 * 86400).mean() > 0.3
    assert batch["terminal_amount_std_amount_30d"].gt(0).mean() > 0.5
