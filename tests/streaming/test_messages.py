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
    slow = decode_transactions(
        [*values, _dumps(transaction_id="T-multi").replace(b",", b",\n", 1)]
    ).frame
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
        _dumps(
            transaction_id=17, amount="3.25", is_fraud=True, timestamp="2025-01-01T11:00:00+01:00"
        ),
        _dumps(transaction_id="T2", is_fraud=None, timestamp="2025-01-01T10:00:00.250Z"),
    ]
    frame = decode_transactions(values).frame
    assert frame[schema.TRANSACTION_ID].tolist() == ["17", "T2"]
    assert frame[schema.AMOUNT].tolist() == [3.25, 12.5]
    assert frame[schema.LABEL].tolist() == [1, pd.NA]
    assert frame[schema.TIMESTAMP].tolist() == [
        pd.Timestamp("2025-01-01 10:00:00"),
        pd.Timestamp("2025-01-01 10:00:00.250"),
    ]


def test_absent_optional_fields_get_their_defaults_and_extra_fields_are_dropped():
    frame = decode_transactions([_dumps(fraud_scenario="card_testing")]).frame
    assert frame.loc[0, schema.CURRENCY] == "EUR"
    assert frame.loc[0, schema.CHANNEL] == "unknown"
    assert list(frame.columns) == list(schema.COLUMN_NAMES)


# ------------------------------------------- one hostile message among valid ones --


def _with_valid(hostile: bytes, n: int = 20) -> list[bytes]:
    """``hostile`` in the middle of ``n`` valid messages."""
    values = encode_transactions(make_transactions(n=n))
    return [*values[: n // 2], hostile, *values[n // 2 :]]


def _rejected_alone(hostile: bytes) -> str:
    """Decodes the hostile message among valid ones; only it is rejected; its reason."""
    values = _with_valid(hostile)
    decoded = decode_transactions(values)
    assert list(decoded.rejected) == [10]
    assert len(decoded.frame) == len(values) - 1
    return decoded.rejected[10]


@pytest.mark.parametrize(
    "timestamp", ["0001-01-01T00:00:00", "9999-12-31T23:59:59", "1500-06-01T00:00:00+02:00"]
)
def test_timestamp_outside_the_nanosecond_range_is_rejected_not_raised(timestamp):
    assert _rejected_alone(_dumps(timestamp=timestamp)) == messages.TIMESTAMP_OUT_OF_RANGE


def test_timestamp_outside_the_nanosecond_range_on_the_message_by_message_path():
    values = [*_with_valid(_dumps(timestamp="0001-01-01T00:00:00")), b"{broken"]
    expected = {10: messages.TIMESTAMP_OUT_OF_RANGE, 21: _bad_json_reason()}
    assert decode_transactions(values).rejected == expected


def _bad_json_reason() -> str:
    try:
        orjson.loads(b"{broken")
    except orjson.JSONDecodeError as exc:
        return f"{messages.BAD_JSON}: {exc}"
    raise AssertionError("orjson accepted broken JSON")


@pytest.mark.parametrize("multi_line", [False, True])
def test_latin1_bytes_inside_an_otherwise_valid_object_are_rejected_on_both_paths(multi_line):
    hostile = _dumps(customer_id="C\u00e9").replace("\u00e9".encode(), "\u00e9".encode("latin-1"))
    assert b"\xe9" in hostile
    values = _with_valid(hostile)
    if multi_line:  # defeats the pyarrow fast path
        values.append(_dumps(transaction_id="T-multi").replace(b",", b",\n", 1))
    decoded = decode_transactions(values)
    assert decoded.rejected == {10: messages.INVALID_UTF8}
    # Every accepted string is valid UTF-8 (pyarrow does not check the bytes itself).
    for name in (schema.TRANSACTION_ID, schema.CUSTOMER_ID, schema.TERMINAL_ID):
        decoded.frame[name].str.encode("utf-8")


@pytest.mark.parametrize("amount", ["Infinity", "-Infinity", "1e999", "NaN"])
def test_non_finite_amount_is_rejected(amount):
    reason = _rejected_alone(_dumps(amount=amount))
    infinite = "Inf" in amount or "e9" in amount
    assert reason == (messages.AMOUNT_NOT_FINITE if infinite else "bad_type_amount")


def test_a_json_number_beyond_double_is_rejected():
    reason = _rejected_alone(_dumps().replace(b"12.5", b"1e400"))
    refused = reason.startswith(f"{messages.BAD_JSON}: number is infinity")
    assert reason == messages.AMOUNT_NOT_FINITE or refused


def test_huge_finite_amount_is_left_to_the_bounds():
    values = _with_valid(_dumps(amount=1e308))
    assert decode_transactions(values).rejected == {}
    bounds = messages.MessageBounds.from_params(
        {"min_timestamp": "2000-01-01", "max_future": "1D", "min_amount": 0.0, "max_amount": 1e6}
    )
    assert decode_transactions(values, bounds).rejected == {10: messages.AMOUNT_OUT_OF_RANGE}


def test_bounds_reject_timestamps_outside_the_accepted_window():
    bounds = messages.MessageBounds.from_params(
        {
            "min_timestamp": "2000-01-01",
            "max_future": "1D",
            "min_amount": 0.0,
            "max_amount": 1e6,
            "reference_time": "2025-06-01",
        }
    )
    values = [
        _dumps(timestamp="2099-01-01T00:00:00"),
        _dumps(timestamp="1999-12-31T00:00:00"),
        _dumps(timestamp="2025-06-01T12:00:00"),
        _dumps(),
    ]
    assert decode_transactions(values, bounds).rejected == {
        0: messages.TIMESTAMP_IN_FUTURE,
        1: messages.TIMESTAMP_TOO_OLD,
    }


@pytest.mark.parametrize("column", [schema.TRANSACTION_ID, schema.CUSTOMER_ID, schema.TERMINAL_ID])
@pytest.mark.parametrize("blank", ["", " ", "\t \n"])
def test_blank_or_whitespace_ids_are_missing(column, blank):
    assert _rejected_alone(_dumps(**{column: blank})) == f"missing_{column}"


def test_three_hundred_extra_keys_do_not_widen_the_frame():
    extras = {f"extra_{i}": [i] if i % 2 else f"v{i}" for i in range(300)}
    hostile = orjson.dumps({**GOOD, **extras})
    values = _with_valid(hostile)
    decoded = decode_transactions(values)
    assert decoded.rejected == {}
    assert list(decoded.frame.columns) == list(schema.COLUMN_NAMES)
    slow = decode_transactions([*values, b"{"])
    assert list(slow.frame.columns) == list(schema.COLUMN_NAMES)
    pd.testing.assert_frame_equal(slow.frame, decoded.frame)


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
    frame = pd.DataFrame(
        {
            "transaction_id": ["T1"],
            "timestamp": [pd.Timestamp("2025-01-01 10:00:05")],
            "is_fraud": pd.array([None], dtype="Int8"),
        }
    )
    assert orjson.loads(encode_transactions(frame)[0]) == {
        "transaction_id": "T1",
        "timestamp": "2025-01-01T10:00:05.000",
        "is_fraud": None,
    }
    assert encode_transactions(frame.iloc[:0]) == []
