"""Property-based fuzzing of the scorer's batch path: generated messages (valid,
boundary, malformed, hostile; ``tests/streaming/payloads.py``) never stop the scorer;
every message is scored once, dead-lettered once with a reason, or a redelivery."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, seed, settings

from fraud_detection.scoring.service import DUPLICATE_TRANSACTION_ID, SCORING_FAILED
from fraud_detection.streaming.messages import MessageBounds
from tests.scoring.test_service import _feed, _scorer
from tests.streaming import payloads
from tests.streaming.test_fuzz_decoder import REASONS

BOUNDS = MessageBounds.from_params(payloads.INGESTION)
SCORER_REASONS = REASONS | {DUPLICATE_TRANSACTION_ID, SCORING_FAILED}


def test_generated_messages_are_scored_once_or_dead_lettered_once_with_a_reason(
    model,
):
    sizes: list[int] = []

    @seed(payloads.FUZZ_SEED)
    @settings(
        max_examples=20,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(pairs=payloads.batches(min_size=100, max_size=100))
    def score(pairs):
        values = payloads.build_batch(pairs)
        scorer = _scorer(model, bounds=BOUNDS)
        _feed(scorer, values, batch=50)  # raises if the scorer would stop
        sent = scorer._producer.sent
        predictions = [
            orjson.loads(v)["transaction_id"] for t, v, _ in sent if t == "fraud_predictions"
        ]
        letters = {
            int(dict(h)["dlq.source.offset"]): dict(h)["dlq.reason"].decode()
            for t, _, h in sent
            if t == "transactions.dlq"
        }
        assert len(letters) == scorer.counters.dead_lettered  # one dead letter per message
        assert len(predictions) == len(set(predictions)) == scorer.counters.scored
        assert len(values) == len(predictions) + len(letters) + scorer.counters.duplicates
        for reason in letters.values():
            assert reason.split(":", 1)[0].split(";")[0] in SCORER_REASONS, reason
        kinds = [kind for kind, _ in pairs]
        scored = set(predictions)
        for position in payloads.expected_valid(pairs):
            assert position not in letters, (kinds[position], letters[position])
            assert str(orjson.loads(values[position])["transaction_id"]) in scored
        for position, kind in enumerate(kinds):
            if kind in payloads.NEVER_VALID:
                assert position in letters, kind
        assert not scorer._pending  # every batch acknowledged and committed
        sizes.append(len(values))

    score()
    assert sum(sizes) >= 2_000
