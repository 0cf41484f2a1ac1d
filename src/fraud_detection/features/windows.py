"""Vectorised past-window aggregates over irregular time series, many series at once.

All series share one sorted axis: rows ordered by (key, time, arrival), and a composite
position ``key * stride + time`` so that one ``np.searchsorted`` finds every row's
window bounds across all keys, with no Python loop per key or per row.

A window of length ``w`` ending at a row at time ``t`` holds the same key's rows with
time in ``(t - w, t]`` that arrived no later than the row itself: the convention of
``pandas.DataFrame.rolling("<w>")`` on a time index (rows that share the timestamp but
arrive later are not seen yet).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

_MS = pd.Timedelta(milliseconds=1)


def _to_ms(delta: pd.Timedelta) -> np.int64:
    return np.int64(delta // _MS)


@dataclass(frozen=True)
class SortedAxis:
    """Rows of a frame sorted by one key and time, ready for window queries.

    Millisecond resolution is exact for second-resolution sources and streamed
    events, and keeps ``key * stride`` inside int64 for realistic key counts.
    """

    order: np.ndarray  # original row positions, in sorted order
    key: np.ndarray  # integer key code of each sorted row
    time_ms: np.ndarray  # time of each sorted row, ms since the earliest row
    composite: np.ndarray  # key * stride + time_ms, non-decreasing
    group_start: np.ndarray  # sorted index of the first row of each row's key

    @classmethod
    def build(
        cls, keys: pd.Series | list[pd.Series], times: pd.Series, horizon: pd.Timedelta
    ) -> SortedAxis:
        """Sorts rows by (key, time, original position).

        Args:
            keys: Series identifier per row, or several series forming one key.
            times: Timestamps per row.
            horizon: The longest look-back any query will use (window plus delay).
        """
        if isinstance(keys, list):
            codes = pd.MultiIndex.from_arrays([k.to_numpy() for k in keys]).factorize()[0]
        else:
            codes = pd.factorize(keys.to_numpy())[0]
        ns = times.to_numpy("datetime64[ns]").astype(np.int64)
        ms = ns // 1_000_000
        rel = ms - (ms.min() if len(ms) else 0)
        stride = int(rel.max() if len(rel) else 0) + int(_to_ms(horizon)) + 1
        n_keys = int(codes.max()) + 1 if len(codes) else 1
        if n_keys * stride >= np.iinfo(np.int64).max:
            raise ValueError(
                f"{n_keys} keys over {stride} ms overflow one int64 axis; "
                "process the data in time slices"
            )
        order = np.lexsort((np.arange(len(codes)), rel, codes))
        key = codes[order].astype(np.int64)
        time_ms = rel[order]
        composite = key * np.int64(stride) + time_ms
        n = len(key)
        first = np.ones(n, dtype=bool)
        first[1:] = key[1:] != key[:-1]
        group_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
        return cls(order, key, time_ms, composite, group_start)

    def bounds(
        self, window: pd.Timedelta, delay: pd.Timedelta | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Returns the [lo, hi) sorted-row indices of each sorted row's window.

        Without ``delay`` the window is ``(t - window, t]`` up to the row itself. With
        it, ``(t - delay - window, t - delay]``: only rows at least ``delay`` old, such
        as those whose labels are known by ``t``.
        """
        w = _to_ms(window)
        if delay is None:
            lo = np.searchsorted(self.composite, self.composite - w, side="right")
            return lo, np.arange(1, len(self.composite) + 1)
        d = _to_ms(delay)
        if d <= 0:
            raise ValueError(
                "The label delay must be positive, or current labels would leak into features"
            )
        hi = np.searchsorted(self.composite, self.composite - d, side="right")
        lo = np.searchsorted(self.composite, self.composite - d - w, side="right")
        return lo, hi

    def sorted_values(self, values: pd.Series | np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64)[self.order]

    def window_sum(self, sorted_vals: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Sums sorted values over each row's [lo, hi) window.

        Prefix sums restart at every key (pandas' grouped cumsum), so rounding depends
        only on the key's own past, never on other keys or on later rows.
        """
        prefix = pd.Series(sorted_vals).groupby(self.key).cumsum().to_numpy()
        start = self.group_start
        upper = np.where(hi > start, prefix[np.maximum(hi - 1, 0)], 0.0)
        lower = np.where(lo > start, prefix[np.maximum(lo - 1, 0)], 0.0)
        return upper - lower

    def previous_time_gap(self) -> np.ndarray:
        """Milliseconds since the key's previous row (NaN for its first row)."""
        gap = np.full(len(self.time_ms), np.nan)
        same = np.arange(len(self.key)) > self.group_start
        gap[1:] = np.where(same[1:], self.time_ms[1:] - self.time_ms[:-1], np.nan)
        return gap

    def first_value(self, sorted_vals: np.ndarray) -> np.ndarray:
        """The key's first value, for each sorted row (a past-only shift)."""
        return sorted_vals[self.group_start]

    def unsort(self, sorted_values: np.ndarray) -> np.ndarray:
        """Maps values computed in sorted order back to the original row order."""
        out = np.empty_like(sorted_values)
        out[self.order] = sorted_values
        return out
