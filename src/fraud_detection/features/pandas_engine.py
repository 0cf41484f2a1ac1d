"""``create_features``: the pandas engine of the feature spec.

Only the past counts. A row's features depend on the row itself and on earlier
transactions; fraud labels enter only through windows that end ``label_delay`` before
the row, because labels arrive late. The columns and their order come from the
:class:`~fraud_detection.features.spec.FeatureSpec`; the same function serves training
and monitoring, and the scorer's online engine reuses its formulas row by row.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from fraud_detection import schema
from fraud_detection.features.spec import (
    ID_COLUMNS,
    TEMPORAL_FEATURES,
    Aggregation,
    FeatureParams,
    FeatureSpec,
    Measure,
    build_spec,
    feature_names,
    passthrough_columns,
)
from fraud_detection.features.windows import SortedAxis

logger = logging.getLogger(__name__)


def cleanse(transactions: pd.DataFrame) -> pd.DataFrame:
    """Orders rows by time, normalises categoricals and fills their missing values.

    Amount outliers are kept (they are signal in fraud) but ratio features built on
    them are capped downstream.
    """
    out = transactions.sort_values(schema.TIMESTAMP, kind="stable").reset_index(drop=True)
    for col in schema.CATEGORICAL_COLUMNS:
        out[col] = (
            out[col]
            .astype("string")
            .str.strip()
            .str.lower()
            .fillna("unknown")
            .replace("", "unknown")
        )
    out[schema.AMOUNT] = out[schema.AMOUNT].astype("float64")
    return out


_NS_PER_MINUTE = 60_000_000_000
_NS_PER_HOUR = 60 * _NS_PER_MINUTE
_NS_PER_DAY = 24 * _NS_PER_HOUR


def temporal_features(
    ns: np.ndarray, amount: np.ndarray, night_until_hour: int
) -> dict[str, np.ndarray]:
    """The temporal features (``TEMPORAL_FEATURES``, in order) from nanoseconds since
    the epoch (UTC) and amounts.

    Integer arithmetic gives the same hour, minute and weekday as pandas' ``.dt``
    accessors (1970-01-01 was a Thursday) without building a frame, so the real-time
    scorer calls this very function on each micro-batch.
    """
    hour = (ns // _NS_PER_HOUR) % 24
    minute = (ns // _NS_PER_MINUTE) % 60
    dow = (ns // _NS_PER_DAY + 3) % 7
    frac_hour = hour + minute / 60.0
    values = (
        hour.astype("int64"),
        dow.astype("int64"),
        (dow >= 5).astype("int64"),
        (hour <= night_until_hour).astype("int64"),
        np.sin(2 * np.pi * frac_hour / 24.0),
        np.cos(2 * np.pi * frac_hour / 24.0),
        np.sin(2 * np.pi * dow / 7.0),
        np.cos(2 * np.pi * dow / 7.0),
        np.log1p(np.clip(amount, 0, None)),
    )
    return dict(zip(TEMPORAL_FEATURES, values, strict=True))


def _keys(df: pd.DataFrame, agg: Aggregation) -> pd.Series | list[pd.Series]:
    return df[agg.keys[0]] if len(agg.keys) == 1 else [df[k] for k in agg.keys]


def amount_windows(df: pd.DataFrame, agg: Aggregation, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """An ``amount`` aggregation: count, mean and std of amounts over past windows
    (current row included, as it is known at scoring time), and optionally the time
    since the key's previous row and the amount relative to its history window."""
    axis = SortedAxis.build(_keys(df, agg), df[schema.TIMESTAMP], agg.reach)
    amount = axis.sorted_values(df[schema.AMOUNT])
    # Shifting by the key's first amount (known at every later row) keeps the sum of
    # squares small; the variance is unchanged by the shift.
    first = axis.first_value(amount)
    shifted = amount - first
    ones = np.ones_like(amount)
    out: dict[str, np.ndarray] = {}
    for w in agg.windows:
        lo, hi = axis.bounds(w.delta)
        n = axis.window_sum(ones, lo, hi)
        s = axis.window_sum(shifted, lo, hi)
        ss = axis.window_sum(shifted * shifted, lo, hi)
        out[agg.count_column(w)] = n
        out[agg.mean_column(w)], out[agg.std_column(w)] = amount_moments(n, s, ss, first)
    if agg.since_previous:
        out[agg.since_previous_column] = seconds_since_previous(
            axis.previous_time_gap(), spec.max_gap_days
        )
    if agg.history is not None:
        out[agg.ratio_column], out[agg.zscore_column] = amount_vs_history(
            amount,
            out[agg.mean_column(agg.history)],
            out[agg.std_column(agg.history)],
            spec.ratio_cap,
        )
    return {k: axis.unsort(v) for k, v in out.items()}


def fraud_windows(df: pd.DataFrame, agg: Aggregation) -> dict[str, np.ndarray]:
    """A ``fraud`` aggregation: number of labelled transactions and fraud share per
    key over windows that end ``delay`` before each row, so only labels already known
    at that time are used. Transactions whose label is still unknown (null) count in
    neither."""
    assert agg.delay is not None
    axis = SortedAxis.build(_keys(df, agg), df[schema.TIMESTAMP], agg.reach)
    label = df[schema.LABEL].astype("Float64")
    labelled = axis.sorted_values(label.notna().astype("float64"))
    fraud = axis.sorted_values(label.fillna(0).astype("float64"))
    out = {}
    for w in agg.windows:
        lo, hi = axis.bounds(w.delta, agg.delay.delta)
        n = axis.window_sum(labelled, lo, hi)
        out[agg.count_column(w)] = n
        out[agg.risk_column(w)] = risk_share(n, axis.window_sum(fraud, lo, hi))
    return {k: axis.unsort(v) for k, v in out.items()}


def count_windows(df: pd.DataFrame, agg: Aggregation) -> dict[str, np.ndarray]:
    """A ``count`` aggregation: rows per key over past windows, the current one included."""
    axis = SortedAxis.build(_keys(df, agg), df[schema.TIMESTAMP], agg.reach)
    ones = np.ones(len(df))
    out = {}
    for w in agg.windows:
        lo, hi = axis.bounds(w.delta)
        out[agg.count_column(w)] = axis.unsort(axis.window_sum(ones, lo, hi))
    return out


def aggregate(df: pd.DataFrame, agg: Aggregation, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """The columns of one aggregation of the spec, for cleansed rows."""
    if agg.measure is Measure.AMOUNT:
        return amount_windows(df, agg, spec)
    if agg.measure is Measure.FRAUD:
        return fraud_windows(df, agg)
    return count_windows(df, agg)


def build_features(transactions: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The feature table of ``spec`` (columns exactly ``feature_names(spec)``)."""
    df = cleanse(transactions)
    ns = df[schema.TIMESTAMP].to_numpy("datetime64[ns]").astype(np.int64)
    computed = temporal_features(ns, df[schema.AMOUNT].to_numpy(np.float64), spec.night_until_hour)
    for agg in spec.aggregations:
        computed.update(aggregate(df, agg, spec))
    base = df[passthrough_columns(spec)]
    features = pd.concat([base, pd.DataFrame(computed, index=df.index)], axis=1)
    return features[feature_names(spec)]


def create_features(transactions: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Builds the model's feature table from validated transactions.

    Cleansing, temporal features and the spec's window aggregations
    (:func:`~fraud_detection.features.spec.build_spec`): per-customer windows,
    per-terminal activity and delayed fraud-risk windows, per-category delayed risk,
    and novelty counts (how often the customer used this country, channel and
    terminal before). Categorical columns are kept as cleaned text; the model pipeline
    one-hot encodes them, fitted on training data only.

    Args:
        transactions: Validated transactions in the canonical schema.
        params: ``params:features`` (validated strictly).

    Returns:
        One row per transaction, in time order, with the columns
        ``feature_names(build_spec(params))``: id columns, the amount, the cleaned
        categoricals, the label and the numeric features.
    """
    spec = build_spec(params)
    features = build_features(transactions, spec)
    logger.info(
        "Created %d features for %d transactions",
        features.shape[1] - len(passthrough_columns(spec)),
        len(features),
    )
    return features


def feature_columns(features: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Splits a feature table's model inputs into (numeric, categorical) column names."""
    excluded = {*ID_COLUMNS, schema.LABEL}
    categorical = [col for col in schema.CATEGORICAL_COLUMNS if col in features.columns]
    numeric = [
        col
        for col in features.columns
        if col not in excluded
        and col not in categorical
        and pd.api.types.is_numeric_dtype(features[col])
    ]
    return numeric, categorical


def feature_horizon(p: FeatureParams | FeatureSpec) -> pd.Timedelta:
    """How much history before a row its features read (the longest window, delays included)."""
    return (p if isinstance(p, FeatureSpec) else build_spec(p)).horizon


# The formulas below are shared with the online engine (fraud_detection.features.online),
# which feeds them the same window sums kept incrementally: one definition of each
# formula for training and serving.


def amount_moments(
    n: np.ndarray, s: np.ndarray, ss: np.ndarray, first: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample std of amounts in a window from its count and the sums of the
    amounts and squared amounts shifted by the key's first amount."""
    mean_shifted = s / n
    var = np.where(n > 1, (ss - n * mean_shifted**2) / np.maximum(n - 1, 1), 0.0)
    return mean_shifted + first, np.sqrt(np.clip(var, 0.0, None))


def seconds_since_previous(gap_ms: np.ndarray, max_gap_days: float) -> np.ndarray:
    """Seconds since the key's previous transaction, capped; the cap for the first."""
    gap_s = gap_ms / 1000.0
    max_gap = max_gap_days * 86400.0
    return np.where(np.isnan(gap_s), max_gap, np.minimum(gap_s, max_gap))


def amount_vs_history(
    amount: np.ndarray, mean: np.ndarray, std: np.ndarray, cap: float
) -> tuple[np.ndarray, np.ndarray]:
    """The amount's ratio to the history window's mean, and its z-score, both capped."""
    ratio = np.clip(amount / np.where(mean > 0, mean, 1.0), 0, cap)
    z = np.where(std > 0, (amount - mean) / np.where(std > 0, std, 1.0), 0.0)
    return ratio, np.clip(z, -cap, cap)


def risk_share(n: np.ndarray, frauds: np.ndarray) -> np.ndarray:
    """Fraud share among ``n`` labelled transactions (0 when there are none)."""
    return np.where(n > 0, frauds / np.where(n > 0, n, 1.0), 0.0)
