"""The scorer's fast decoder gives the rows the ingestion decoder gives."""

from __future__ import annotations

import math

import orjson
import pandas as pd

from fraud_detection.scoring.features import TransactionRecords
from fraud_detection.scoring.messages import decode_records
from fraud_detection.streaming.messages import decode_transactions, encode_transactions
from tests.conftest import make_transactions


def _same(a: TransactionRecords, b: TransactionRecords) -> None:
    for name in TransactionRecords.__dataclass_fields__:
        left, right = getattr(a, name), getattr(b, name)
        if name == "is_fraud":
            assert [None if math.isnan(v) else v for v in left] == [
                None if math.isnan(v) else v for v in right
            ]
        else:
            assert left == right, name


def test_ordinary_messages_decode_like_the_ingestion_decoder():
    frame = make_transactions(n=300)
    frame.loc[::7, "is_fraud"] = None
    frame.loc[::5, "country"] = None
    frame.loc[::11, "channel"] = "  POS "
    values = encode_transactions(frame)
    values.append(
        orjson.dumps(
            {
                "transaction_id": "Z1",
                "timestamp": "2025-01-03T10:00:00+02:00",
                "customer_id": "C1",
                "terminal_id": "M1",
                "amount": 12,
                "is_fraud": True,
            }
        )
    )
    fast, positions, rejected = decode_records(values)
    assert positions == list(range(len(values))) and rejected == {}
    _same(fast, TransactionRecords.from_frame(decode_transactions(values).frame))
    assert fast.timestamp_ns[-1] == pd.Timestamp("2025-01-03T08:00:00").value


def test_a_malformed_message_sends_the_batch_through_the_ingestion_decoder():
    values = encode_transactions(make_transactions(n=20))
    values.insert(3, b'{"transaction_id": "BAD", "amount": "lots"}')
    values.insert(8, b"not json")
    records, positions, rejected = decode_records(values)
    assert set(rejected) == {3, 8} and "bad_type_amount" in rejected[3].split(";")
    assert len(records) == 20 and positions == [i for i in range(22) if i not in (3, 8)]


def test_nanosecond_timestamps_keep_their_nanoseconds_as_in_the_ingestion_decoder():
    values = encode_transactions(make_transactions(n=5))
    message = orjson.loads(values[2])
    message["timestamp"] = "2025-01-03T10:00:00.123456789"
    values[2] = orjson.dumps(message)
    fast, _, rejected = decode_records(values)
    assert rejected == {}
    _same(fast, TransactionRecords.from_frame(decode_transactions(values).frame))
    assert fast.timestamp_ns[2] == pd.Timestamp("2025-01-03T10:00:00.123456789").value
