"""The scorer's batch path with one hostile message among valid ones: it keeps going,
rejects the message once with a reason and scores every valid message once.

The Kafka clients are stand-ins (the broker runs in tests/integration/kafka); the
model is a real fitted pipeline, so prediction overflows are the real ones.
"""

from __future__ import annotations

import orjson
import pandas as pd
import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from fraud_detection.scoring.champion import LoadedModel
from fraud_detection.scoring.features import OnlineFeatures
from fraud_detection.scoring.messages import decode_records
from fraud_detection.scoring.service import WARM_UP_ROWS, RealTimeScorer, ScorerConfig
from fraud_detection.streaming.messages import MessageBounds, encode_transactions
from tests.conftest import make_transactions
from tests.features.test_online import PARAMS

TX = TopicPartition("transactions", 0)
BOUNDS = MessageBounds.from_params(
    {
        "min_timestamp": "2000-01-01",
        "max_future": "1D",
        "min_amount": 0.0,
        "max_amount": 1_000_000.0,
        "reference_time": "2025-06-01",
    }
)


class _Watcher:
    """What the scorer reads of ``ChampionWatcher``."""

    def __init__(self, model: LoadedModel):
        self.current, self.name = model, model.name


class _Future:
    is_done = True

    def failed(self):
        return False


class _Producer:
    def __init__(self):
        self.sent: list[tuple[str, bytes | None, list]] = []

    def send(self, topic, value=None, key=None, headers=None):
        self.sent.append((topic, value, headers or []))
        return _Future()

    def flush(self, timeout=None):
        return None

    def by_topic(self, topic: str) -> list[tuple[bytes | None, dict[str, bytes]]]:
        return [(value, dict(headers)) for t, value, headers in self.sent if t == topic]


class _Consumer:
    def commit(self, offsets, timeout_ms=None):
        self.committed = offsets

    def commit_async(self, offsets, callback=None):
        self.committed = offsets


def _scorer(model: LoadedModel, bounds: MessageBounds | None = BOUNDS) -> RealTimeScorer:
    config = ScorerConfig(bootstrap_servers="unused:9092", labels_topic=None, bounds=bounds)
    scorer = RealTimeScorer(config, OnlineFeatures(PARAMS), _Watcher(model))
    scorer._producer, scorer._consumer = _Producer(), _Consumer()
    return scorer


def _feed(scorer: RealTimeScorer, values: list[bytes | None], batch: int = 50) -> None:
    """Polls of ``batch`` records each, processed and settled as the loop does."""
    offset = 0
    for start in range(0, len(values), batch):
        records = [
            ConsumerRecord(TX.topic, 0, -1, offset + i, 0, 0, b"k", v, [], None, 1, len(v or ""), 0)
            for i, v in enumerate(values[start : start + batch])
        ]
        offset += len(records)
        scorer._process({TX: records}, 0.0)
        scorer._settle(block=False)


def _predictions(scorer: RealTimeScorer) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for value, _ in scorer._producer.by_topic("fraud_predictions"):
        message = orjson.loads(value)
        out.setdefault(message["transaction_id"], []).append(message["score"])
    return out


def _dead_letters(scorer: RealTimeScorer) -> dict[str, str]:
    """Source offset -> reason of every dead letter."""
    letters = scorer._producer.by_topic("transactions.dlq")
    return {h["dlq.source.offset"].decode(): h["dlq.reason"].decode() for _, h in letters}


def _valid(n: int = 200) -> tuple[pd.DataFrame, list[bytes]]:
    frame = make_transactions(n=n, days=20, seed=9)
    return frame, encode_transactions(frame)


def _hostile(row: bytes, **changes) -> bytes:
    return orjson.dumps({**orjson.loads(row), **changes})


def _assert_one_rejected(scorer, values, position: int, reason: str, n_valid: int) -> None:
    predictions = _predictions(scorer)
    assert _dead_letters(scorer) == {str(position): reason}
    assert len(predictions) == n_valid and all(len(s) == 1 for s in predictions.values())
    assert scorer.counters.consumed == len(values)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"timestamp": "0001-01-01T00:00:00"}, "timestamp_out_of_range"),
        ({"amount": 1e308}, "amount_out_of_range"),
        ({"amount": "Infinity"}, "amount_not_finite"),
        ({"timestamp": "2099-01-01T00:00:00"}, "timestamp_in_future"),
        ({"transaction_id": "   "}, "missing_transaction_id"),
        ({"customer_id": ""}, "missing_customer_id"),
    ],
)
def test_one_hostile_message_is_dead_lettered_once_and_the_rest_scored_once(model, changes, reason):
    frame, values = _valid()
    values.insert(120, _hostile(values[0], **{"transaction_id": "H1", **changes}))
    scorer = _scorer(model)
    _feed(scorer, values)
    _assert_one_rejected(scorer, values, 120, reason, len(frame))
    assert scorer._pending == type(scorer._pending)()  # every batch settled and committed


def test_latin1_bytes_are_dead_lettered_as_invalid_utf8(model):
    frame, values = _valid()
    values.insert(
        60,
        _hostile(values[0], transaction_id="H1", customer_id="C\u00e9").replace(
            "\u00e9".encode(), b"\xe9"
        ),
    )
    scorer = _scorer(model)
    _feed(scorer, values)
    _assert_one_rejected(scorer, values, 60, "invalid_utf8", len(frame))


def test_three_hundred_extra_keys_are_scored_like_the_plain_message(model):
    frame, values = _valid()
    extras = {f"k{i}": i for i in range(300)}
    wide = [_hostile(v, **extras) if i == 70 else v for i, v in enumerate(values)]
    plain, widened = _scorer(model), _scorer(model)
    _feed(plain, values)
    _feed(widened, wide)
    assert _predictions(widened) == _predictions(plain)
    assert _dead_letters(widened) == {}


def test_without_bounds_a_huge_amount_does_not_crash_the_scorer(model):
    frame, values = _valid()
    values.insert(100, _hostile(values[0], transaction_id="H1", amount=1e308))
    scorer = _scorer(model, bounds=None)
    _feed(scorer, values)
    predictions, letters = _predictions(scorer), _dead_letters(scorer)
    # Scored with a finite score, or dead-lettered once as not scorable: never both.
    assert ("H1" in predictions) != ("100" in letters)
    assert all(reason.startswith("scoring_failed") for reason in letters.values())
    assert len(predictions) + len(letters) == len(values)


def test_a_message_from_2099_does_not_move_the_watermark_nor_change_later_scores(model):
    frame, values = _valid(400)
    clean, poisoned = _scorer(model), _scorer(model)
    _feed(clean, values)
    future = _hostile(values[0], transaction_id="H2099", timestamp="2099-01-01T00:00:00")
    _feed(poisoned, [*values[:100], future, *values[100:]])
    assert poisoned.features.watermark == clean.features.watermark
    assert _predictions(poisoned) == _predictions(clean)
    assert list(_dead_letters(poisoned).values()) == ["timestamp_in_future"]


def test_repeated_transaction_ids_are_scored_once_even_after_the_state_forgot_them(model):
    frame, values = _valid(300)
    later = make_transactions(n=50, days=5, seed=10)
    later["timestamp"] += pd.Timedelta(days=60)  # past the state's horizon (37 days)
    later["transaction_id"] = [f"L{i}" for i in range(len(later))]
    redelivered = values[10]  # same content
    reused = _hostile(values[20], amount=77.0)  # the id of another transaction
    scorer = _scorer(model)
    _feed(scorer, [*values, *encode_transactions(later)])
    assert frame["transaction_id"].iloc[10] not in scorer.features._rows  # evicted
    _feed(scorer, [redelivered, reused])
    predictions = _predictions(scorer)
    assert len(predictions) == len(frame) + len(later)
    assert all(len(s) == 1 for s in predictions.values())
    assert list(_dead_letters(scorer).values()) == [
        "duplicate_transaction_id: other content than an earlier message"
    ]
    assert scorer.counters.duplicates == 1


def test_a_newly_served_model_is_warmed_on_replayed_rows_before_live_ones(model):
    frame, values = _valid(400)
    scorer = _scorer(LoadedModel(model.name, "2", None, model.pyfunc))
    # What _replay keeps: the features of the last rows before the live offsets.
    replayed = decode_records(values[:300], BOUNDS)[0]
    scorer._warm_batch = scorer.features.update_records(replayed, build=True)
    first = scorer.model.current
    _feed(scorer, values[300:])
    # The warm-up scored WARM_UP_ROWS replayed rows (past VERIFY_ROWS): live rows went
    # straight to the compiled path; no replayed row was sent as a prediction.
    assert first.verified_rows >= min(WARM_UP_ROWS, LoadedModel.VERIFY_ROWS)
    assert set(_predictions(scorer)) == set(frame["transaction_id"].iloc[300:])
    # A model switch warms the new one once, before its first live batch.
    scorer.model.current = switched = LoadedModel(model.name, "3", None, model.pyfunc)
    later = frame.tail(5).copy()
    later["transaction_id"] = [f"W{i}" for i in range(len(later))]
    _feed(scorer, encode_transactions(later))
    assert switched.verified_rows >= min(WARM_UP_ROWS, LoadedModel.VERIFY_ROWS)
    assert scorer._warmed is switched
    assert {f"W{i}" for i in range(5)} <= set(_predictions(scorer))


@pytest.mark.parametrize("mode", ["all", "alerts", "off"])
def test_predictions_carry_the_reason_codes_the_mode_asks_for(model, mode):
    config = ScorerConfig(
        bootstrap_servers="unused:9092", labels_topic=None, bounds=BOUNDS, reason_codes=mode
    )
    scorer = RealTimeScorer(config, OnlineFeatures(PARAMS), _Watcher(model))
    scorer._producer, scorer._consumer = _Producer(), _Consumer()
    _, values = _valid(300)
    _feed(scorer, values)
    messages = [orjson.loads(v) for v, _ in scorer._producer.by_topic("fraud_predictions")]
    assert len(messages) == 300
    explained = [m for m in messages if m["reasons"] is not None]
    if mode == "off":
        assert not explained
        return
    expected = messages if mode == "all" else [m for m in messages if m["decision"] == 1]
    assert [m["transaction_id"] for m in explained] == [m["transaction_id"] for m in expected]
    assert any(m["reasons"] for m in explained)
    for m in explained:
        assert len(m["reasons"]) <= 3
        contributions = [r["contribution"] for r in m["reasons"]]
        assert contributions == sorted(contributions, reverse=True)
        assert all(c > 0 for c in contributions)
        assert all(r["feature"] in model.input_columns for r in m["reasons"])


def test_an_unknown_reason_code_mode_is_refused():
    with pytest.raises(ValueError, match="reason_codes must be one of"):
        ScorerConfig(bootstrap_servers="unused:9092", reason_codes="sometimes")
