"""``OnlineFeatures`` over a shared store (a real Redis server): two engines, each fed
the rows of its own customers, give the rows of ``create_features`` over all of them,
as the multi-process scorer needs (``fraud_detection.scoring.online_store``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from fraud_detection import schema
from fraud_detection.features import create_features
from fraud_detection.features.online import OnlineFeatures
from fraud_detection.scoring.online_store import OnlineStoreError, RedisWindows
from fraud_detection.simulator import simulate_transactions
from tests.conftest import PROJECT_ROOT, assert_columns_equal, base_parameters

pytestmark = pytest.mark.integration

FEATURES = yaml.safe_load(
    (PROJECT_ROOT / "conf/base/parameters_feature_engineering.yml").read_text()
)["features"]
HORIZON_MS = 40 * 86_400_000


@pytest.fixture
def store(redis_url, request):
    windows = RedisWindows.connect(redis_url, namespace=request.node.name, horizon_ms=HORIZON_MS)
    windows.clear()
    yield windows
    windows.clear()


@pytest.fixture(scope="module")
def stream() -> pd.DataFrame:
    tx = simulate_transactions(
        base_parameters("simulation", n_days=30, n_customers=120, n_terminals=150, seed=11)
    )
    return tx.sort_values(schema.TIMESTAMP, kind="stable").reset_index(drop=True)


def owner_of(frame: pd.DataFrame) -> np.ndarray:
    """Which of two processes owns each row (by customer, as partitions do)."""
    return frame[schema.CUSTOMER_ID].astype(str).str[-1].map(lambda c: ord(c) % 2).to_numpy()


def feed(engines: list[OnlineFeatures], frame: pd.DataFrame, batch: int = 40) -> pd.DataFrame:
    """Each run of consecutive rows goes, in batches, to its owner: every row of the
    other owner older than a batch is written before it (what the scorer's alignment
    wait ensures)."""
    frame = frame.reset_index(drop=True)
    owner = owner_of(frame)
    run = np.r_[0, np.cumsum(owner[1:] != owner[:-1])]
    out = []
    for _, part in frame.groupby(run, sort=True):
        for start in range(0, len(part), batch):
            piece = part.iloc[start : start + batch]
            out.append(engines[owner[piece.index[0]]].update(piece))
    return pd.concat(out)


def assert_same_features(online: pd.DataFrame, batch: pd.DataFrame) -> None:
    online = online.set_index(schema.TRANSACTION_ID)
    batch = batch.set_index(schema.TRANSACTION_ID).loc[online.index]
    assert list(online.columns) == list(batch.columns)
    numeric = [c for c in online.columns if online[c].dtype.kind in "fiu"]
    other = [c for c in online.columns if c not in numeric]
    assert_columns_equal(online, batch, numeric, other)


def test_two_engines_sharing_the_store_equal_create_features(stream, store):
    engines = [OnlineFeatures(FEATURES, shared=store) for _ in range(2)]
    assert engines[0].shared_aggregations == ["terminal_activity", "terminal", "category"]
    online = feed(engines, stream)
    assert len(online) == len(stream)
    assert_same_features(online, create_features(stream, FEATURES))
    # Each engine holds only its own customers; the terminals are in the store.
    owners = owner_of(stream)
    for k, engine in enumerate(engines):
        assert engine.stats.customers == stream[owners == k][schema.CUSTOMER_ID].nunique()
        assert engine.stats.terminals == 0


def test_late_labels_applied_by_one_engine_reach_the_other(stream, store):
    """Labels sent apart: the owner of the transaction applies its label, and every
    process's terminal and category risk count it once it is older than the delay."""
    labels = stream[[schema.TRANSACTION_ID, schema.LABEL]].copy()
    unlabelled = stream.assign(**{schema.LABEL: np.nan})
    cut = stream[schema.TIMESTAMP].min() + pd.Timedelta("20D")
    early = (stream[schema.TIMESTAMP] < cut).to_numpy()
    before, after = unlabelled[early], unlabelled[~early]
    engines = [OnlineFeatures(FEATURES, shared=store) for _ in range(2)]
    feed(engines, before)
    known = labels[stream[schema.TIMESTAMP] < cut]
    owners = owner_of(before)
    for k, engine in enumerate(engines):
        mine = known[owners == k]
        assert engine.apply_labels(
            mine[schema.TRANSACTION_ID].tolist(), mine[schema.LABEL].astype(int).tolist()
        ) == len(mine)
    online = feed(engines, after)
    # The batch: the labels of the first 20 days only, all known before the rest.
    expected = create_features(
        stream.assign(**{schema.LABEL: stream[schema.LABEL].where(stream[schema.TIMESTAMP] < cut)}),
        FEATURES,
    )
    risk = [c for c in online.columns if c.startswith(("terminal_risk", "category_risk"))]
    assert risk and online[risk].to_numpy().sum() > 0
    assert_same_features(online.drop(columns=[schema.LABEL]), expected.drop(columns=[schema.LABEL]))


def test_a_replayed_row_is_not_counted_twice(stream, store):
    head = stream.head(300)
    first = OnlineFeatures(FEATURES, shared=store)
    first.update(head)
    # A restarted process replays the same rows into a fresh local state.
    again = OnlineFeatures(FEATURES, shared=store).update(head)
    assert_same_features(again, create_features(head, FEATURES))


def test_amount_sums_over_terminals_cannot_be_shared(store):
    with pytest.raises(ValueError, match="terminal_amount.*cannot be shared"):
        OnlineFeatures({**FEATURES, "terminal_amount_windows": ["7D"]}, shared=store)


def test_a_store_that_does_not_answer_fails_naming_what_to_do():
    with pytest.raises(OnlineStoreError, match="does not answer.*scripts/redis.sh start"):
        RedisWindows.connect("redis://127.0.0.1:1/0", namespace="x", horizon_ms=HORIZON_MS)


def test_marks_only_move_forward_and_the_wait_times_out(store):
    store.mark("tx", {0: 100, 1: 50})
    store.mark("tx", {0: 80})
    assert store.marks("tx") == {0: 100, 1: 50}
    assert store.wait_for("tx", [0, 1], 50, timeout_s=0.05)
    assert not store.wait_for("tx", [0, 1], 60, timeout_s=0.05)
    assert store.timeouts == 1
