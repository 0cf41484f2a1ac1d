"""JSON messages <-> canonical rows, without a broker."""

from __future__ import annotations

import orjson
import pandas as pd
import pytest

from fraud_detection import schema
from fraud_detection.streaming import messages
from fraud_detection.streaming.messages import (
    decode_transactions,
    empty_transactions,
    encode_transactions,
)
from tests.conftest import make_transactions

GOOD = {
    "transaction_id": "T1",
    "timestamp": "2025-01-01T10:00:00",
    "customer_id": "C1",
    "terminal_id": "M1",
    "amount": 12.5,
    "is_fraud": 0,
}


def _dumps(**changes) -> bytes:
    return orjson.dumps({**GOOD, **changes})


def _expected(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out[schema.LABEL] = out[schema.LABEL].astype("Int8")
    return out


def test_encoded_transactions_decode_to_the_same_typed_rows(transactions):
    decoded = decode_transactions(encode_transactions(transactions))
    assert decoded.rejected == {}
    assert decoded.positions.tolist() == list(range(len(transactions)))
    pd.testing.assert_frame_equal(decoded.frame, _expected(transactions))


def test_fast_and_message_by_message_paths_give_the_same_frame():
    frame = make_transactions(n=50)
    frame["fraud_scenario"] = "genuine"
    values = encode_transactions(frame)
    fast = decode_transactions(values).frame
    # A message spanning two lines defeats the newline-delimited fast path.
    slow = decode_transactions([*values, _dumps(transaction_id="T-multi").replace(b",", b",\n", 1)]).frame
    pd.testing.assert_frame_equal(slow.iloc[:50], fast)
    assert slow.iloc[50][schema.TRANSACTION_ID] == "T-multi"


def test_malformed_messages_are_rejected_with_their_reason():
    values = [
        _dumps(),
        b"{not json",
        None,
        b"",
        b"[1, 2]",
        _dumps(amount="abc"),
        _dumps(customer_id={"id": 1}),
        _dumps(timestamp="yesterday"),
        _dumps(is_fraud="maybe"),
        orjson.dumps({"transaction_id": "T9", "amount": 1.0}),
        _dumps(customer_id=None),
        _dumps(transaction_id="T2"),
    ]
    decoded = decode_transactions(values)
    assert decoded.positions.tolist() == [0, 11]
    reasons = decoded.rejected
    assert reasons[1].startswith("bad_json: ")
    assert reasons[2] == messages.EMPTY_MESSAGE
    assert reasons[3].startswith("bad_json: ")
    assert reasons[4] == "not_a_json_object: list"
    assert reasons[5] == "bad_type_amount"
    assert reasons[6] == "bad_type_customer_id"
    assert reasons[7] == "bad_type_timestamp"
    assert reasons[8] == "bad_type_is_fraud"
    assert reasons[9] == "missing_timestamp;missing_customer_id;missing_terminal_id"
    assert reasons[10] == "missing_customer_id"
    assert len(decoded.frame) + len(reasons) == len(values)


def test_parseable_types_are_accepted_and_normalised():
    values = [
        _dumps(transaction_id=17, amount="3.25", is_fraud=True, timestamp="2025-01-01T11:00:00+01:00"),
        _dumps(transaction_id="T2", is_fraud=None, timestamp="2025-01-01T10:00:00.250Z"),
    ]
    frame = decode_transactions(values).frame
    assert frame[schema.TRANSACTION_ID].tolist() == ["17", "T2"]
    assert frame[schema.AMOUNT].tolist() == [3.25, 12.5]
    assert frame[schema.LABEL].tolist() == [1, pd.NA]
    assert frame[schema.TIMESTAMP].tolist() == [pd.Timestamp("2025-01-01 10:00:00"), pd.Timestamp("2025-01-01 10:00:00.250")]


def test_absent_optional_fields_get_their_defaults_and_extra_fields_are_kept():
    frame = decode_transactions([_dumps(fraud_scenario="card_testing")]).frame
    assert frame.loc[0, schema.CURRENCY] == "EUR"
    assert frame.loc[0, schema.CHANNEL] == "unknown"
    assert list(frame.columns) == [*schema.COLUMN_NAMES, "fraud_scenario"]
    assert frame.loc[0, "fraud_scenario"] == "card_testing"


def test_a_label_other_than_0_or_1_is_a_bad_type():
    assert decode_transactions([_dumps(is_fraud=2)]).rejected == {0: "bad_type_is_fraud"}


@pytest.mark.parametrize("values", [[], [None], [b"{"]])
def test_no_accepted_message_still_gives_the_typed_columns(values):
    frame = decode_transactions(values).frame
    assert frame.empty
    pd.testing.assert_series_equal(frame.dtypes, empty_transactions().dtypes)
    assert frame[schema.TIMESTAMP].dtype == "datetime64[ns]"
    assert frame[schema.LABEL].dtype == "Int8"


def test_encoding_writes_iso_timestamps_and_nulls():
    frame = pd.DataFrame({"transaction_id": ["T1"], "timestamp": [pd.Timestamp("2025-01-01 10:00:05")],
                          "is_fraud": pd.array([None], dtype="Int8")})
    assert orjson.loads(encode_transactions(frame)[0]) == {
        "transaction_id": "T1", "timestamp": "2025-01-01T10:00:05.000", "is_fraud": None,
    }
    assert encode_transactions(frame.iloc[:0]) == []
