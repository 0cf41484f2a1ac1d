"""``OnlineFeatures``: the features of ``create_features``, one transaction at a time.

The real-time scorer cannot recompute ``create_features`` over weeks of history for
every message, so it keeps, per customer, terminal, merchant category and novelty key,
the rows of the last ``horizon`` (the longest window plus the label delay) and answers
each new row's window queries from them. Nothing is re-implemented loosely:

- cleansing is ``cleanse`` (or, on the scorer's pandas-free path, :func:`clean_category`,
  the same rules per value) and the temporal features are ``temporal_features``;
- the window sums are the ones ``SortedAxis`` computes: the same window bounds
  (``(t - w, t]`` up to the row itself; ``(t - delay - w, t - delay]`` for labels), and
  the customer's amount sums as differences of Kahan-compensated prefix sums of the
  amounts shifted by the customer's first amount, accumulated in the order pandas'
  grouped ``cumsum`` uses, so they are bit-identical to the batch ones;
- the formulas that turn sums into features (mean, std, ratio, z-score, seconds since
  the previous transaction, fraud share) are the functions of
  ``fraud_detection.features``.

``tests/scoring/test_features.py`` proves the result equal to ``create_features`` on
the same rows. Equality needs the batch and the stream to see the same rows in the
same order: rows are processed in arrival order (a micro-batch is first sorted by
time, as ``cleanse`` does), so a row arriving after later-stamped rows of its key is
placed by its time, but rows scored before it arrived cannot see it. Labels count
once known: in the transaction message itself, or later through ``apply_labels``
(the scorer's label topic); a label must arrive within ``label_delay`` of its
transaction to count for every row the batch features would count it for.
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fraud_detection import schema
from fraud_detection.features import (
    ID_COLUMNS,
    FeatureParams,
    amount_moments,
    amount_vs_history,
    cleanse,
    risk_share,
    seconds_since_previous,
    temporal_features,
    window_suffix,
)

logger = logging.getLogger(__name__)

_MS = pd.Timedelta(milliseconds=1)
# Compact a key's lists once this many rows (and half of the list) are evicted.
_COMPACT_AFTER = 64


def _ms(text: str) -> int:
    return int(pd.Timedelta(text) // _MS)


def _kahan(acc: float, comp: float, value: float) -> tuple[float, float]:
    """One step of the compensated sum of pandas' grouped ``cumsum``."""
    y = value - comp
    t = acc + y
    comp = t - acc - y
    if math.isnan(comp):  # an infinite value: pandas resets the compensation
        comp = 0.0
    return t, comp


class _Times:
    """One key's row times in time order; rows older than the horizon are evicted
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
        pos = bisect_right(times, t)
        times.insert(pos, t)
        return pos

    def count(self, pos: int, t: int, window_ms: int) -> int:
        """Rows in ``(t - window, t]`` up to and including the row at ``pos``."""
        return pos + 1 - bisect_right(self.times, t - window_ms, 0, pos)

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

    def window(self, t: int, delay_ms: int, window_ms: int) -> tuple[int, int]:
        """(labelled, fraudulent) rows with time in ``(t - delay - window, t - delay]``."""
        hi_t, lo_t = t - delay_ms, t - delay_ms - window_ms
        lt, ft = self.labelled.times, self.fraud.times
        n = bisect_right(lt, hi_t) - bisect_right(lt, lo_t)
        f = bisect_right(ft, hi_t) - bisect_right(ft, lo_t)
        return n, f

    def evict(self, cutoff: int) -> bool:
        return self.labelled.evict(cutoff) & self.fraud.evict(cutoff)


class _Customer:
    """One customer's rows: times, amounts and the compensated prefix sums of the
    shifted amounts and their squares, as ``SortedAxis.window_sum`` builds them.

    After eviction the last evicted row stays at index 0 (``start`` is then 1): its
    prefix sums are the base of the next windows and its time gives the gap to the
    previous transaction, exactly as the batch sees it.
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
        pos = bisect_right(times, t)
        times.insert(pos, t)
        self.amounts.insert(pos, amount)
        if pos == 0 and self.start == 0:
            self.first = amount  # earlier than every row the batch would see: new shift
        self._accumulate_from(pos)
        return pos

    def _accumulate_from(self, pos: int) -> None:
        """(Re)computes the prefix sums from row ``pos`` on."""
        del self.prefix_s[pos:], self.comp_s[pos:], self.prefix_ss[pos:], self.comp_ss[pos:]
        if pos == 0:
            acc_s = comp_s = acc_ss = comp_ss = 0.0
            start_shift = 0
        else:
            acc_s, comp_s = self.prefix_s[-1], self.comp_s[-1]
            acc_ss, comp_ss = self.prefix_ss[-1], self.comp_ss[-1]
            start_shift = pos
        first = self.first
        for amount in self.amounts[start_shift:]:
            shifted = amount - first
            acc_s, comp_s = _kahan(acc_s, comp_s, shifted)
            acc_ss, comp_ss = _kahan(acc_ss, comp_ss, shifted * shifted)
            self.prefix_s.append(acc_s)
            self.comp_s.append(comp_s)
            self.prefix_ss.append(acc_ss)
            self.comp_ss.append(comp_ss)

    def window(self, pos: int, t: int, window_ms: int) -> tuple[float, float, float]:
        """(count, shifted sum, shifted squares sum) over ``(t - window, t]``."""
        lo = bisect_right(self.times, t - window_ms, 0, pos)
        if lo > 0:
            return (
                float(pos + 1 - lo),
                self.prefix_s[pos] - self.prefix_s[lo - 1],
                self.prefix_ss[pos] - self.prefix_ss[lo - 1],
            )
        return float(pos + 1), self.prefix_s[pos] - 0.0, self.prefix_ss[pos] - 0.0

    def evict(self, cutoff: int) -> None:
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


def clean_category(value: Any) -> str:
    """One categorical value as ``cleanse`` leaves it: text, stripped, lower case,
    ``unknown`` when missing or empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    return str(value).strip().lower() or "unknown"


@dataclass
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


@dataclass
class FeatureBatch:
    """Features of one micro-batch without a DataFrame: ids and categoricals as lists,
    numeric features as arrays (in ``create_features``' column order)."""

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


@dataclass
class _WindowSums:
    """Per row of an ingested batch, the window sums the features are made of."""

    keep: np.ndarray
    cust_n: np.ndarray
    cust_s: np.ndarray
    cust_ss: np.ndarray
    first: np.ndarray
    gap: np.ndarray
    activity: np.ndarray
    term_n: np.ndarray
    term_f: np.ndarray
    cat_n: np.ndarray
    cat_f: np.ndarray
    novelty: np.ndarray

    @classmethod
    def empty(
        cls, n: int, customer: int, activity: int, terminal: int, category: int
    ) -> _WindowSums:
        # Repeated (skipped) rows keep these neutral values until they are dropped.
        return cls(
            keep=np.ones(n, dtype=bool),
            cust_n=np.ones((customer, n)),
            cust_s=np.zeros((customer, n)),
            cust_ss=np.zeros((customer, n)),
            first=np.zeros(n),
            gap=np.zeros(n),
            activity=np.zeros((activity, n)),
            term_n=np.zeros((terminal, n)),
            term_f=np.zeros((terminal, n)),
            cat_n=np.zeros((category, n)),
            cat_f=np.zeros((category, n)),
            novelty=np.zeros((3, n)),
        )


@dataclass
class _Row:
    """What a label needs to find its transaction's keys."""

    time: int
    terminal: str
    category: str
    labelled: bool
    keys: tuple = ()


@dataclass
class StateStats:
    """Counters of the state, for logs and the scorer's status line."""

    rows: int = 0
    customers: int = 0
    terminals: int = 0
    duplicates: int = 0
    labels_applied: int = 0
    labels_pending: int = 0
    labels_ignored: int = 0
    late_rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class OnlineFeatures:
    """Incremental ``create_features`` for a stream of transactions.

    Example::

        online = OnlineFeatures(params["features"])
        online.update(history)  # warm up (features not built)
        features = online.update(batch, build=True)  # rows of create_features output
        online.apply_labels(labels)  # transaction_id, is_fraud
    """

    def __init__(
        self, params: dict[str, Any] | FeatureParams, *, max_pending_labels: int = 1_000_000
    ) -> None:
        self.params = (
            params if isinstance(params, FeatureParams) else FeatureParams.from_dict(params)
        )
        p = self.params
        self._customer_windows = [(window_suffix(w), _ms(w)) for w in p.customer_windows]
        self._activity_windows = [(window_suffix(w), _ms(w)) for w in p.terminal_activity_windows]
        self._terminal_windows = [(window_suffix(w), _ms(w)) for w in p.terminal_windows]
        self._category_windows = [(window_suffix(w), _ms(w)) for w in p.category_risk_windows]
        self._novelty_ms = _ms(p.novelty_window)
        self._delay_ms = _ms(p.label_delay)
        self.horizon_ms = max(
            *(ms for _, ms in self._customer_windows),
            *(ms for _, ms in self._activity_windows),
            self._novelty_ms,
            *(ms + self._delay_ms for _, ms in self._terminal_windows + self._category_windows),
            int(p.max_gap_days * 86_400_000),
        )
        self._customers: dict[str, _Customer] = {}
        self._activity: dict[str, _Times] = {}
        self._terminal_labels: dict[str, _Labels] = {}
        self._category_labels: dict[str, _Labels] = {}
        self._novelty: dict[tuple, _Times] = {}
        self._rows: dict[str, _Row] = {}
        self._arrivals: deque[tuple[int, str]] = deque()
        self._pending: dict[str, bool] = {}
        self._pending_order: deque[str] = deque()
        self._max_pending = max_pending_labels
        self.watermark: int | None = None
        self.stats = StateStats()

    @property
    def horizon(self) -> pd.Timedelta:
        """How far back the state reaches: rows older than this before the newest are dropped."""
        return pd.Timedelta(milliseconds=self.horizon_ms)

    def feature_names(self) -> list[str]:
        """The columns of ``create_features``' output, in its order."""
        names = [*ID_COLUMNS, schema.AMOUNT, *schema.CATEGORICAL_COLUMNS, schema.LABEL]
        names += [
            "tx_hour",
            "tx_day_of_week",
            "tx_during_weekend",
            "tx_during_night",
            "tx_hour_sin",
            "tx_hour_cos",
            "tx_dow_sin",
            "tx_dow_cos",
            "amount_log",
        ]
        for suffix, _ in self._customer_windows:
            names += [
                f"customer_nb_tx_{suffix}",
                f"customer_avg_amount_{suffix}",
                f"customer_std_amount_{suffix}",
            ]
        longest = self._customer_windows[-1][0]
        names += [
            "customer_seconds_since_prev_tx",
            f"amount_to_customer_avg_{longest}",
            f"amount_zscore_customer_{longest}",
        ]
        names += [f"terminal_activity_nb_tx_{suffix}" for suffix, _ in self._activity_windows]
        for prefix, windows in (
            ("terminal", self._terminal_windows),
            ("category", self._category_windows),
        ):
            for suffix, _ in windows:
                names += [f"{prefix}_nb_tx_{suffix}", f"{prefix}_risk_{suffix}"]
        novelty = window_suffix(self.params.novelty_window)
        names += [
            f"{key}_nb_tx_{novelty}"
            for key in ("customer_country", "customer_channel", "customer_terminal")
        ]
        return names

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
        sums = self._ingest(
            df[schema.TRANSACTION_ID].astype("str").tolist(),
            (ns // 1_000_000).tolist(),
            df[schema.CUSTOMER_ID].astype("str").tolist(),
            df[schema.TERMINAL_ID].astype("str").tolist(),
            df[schema.MERCHANT_CATEGORY].tolist(),
            df[schema.COUNTRY].tolist(),
            df[schema.CHANNEL].tolist(),
            df[schema.AMOUNT].tolist(),
            labels.tolist(),
        )
        if not build:
            return None
        numeric = self._numeric(ns, df[schema.AMOUNT].to_numpy(np.float64), sums)
        base = df[[*ID_COLUMNS, schema.AMOUNT, *schema.CATEGORICAL_COLUMNS, schema.LABEL]]
        frame = pd.concat([base, pd.DataFrame(numeric, index=df.index)], axis=1)
        return frame if sums.keep.all() else frame.loc[sums.keep].reset_index(drop=True)

    def update_records(
        self, records: TransactionRecords, *, build: bool = True
    ) -> FeatureBatch | None:
        """:meth:`update` for decoded messages, without pandas: the scorer's fast path.

        Categoricals are cleaned with :func:`clean_category` (what ``cleanse`` does),
        rows are put in time order (stable), and the same state and formulas give the
        same numbers; ``tests/scoring/test_features.py`` checks both paths agree.
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
            for name in schema.CATEGORICAL_COLUMNS
        }
        labels = [records.is_fraud[i] for i in order]
        sums = self._ingest(
            ids,
            [t // 1_000_000 for t in ns_list],
            customers,
            terminals,
            cats[schema.MERCHANT_CATEGORY],
            cats[schema.COUNTRY],
            cats[schema.CHANNEL],
            amounts,
            labels,
        )
        if not build:
            return None
        ns = np.asarray(ns_list, dtype=np.int64)
        amount = np.asarray(amounts, dtype=np.float64)
        numeric = self._numeric(ns, amount, sums)
        keep = sums.keep
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

    def _ingest(  # noqa: PLR0917
        self,
        ids: list[str],
        times: list[int],
        customers: list[str],
        terminals: list[str],
        categories: list[str],
        countries: list[str],
        channels: list[str],
        amounts: list[float],
        labels: list[float],
    ) -> _WindowSums:
        """Adds cleaned rows, in time order, to the state; returns their window sums."""
        n_rows = len(ids)
        sums = _WindowSums.empty(
            n_rows,
            len(self._customer_windows),
            len(self._activity_windows),
            len(self._terminal_windows),
            len(self._category_windows),
        )
        cust_n, cust_s, cust_ss, first, gap = (
            sums.cust_n,
            sums.cust_s,
            sums.cust_ss,
            sums.first,
            sums.gap,
        )
        activity, novelty = sums.activity, sums.novelty
        term_n, term_f, cat_n, cat_f = sums.term_n, sums.term_f, sums.cat_n, sums.cat_f
        seen = self._rows
        for i in range(n_rows):
            tid = ids[i]
            if tid in seen:
                sums.keep[i] = False
                self.stats.duplicates += 1
                continue
            t = times[i]
            if self.watermark is not None and t < self.watermark:
                self.stats.late_rows += 1
            cust_id, term, cat = customers[i], terminals[i], categories[i]
            # Customer windows.
            cust = self._customers.get(cust_id)
            if cust is None:
                cust = self._customers[cust_id] = _Customer(amounts[i])
            pos = cust.insert(t, amounts[i])
            for k, (_, w) in enumerate(self._customer_windows):
                cust_n[k, i], cust_s[k, i], cust_ss[k, i] = cust.window(pos, t, w)
            first[i] = cust.first
            gap[i] = float(t - cust.times[pos - 1]) if pos > 0 else np.nan
            # Terminal activity.
            act = self._activity.get(term)
            if act is None:
                act = self._activity[term] = _Times()
            pos = act.insert(t)
            for k, (_, w) in enumerate(self._activity_windows):
                activity[k, i] = act.count(pos, t, w)
            # Delayed label windows (the row's own label is far too recent to count).
            tl = self._terminal_labels.get(term)
            if tl is not None:
                for k, (_, w) in enumerate(self._terminal_windows):
                    term_n[k, i], term_f[k, i] = tl.window(t, self._delay_ms, w)
            cl = self._category_labels.get(cat)
            if cl is not None:
                for k, (_, w) in enumerate(self._category_windows):
                    cat_n[k, i], cat_f[k, i] = cl.window(t, self._delay_ms, w)
            # Novelty: the customer's past use of this country, channel and terminal.
            keys = (
                ("country", cust_id, countries[i]),
                ("channel", cust_id, channels[i]),
                ("terminal", cust_id, term),
            )
            for k, key in enumerate(keys):
                series = self._novelty.get(key)
                if series is None:
                    series = self._novelty[key] = _Times()
                novelty[k, i] = series.count(series.insert(t), t, self._novelty_ms)
            row = seen[tid] = _Row(t, term, cat, False, keys)
            label = labels[i]
            if label is not None and not math.isnan(label):  # the label came with the transaction
                self._label(row, bool(label))
            elif self._pending:
                pending = self._pending.pop(tid, None)
                if pending is not None:
                    self._label(row, pending)
            self._arrivals.append((t, tid))
            if self.watermark is None or t > self.watermark:
                self.watermark = t
            self._evict()
        self.stats.rows = len(seen)
        self.stats.customers = len(self._customers)
        self.stats.terminals = len(self._activity)
        return sums

    def _numeric(
        self, ns: np.ndarray, amount: np.ndarray, sums: _WindowSums
    ) -> dict[str, np.ndarray]:
        """The numeric features, in ``create_features``' order, from the shared formulas."""
        p = self.params
        parts = temporal_features(ns, amount, p.night_until_hour)
        for k, (suffix, _) in enumerate(self._customer_windows):
            parts[f"customer_nb_tx_{suffix}"] = sums.cust_n[k]
            parts[f"customer_avg_amount_{suffix}"], parts[f"customer_std_amount_{suffix}"] = (
                amount_moments(sums.cust_n[k], sums.cust_s[k], sums.cust_ss[k], sums.first)
            )
        parts["customer_seconds_since_prev_tx"] = seconds_since_previous(sums.gap, p.max_gap_days)
        parts.update(amount_vs_history(amount, parts, p))
        for k, (suffix, _) in enumerate(self._activity_windows):
            parts[f"terminal_activity_nb_tx_{suffix}"] = sums.activity[k]
        for prefix, windows, n, f in (
            ("terminal", self._terminal_windows, sums.term_n, sums.term_f),
            ("category", self._category_windows, sums.cat_n, sums.cat_f),
        ):
            for k, (suffix, _) in enumerate(windows):
                parts[f"{prefix}_nb_tx_{suffix}"] = n[k]
                parts[f"{prefix}_risk_{suffix}"] = risk_share(n[k], f[k])
        suffix = window_suffix(p.novelty_window)
        for k, key in enumerate(("customer_country", "customer_channel", "customer_terminal")):
            parts[f"{key}_nb_tx_{suffix}"] = sums.novelty[k]
        return parts

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
            self._label(row, bool(label))
            applied += 1
        self.stats.labels_pending = len(self._pending)
        return applied

    def _label(self, row: _Row, is_fraud: bool) -> None:
        row.labelled = True
        for table, key in (
            (self._terminal_labels, row.terminal),
            (self._category_labels, row.category),
        ):
            labels = table.get(key)
            if labels is None:
                labels = table[key] = _Labels()
            labels.add(row.time, is_fraud)
        self.stats.labels_applied += 1

    # --------------------------------------------------------------- eviction --

    def _evict(self) -> None:
        """Drops the state of rows older than the horizon before the newest row."""
        cutoff = self.watermark - self.horizon_ms
        arrivals = self._arrivals
        while arrivals and arrivals[0][0] <= cutoff:
            _, tid = arrivals.popleft()
            row = self._rows.pop(tid, None)
            if row is None:
                continue
            cust_id = row.keys[0][1]
            self._customers[cust_id].evict(cutoff)
            for table, key in (
                (self._activity, row.terminal),
                (self._novelty, row.keys[0]),
                (self._novelty, row.keys[1]),
                (self._novelty, row.keys[2]),
            ):
                series = table.get(key)
                if series is not None and series.evict(cutoff):
                    del table[key]
            for table, key in (
                (self._terminal_labels, row.terminal),
                (self._category_labels, row.category),
            ):
                labels = table.get(key)
                if labels is not None and labels.evict(cutoff):
                    del table[key]
        if len(self._pending_order) > len(self._pending) * 2 + 1024:
            self._pending_order = deque(tid for tid in self._pending_order if tid in self._pending)
