"""The shadow's child process (``ShadowProcess``) on a real broker, with its challenger
from a real (SQLite) MLflow registry: what it sends, what it skips when it falls behind,
and that the champion's side goes on when it dies or cannot start."""

from __future__ import annotations

import os
import signal
import time

import mlflow
import numpy as np
import orjson
import pandas as pd
import pytest
from xgboost import XGBClassifier

from fraud_detection import schema
from fraud_detection.features import create_features
from fraud_detection.features.online import FeatureBatch
from fraud_detection.features.pandas_engine import feature_columns
from fraud_detection.scoring.service import ScorerConfig
from fraud_detection.scoring.shadow import ShadowProcess
from fraud_detection.simulator import simulate_transactions
from tests.conftest import base_parameters
from tests.integration.kafka.test_scorer import FEATURES, MODEL, register

ROWS_PER_BATCH = 20


@pytest.fixture(scope="module")
def challenger(kafka_broker, tmp_path_factory):
    """A registered challenger and feature batches of rows it has not seen."""
    tracking_uri = f"sqlite:///{tmp_path_factory.mktemp('shadow') / 'mlflow.db'}"
    transactions = simulate_transactions(
        base_parameters("simulation", n_days=20, n_customers=120, n_terminals=200, seed=11)
    )
    features = create_features(transactions, FEATURES)
    cut = features[schema.TIMESTAMP].min() + pd.Timedelta("15D")
    version = register(
        features[features[schema.TIMESTAMP] < cut],
        XGBClassifier(n_estimators=15, max_depth=2, n_jobs=1),
        tracking_uri,
        alias="challenger",
    )
    live = features[features[schema.TIMESTAMP] >= cut].head(50 * ROWS_PER_BATCH)
    mlflow.set_tracking_uri(tracking_uri)
    expected = mlflow.pyfunc.load_model(f"models:/{MODEL}/{version}").predict(live)
    return {
        "tracking_uri": tracking_uri,
        "version": version,
        "live": live,
        "expected": dict(zip(live[schema.TRANSACTION_ID], expected["score"], strict=True)),
    }


def _batches(live: pd.DataFrame) -> list[FeatureBatch]:
    numeric, categorical = feature_columns(live)
    out = []
    for start in range(0, len(live), ROWS_PER_BATCH):
        rows = live.iloc[start : start + ROWS_PER_BATCH]
        out.append(
            FeatureBatch(
                transaction_id=rows[schema.TRANSACTION_ID].astype(str).tolist(),
                timestamp_ns=rows[schema.TIMESTAMP].to_numpy("datetime64[ns]").astype(np.int64),
                customer_id=rows[schema.CUSTOMER_ID].astype(str).tolist(),
                terminal_id=rows[schema.TERMINAL_ID].astype(str).tolist(),
                amount=rows[schema.AMOUNT].to_numpy(np.float64),
                categorical={c: rows[c].astype(str).tolist() for c in categorical},
                is_fraud=np.full(len(rows), np.nan),
                numeric={c: rows[c].to_numpy(np.float64) for c in numeric if c != schema.AMOUNT},
            )
        )
    return out


def _shadow(kafka_broker, challenger, topic: str, uri: str | None = None, **kw) -> ShadowProcess:
    kafka_broker.create_topic(topic)
    return ShadowProcess(
        uri or f"models:/{MODEL}@challenger",
        ScorerConfig(bootstrap_servers=kafka_broker.bootstrap, shadow_topic=topic),
        tracking_uri=challenger["tracking_uri"],
        **kw,
    )


def _submit_all(shadow: ShadowProcess, batches: list[FeatureBatch]) -> list:
    zeros = np.zeros(ROWS_PER_BATCH)
    return [shadow.submit(b, zeros, zeros.astype(np.int64), MODEL, "champion") for b in batches]


def test_the_child_scores_what_it_is_given_and_skips_what_it_cannot_keep_up_with(
    kafka_broker, challenger
):
    """All batches queued at once into a queue of two: the child takes some, the rest
    are skipped without waiting, and every row is either shadowed or counted skipped."""
    shadow = _shadow(kafka_broker, challenger, "shadow-skips", max_queued_batches=2)
    shadow.start()
    started = time.monotonic()
    acks = _submit_all(shadow, _batches(challenger["live"]))
    submitting_s = time.monotonic() - started
    shadow.wait(timeout_s=60)
    assert all(a.is_done and not a.failed() for a in acks)
    shadow.stop()
    counters = shadow.counters
    rows = len(challenger["live"])
    assert counters.skipped > 0 and counters.scored > 0 and counters.failed == 0
    assert counters.scored + counters.skipped == rows
    # Queuing never waited for the child's model (50 batches in well under a second).
    assert submitting_s < 1.0
    messages = [orjson.loads(r.value) for r in kafka_broker.read_all("shadow-skips")]
    assert len(messages) == counters.scored
    for m in messages:
        assert m["model_version"] == challenger["version"] and m["champion_version"] == "champion"
        assert m["score"] == pytest.approx(challenger["expected"][m["transaction_id"]], abs=1e-9)


def test_a_dead_child_stops_the_shadow_not_the_caller(kafka_broker, challenger):
    shadow = _shadow(kafka_broker, challenger, "shadow-dies")
    shadow.start()
    batches = _batches(challenger["live"])
    first = _submit_all(shadow, batches[:5])
    shadow.wait(timeout_s=60)
    assert all(a.is_done for a in first) and shadow.refresh().scored == 5 * ROWS_PER_BATCH
    os.kill(shadow.pid, signal.SIGKILL)
    time.sleep(1.5)  # past the next liveness check
    later = _submit_all(shadow, batches[5:10])
    assert all(a.is_done and not a.failed() for a in later)
    assert shadow.counters.skipped == 5 * ROWS_PER_BATCH
    shadow.stop()


def test_a_challenger_that_cannot_load_fails_the_start_with_its_cause(kafka_broker, challenger):
    shadow = _shadow(kafka_broker, challenger, "shadow-unknown", uri="models:/no-such-model/3")
    try:
        with pytest.raises(RuntimeError, match="Shadow model: .*no-such-model"):
            shadow.start()
    finally:
        shadow.stop()
