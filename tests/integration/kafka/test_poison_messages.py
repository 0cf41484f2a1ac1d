"""One hostile message among valid ones on a real broker: the batch loads, the message
is dead-lettered or quarantined with a reason, and the offsets move past it."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from fraud_detection import schema
from fraud_detection.datasets.kafka_dataset import KafkaDataset
from fraud_detection.quality import (
    QUARANTINE_REASON,
    validate_transactions,
)
from fraud_detection.streaming.messages import (
    DEAD_LETTER_MAX_VALUE_BYTES,
    encode_transactions,
)
from tests.conftest import base_parameters, make_transactions

pytestmark = pytest.mark.integration

INGESTION = base_parameters("ingestion", column_mapping={}, reference_time="2025-06-01")


def _dataset(broker, topic: str) -> KafkaDataset:
    return KafkaDataset(
        topic=topic,
        bootstrap_servers=broker.bootstrap,
        group_id=f"{topic}-group",
        dead_letter_topic=f"{topic}.dlq",
    )


def _headers(record) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers}


def test_a_megabyte_of_bad_json_is_dead_lettered_cut_and_the_topic_moves_on(kafka_broker):
    topic = "poison-megabyte"
    huge = b'{"transaction_id": "' + b"x" * 1_000_000  # accepted by the broker, not JSON
    values = encode_transactions(make_transactions(n=50))
    kafka_broker.produce_raw(topic, [*values[:20], huge, *values[20:]])
    ds = _dataset(kafka_broker, topic)

    assert len(ds.load()) == 50
    ds.commit()

    (letter,) = kafka_broker.read_all(f"{topic}.dlq")
    headers = _headers(letter)
    assert len(letter.value) == DEAD_LETTER_MAX_VALUE_BYTES and huge.startswith(letter.value)
    assert headers["dlq.reason"].startswith("bad_json: ")
    assert headers["dlq.truncated"] == "true"
    assert headers["dlq.original.size"] == str(len(huge))
    assert headers["dlq.original.sha256"] == hashlib.sha256(huge).hexdigest()
    assert headers["dlq.source.offset"] == "20"
    assert kafka_broker.committed(f"{topic}-group", topic) == {0: 51}
    assert len(ds.load()) == 0


def test_each_hostile_message_of_the_issue_is_accounted_for_with_a_reason(kafka_broker):
    topic = "poison-table"
    good = make_transactions(n=400, days=40, seed=12)
    values = encode_transactions(good)
    row = orjson.loads(values[0])

    def like(**changes) -> bytes:
        return orjson.dumps({**row, **changes})

    dead = {  # message -> dead-letter reason
        like(transaction_id="H1", timestamp="0001-01-01T00:00:00"): "timestamp_out_of_range",
        like(transaction_id="H2", customer_id="C\u00e9").replace(
            "\u00e9".encode(), b"\xe9"
        ): "invalid_utf8",
        like(transaction_id="H3", amount="Infinity"): "amount_not_finite",
        like(transaction_id=" "): "missing_transaction_id",
        like(transaction_id="H4", customer_id="\t"): "missing_customer_id",
        like(amount=123456.0): "duplicate_transaction_id",  # T000000 again, other content
    }
    quarantined = {  # transaction id -> quarantine reason (bounds of params:ingestion)
        "H5": ("amount_out_of_range", like(transaction_id="H5", amount=1e308)),
        "H6": ("timestamp_in_future", like(transaction_id="H6", timestamp="2099-01-01T00:00:00")),
    }
    wide = like(transaction_id="H7", **{f"extra_{i}": i for i in range(300)})
    hostile = [*dead, *(message for _, message in quarantined.values()), wide]
    mixed = [*values[:200], *hostile, *values[200:]]
    kafka_broker.produce_raw(topic, mixed)
    ds = _dataset(kafka_broker, topic)

    frame = ds.load()
    ds.commit()

    assert list(frame.columns) == list(schema.COLUMN_NAMES)
    letters = kafka_broker.read_all(f"{topic}.dlq")
    reasons = {bytes(r.value): _headers(r)["dlq.reason"].split(":")[0] for r in letters}
    duplicate = next(r for r in letters if _headers(r)["dlq.reason"].startswith("duplicate"))
    assert _headers(duplicate)["dlq.reason"].endswith("partition 0 offset 0")
    assert orjson.loads(duplicate.value)["amount"] == 123456.0
    assert sorted(reasons.values()) == sorted(dead.values())
    params = {**INGESTION, "max_invalid_share": 0.5}
    valid, quarantine, _ = validate_transactions(frame, params)
    got = dict(zip(quarantine[schema.TRANSACTION_ID], quarantine[QUARANTINE_REASON], strict=True))
    assert got == {tid: reason for tid, (reason, _) in quarantined.items()}
    assert len(mixed) == len(valid) + len(quarantine) + len(letters)
    assert set(valid[schema.TRANSACTION_ID]) == set(good[schema.TRANSACTION_ID]) | {"H7"}
    assert kafka_broker.committed(f"{topic}-group", topic) == {0: len(mixed)}
