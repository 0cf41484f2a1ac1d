"""Labels that arrive late and apart from their transactions.

A chargeback or an analyst's verdict reaches the bank days or weeks after the payment,
on its own. The producer therefore sends transactions without ``is_fraud`` and sends
each label later to the ``transaction_labels`` topic, one message per label::

    {
        "transaction_id": "...",
        "customer_id": "...",
        "terminal_id": "...",
        "timestamp": "<the transaction's time>",
        "is_fraud": 0 | 1,
        "label_timestamp": "<when the label became known>",
    }

keyed by customer id like the transactions. This module holds what the producer and
the consumers share:

- ``LabelParams`` (``params:labels``): the delay distribution, its seed, where
  training and monitoring take labels from, and the bounds of the wait of a label
  for its transaction;
- ``schedule_labels``: each labelled transaction's label message and its time, drawn
  from the delay distribution; ``send_positions`` places them in the replay, so a
  label is sent once the replay has passed its time, whatever the replay speed;
- ``attach_labels``: the batch join by transaction id (training data, monitoring);
- ``LabelBuffer``: the streaming side of the join, for labels that arrive before their
  transaction: bounded in size and in age, every label dropped is counted and logged.
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import AfterValidator, Field, TypeAdapter, ValidationError, model_validator

from fraud_detection import schema
from fraud_detection.params import StrictParams

logger = logging.getLogger(__name__)

LABEL_TIMESTAMP = schema.LABEL_TIMESTAMP
LABEL_COLUMNS = schema.LABEL_COLUMNS
# Columns a transaction message must not carry: what is only known later.
LABEL_ONLY_COLUMNS: tuple[str, ...] = (schema.LABEL, "fraud_scenario")


def _duration(value: str) -> str:
    try:
        delta = pd.Timedelta(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a duration ({exc}), e.g. '1D' or '36h'") from None
    if delta < pd.Timedelta(0):
        raise ValueError("a duration cannot be negative")
    return value


# A non-negative duration in pandas' notation ("1D", "36h"), kept as text.
Duration = Annotated[str, AfterValidator(_duration)]


class UniformDelay(StrictParams):
    """Delays drawn uniformly in ``[min, max]``."""

    distribution: Literal["uniform"]
    min: Duration
    max: Duration

    @model_validator(mode="after")
    def _ordered(self) -> UniformDelay:
        if pd.Timedelta(self.max) < pd.Timedelta(self.min):
            raise ValueError(f"max ({self.max}) is shorter than min ({self.min})")
        return self

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        lo, hi = pd.Timedelta(self.min).value, pd.Timedelta(self.max).value
        return rng.integers(lo, hi, size=n, endpoint=True).astype("timedelta64[ns]")


class LogNormalDelay(StrictParams):
    """Log-normal delays (most labels early, a long tail), cut to ``[min, max]``."""

    distribution: Literal["lognormal"]
    median: Duration
    sigma: float = Field(gt=0)
    min: Duration
    max: Duration

    @model_validator(mode="after")
    def _ordered(self) -> LogNormalDelay:
        if pd.Timedelta(self.max) < pd.Timedelta(self.min):
            raise ValueError(f"max ({self.max}) is shorter than min ({self.min})")
        return self

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        median = pd.Timedelta(self.median).value
        raw = rng.lognormal(np.log(max(median, 1)), self.sigma, size=n)
        lo, hi = pd.Timedelta(self.min).value, pd.Timedelta(self.max).value
        return np.clip(raw, lo, hi).astype(np.int64).astype("timedelta64[ns]")


# One of the delay distributions, told apart by ``distribution``.
Delay = Annotated[UniformDelay | LogNormalDelay, Field(discriminator="distribution")]


def parse_delay(mapping: dict) -> UniformDelay | LogNormalDelay:
    """A delay distribution from a mapping (``distribution`` and its parameters).

    Raises:
        ValueError: The mapping is not a valid delay distribution (the reason says why).
    """
    try:
        return TypeAdapter(Delay).validate_python(dict(mapping))
    except ValidationError as exc:
        raise ValueError(f"Invalid label delay {dict(mapping)}: {exc}") from None


class PendingLabelParams(StrictParams):
    """How long and how many labels wait for a transaction not seen yet."""

    max_labels: int = Field(ge=1)
    max_age: Duration


class LabelParams(StrictParams):
    """``params:labels`` (``conf/base/parameters_labels.yml``).

    Attributes:
        source: Where ingestion and monitoring take labels from: ``transactions`` (the
            rows' own ``is_fraud``, a file source) or ``topic`` (only the label topic,
            joined by transaction id; the rows' own ``is_fraud`` is ignored).
        delay: The producer's delay from a transaction to its label.
        seed: Seed of the delays.
        pending: Bounds of the wait of a label for its transaction (the scorer).
    """

    group = "labels"

    source: Literal["transactions", "topic"]
    delay: Delay
    seed: int
    pending: PendingLabelParams


def strip_labels(transactions: pd.DataFrame) -> pd.DataFrame:
    """The transactions as a payment network sends them: without label or scenario."""
    return transactions.drop(columns=[c for c in LABEL_ONLY_COLUMNS if c in transactions])


def schedule_labels(
    transactions: pd.DataFrame, delay: UniformDelay | LogNormalDelay, seed: int
) -> pd.DataFrame:
    """One label message per labelled transaction, in the order their time comes.

    Args:
        transactions: Rows with ``is_fraud`` (rows without a label or a parseable time
            get no label message).
        delay: The delay distribution (``params:labels.delay``).
        seed: Seed of the draws (``params:labels.seed``).

    Returns:
        ``LABEL_COLUMNS``, ``label_timestamp`` being the transaction's time plus a drawn
        delay, sorted by it (stable).
    """
    if schema.LABEL not in transactions:
        raise ValueError(
            f"The transactions have no '{schema.LABEL}' column: there are no labels to send"
        )
    times = transactions[schema.TIMESTAMP]
    if not pd.api.types.is_datetime64_any_dtype(times):
        times = pd.to_datetime(times, errors="coerce", format="mixed")
    times = pd.Series(times.to_numpy("datetime64[ns]"), index=transactions.index)
    labels = pd.to_numeric(transactions[schema.LABEL], errors="coerce")
    usable = labels.isin([0, 1]).to_numpy() & times.notna().to_numpy()
    if not usable.all():
        logger.info(
            "%d transactions have no label or no valid time: no label sent for them",
            int((~usable).sum()),
        )
    rows = transactions.loc[usable]
    rng = np.random.default_rng(seed)
    # Whole milliseconds: the resolution of the times in messages.
    delays = delay.draw(rng, len(rows)).astype("timedelta64[ms]").astype("timedelta64[ns]")
    out = pd.DataFrame(
        {
            schema.TRANSACTION_ID: rows[schema.TRANSACTION_ID].astype("str").to_numpy(),
            schema.CUSTOMER_ID: rows[schema.CUSTOMER_ID].astype("str").to_numpy(),
            schema.TERMINAL_ID: rows[schema.TERMINAL_ID].astype("str").to_numpy(),
            schema.TIMESTAMP: times[usable].to_numpy(),
            schema.LABEL: labels[usable].astype("int64").to_numpy(),
            LABEL_TIMESTAMP: times[usable].to_numpy() + delays,
        }
    )
    return out.sort_values(LABEL_TIMESTAMP, kind="stable", ignore_index=True)


def send_positions(transaction_times: pd.Series, label_times: pd.Series) -> np.ndarray:
    """For each label, how many transactions are sent before it.

    A label goes out right after the last transaction at or before its time: the replay
    reaches the label's time as it would in production, so the delay scales with the
    replay speed. Labels due after the last transaction follow it, in time order.

    Args:
        transaction_times: The transactions' times, in send order (ascending).
        label_times: The labels' times, ascending.
    """
    tx = transaction_times
    if not pd.api.types.is_datetime64_any_dtype(tx):
        tx = pd.to_datetime(tx, errors="coerce", format="mixed")
    tx_ns = tx.to_numpy("datetime64[ns]")
    # Unparseable times sort last in the replay; treat them as "never before a label".
    tx_ns = np.where(np.isnat(tx_ns), np.datetime64("2262-04-11"), tx_ns)
    return np.searchsorted(tx_ns, label_times.to_numpy("datetime64[ns]"), side="right")


def attach_labels(
    transactions: pd.DataFrame, labels: pd.DataFrame | None, source: str
) -> pd.DataFrame:
    """The transactions with the labels known so far, joined by transaction id.

    Args:
        transactions: Rows in the canonical schema.
        labels: Label rows (``transaction_id``, ``is_fraud``, ...); the first label of a
            transaction counts. ``None`` or empty: none known yet.
        source: ``topic``: only ``labels`` count (rows without one are unlabelled);
            ``transactions``: the rows' own labels, completed by ``labels``.

    Returns:
        A new frame, the same rows and columns, ``is_fraud`` as ``Int8``.
    """
    if source not in ("transactions", "topic"):
        raise ValueError(f"source must be 'transactions' or 'topic', got {source!r}")
    out = transactions.copy()
    own = (
        pd.to_numeric(out[schema.LABEL], errors="coerce")
        if schema.LABEL in out and source == "transactions"
        else pd.Series(np.nan, index=out.index, dtype="float64")
    )
    if labels is not None and len(labels):
        first = labels.drop_duplicates(schema.TRANSACTION_ID, keep="first")
        known = pd.Series(
            pd.to_numeric(first[schema.LABEL], errors="coerce").to_numpy(dtype="float64"),
            index=first[schema.TRANSACTION_ID].astype("str").to_numpy(),
        )
        joined = out[schema.TRANSACTION_ID].astype("str").map(known)
        own = own.where(own.notna(), pd.Series(joined.to_numpy(), index=out.index))
    out[schema.LABEL] = own.astype("Float64").astype("Int8")
    return out


def labels_known_at(labels: pd.DataFrame, moment: pd.Timestamp) -> pd.DataFrame:
    """The labels whose time is at or before ``moment``."""
    return labels.loc[labels[LABEL_TIMESTAMP] <= moment].reset_index(drop=True)


@dataclass(frozen=True)
class Label:
    """One decoded label message (times in milliseconds since the epoch, UTC)."""

    transaction_id: str
    is_fraud: int
    transaction_ms: int
    label_ms: int


@dataclass
class BufferCounters:
    """What the buffer did: labels that waited, found their transaction, were dropped."""

    buffered: int = 0
    matched: int = 0
    overflowed: int = 0
    expired: int = 0


class LabelBuffer:
    """Labels waiting for a transaction not seen yet, bounded in number and in age.

    Age is event time on the transactions' clock: once the transactions seen have moved
    ``max_age`` past a waiting label's transaction time, that transaction is not coming
    (or so late that nothing is scored with it) and the label is dropped. When more than
    ``max_labels`` wait, the label of the oldest transaction is dropped. Every drop is
    counted and logged.

    Args:
        max_labels: Most labels waiting at once.
        max_age_ms: Longest wait, in event-time milliseconds.
    """

    def __init__(self, max_labels: int, max_age_ms: int) -> None:
        if max_labels < 1:
            raise ValueError("max_labels must be at least 1")
        if max_age_ms < 0:
            raise ValueError("max_age_ms cannot be negative")
        self.max_labels = max_labels
        self.max_age_ms = max_age_ms
        self.counters = BufferCounters()
        self._waiting: dict[str, Label] = {}
        # (transaction time, id) of the waiting labels; entries of labels taken since
        # are skipped when they come up.
        self._heap: list[tuple[int, str]] = []

    @classmethod
    def from_params(cls, params: PendingLabelParams) -> LabelBuffer:
        """From ``params:labels.pending``."""
        return cls(params.max_labels, int(pd.Timedelta(params.max_age) // pd.Timedelta("1ms")))

    def __len__(self) -> int:
        return len(self._waiting)

    def __contains__(self, transaction_id: str) -> bool:
        return transaction_id in self._waiting

    def add(self, label: Label) -> None:
        """Keeps ``label`` until its transaction arrives (the first label of an id wins)."""
        if label.transaction_id in self._waiting:
            return
        self._waiting[label.transaction_id] = label
        heapq.heappush(self._heap, (label.transaction_ms, label.transaction_id))
        self.counters.buffered += 1
        overflow = 0
        while len(self._waiting) > self.max_labels:
            overflow += self._pop_oldest()
        if overflow:
            self.counters.overflowed += overflow
            logger.warning(
                "%d label(s) waiting for their transaction dropped: the buffer holds at most "
                "%d (%d dropped so far)",
                overflow,
                self.max_labels,
                self.counters.overflowed,
            )

    def take(self, transaction_ids: list[str]) -> list[Label]:
        """The waiting labels of these transactions, removed from the buffer."""
        if not self._waiting:
            return []
        found = [
            label for tid in transaction_ids if (label := self._waiting.pop(tid, None)) is not None
        ]
        self.counters.matched += len(found)
        if len(self._heap) > 2 * len(self._waiting) + 1024:
            self._heap = [(t, tid) for t, tid in self._heap if tid in self._waiting]
            heapq.heapify(self._heap)
        return found

    def expire(self, watermark_ms: int | None) -> int:
        """Drops the labels whose transaction is more than ``max_age`` before
        ``watermark_ms`` (the newest transaction time seen); returns how many."""
        if watermark_ms is None:
            return 0
        cutoff = watermark_ms - self.max_age_ms
        expired = 0
        while self._heap and self._heap[0][0] < cutoff:
            if self._pop_oldest():
                expired += 1
        if expired:
            self.counters.expired += expired
            logger.warning(
                "%d label(s) dropped: their transaction did not arrive within %s of its time "
                "(%d so far)",
                expired,
                pd.Timedelta(milliseconds=self.max_age_ms),
                self.counters.expired,
            )
        return expired

    def _pop_oldest(self) -> bool:
        """Removes the label of the oldest transaction; False for a stale heap entry."""
        t, tid = heapq.heappop(self._heap)
        label = self._waiting.get(tid)
        if label is None or label.transaction_ms != t:
            return False
        del self._waiting[tid]
        return True
