"""``OnlineFeatures``: the online engine of the feature spec, one transaction at a time.

The real-time scorer cannot recompute ``create_features`` over weeks of history for
every message, so it keeps, for each key of each aggregation of the
:class:`~fraud_detection.features.spec.FeatureSpec` (customers, terminals, merchant
categories, novelty keys), the rows of the last ``horizon`` (the longest window plus
the label delay) and answers each new row's window queries from them. Nothing is
re-implemented loosely:

- cleansing is ``cleanse`` (or, on the scorer's pandas-free path, :func:`clean_category`,
  the same rules per value) and the temporal features are ``temporal_features``;
- the window sums are the ones ``SortedAxis`` computes: the same window bounds
  (``(t - w, t]`` up to the row itself; ``(t - delay - w, t - delay]`` for labels), and
  the amount sums as differences of Kahan-compensated prefix sums of the amounts
  shifted by the key's first amount, accumulated in the order pandas' grouped
  ``cumsum`` uses, so they are bit-identical to the batch ones;
- the formulas that turn sums into features (mean, std, ratio, z-score, seconds since
  the previous transaction, fraud share) are the functions of ``pandas_engine``, and
  the columns are ``feature_names(spec)``.

What a row sees: the rows that arrived before it with a time newer than the
*cutoff*, the newest event time so far (the row included) minus the horizon; rows at or
before the cutoff are evicted, and a key whose rows are all evicted is dropped, so the
state stays flat however many new cards arrive. So every row's features equal
``create_features`` over those rows and the row itself. For rows in time order that is
``create_features`` over the whole stream; a row arriving after later-stamped rows of
its key is placed by its time, but rows scored before it arrived cannot see it; a row
older than the cutoff is scored alone (its windows hold only itself) and changes no
state. Labels count once known: in the transaction message itself, or later through
``apply_labels`` (the scorer's label topic); a label must arrive within ``label_delay``
of its transaction to count for every row the batch features would count it for.

Past one process (``shared``): the aggregations keyed by something other than the
customer (terminal activity, delayed terminal and category risk) can live in a
:class:`SharedWindows` store that every scorer process reads and updates, while each
process keeps the customer-keyed ones of its own customers. The store answers the same
window queries with the same bounds; a row then also sees the rows other processes
wrote before its query (see ``fraud_detection.scoring.online_store``).

``tests/features/test_online.py`` proves all this against ``create_features``.
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from heapq import heappop, heappush
from typing import Any, Protocol

import numpy as np
import pandas as pd

from fraud_detection import schema
from fraud_detection.features.pandas_engine import (
    amount_moments,
    amount_vs_history,
    cleanse,
    risk_share,
    seconds_since_previous,
    temporal_features,
)
from fraud_detection.features.spec import (
    Aggregation,
    FeatureParams,
    FeatureSpec,
    Measure,
    build_spec,
    computed_feature_names,
    feature_names,
    passthrough_columns,
)

logger = logging.getLogger(__name__)

_MS = pd.Timedelta(milliseconds=1)
# Compact a key's lists once this many rows (and half of the list) are evicted.
_COMPACT_AFTER = 64


@dataclass(frozen=True, slots=True)
class SharedAggregation:
    """An aggregation held by a :class:`SharedWindows` store: ``count`` (rows in
    ``(max(t - w, cutoff), t]``) or ``fraud`` (labelled and fraudulent rows in
    ``(max(t - delay - w, cutoff), t - delay]``)."""

    name: str
    is_fraud: bool
    windows_ms: tuple[int, ...]
    delay_ms: int


@dataclass(slots=True)
class SharedRows:
    """One batch's rows for the shared aggregations, in time order: ``keys[k][i]`` is row
    ``i``'s key for shared aggregation ``k``; ``labels[i]`` 1 / 0 when the row came with
    its label, -1 otherwise; ``cutoffs[i]`` the newest time minus the horizon at the row."""

    ids: list[str]
    times: list[int]
    cutoffs: list[int]
    keys: list[list[Any]]
    labels: list[int]


class SharedWindows(Protocol):
    """Window state several processes share (``fraud_detection.scoring.online_store``).

    ``ingest`` adds each row (once per id: a repeated id is counted as already there)
    and returns, per shared aggregation, the window counts of every row as the local
    state would give them (``count``: an array (windows, rows); ``fraud``: the labelled
    and the fraudulent counts), rows earlier in the batch included. ``add_labels``
    records late labels: (aggregation index, key, time, id, is_fraud).
    """

    def ingest(
        self, aggregations: list[SharedAggregation], rows: SharedRows
    ) -> list[tuple[np.ndarray, np.ndarray | None]]: ...

    def add_labels(
        self, aggregations: list[SharedAggregation], labels: list[tuple[int, Any, int, str, bool]]
    ) -> None: ...


def is_customer_keyed(agg: Aggregation) -> bool:
    """Whether every row of a key belongs to one customer (the key starts with it):
    such state stays with the process that owns the customer's partition."""
    return agg.keys[0] == schema.CUSTOMER_ID


def _kahan(acc: float, comp: float, value: float) -> tuple[float, float]:
    """One step of the compensated sum of pandas' grouped ``cumsum``."""
    y = value - comp
    t = acc + y
    comp = t - acc - y
    if math.isnan(comp):  # an infinite value: pandas resets the compensation
        comp = 0.0
    return t, comp


class _Times:
    """One key's row times in time order; rows at or before the cutoff are evicted
    lazily (``start`` moves, the list is compacted now and then)."""

    __slots__ = ("start", "times")

    def __init__(self) -> None:
        self.times: list[int] = []
        self.start = 0

    def insert(self, t: int) -> int:
        """Inserts ``t`` after the equal times (it arrived later); returns its index."""
        times = self.times
        if not times or times[-1] <= t:
            times.append(t)
            return len(times) - 1
        pos = bisect_right(times, t, self.start)
        times.insert(pos, t)
        return pos

    def count(self, pos: int, t: int, window_ms: int, cutoff: int) -> int:
        """Rows in ``(max(t - window, cutoff), t]`` up to and including the row at ``pos``."""
        return pos + 1 - bisect_right(self.times, max(t - window_ms, cutoff), self.start, pos)

    def between(self, lo_t: int, hi_t: int) -> int:
        """Rows with time in ``(lo_t, hi_t]``."""
        if hi_t <= lo_t:
            return 0
        times, start = self.times, self.start
        return bisect_right(times, hi_t, start) - bisect_right(times, lo_t, start)

    def evict(self, cutoff: int) -> bool:
        """Drops rows at or before ``cutoff``; returns whether the key is empty."""
        times = self.times
        start = self.start
        while start < len(times) and times[start] <= cutoff:
            start += 1
        if start > _COMPACT_AFTER and 2 * start > len(times):
            del times[:start]
            start = 0
        self.start = start
        return start == len(times)


class _Labels:
    """Times of one key's labelled rows and of its fraudulent ones."""

    __slots__ = ("fraud", "labelled")

    def __init__(self) -> None:
        self.labelled = _Times()
        self.fraud = _Times()

    def add(self, t: int, is_fraud: bool) -> None:
        self.labelled.insert(t)
        if is_fraud:
            self.fraud.insert(t)

    def window(self, t: int, delay_ms: int, window_ms: int, cutoff: int) -> tuple[int, int]:
        """(labelled, fraudulent) rows with time in
        ``(max(t - delay - window, cutoff), t - delay]``."""
        hi_t, lo_t = t - delay_ms, max(t - delay_ms - window_ms, cutoff)
        return self.labelled.between(lo_t, hi_t), self.fraud.between(lo_t, hi_t)

    def evict(self, cutoff: int) -> bool:
        return self.labelled.evict(cutoff) & self.fraud.evict(cutoff)


class _Amounts:
    """One key's rows: times, amounts and the compensated prefix sums of the shifted
    amounts and their squares, as ``SortedAxis.window_sum`` builds them.

    After compaction the last evicted row stays at index 0 (``start`` is then 1): its
    prefix sums are the base the next windows subtract. It is never inside a window:
    windows start after the cutoff, and the base is at or before it.
    """

    __slots__ = ("amounts", "comp_s", "comp_ss", "first", "prefix_s", "prefix_ss", "start", "times")

    def __init__(self, first: float) -> None:
        self.first = first
        self.times: list[int] = []
        self.amounts: list[float] = []
        self.prefix_s: list[float] = []
        self.comp_s: list[float] = []
        self.prefix_ss: list[float] = []
        self.comp_ss: list[float] = []
        self.start = 0

    def insert(self, t: int, amount: float) -> int:
        times = self.times
        if not times or times[-1] <= t:
            pos = len(times)
            times.append(t)
            self.amounts.append(amount)
            self._accumulate_from(pos)
            return pos
        pos = bisect_right(times, t, self.start)
        times.insert(pos, t)
        self.amounts.insert(pos, amount)
        if pos == 0:
            self.first = amount  # earlier than every row the batch would see: new shift
        self._accumulate_from(pos)
        return pos

    def _accumulate_from(self, pos: int) -> None:
        """(Re)computes the prefix sums from row ``pos`` on."""
        del self.prefix_s[pos:], self.comp_s[pos:], self.prefix_ss[pos:], self.comp_ss[pos:]
        if pos == 0:
            acc_s = comp_s = acc_ss = comp_ss = 0.0
        else:
            acc_s, comp_s = self.prefix_s[-1], self.comp_s[-1]
            acc_ss, comp_ss = self.prefix_ss[-1], self.comp_ss[-1]
        first = self.first
        for amount in self.amounts[pos:]:
            shifted = amount - first
            acc_s, comp_s = _kahan(acc_s, comp_s, shifted)
            acc_ss, comp_ss = _kahan(acc_ss, comp_ss, shifted * shifted)
            self.prefix_s.append(acc_s)
            self.comp_s.append(comp_s)
            self.prefix_ss.append(acc_ss)
            self.comp_ss.append(comp_ss)

    def window(self, pos: int, t: int, window_ms: int, cutoff: int) -> tuple[float, float, float]:
        """(count, shifted sum, shifted squares sum) over ``(max(t - window, cutoff), t]``.

        The lower index is at least ``start`` (every row before it is at or before an
        earlier cutoff), so ``lo - 1`` is a row whose prefix sums are kept: a real row
        or the base, never a sum over history the window does not cover.
        """
        lo = bisect_right(self.times, max(t - window_ms, cutoff), self.start, pos)
        if lo > 0:
            return (
                float(pos + 1 - lo),
                self.prefix_s[pos] - self.prefix_s[lo - 1],
                self.prefix_ss[pos] - self.prefix_ss[lo - 1],
            )
        return float(pos + 1), self.prefix_s[pos] - 0.0, self.prefix_ss[pos] - 0.0

    def previous_gap(self, pos: int, t: int, cutoff: int) -> float:
        """Milliseconds since the previous row newer than the cutoff (NaN if none)."""
        if pos > self.start and self.times[pos - 1] > cutoff:
            return float(t - self.times[pos - 1])
        return math.nan

    def evict(self, cutoff: int) -> bool:
        """Drops rows at or before ``cutoff``; returns whether the key is empty."""
        times = self.times
        start = self.start
        while start < len(times) and times[start] <= cutoff:
            start += 1
        if start > _COMPACT_AFTER and 2 * start > len(times):
            keep = start - 1  # the last evicted row stays as the base
            for values in (
                times,
                self.amounts,
                self.prefix_s,
                self.comp_s,
                self.prefix_ss,
                self.comp_ss,
            ):
                del values[:keep]
            start = 1
        self.start = start
        return start == len(times)


def clean_category(value: Any) -> str:
    """One categorical value as ``cleanse`` leaves it: text, stripped, lower case,
    ``unknown`` when missing or empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    return str(value).strip().lower() or "unknown"


@dataclass(slots=True)
class TransactionRecords:
    """Decoded transactions as columns of Python values (the scorer's fast path).

    Categorical values are raw (the schema defaults filled in); ``timestamp_ns`` is
    nanoseconds since the epoch, UTC; ``is_fraud`` is NaN while unknown.
    """

    transaction_id: list[str]
    timestamp_ns: list[int]
    customer_id: list[str]
    terminal_id: list[str]
    amount: list[float]
    merchant_category: list[Any]
    currency: list[Any]
    country: list[Any]
    channel: list[Any]
    is_fraud: list[float]

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> TransactionRecords:
        """From a frame in the canonical schema (e.g. ``decode_transactions``)."""
        labels = (
            pd.to_numeric(frame[schema.LABEL], errors="coerce").astype("float64")
            if schema.LABEL in frame
            else pd.Series(np.nan, index=frame.index)
        )
        return cls(
            transaction_id=frame[schema.TRANSACTION_ID].astype("str").tolist(),
            timestamp_ns=frame[schema.TIMESTAMP]
            .to_numpy("datetime64[ns]")
            .astype(np.int64)
            .tolist(),
            customer_id=frame[schema.CUSTOMER_ID].astype("str").tolist(),
            terminal_id=frame[schema.TERMINAL_ID].astype("str").tolist(),
            amount=frame[schema.AMOUNT].astype("float64").tolist(),
            **{
                name: frame[name].astype(object).where(frame[name].notna(), None).tolist()
                for name in schema.CATEGORICAL_COLUMNS
            },
            is_fraud=labels.tolist(),
        )

    def __len__(self) -> int:
        return len(self.transaction_id)


@dataclass(slots=True)
class FeatureBatch:
    """Features of one micro-batch without a DataFrame: ids and categoricals as lists,
    numeric features as arrays (in ``feature_names(spec)`` order)."""

    transaction_id: list[str]
    timestamp_ns: np.ndarray
    customer_id: list[str]
    terminal_id: list[str]
    amount: np.ndarray
    categorical: dict[str, list[str]]
    is_fraud: np.ndarray
    numeric: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.transaction_id)

    def column(self, name: str) -> np.ndarray:
        """A numeric model input: a feature, or the amount itself."""
        return self.amount if name == schema.AMOUNT else self.numeric[name]

    def frame(self) -> pd.DataFrame:
        """The rows as ``create_features`` lays them out."""
        data: dict[str, Any] = {
            schema.TRANSACTION_ID: self.transaction_id,
            schema.TIMESTAMP: self.timestamp_ns.astype("datetime64[ns]"),
            schema.CUSTOMER_ID: self.customer_id,
            schema.TERMINAL_ID: self.terminal_id,
            schema.AMOUNT: self.amount,
            **{name: pd.array(values, dtype="string") for name, values in self.categorical.items()},
            schema.LABEL: pd.array(
                np.where(np.isnan(self.is_fraud), np.nan, self.is_fraud), dtype="Float64"
            ).astype("Int8"),
        }
        return pd.DataFrame({**data, **self.numeric})


@dataclass(slots=True)
class _Sums:
    """One aggregation's window sums for the rows of an ingested batch: arrays of
    shape (windows, rows); ``s``, ``ss``, ``first`` and ``gap`` for ``amount``, ``f``
    for ``fraud``. Repeated (skipped) rows keep neutral values until they are dropped."""

    n: np.ndarray
    s: np.ndarray | None = None
    ss: np.ndarray | None = None
    f: np.ndarray | None = None
    first: np.ndarray | None = None
    gap: np.ndarray | None = None

    @classmethod
    def empty(cls, agg: Aggregation, rows: int) -> _Sums:
        shape = (len(agg.windows), rows)
        if agg.measure is Measure.AMOUNT:
            return cls(
                n=np.ones(shape),
                s=np.zeros(shape),
                ss=np.zeros(shape),
                first=np.zeros(rows),
                gap=np.zeros(rows),
            )
        if agg.measure is Measure.FRAUD:
            return cls(n=np.zeros(shape), f=np.zeros(shape))
        return cls(n=np.zeros(shape))


@dataclass(slots=True)
class _Plan:
    """One aggregation as the ingest loop reads it: its measure, window lengths in ms
    and key columns (the key is the value of one column, or a tuple of several)."""

    measure: Measure
    windows_ms: list[int]
    delay_ms: int
    key_columns: tuple[str, ...]

    @classmethod
    def of(cls, agg: Aggregation) -> _Plan:
        return cls(
            agg.measure,
            [w.ms for w in agg.windows],
            agg.delay.ms if agg.delay else 0,
            agg.keys,
        )


@dataclass(slots=True)
class _Row:
    """What eviction and a late label need to find a transaction's keys."""

    time: int
    keys: tuple
    labelled: bool = False


@dataclass(slots=True)
class StateStats:
    """Counters of the state, for logs and the scorer's status line.

    ``keys`` is the number of keys held over all aggregations (customers, terminals,
    categories, novelty keys): it stays flat on a long stream, as keys whose rows
    are all older than the horizon are dropped (``evicted_keys`` counts them).
    ``rows_beyond_horizon`` counts rows older than the horizon when they arrived
    (scored alone; see the module docstring).
    """

    rows: int = 0
    customers: int = 0
    terminals: int = 0
    keys: int = 0
    evicted_keys: int = 0
    duplicates: int = 0
    labels_applied: int = 0
    labels_pending: int = 0
    labels_ignored: int = 0
    late_rows: int = 0
    rows_beyond_horizon: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class OnlineFeatures:
    """Incremental ``create_features`` for a stream of transactions.

    Example::

        online = OnlineFeatures(params["features"])  # or a FeatureSpec
        online.update(history)  # warm up (features not built)
        features = online.update(batch, build=True)  # rows of create_features output
        online.apply_labels(labels)  # transaction_id, is_fraud
    """

    def __init__(
        self,
        params: dict[str, Any] | FeatureParams | FeatureSpec,
        *,
        max_pending_labels: int = 1_000_000,
        shared: SharedWindows | None = None,
    ) -> None:
        self.spec = params if isinstance(params, FeatureSpec) else build_spec(params)
        self._shared = shared
        self._shared_index = [] if shared is None else _shareable(self.spec)
        self._shared_aggs = [
            SharedAggregation(
                agg.name,
                agg.measure is Measure.FRAUD,
                tuple(w.ms for w in agg.windows),
                agg.delay.ms if agg.delay else 0,
            )
            for agg in (self.spec.aggregations[k] for k in self._shared_index)
        ]
        self._label_writes: list[tuple[int, Any, int, str, bool]] = []
        self.horizon_ms = int(self.spec.horizon // _MS)
        self._plans = [_Plan.of(agg) for agg in self.spec.aggregations]
        self._tables: list[dict[Any, Any]] = [{} for _ in self._plans]
        self._fraud = [k for k, p in enumerate(self._plans) if p.measure is Measure.FRAUD]
        self._key_columns = list(dict.fromkeys(c for p in self._plans for c in p.key_columns))
        self._computed = computed_feature_names(self.spec)
        self._customers = self._table_of((schema.CUSTOMER_ID,))
        self._terminals = self._table_of((schema.TERMINAL_ID,))
        self._rows: dict[str, _Row] = {}
        # A heap of (time, id): eviction follows event time, not arrival order. In
        # arrival order, one partition replayed after another put rows of the first
        # partition's last days ahead of the others' old rows, which were then held past
        # the horizon and evicted in one burst (30,000 rows in 284 ms while scoring).
        self._arrivals: list[tuple[int, str]] = []
        self._pending: dict[str, bool] = {}
        self._pending_order: deque[str] = deque()
        self._max_pending = max_pending_labels
        self.watermark: int | None = None
        self.stats = StateStats()

    def _table_of(self, keys: tuple[str, ...]) -> dict[Any, Any]:
        """The first aggregation's state keyed by ``keys`` (for the counters)."""
        for plan, table in zip(self._plans, self._tables, strict=True):
            if plan.key_columns == keys:
                return table
        return {}

    @property
    def horizon(self) -> pd.Timedelta:
        """How far back the state reaches: rows older than this before the newest are dropped."""
        return pd.Timedelta(milliseconds=self.horizon_ms)

    def feature_names(self) -> list[str]:
        """The columns of the output: ``feature_names(spec)``, as ``create_features``."""
        return feature_names(self.spec)

    @property
    def shared_aggregations(self) -> list[str]:
        """Names of the aggregations held by the shared store (none without one)."""
        return [agg.name for agg in self._shared_aggs]

    # ----------------------------------------------------------------- update --

    def update(self, transactions: pd.DataFrame, *, build: bool = True) -> pd.DataFrame | None:
        """Adds transactions to the state and returns their features.

        Args:
            transactions: Rows in the canonical schema (one micro-batch, any order).
            build: Whether to build the feature frame (``False`` for a warm-up).

        Returns:
            The rows' features, in time order, with the columns and types of
            ``create_features``; ``None`` when ``build`` is false. Transaction ids
            already in the state are skipped (at-least-once delivery repeats them).
        """
        if transactions.empty:
            return pd.DataFrame(columns=self.feature_names()) if build else None
        df = cleanse(transactions)
        ns = df[schema.TIMESTAMP].to_numpy("datetime64[ns]").astype(np.int64)
        labels = (
            pd.to_numeric(df[schema.LABEL], errors="coerce").astype("float64")
            if schema.LABEL in df
            else pd.Series(np.nan, index=df.index)
        )
        columns = {
            col: df[col].tolist()
            if col in schema.CATEGORICAL_COLUMNS
            else df[col].astype("str").tolist()
            for col in self._key_columns
        }
        keep, sums = self._ingest(
            df[schema.TRANSACTION_ID].astype("str").tolist(),
            (ns // 1_000_000).tolist(),
            columns,
            df[schema.AMOUNT].tolist(),
            labels.tolist(),
        )
        if not build:
            return None
        numeric = self._numeric(ns, df[schema.AMOUNT].to_numpy(np.float64), sums)
        base = df[passthrough_columns(self.spec)]
        frame = pd.concat([base, pd.DataFrame(numeric, index=df.index)], axis=1)
        return frame if keep.all() else frame.loc[keep].reset_index(drop=True)

    def update_records(
        self, records: TransactionRecords, *, build: bool = True
    ) -> FeatureBatch | None:
        """:meth:`update` for decoded messages, without pandas: the scorer's fast path.

        Categoricals are cleaned with :func:`clean_category` (what ``cleanse`` does),
        rows are put in time order (stable), and the same state and formulas give the
        same numbers; ``tests/features/test_online.py`` checks both paths agree.
        """
        n = len(records.transaction_id)
        ts = records.timestamp_ns
        order = (
            sorted(range(n), key=ts.__getitem__)
            if any(ts[i] > ts[i + 1] for i in range(n - 1))
            else range(n)
        )
        ids = [records.transaction_id[i] for i in order]
        ns_list = [ts[i] for i in order]
        customers = [records.customer_id[i] for i in order]
        terminals = [records.terminal_id[i] for i in order]
        amounts = [records.amount[i] for i in order]
        cats = {
            name: [clean_category(getattr(records, name)[i]) for i in order]
            for name in self.spec.categorical
        }
        labels = [records.is_fraud[i] for i in order]
        raw = {schema.CUSTOMER_ID: customers, schema.TERMINAL_ID: terminals, **cats}
        columns = {
            col: raw[col] if col in raw else [getattr(records, col)[i] for i in order]
            for col in self._key_columns
        }
        keep, sums = self._ingest(ids, [t // 1_000_000 for t in ns_list], columns, amounts, labels)
        if not build:
            return None
        ns = np.asarray(ns_list, dtype=np.int64)
        amount = np.asarray(amounts, dtype=np.float64)
        numeric = self._numeric(ns, amount, sums)
        if not keep.all():
            rows = np.flatnonzero(keep).tolist()
            ids, customers, terminals = ([v[i] for i in rows] for v in (ids, customers, terminals))
            cats = {name: [v[i] for i in rows] for name, v in cats.items()}
            ns, amount, labels = ns[keep], amount[keep], [labels[i] for i in rows]
            numeric = {name: values[keep] for name, values in numeric.items()}
        return FeatureBatch(
            ids,
            ns,
            customers,
            terminals,
            amount,
            cats,
            np.asarray(labels, dtype=np.float64),
            numeric,
        )

    def _ingest(
        self,
        ids: list[str],
        times: list[int],
        columns: dict[str, list[Any]],
        amounts: list[float],
        labels: list[float],
    ) -> tuple[np.ndarray, list[_Sums]]:
        """Adds cleaned rows, in time order, to the state; returns which rows are new
        and each aggregation's window sums."""
        n_rows = len(ids)
        keep = np.ones(n_rows, dtype=bool)
        sums = [_Sums.empty(agg, n_rows) for agg in self.spec.aggregations]
        plans, tables, horizon = self._plans, self._tables, self.horizon_ms
        key_lists = [
            columns[p.key_columns[0]]
            if len(p.key_columns) == 1
            else list(zip(*(columns[c] for c in p.key_columns), strict=True))
            for p in plans
        ]
        # One tuple per local aggregation, unpacked in the loop (attribute lookups cost);
        # the shared ones are answered by the store after the loop, in one call.
        shared_index = self._shared_index
        work = [
            (k, p.measure is Measure.AMOUNT, p.measure is Measure.COUNT, p.windows_ms)
            + (p.delay_ms, table, out.n, out.s, out.ss, out.f, out.first, out.gap)
            for k, (p, table, out) in enumerate(zip(plans, tables, sums, strict=True))
            if k not in shared_index
        ]
        shared = SharedRows([], [], [], [[] for _ in shared_index], [])
        shared_rows: list[int] = []
        seen = self._rows
        stats = self.stats
        for i in range(n_rows):
            tid = ids[i]
            if tid in seen:
                keep[i] = False
                stats.duplicates += 1
                continue
            t = times[i]
            amount = amounts[i]
            watermark = self.watermark
            if watermark is not None and t < watermark:
                stats.late_rows += 1
            newest = t if watermark is None or t > watermark else watermark
            cutoff = newest - horizon
            self.watermark = newest
            keys = tuple([keyed[i] for keyed in key_lists])
            if t <= cutoff:
                # Older than the horizon: every row of its keys it could see is gone,
                # so it is scored alone, and no later row could see it either.
                self._alone(i, amount, sums)
                seen[tid] = _Row(t, keys, labelled=True)
                self._pending.pop(tid, None)
                heappush(self._arrivals, (t, tid))
                stats.rows_beyond_horizon += 1
                continue
            for k, is_amount, is_count, windows, delay, table, n, s, ss, f, first, gap in work:
                key = keys[k]
                if is_amount:
                    state = table.get(key)
                    if state is None:
                        state = table[key] = _Amounts(amount)
                    pos = state.insert(t, amount)
                    for j, w in enumerate(windows):
                        n[j, i], s[j, i], ss[j, i] = state.window(pos, t, w, cutoff)
                    first[i] = state.first
                    gap[i] = state.previous_gap(pos, t, cutoff)
                elif is_count:
                    state = table.get(key)
                    if state is None:
                        state = table[key] = _Times()
                    pos = state.insert(t)
                    for j, w in enumerate(windows):
                        n[j, i] = state.count(pos, t, w, cutoff)
                else:  # delayed labels (the row's own label is far too recent to count)
                    state = table.get(key)
                    if state is not None:
                        for j, w in enumerate(windows):
                            n[j, i], f[j, i] = state.window(t, delay, w, cutoff)
            row = seen[tid] = _Row(t, keys)
            label = labels[i]
            inline = label is not None and not math.isnan(label)
            if shared_index:
                shared_rows.append(i)
                shared.ids.append(tid)
                shared.times.append(t)
                shared.cutoffs.append(cutoff)
                shared.labels.append(int(bool(label)) if inline else -1)
                for keyed, k in zip(shared.keys, shared_index, strict=True):
                    keyed.append(keys[k])
            if inline:  # the label came with the transaction (the store adds it itself)
                self._label(row, tid, bool(label), to_store=False)
            elif self._pending:
                pending = self._pending.pop(tid, None)
                if pending is not None:
                    self._label(row, tid, pending)
            heappush(self._arrivals, (t, tid))
            self._evict()
        if shared_rows:
            answers = self._shared.ingest(self._shared_aggs, shared)
            for k, (counts, frauds) in zip(shared_index, answers, strict=True):
                sums[k].n[:, shared_rows] = counts
                if frauds is not None:
                    sums[k].f[:, shared_rows] = frauds
        self._flush_labels()
        stats.rows = len(seen)
        stats.customers = len(self._customers)
        stats.terminals = len(self._terminals)
        stats.keys = sum(len(table) for table in tables)
        return keep, sums

    def _alone(self, i: int, amount: float, sums: list[_Sums]) -> None:
        """Row ``i``'s window sums as if it were its keys' only row."""
        for plan, out in zip(self._plans, sums, strict=True):
            if plan.measure is Measure.AMOUNT:
                out.first[i] = amount  # n = 1, s = ss = 0 (the defaults)
                out.gap[i] = math.nan
            elif plan.measure is Measure.COUNT:
                out.n[:, i] = 1.0

    def _numeric(
        self, ns: np.ndarray, amount: np.ndarray, sums: list[_Sums]
    ) -> dict[str, np.ndarray]:
        """The computed features, in ``feature_names(spec)`` order, from the shared formulas."""
        spec = self.spec
        parts = temporal_features(ns, amount, spec.night_until_hour)
        for agg, out in zip(spec.aggregations, sums, strict=True):
            for j, w in enumerate(agg.windows):
                parts[agg.count_column(w)] = out.n[j]
                if agg.measure is Measure.AMOUNT:
                    parts[agg.mean_column(w)], parts[agg.std_column(w)] = amount_moments(
                        out.n[j], out.s[j], out.ss[j], out.first
                    )
                elif agg.measure is Measure.FRAUD:
                    parts[agg.risk_column(w)] = risk_share(out.n[j], out.f[j])
            if agg.since_previous:
                parts[agg.since_previous_column] = seconds_since_previous(
                    out.gap, spec.max_gap_days
                )
            if agg.history is not None:
                parts[agg.ratio_column], parts[agg.zscore_column] = amount_vs_history(
                    amount,
                    parts[agg.mean_column(agg.history)],
                    parts[agg.std_column(agg.history)],
                    spec.ratio_cap,
                )
        return {name: parts[name] for name in self._computed}

    # ----------------------------------------------------------------- labels --

    def apply_labels(self, transaction_ids: list[str], labels: list[int | bool]) -> int:
        """Records late-arriving labels (1 fraud, 0 genuine) of known transactions.

        A label for a transaction not seen yet waits (bounded) for it; a second label
        for a labelled transaction is ignored. Returns how many labels were applied.
        """
        applied = 0
        for tid, label in zip(transaction_ids, labels, strict=True):
            row = self._rows.get(tid)
            if row is None:
                if tid not in self._pending:
                    self._pending_order.append(tid)
                self._pending[tid] = bool(label)
                while len(self._pending_order) > self._max_pending:
                    self._pending.pop(self._pending_order.popleft(), None)
                continue
            if row.labelled:
                self.stats.labels_ignored += 1
                continue
            self._label(row, tid, bool(label))
            applied += 1
        self._flush_labels()
        self.stats.labels_pending = len(self._pending)
        return applied

    def _label(self, row: _Row, tid: str, is_fraud: bool, *, to_store: bool = True) -> None:
        row.labelled = True
        self.stats.labels_applied += 1
        if row.time <= self.watermark - self.horizon_ms:
            return  # no window reaches back to it any more (and lists stay sorted)
        for k in self._fraud:
            if k in self._shared_index:
                if to_store:
                    self._label_writes.append(
                        (self._shared_index.index(k), row.keys[k], row.time, tid, is_fraud)
                    )
                continue
            table, key = self._tables[k], row.keys[k]
            labels = table.get(key)
            if labels is None:
                labels = table[key] = _Labels()
            labels.add(row.time, is_fraud)

    def _flush_labels(self) -> None:
        if self._label_writes:
            writes, self._label_writes = self._label_writes, []
            self._shared.add_labels(self._shared_aggs, writes)

    # --------------------------------------------------------------- eviction --

    def _evict(self) -> None:
        """Drops the rows at or before the cutoff (the newest time minus the horizon),
        and the keys left with no row: amortised, each row is evicted once."""
        cutoff = self.watermark - self.horizon_ms
        arrivals = self._arrivals
        tables = self._tables
        while arrivals and arrivals[0][0] <= cutoff:
            _, tid = heappop(arrivals)
            row = self._rows.pop(tid, None)
            if row is None:
                continue
            for table, key in zip(tables, row.keys, strict=True):
                state = table.get(key)
                if state is not None and state.evict(cutoff):
                    del table[key]
                    self.stats.evicted_keys += 1
        if len(self._pending_order) > len(self._pending) * 2 + 1024:
            self._pending_order = deque(tid for tid in self._pending_order if tid in self._pending)


def _shareable(spec: FeatureSpec) -> list[int]:
    """Positions of the aggregations a shared store holds: those not keyed by customer.

    Raises:
        ValueError: One of them sums amounts (its sums must be the batch's bit for bit,
            prefix sums over the key's whole history, which no store keeps yet).
    """
    index = []
    for k, agg in enumerate(spec.aggregations):
        if is_customer_keyed(agg):
            continue
        if agg.measure is Measure.AMOUNT:
            raise ValueError(
                f"Aggregation {agg.name!r} sums amounts per {'/'.join(agg.keys)}: it cannot be "
                "shared between scorer processes yet. Turn it off (e.g. "
                "features.terminal_amount_windows: []) or run one scorer process without "
                "an online store"
            )
        index.append(k)
    return index
