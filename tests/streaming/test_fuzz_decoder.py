"""Property-based fuzzing of the message decoder: 10,000+ generated messages (valid,
boundary, malformed, hostile) never make it raise, and every message is a row or a
rejection with a documented reason. ``FUZZ_SEED`` reproduces a run; the generator is
``tests/streaming/payloads.py``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, seed, settings

from fraud_detection import schema
from fraud_detection.quality import (
    QUARANTINE_REASON,
    validate_transactions,
)
from fraud_detection.streaming import messages
from fraud_detection.streaming.messages import decode_transactions
from tests.streaming import payloads

# Every reason a message can be rejected with (docs/kafka.md lists them).
REASONS = {
    messages.EMPTY_MESSAGE,
    messages.BAD_JSON,
    messages.NOT_AN_OBJECT,
    messages.INVALID_UTF8,
    messages.TIMESTAMP_OUT_OF_RANGE,
    messages.AMOUNT_NOT_FINITE,
    messages.AMOUNT_OUT_OF_RANGE,
    messages.TIMESTAMP_TOO_OLD,
    messages.TIMESTAMP_IN_FUTURE,
    *(f"missing_{c.name}" for c in schema.TRANSACTION_SCHEMA if c.required),
    *(f"bad_type_{c.name}" for c in schema.TRANSACTION_SCHEMA),
}
FUZZ = settings(
    max_examples=205,
    deadline=None,
    database=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def assert_reasons_documented(rejected: dict[int, str]) -> None:
    for position, reason in rejected.items():
        assert reason, position
        for part in reason.split(":", 1)[0].split(";"):
            assert part in REASONS, (position, reason)


def check_decoded(pairs: list[tuple[str, int]], values: list[bytes | None]) -> None:
    """The properties of one decoded batch (shared with the broker and scorer fuzz)."""
    decoded = decode_transactions(values)
    accepted = decoded.positions.tolist()
    assert sorted(accepted + list(decoded.rejected)) == list(range(len(values)))
    assert_reasons_documented(decoded.rejected)
    frame = decoded.frame
    assert list(frame.columns) == list(schema.COLUMN_NAMES)
    assert str(frame[schema.TIMESTAMP].dtype) == "datetime64[ns]"
    assert np.isfinite(frame[schema.AMOUNT].to_numpy(np.float64)).all()
    for name in (schema.TRANSACTION_ID, schema.CUSTOMER_ID, schema.TERMINAL_ID):
        assert not frame[name].str.strip().eq("").any() and frame[name].notna().all()
        frame[name].str.encode("utf-8")  # valid UTF-8 only
    kinds = [kind for kind, _ in pairs]
    for position in accepted:
        assert kinds[position] not in payloads.NEVER_VALID - payloads.BOUND_KINDS, kinds[position]
    # Ingestion validation on top: in = valid + quarantined + rejected, with reasons.
    valid, quarantine, report = validate_transactions(frame, payloads.INGESTION)
    assert report["rows_in"] == len(frame) == len(valid) + len(quarantine)
    assert len(values) == len(valid) + len(quarantine) + len(decoded.rejected)
    assert quarantine[QUARANTINE_REASON].str.len().gt(0).all()
    valid_ids = set(valid[schema.TRANSACTION_ID])
    ids = frame[schema.TRANSACTION_ID].tolist()
    by_position = dict(zip(accepted, ids, strict=True))
    for position in payloads.expected_valid(pairs):
        assert position in by_position, (kinds[position], decoded.rejected.get(position))
        assert by_position[position].strip() in valid_ids, kinds[position]
    never = {by_position[p] for p in accepted if kinds[p] in payloads.NEVER_VALID}
    assert not never & valid_ids


def test_ten_thousand_generated_messages_are_each_a_row_or_a_rejection_with_a_reason():
    sizes: list[int] = []

    @seed(payloads.FUZZ_SEED)
    @FUZZ
    @given(pairs=payloads.batches(min_size=50, max_size=50))
    def decode_batch(pairs):
        check_decoded(pairs, payloads.build_batch(pairs))
        sizes.append(len(pairs))

    decode_batch()
    assert sum(sizes) >= 10_000, sum(sizes)


def test_the_generator_is_reproducible_and_covers_every_kind():
    pairs = [(kind, 7) for kind in payloads.KINDS]
    assert payloads.build_batch(pairs) == payloads.build_batch(pairs)
    values = payloads.build_batch(pairs)
    assert len(values) == len(payloads.KINDS)
    check_decoded(pairs, values)
    assert isinstance(pd.Timestamp(payloads.INGESTION["reference_time"]), pd.Timestamp)
