"""Transactions as JSON messages: encoding for producers, batch decoding for consumers.

One message is one JSON object whose fields are the canonical columns of
``fraud_detection.schema``; other fields are dropped, so no message can widen the
table. Decoding checks what a message must satisfy to become a row at all: it is
valid UTF-8 and a JSON object, the required fields are present (an id of blanks is
missing), every field has a parseable type, the timestamp fits pandas' nanosecond
range and the amount is finite. Business rules (amount ranges, label values,
timestamps in the past, duplicates across batches) stay with the ingestion pipeline,
which quarantines rows instead of rejecting messages; a consumer that has no
quarantine (the real-time scorer) passes ``MessageBounds`` to reject those per
message too. Nothing in one message makes decoding raise: every rejected message
gets a reason.

Decoding works on a batch: the messages are joined into newline-delimited JSON and
parsed by pyarrow in C++ with the schema's types. Only a batch that pyarrow refuses
(a malformed message, a field of the wrong JSON type) is parsed message by message
with orjson, so the reason can be given per message. The schema checks are
vectorised over the batch in both cases.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from fraud_detection import schema
from fraud_detection.schema import COLUMN_NAMES, TRANSACTION_SCHEMA

# Reasons a message is rejected (dead-lettered). Schema reasons read
# ``missing_<column>`` or ``bad_type_<column>``, several joined by ';'.
EMPTY_MESSAGE = "empty_message"
BAD_JSON = "bad_json"
NOT_AN_OBJECT = "not_a_json_object"
INVALID_UTF8 = "invalid_utf8"
TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"  # outside pandas' nanosecond range
AMOUNT_NOT_FINITE = "amount_not_finite"
# With MessageBounds: the ingestion rules' names, as the quarantine gives them.
AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
TIMESTAMP_TOO_OLD = "timestamp_too_old"
TIMESTAMP_IN_FUTURE = "timestamp_in_future"

# A dead letter keeps at most this much of the rejected value (the rest is recorded by
# size and SHA-256): a huge message the broker accepted must not fail its dead letter
# on the producer's max_request_size (1 MiB by default) and wedge the topic.
DEAD_LETTER_MAX_VALUE_BYTES = 256 * 1024
_MAX_REASON_CHARS = 1000

_ARROW_TYPES = {
    "str": pa.string(),
    "datetime": pa.string(),
    "float": pa.float64(),
    "label": pa.float64(),
}
_PARSE_OPTIONS = pa_json.ParseOptions(
    explicit_schema=pa.schema([(c.name, _ARROW_TYPES[c.kind]) for c in TRANSACTION_SCHEMA]),
    unexpected_field_behavior="ignore",
)
# One thread: the dataset already decodes on a worker thread next to the consumer, and
# more threads cost CPU on small machines without making a chunk faster.
_READ_OPTIONS = pa_json.ReadOptions(use_threads=False)
_COLUMN_SET = frozenset(COLUMN_NAMES)


@dataclass(frozen=True)
class MessageBounds:
    """Per-message limits: the accepted window of timestamps and amounts.

    The window is ``[min_timestamp, reference + max_future]``, the reference being
    ``reference_time`` or, when it is ``None``, the wall clock at decoding time.

    Attributes:
        min_timestamp: Oldest accepted timestamp (naive UTC).
        max_future: Tolerated clock skew beyond the reference.
        min_amount: Smallest accepted amount.
        max_amount: Largest accepted amount.
        reference_time: Fixed reference, or ``None`` for now.
    """

    min_timestamp: pd.Timestamp
    max_future: pd.Timedelta
    min_amount: float
    max_amount: float
    reference_time: pd.Timestamp | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> MessageBounds:
        """From ``params:ingestion`` (``min_timestamp``, ``max_future``, ``min_amount``,
        ``max_amount``, ``reference_time``), the rules the ingestion quarantine applies."""
        missing = sorted({"min_timestamp", "max_future", "min_amount", "max_amount"} - set(params))
        if missing:
            raise ValueError(f"params:ingestion lacks {missing} for the message bounds")
        reference = params.get("reference_time")
        return cls(
            min_timestamp=pd.Timestamp(params["min_timestamp"]),
            max_future=pd.Timedelta(params["max_future"]),
            min_amount=float(params["min_amount"]),
            max_amount=float(params["max_amount"]),
            reference_time=pd.Timestamp(reference) if reference else None,
        )

    def latest(self) -> pd.Timestamp:
        """The newest accepted timestamp now."""
        reference = self.reference_time
        if reference is None:
            reference = pd.Timestamp.now(tz="UTC").tz_localize(None)
        return reference + self.max_future


@dataclass
class DecodedMessages:
    """The outcome of decoding a batch of message values.

    Attributes:
        frame: The accepted messages as rows of the canonical schema (typed, optional
            columns filled with their defaults, extra fields after them), in input order.
        positions: For each row of ``frame``, the position of its message in the input.
        rejected: Position of each rejected message -> the reason.
    """

    frame: pd.DataFrame
    positions: np.ndarray
    rejected: dict[int, str] = field(default_factory=dict)


def dead_letter(
    value: bytes | None,
    reason: str,
    source: Mapping[str, object],
    *,
    max_value_bytes: int = DEAD_LETTER_MAX_VALUE_BYTES,
) -> tuple[bytes | None, list[tuple[str, bytes]]]:
    """The value and headers of the dead letter of a rejected message.

    The value is the message unchanged, or its first ``max_value_bytes`` bytes with
    ``dlq.truncated``, ``dlq.original.size`` and ``dlq.original.sha256`` headers when it
    is longer, so the dead letter always fits the producer's request size.

    Args:
        value: The rejected message value.
        reason: Why it was rejected (``dlq.reason``; long reasons are cut).
        source: Further headers, each ``dlq.<name>`` (source topic, partition, ...).
        max_value_bytes: Longest value kept.
    """
    headers = [("dlq.reason", reason[:_MAX_REASON_CHARS].encode("utf-8", "replace"))]
    headers += [
        (f"dlq.{name}", str(item).encode("utf-8", "replace")) for name, item in source.items()
    ]
    if value is not None and len(value) > max_value_bytes:
        headers += [
            ("dlq.truncated", b"true"),
            ("dlq.original.size", str(len(value)).encode()),
            ("dlq.original.sha256", hashlib.sha256(value).hexdigest().encode()),
        ]
        value = value[:max_value_bytes]
    return value, headers


def empty_transactions() -> pd.DataFrame:
    """A frame with the canonical columns and types and no rows."""
    return decode_transactions([]).frame


def encode_transactions(frame: pd.DataFrame) -> list[bytes]:
    """Serialises each row of ``frame`` as one JSON object (UTF-8 bytes).

    Timestamps become ISO-8601 strings with milliseconds, missing values ``null``.
    """
    if frame.empty:
        return []
    text = frame.to_json(orient="records", lines=True, date_format="iso", date_unit="ms")
    lines = text.encode().split(b"\n")
    if not lines[-1]:
        lines.pop()
    return lines


def decode_transactions(
    values: Sequence[bytes | None], bounds: MessageBounds | None = None
) -> DecodedMessages:
    """Decodes message values and checks them against the transaction schema.

    Args:
        values: Raw message values; ``None`` is a tombstone (no value).
        bounds: Also reject timestamps and amounts outside these limits.

    Returns:
        The accepted rows, typed, and the reason for every rejected message.
    """
    raw, rejected = _parse_objects(values)
    typed, flags = _check_schema(raw)
    if bounds is not None:
        flags.update(_bound_flags(typed, bounds))
    if rejected:
        unparsed = np.zeros(len(raw), dtype=bool)
        unparsed[list(rejected)] = True
        flags = {name: mask & ~unparsed for name, mask in flags.items()}
    names = np.array(list(flags), dtype=object)
    matrix = np.column_stack(list(flags.values())) if flags else np.zeros((len(raw), 0), dtype=bool)
    bad_rows = np.flatnonzero(matrix.any(axis=1))
    for row in bad_rows:
        rejected[int(row)] = ";".join(names[matrix[row]])
    accepted = np.ones(len(raw), dtype=bool)
    accepted[list(rejected)] = False
    positions = np.flatnonzero(accepted)
    frame = typed.iloc[positions].reset_index(drop=True) if len(positions) < len(typed) else typed
    return DecodedMessages(
        frame=frame, positions=positions, rejected=dict(sorted(rejected.items()))
    )


def _bound_flags(typed: pd.DataFrame, bounds: MessageBounds) -> dict[str, np.ndarray]:
    """One mask per bound rule; values that failed to parse are flagged elsewhere."""
    amount = typed[schema.AMOUNT].to_numpy(np.float64, na_value=np.nan)
    ts = typed[schema.TIMESTAMP]
    # Non-finite amounts are flagged by the schema checks already.
    finite = np.isfinite(amount)
    out_of_range = finite & ((amount < bounds.min_amount) | (amount > bounds.max_amount))
    return {
        AMOUNT_OUT_OF_RANGE: out_of_range,
        TIMESTAMP_TOO_OLD: (ts.notna() & (ts < bounds.min_timestamp)).to_numpy(bool),
        TIMESTAMP_IN_FUTURE: (ts.notna() & (ts > bounds.latest())).to_numpy(bool),
    }


def _invalid_utf8(values: Sequence[bytes | None], joined: bytes | None) -> set[int]:
    """Positions of the values that are not valid UTF-8.

    pyarrow's JSON reader does not check the bytes inside strings, so this runs
    first. Values joined by an ASCII newline are valid as a whole exactly when each is,
    so one decode of the batch covers the common case.
    """
    try:
        (joined if joined is not None else b"\n".join(v for v in values if v)).decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return set()
    bad = set()
    for position, value in enumerate(values):
        if value:
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                bad.add(position)
    return bad


def _parse_objects(values: Sequence[bytes | None]) -> tuple[pd.DataFrame, dict[int, str]]:
    """One row per message (empty for messages that are not JSON objects)."""
    joined = b"\n".join(values) if values and None not in values else None
    bad_utf8 = _invalid_utf8(values, joined)
    if joined is not None and not bad_utf8:
        try:
            table = pa_json.read_json(
                io.BytesIO(joined), read_options=_READ_OPTIONS, parse_options=_PARSE_OPTIONS
            )
        except pa.ArrowInvalid:
            table = None
        # An empty value or a message spanning lines shifts the rows: parse one by one.
        if table is not None and table.num_rows == len(values):
            return table.to_pandas(), {}
    rows: list[dict] = []
    rejected: dict[int, str] = {}
    for position, value in enumerate(values):
        if value is None:
            rejected[position] = EMPTY_MESSAGE
            rows.append({})
            continue
        if position in bad_utf8:
            rejected[position] = INVALID_UTF8
            rows.append({})
            continue
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            rejected[position] = f"{BAD_JSON}: {exc}"
            rows.append({})
            continue
        if not isinstance(obj, dict):
            rejected[position] = f"{NOT_AN_OBJECT}: {type(obj).__name__}"
            rows.append({})
            continue
        if not obj.keys() <= _COLUMN_SET:
            obj = {k: obj[k] for k in obj if k in _COLUMN_SET}
        rows.append(obj)
    # Object columns keep each value's JSON type for the checks (no int -> float).
    frame = pd.DataFrame(rows, dtype=object)
    if len(frame) != len(rows):  # only empty objects: no columns, no rows
        frame = frame.reindex(pd.RangeIndex(len(rows)))
    return frame, rejected


def _check_schema(raw: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Casts the canonical columns; returns the typed frame and one mask per failed rule."""
    out: dict[str, pd.Series] = {}
    flags: dict[str, np.ndarray] = {}
    for col in TRANSACTION_SCHEMA:
        if col.name in raw.columns:
            values = raw[col.name]
        else:
            values = pd.Series(np.nan, index=raw.index, dtype=object)
        present = values.notna().to_numpy()
        typed, parsed = _CASTS[col.kind](values)
        if col.kind == "str" and col.required:
            # An id of blanks identifies nothing: it is missing, not a value.
            blank = (parsed & present) & typed.str.strip().eq("").fillna(False).to_numpy(bool)
            present = present & ~blank
            typed = typed.mask(blank)
        if col.required:
            flags[f"missing_{col.name}"] = ~present
        bad = present & ~parsed
        if col.kind == "datetime" and bad.any():
            outside = bad & _outside_nanosecond_range(values)
            flags[TIMESTAMP_OUT_OF_RANGE] = outside
            bad = bad & ~outside
        if col.kind == "float":
            finite = np.isfinite(typed.to_numpy(np.float64, na_value=np.nan))
            name = AMOUNT_NOT_FINITE if col.name == schema.AMOUNT else f"{col.name}_not_finite"
            flags[name] = parsed & present & ~finite
        flags[f"bad_type_{col.name}"] = bad
        if not col.required and col.default is not None:
            typed = typed.fillna(col.default)
        out[col.name] = typed
    return pd.DataFrame(out, index=raw.index), flags


def _outside_nanosecond_range(values: pd.Series) -> np.ndarray:
    """ISO-8601 times that parse (at a coarser resolution) but do not fit in ns."""
    text = values.where(values.map(lambda v: isinstance(v, str))).astype(object)
    coarse = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    return coarse.notna().to_numpy(bool)


def _is_object(values: pd.Series) -> bool:
    return values.dtype == object


def _as_string(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Strings, and integers written as JSON numbers (ids often are)."""
    if not _is_object(values) and pd.api.types.is_string_dtype(values.dtype):
        return values, np.ones(len(values), dtype=bool)
    if pd.api.types.infer_dtype(values, skipna=True) in {"string", "integer", "empty"}:
        ok = np.ones(len(values), dtype=bool)
    else:
        ok = values.map(
            lambda v: isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool))
        ).to_numpy(bool)
    return values.where(ok).astype("str"), ok


def _as_float(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """JSON numbers, or strings holding a number."""
    if pd.api.types.is_float_dtype(values.dtype) or pd.api.types.is_integer_dtype(values.dtype):
        return values.astype("float64"), np.ones(len(values), dtype=bool)
    not_bool = ~values.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(bool)
    cast = pd.to_numeric(values.where(not_bool), errors="coerce").astype("float64")
    return cast, cast.notna().to_numpy()


def _as_timestamp(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """ISO-8601 strings; offsets are converted to UTC, naive times are taken as UTC."""
    if not _is_object(values) and pd.api.types.is_string_dtype(values.dtype):
        # Fast path: naive ISO-8601 times parse in Arrow; anything else (an offset, a
        # bad value) goes through pandas, which converts or flags per value.
        try:
            parsed = pc.cast(pa.array(values), pa.timestamp("ns"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        else:
            cast = pd.Series(parsed.to_numpy(zero_copy_only=False), index=values.index)
            return cast, cast.notna().to_numpy()
    if _is_object(values) or not pd.api.types.is_string_dtype(values.dtype):
        values = values.where(values.map(lambda v: isinstance(v, str))).astype("str")
    cast = pd.to_datetime(values, format="ISO8601", utc=True, errors="coerce").dt.tz_localize(None)
    # pandas parses year 0001 or 9999 at a coarser unit; they do not fit in nanoseconds.
    cast = cast.where((cast >= pd.Timestamp.min) & (cast <= pd.Timestamp.max))
    cast = cast.astype("datetime64[ns]")
    return cast, cast.notna().to_numpy()


def _as_label(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """0, 1, true, false or null."""
    if _is_object(values):
        numbers = values.map(
            lambda v: int(v) if isinstance(v, bool) else v if isinstance(v, int | float) else np.nan
        )
        cast = pd.to_numeric(numbers, errors="coerce").astype("float64")
    else:
        cast = values.astype("float64")
    ok = cast.isin([0.0, 1.0]).to_numpy()
    return cast.where(ok).astype("Int8"), ok


_CASTS: dict[str, Callable[[pd.Series], tuple[pd.Series, np.ndarray]]] = {
    "str": _as_string,
    "float": _as_float,
    "datetime": _as_timestamp,
    "label": _as_label,
}


# ------------------------------------------------------------------ labels --

# Why a label message is rejected, beyond the reasons shared with transactions.
BAD_LABEL = f"bad_type_{schema.LABEL}"


def empty_labels() -> pd.DataFrame:
    """A frame with the label message's columns and types and no rows."""
    return decode_labels([]).frame


def encode_labels(frame: pd.DataFrame) -> list[bytes]:
    """Serialises label rows (``schema.LABEL_COLUMNS``) as JSON objects, one per row."""
    missing = [c for c in schema.LABEL_COLUMNS if c not in frame]
    if missing:
        raise ValueError(f"Label rows lack {missing}; a label message has {schema.LABEL_COLUMNS}")
    return encode_transactions(frame[list(schema.LABEL_COLUMNS)])


_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_NS_LOW = pd.Timestamp.min.value
_NS_HIGH = pd.Timestamp.max.value


def _fraction_digits(value: str) -> int:
    dot = value.find(".")
    if dot < 0:
        return 0
    end = dot + 1
    while end < len(value) and value[end].isdigit():
        end += 1
    return end - dot - 1


def iso_time_ns(value: str) -> int | None:
    """An ISO-8601 time read by ``datetime.fromisoformat`` (C), as naive-UTC nanoseconds
    since the epoch; None for what it cannot read exactly: other forms, and more than
    six fraction digits (it would cut them; pandas keeps nanoseconds). No range check."""
    if _fraction_digits(value) > 6:  # noqa: PLR2004 - microseconds
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    delta = parsed - (_EPOCH_UTC if parsed.tzinfo else _EPOCH)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _label_time_ns(value: object) -> int | None:
    """An ISO-8601 time as naive-UTC nanoseconds since the epoch, or None.

    :func:`iso_time_ns` reads the usual forms; the others go to ``pd.Timestamp`` so
    nothing is rounded. Outside pandas' nanosecond range is None, as with pandas.
    """
    if not isinstance(value, str):
        return None
    ns = iso_time_ns(value)
    if ns is not None:
        return ns if _NS_LOW <= ns <= _NS_HIGH else None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, OverflowError):
        return None
    if stamp is pd.NaT:
        return None
    return (stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp).value


@dataclass(frozen=True, slots=True)
class LabelRow:
    """One accepted label message; times as naive-UTC nanoseconds since the epoch."""

    transaction_id: str
    customer_id: str
    terminal_id: str
    timestamp_ns: int
    is_fraud: int
    label_timestamp_ns: int


def decode_label_rows(
    values: Sequence[bytes | None],
) -> tuple[list[LabelRow], list[int], dict[int, str]]:
    """Label messages -> (accepted rows, their positions, {position: reason} of the others).

    The checks of :func:`decode_labels` without pandas: what the real-time scorer reads.
    """
    rows: list[LabelRow] = []
    positions: list[int] = []
    rejected: dict[int, str] = {}
    ids = (schema.TRANSACTION_ID, schema.CUSTOMER_ID, schema.TERMINAL_ID)
    times = (schema.TIMESTAMP, schema.LABEL_TIMESTAMP)
    for position, value in enumerate(values):
        if not value:
            rejected[position] = EMPTY_MESSAGE
            continue
        try:
            message = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            rejected[position] = f"{BAD_JSON}: {exc}"
            continue
        if not isinstance(message, dict):
            rejected[position] = f"{NOT_AN_OBJECT}: {type(message).__name__}"
            continue
        reasons = []
        for name in ids:
            item = message.get(name)
            if isinstance(item, int) and not isinstance(item, bool):
                item = str(item)
            if not isinstance(item, str) or not item.strip():
                reasons.append(f"missing_{name}" if item in (None, "") else f"bad_type_{name}")
            message[name] = item
        label = message.get(schema.LABEL)
        if isinstance(label, bool):
            label = int(label)
        if label is None:
            reasons.append(f"missing_{schema.LABEL}")
        elif not isinstance(label, int | float) or label not in (0, 1):
            reasons.append(BAD_LABEL)
        parsed = []
        for name in times:
            ns = _label_time_ns(message.get(name))
            if ns is None:
                reasons.append(
                    f"missing_{name}" if message.get(name) is None else f"bad_type_{name}"
                )
            parsed.append(ns)
        if reasons:
            rejected[position] = ";".join(reasons)
            continue
        positions.append(position)
        rows.append(LabelRow(*(message[name] for name in ids), parsed[0], int(label), parsed[1]))
    return rows, positions, rejected


def decode_labels(values: Sequence[bytes | None]) -> DecodedMessages:
    """Decodes label messages: ids as non-blank strings, ``is_fraud`` 0 or 1 (or a JSON
    boolean), ISO-8601 times for the transaction and the label.

    Returns:
        The accepted rows (``schema.LABEL_COLUMNS``; ``is_fraud`` as ``int8``, times as
        naive UTC ``datetime64[ns]``) and the reason for every rejected message.
    """
    rows, positions, rejected = decode_label_rows(values)

    def times(attr: str) -> np.ndarray:
        return np.array([getattr(r, attr) for r in rows], dtype=np.int64).view("datetime64[ns]")

    frame = pd.DataFrame(
        {
            **{
                name: pd.Series([getattr(r, name) for r in rows], dtype="str")
                for name in (schema.TRANSACTION_ID, schema.CUSTOMER_ID, schema.TERMINAL_ID)
            },
            schema.TIMESTAMP: pd.Series(times("timestamp_ns"), dtype="datetime64[ns]"),
            schema.LABEL: pd.Series([r.is_fraud for r in rows], dtype="int8"),
            schema.LABEL_TIMESTAMP: pd.Series(times("label_timestamp_ns"), dtype="datetime64[ns]"),
        }
    )[list(schema.LABEL_COLUMNS)]
    return DecodedMessages(
        frame=frame, positions=np.asarray(positions, dtype=np.int64), rejected=rejected
    )
