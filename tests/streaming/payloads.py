"""Generated transaction messages for the fuzz tests: valid, boundary, malformed, hostile.

A message is described by a *kind* and a *seed*; :func:`build_batch` turns a list of
(kind, seed) pairs into message values, deterministically, so hypothesis draws only
two small choices per message (it shrinks a failing batch to its few culprits) and any
batch can be rebuilt from its pairs. :func:`batches` is the hypothesis strategy; the
whole run is reproducible with ``FUZZ_SEED`` (see :data:`FUZZ_SEED`).

Kinds starting with ``valid`` must be accepted by the decoder and pass ingestion
validation (with :data:`INGESTION`); kinds in :data:`NEVER_VALID` must never end up
as a valid row, whatever path decodes them. Every other kind may go either way, but
must be accounted for with a reason.
"""

from __future__ import annotations

import os
import random
import string

import orjson
from hypothesis import strategies as st

from tests.conftest import base_parameters

FUZZ_SEED = int(os.environ.get("FUZZ_SEED", "20261201"))

# params:ingestion of the fuzz runs (conf/base values, a fixed reference time).
INGESTION = {
    **base_parameters("ingestion"),
    "column_mapping": {},
    "max_invalid_share": 1.0,
    "min_amount": 0.0,
    "max_amount": 1_000_000.0,
    "min_timestamp": "2000-01-01",
    "max_future": "1D",
    "reference_time": "2025-06-01",
}

VALID_KINDS = ("valid", "valid_extras", "valid_unicode", "valid_boundary", "valid_offset_time")
BOUNDARY_KINDS = ("amount_zero", "amount_max", "timestamp_min", "id_as_number", "label_as_bool")
MALFORMED_KINDS = (
    "truncated_json",
    "random_bytes",
    "empty",
    "tombstone",
    "json_array",
    "json_string",
    "json_null",
    "empty_object",
    "nested_deep",
    "nan_literal",
    "missing_fields",
    "wrong_types",
)
HOSTILE_KINDS = (
    "year_0001",
    "year_9999",
    "year_2099",
    "amount_1e308",
    "amount_infinity_text",
    "amount_negative",
    "amount_1e999_text",
    "amount_nan_text",
    "blank_transaction_id",
    "blank_customer_id",
    "whitespace_terminal_id",
    "latin1_bytes",
    "huge_field",
    "many_extra_keys",
    "amount_bool",
    "id_list",
    "control_chars",
    "long_id",
    "duplicate_same",
    "duplicate_other",
    "huge_bad_json",
)
KINDS = VALID_KINDS + BOUNDARY_KINDS + MALFORMED_KINDS + HOSTILE_KINDS
NEVER_VALID = frozenset(
    {
        "year_0001",
        "year_9999",
        "year_2099",
        "amount_1e308",
        "amount_infinity_text",
        "amount_negative",
        "amount_1e999_text",
        "amount_nan_text",
        "blank_transaction_id",
        "blank_customer_id",
        "whitespace_terminal_id",
        "latin1_bytes",
        "amount_bool",
        "id_list",
        "truncated_json",
        "random_bytes",
        "empty",
        "tombstone",
        "json_array",
        "json_string",
        "json_null",
        "empty_object",
        "nested_deep",
        "nan_literal",
        "missing_fields",
        "wrong_types",
        "huge_bad_json",
    }
)
# Never-valid kinds the decoder accepts, rejected by the ingestion bounds (quarantine)
# or by the scorer's MessageBounds.
BOUND_KINDS = frozenset({"year_2099", "amount_1e308", "amount_negative"})
# Kinds whose id is the id of an earlier valid message: the first one stays valid.
DUPLICATES = frozenset({"duplicate_same", "duplicate_other"})


def _valid_row(index: int, rng: random.Random) -> dict:
    day = rng.randrange(0, 500)
    seconds = rng.randrange(0, 86_400)
    return {
        "transaction_id": f"F{index:06d}-{rng.randrange(10**6):06d}",
        "timestamp": f"2024-01-{1 + day % 28:02d}T{seconds // 3600:02d}:"
        f"{seconds // 60 % 60:02d}:{seconds % 60:02d}.{rng.randrange(1000):03d}",
        "customer_id": f"C{rng.randrange(200)}",
        "terminal_id": f"M{rng.randrange(300)}",
        "merchant_category": rng.choice(["grocery", "travel", "online_retail", None]),
        "amount": round(rng.uniform(0.01, 5000.0), 2),
        "currency": "EUR",
        "country": rng.choice(["FR", "DE", "BE", None]),
        "channel": rng.choice(["pos", "ecommerce", "atm"]),
        "is_fraud": rng.choice([0, 1, None]),
    }


def _text(rng: random.Random, size: int) -> str:
    if size > 64:  # hex of random bytes: fast for the huge fields
        return rng.randbytes(size // 2 + 1).hex()[:size]
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(size))


def build_message(  # noqa: C901, PLR0911, PLR0912
    kind: str, seed: int, index: int, earlier: dict | None = None
) -> bytes | None:
    """The message value of one (kind, seed) at position ``index`` of its batch.

    Args:
        kind: One of :data:`KINDS`.
        seed: Varies the message within its kind.
        index: Position in the batch: makes every valid message's id unique.
        earlier: For the duplicate kinds, the row of an earlier valid message.
    """
    rng = random.Random(f"{kind}:{seed}:{index}")
    row = _valid_row(index, rng)

    def dumps(**changes) -> bytes:
        return orjson.dumps({**row, **changes})

    if kind == "valid":
        return dumps()
    if kind == "valid_extras":
        choices = [1, "v", None, [1], {"a": 1}]
        extras = {f"x_{i}": rng.choice(choices) for i in range(rng.randrange(1, 20))}
        return dumps(**extras)
    if kind == "valid_unicode":
        return dumps(
            merchant_category="caf\u00e9 \u2615", country="\u65e5\u672c", channel="\U0001f4b3 pos"
        )
    if kind == "valid_boundary":
        return dumps(amount=rng.choice([0.01, 999_999.99, 1]), is_fraud=rng.choice([True, False]))
    if kind == "valid_offset_time":
        return dumps(timestamp=row["timestamp"][:19] + rng.choice(["Z", "+05:30", "-08:00"]))
    if kind == "amount_zero":
        return dumps(amount=0)
    if kind == "amount_max":
        return dumps(amount=1_000_000.0)
    if kind == "timestamp_min":
        return dumps(timestamp="2000-01-01T00:00:00")
    if kind == "id_as_number":
        return dumps(transaction_id=10**9 + index)
    if kind == "label_as_bool":
        return dumps(is_fraud=rng.choice([True, False]))
    if kind == "truncated_json":
        text = dumps()
        return text[: rng.randrange(1, len(text) - 1)]
    if kind == "random_bytes":
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    if kind == "empty":
        return b""
    if kind == "tombstone":
        return None
    if kind == "json_array":
        return orjson.dumps([row])
    if kind == "json_string":
        return orjson.dumps(_text(rng, 20))
    if kind == "json_null":
        return b"null"
    if kind == "empty_object":
        return b"{}"
    if kind == "nested_deep":
        return b'{"transaction_id":' + b"[" * 300 + b"]" * 300 + b"}"
    if kind == "nan_literal":
        return dumps().replace(b'"amount":', b'"amount":NaN,"_":', 1)
    if kind == "missing_fields":
        return orjson.dumps({k: v for k, v in row.items() if k not in ("timestamp", "terminal_id")})
    if kind == "wrong_types":
        return dumps(customer_id={"id": 1}, amount=[1.0])
    if kind == "year_0001":
        return dumps(timestamp="0001-01-01T00:00:00")
    if kind == "year_9999":
        return dumps(timestamp="9999-12-31T23:59:59")
    if kind == "year_2099":
        return dumps(timestamp="2099-01-01T00:00:00")
    if kind == "amount_1e308":
        return dumps(amount=rng.choice([1e308, -1e308, 1.7976931348623157e308]))
    if kind == "amount_infinity_text":
        return dumps(amount=rng.choice(["Infinity", "-Infinity", "inf"]))
    if kind == "amount_negative":
        return dumps(amount=-round(rng.uniform(0.01, 100), 2))
    if kind == "amount_1e999_text":
        return dumps(amount="1e999")
    if kind == "amount_nan_text":
        return dumps(amount="NaN")
    if kind == "blank_transaction_id":
        return dumps(transaction_id=rng.choice(["", " ", "\t", "\n  "]))
    if kind == "blank_customer_id":
        return dumps(customer_id=rng.choice(["", "   "]))
    if kind == "whitespace_terminal_id":
        return dumps(terminal_id=rng.choice(["   ", "\t\n"]))
    if kind == "latin1_bytes":
        accents = "\u00e9\u00e8"
        return dumps(customer_id=f"C{accents}").replace(accents.encode(), accents.encode("latin-1"))
    if kind == "huge_field":
        return dumps(merchant_category=_text(rng, 300_000))
    if kind == "huge_bad_json":  # longer than a dead letter keeps
        return b'{"transaction_id": "' + _text(rng, 300_000).encode()
    if kind == "many_extra_keys":
        return dumps(**{f"k{i}": rng.choice([i, "v", 1.5, None, True]) for i in range(300)})
    if kind == "amount_bool":
        return dumps(amount=True)
    if kind == "id_list":
        return dumps(transaction_id=[index])
    if kind == "control_chars":
        return dumps(country="F\u0000R\u0007", merchant_category="a\u001fb")
    if kind == "long_id":
        return dumps(transaction_id=f"L{index}-" + _text(rng, 10_000))
    if kind in DUPLICATES:
        base = dict(earlier) if earlier is not None else row
        if kind == "duplicate_other":
            base["amount"] = round(float(base["amount"]) + 1.0, 2)
        return orjson.dumps(base)
    raise ValueError(f"unknown kind {kind!r}")


def build_batch(pairs: list[tuple[str, int]]) -> list[bytes | None]:
    """Message values for (kind, seed) pairs; duplicates repeat an earlier valid row."""
    values: list[bytes | None] = []
    valid_rows: list[dict] = []
    for index, (kind, seed) in enumerate(pairs):
        earlier = valid_rows[seed % len(valid_rows)] if kind in DUPLICATES and valid_rows else None
        value = build_message(kind, seed, index, earlier)
        if kind == "valid" and value is not None:
            valid_rows.append(orjson.loads(value))
        values.append(value)
    return values


def expected_valid(pairs: list[tuple[str, int]]) -> list[int]:
    """Positions of the messages that must become valid rows."""
    return [
        i for i, (kind, _) in enumerate(pairs) if kind.startswith("valid") or kind in BOUNDARY_KINDS
    ]


def kinds() -> st.SearchStrategy[str]:
    """Mostly valid messages, as a stream is; every other kind often enough to matter."""
    return st.one_of(
        st.sampled_from(VALID_KINDS),
        st.sampled_from(VALID_KINDS),
        st.sampled_from(BOUNDARY_KINDS),
        st.sampled_from(MALFORMED_KINDS),
        st.sampled_from(HOSTILE_KINDS),
    )


def batches(min_size: int, max_size: int) -> st.SearchStrategy[list[tuple[str, int]]]:
    """Lists of (kind, seed) pairs; build them with :func:`build_batch`."""
    pair = st.tuples(kinds(), st.integers(min_value=0, max_value=2**16))
    return st.lists(pair, min_size=min_size, max_size=max_size)
