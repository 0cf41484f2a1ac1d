"""Decoding transaction messages for the scorer, fast when they are ordinary.

``decode_transactions`` (the ingestion decoder) builds a typed DataFrame through
pyarrow and pandas, which costs milliseconds per call whatever the batch size. The
scorer decodes a few messages at a time, so it first tries a plain-Python pass that
accepts only the ordinary shape (a JSON object, ids as strings, an ISO-8601 timestamp,
a numeric amount, 0/1/true/false/null label, string or null categoricals). As soon as
one message is anything else, the whole batch goes through ``decode_transactions``,
which decides what is malformed and why; both give the same rows for ordinary
messages (``tests/scoring/test_messages.py``). The fast path leaves to the decoder
anything it would have to reject: a blank id, a timestamp outside pandas' nanosecond
range or the bounds, an amount that is not finite or outside the bounds.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import orjson
import pandas as pd

from fraud_detection import schema
from fraud_detection.scoring.features import TransactionRecords
from fraud_detection.streaming.messages import MessageBounds, decode_transactions, iso_time_ns

_DEFAULTS = {
    c.name: c.default for c in schema.TRANSACTION_SCHEMA if not c.required and c.default is not None
}
_CATEGORICAL = schema.CATEGORICAL_COLUMNS
_NS_RANGE = (pd.Timestamp.min.value, pd.Timestamp.max.value)


class _NotOrdinary(Exception):
    """A message the fast path leaves to the ingestion decoder."""


def _timestamp_ns(text: object) -> int:
    ns = iso_time_ns(text) if isinstance(text, str) else None
    if ns is None:
        raise _NotOrdinary
    return ns


def _fast(values: list[bytes | None], bounds: MessageBounds | None) -> TransactionRecords:
    if bounds is None:
        (lo_ns, hi_ns), lo_amount, hi_amount = _NS_RANGE, -math.inf, math.inf
    else:
        lo_ns, hi_ns = bounds.min_timestamp.value, bounds.latest().value
        lo_amount, hi_amount = bounds.min_amount, bounds.max_amount
    cols: dict[str, list] = {
        name: []
        for name in (
            schema.TRANSACTION_ID,
            "timestamp_ns",
            schema.CUSTOMER_ID,
            schema.TERMINAL_ID,
            schema.AMOUNT,
            *_CATEGORICAL,
            schema.LABEL,
        )
    }
    for value in values:
        if not value:
            raise _NotOrdinary
        try:
            message = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise _NotOrdinary from None
        if type(message) is not dict:
            raise _NotOrdinary
        for key in (schema.TRANSACTION_ID, schema.CUSTOMER_ID, schema.TERMINAL_ID):
            text = message.get(key)
            if type(text) is not str or not text.strip():
                raise _NotOrdinary
            cols[key].append(text)
        amount = message.get(schema.AMOUNT)
        if type(amount) is not float and type(amount) is not int:
            raise _NotOrdinary
        amount = float(amount)
        if not lo_amount <= amount <= hi_amount or not math.isfinite(amount):
            raise _NotOrdinary
        cols[schema.AMOUNT].append(amount)
        ns = _timestamp_ns(message.get(schema.TIMESTAMP))
        if not lo_ns <= ns <= hi_ns:
            raise _NotOrdinary
        cols["timestamp_ns"].append(ns)
        for key in _CATEGORICAL:
            text = message.get(key)
            if text is None:
                text = _DEFAULTS[key]
            elif type(text) is not str:
                raise _NotOrdinary
            cols[key].append(text)
        label = message.get(schema.LABEL)
        if label is None:
            cols[schema.LABEL].append(float("nan"))
        elif label in (0, 1) and type(label) in (int, bool, float):
            cols[schema.LABEL].append(float(label))
        else:
            raise _NotOrdinary
    return TransactionRecords(
        transaction_id=cols[schema.TRANSACTION_ID],
        timestamp_ns=cols["timestamp_ns"],
        customer_id=cols[schema.CUSTOMER_ID],
        terminal_id=cols[schema.TERMINAL_ID],
        amount=cols[schema.AMOUNT],
        merchant_category=cols[schema.MERCHANT_CATEGORY],
        currency=cols[schema.CURRENCY],
        country=cols[schema.COUNTRY],
        channel=cols[schema.CHANNEL],
        is_fraud=cols[schema.LABEL],
    )


def decode_records(
    values: list[bytes | None], bounds: MessageBounds | None = None
) -> tuple[TransactionRecords, list[int], dict[int, str]]:
    """Decodes message values into transaction records.

    Args:
        values: Raw message values.
        bounds: Reject timestamps and amounts outside these limits, per message.

    Returns:
        The accepted transactions, the position of each in ``values``, and the reason
        for every rejected message (by position), as ``decode_transactions`` gives it.
    """
    try:
        return _fast(values, bounds), list(range(len(values))), {}
    except _NotOrdinary:
        decoded = decode_transactions(values, bounds)
        return (
            TransactionRecords.from_frame(decoded.frame),
            decoded.positions.tolist(),
            decoded.rejected,
        )


def iso_now() -> str:
    """Now in UTC, ISO 8601 to the millisecond (``...Z``): a message's ``scored_at``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
