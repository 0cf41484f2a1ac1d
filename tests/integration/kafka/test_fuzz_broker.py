"""Property-based fuzzing of ``KafkaDataset`` on a real broker: batches of generated
messages (``tests/streaming/payloads.py``) load without raising, every message is a
valid row, a quarantined row or a dead letter with a reason, and the offsets move past
the batch. A few large batches keep the broker time small; ``FUZZ_SEED`` reproduces."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, seed, settings

from fraud_detection import schema
from fraud_detection.datasets.kafka_dataset import KafkaDataset
from fraud_detection.quality import (
    QUARANTINE_REASON,
    validate_transactions,
)
from tests.streaming import payloads
from tests.streaming.test_fuzz_decoder import REASONS

pytestmark = pytest.mark.integration

DATASET_REASONS = REASONS | {"duplicate_message", "duplicate_transaction_id"}


def test_generated_batches_through_the_broker_are_each_accounted_for(kafka_broker):
    sizes: list[int] = []

    @seed(payloads.FUZZ_SEED)
    @settings(
        max_examples=3,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
            HealthCheck.large_base_example,
        ],
    )
    @given(pairs=payloads.batches(min_size=1000, max_size=1000))
    def through_the_broker(pairs):
        topic = f"fuzz-{uuid.uuid4().hex[:8]}"
        values = payloads.build_batch(pairs)
        kafka_broker.produce_raw(topic, values)
        ds = KafkaDataset(
            topic=topic,
            bootstrap_servers=kafka_broker.bootstrap,
            group_id=f"{topic}-group",
            dead_letter_topic=f"{topic}.dlq",
            load_args={"decode_chunk_size": 400},
        )
        frame = ds.load()  # raises if one message could stop the stream
        ds.commit()
        letters = kafka_broker.read_all(f"{topic}.dlq")
        valid, quarantine, _ = validate_transactions(frame, payloads.INGESTION)
        assert len(values) == len(valid) + len(quarantine) + len(letters)
        assert ds.last_load_report["dead_lettered"] == len(letters)
        assert quarantine[QUARANTINE_REASON].str.len().gt(0).all()
        offsets = set()
        for letter in letters:
            headers = {k: v.decode() for k, v in letter.headers}
            assert headers["dlq.reason"].split(":", 1)[0].split(";")[0] in DATASET_REASONS
            assert len(letter.value or b"") <= ds._load_args["dead_letter_max_bytes"]
            offsets.add(int(headers["dlq.source.offset"]))
        kinds = [kind for kind, _ in pairs]
        valid_ids = valid[schema.TRANSACTION_ID].tolist()
        assert len(valid_ids) == len(set(valid_ids))  # each valid message once
        for position in payloads.expected_valid(pairs):
            assert position not in offsets, kinds[position]
        for position, kind in enumerate(kinds):
            if kind in payloads.NEVER_VALID - payloads.BOUND_KINDS:
                assert position in offsets, kind
        assert list(frame.columns) == list(schema.COLUMN_NAMES)
        assert kafka_broker.committed(f"{topic}-group", topic) == {0: len(values)}
        sizes.append(len(values))

    through_the_broker()
    assert sum(sizes) >= 3_000
