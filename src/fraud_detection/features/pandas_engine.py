"""``create_features``: point-in-time features for every transaction.

Only the past counts. A row's features depend on the row itself and on earlier
transactions; fraud labels enter only through windows that end ``label_delay`` before
the row, because labels arrive late. The same function serves training and scoring.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import AfterValidator, Field, field_validator

from fraud_detection import schema
from fraud_detection.features.windows import SortedAxis
from fraud_detection.params import StrictParams

logger = logging.getLogger(__name__)

ID_COLUMNS = [schema.TRANSACTION_ID, schema.TIMESTAMP, schema.CUSTOMER_ID, schema.TERMINAL_ID]


def _duration(text: str) -> str:
    """A pandas offset alias such as ``1h``, ``7D``; raises naming the bad value."""
    try:
        pd.Timedelta(text)
    except ValueError as exc:
        raise ValueError(f"invalid duration {text!r} (use e.g. '1h', '7D')") from exc
    return text


Duration = Annotated[str, AfterValidator(_duration)]


class FeatureParams(StrictParams):
    """Typed ``params:features`` (defaults in ``conf/base/parameters_feature_engineering.yml``)."""

    group: ClassVar[str] = "features"

    customer_windows: list[Duration] = Field(min_length=1)
    terminal_windows: list[Duration] = Field(min_length=1)
    terminal_activity_windows: list[Duration] = Field(min_length=1)
    category_risk_windows: list[Duration] = Field(min_length=1)
    novelty_window: Duration
    label_delay: Duration
    night_until_hour: int = Field(ge=0, le=23)
    max_gap_days: float = Field(gt=0)
    ratio_cap: float = Field(gt=0)

    @field_validator("label_delay")
    @classmethod
    def _positive_delay(cls, value: str) -> str:
        if pd.Timedelta(value) <= pd.Timedelta(0):
            raise ValueError("label_delay must be positive so that current labels never leak")
        return value


def _delta(text: str, where: str) -> pd.Timedelta:
    try:
        return pd.Timedelta(text)
    except ValueError as exc:
        raise ValueError(
            f"params:{where} has an invalid duration {text!r} (use e.g. '1h', '7D')"
        ) from exc


def window_suffix(window: str) -> str:
    """'1D' -> '1d', '30D' -> '30d', '1h' -> '1h': stable feature-name suffixes."""
    return window.lower()


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


def add_temporal_features(df: pd.DataFrame, night_until_hour: int) -> pd.DataFrame:
    """Hour, day of week, weekend and night flags, and cyclic encodings."""
    ns = df[schema.TIMESTAMP].to_numpy("datetime64[ns]").astype(np.int64)
    return pd.DataFrame(
        temporal_features(ns, df[schema.AMOUNT].to_numpy(np.float64), night_until_hour),
        index=df.index,
    )


_NS_PER_MINUTE = 60_000_000_000
_NS_PER_HOUR = 60 * _NS_PER_MINUTE
_NS_PER_DAY = 24 * _NS_PER_HOUR


def temporal_features(
    ns: np.ndarray, amount: np.ndarray, night_until_hour: int
) -> dict[str, np.ndarray]:
    """The temporal features from nanoseconds since the epoch (UTC) and amounts.

    Integer arithmetic gives the same hour, minute and weekday as pandas' ``.dt``
    accessors (1970-01-01 was a Thursday) without building a frame, so the real-time
    scorer calls this very function on each micro-batch.
    """
    hour = (ns // _NS_PER_HOUR) % 24
    minute = (ns // _NS_PER_MINUTE) % 60
    dow = (ns // _NS_PER_DAY + 3) % 7
    frac_hour = hour + minute / 60.0
    return {
        "tx_hour": hour.astype("int64"),
        "tx_day_of_week": dow.astype("int64"),
        "tx_during_weekend": (dow >= 5).astype("int64"),
        "tx_during_night": (hour <= night_until_hour).astype("int64"),
        "tx_hour_sin": np.sin(2 * np.pi * frac_hour / 24.0),
        "tx_hour_cos": np.cos(2 * np.pi * frac_hour / 24.0),
        "tx_dow_sin": np.sin(2 * np.pi * dow / 7.0),
        "tx_dow_cos": np.cos(2 * np.pi * dow / 7.0),
        "amount_log": np.log1p(np.clip(amount, 0, None)),
    }


def add_customer_windows(df: pd.DataFrame, p: FeatureParams) -> pd.DataFrame:
    """Per customer: count, mean and std of amounts over past windows (current row
    included, as it is known at scoring time), time since the previous transaction,
    and the amount relative to the customer's history."""
    windows = p.customer_windows
    axis = SortedAxis.build(
        df[schema.CUSTOMER_ID], df[schema.TIMESTAMP], max(_delta(w, "") for w in windows)
    )
    amount = axis.sorted_values(df[schema.AMOUNT])
    # Shifting by the customer's first amount (known at every later row) keeps the
    # sum of squares small; the variance is unchanged by the shift.
    shifted = amount - axis.first_value(amount)
    ones = np.ones_like(amount)
    out: dict[str, np.ndarray] = {}
    for w in windows:
        lo, hi = axis.bounds(_delta(w, ""))
        n = axis.window_sum(ones, lo, hi)
        s = axis.window_sum(shifted, lo, hi)
        ss = axis.window_sum(shifted * shifted, lo, hi)
        suffix = window_suffix(w)
        out[f"customer_nb_tx_{suffix}"] = n
        out[f"customer_avg_amount_{suffix}"], out[f"customer_std_amount_{suffix}"] = amount_moments(
            n, s, ss, axis.first_value(amount)
        )
    out["customer_seconds_since_prev_tx"] = seconds_since_previous(
        axis.previous_time_gap(), p.max_gap_days
    )
    out.update(amount_vs_history(amount, out, p))
    return pd.DataFrame({k: axis.unsort(v) for k, v in out.items()}, index=df.index)


# The formulas below are shared with the real-time scorer (fraud_detection.scoring),
# which feeds them the same window sums kept incrementally: one definition of each
# feature for training and serving.


def amount_moments(
    n: np.ndarray, s: np.ndarray, ss: np.ndarray, first: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample std of amounts in a window from its count and the sums of the
    amounts and squared amounts shifted by the customer's first amount."""
    mean_shifted = s / n
    var = np.where(n > 1, (ss - n * mean_shifted**2) / np.maximum(n - 1, 1), 0.0)
    return mean_shifted + first, np.sqrt(np.clip(var, 0.0, None))


def seconds_since_previous(gap_ms: np.ndarray, max_gap_days: float) -> np.ndarray:
    """Seconds since the customer's previous transaction, capped; the cap for the first."""
    gap_s = gap_ms / 1000.0
    max_gap = max_gap_days * 86400.0
    return np.where(np.isnan(gap_s), max_gap, np.minimum(gap_s, max_gap))


def amount_vs_history(
    amount: np.ndarray, windows: dict[str, np.ndarray], p: FeatureParams
) -> dict[str, np.ndarray]:
    """The amount relative to the customer's longest-window mean, and its z-score."""
    longest = window_suffix(p.customer_windows[-1])
    mean_long = windows[f"customer_avg_amount_{longest}"]
    std_long = windows[f"customer_std_amount_{longest}"]
    ratio = np.clip(amount / np.where(mean_long > 0, mean_long, 1.0), 0, p.ratio_cap)
    z = np.where(std_long > 0, (amount - mean_long) / np.where(std_long > 0, std_long, 1.0), 0.0)
    return {
        f"amount_to_customer_avg_{longest}": ratio,
        f"amount_zscore_customer_{longest}": np.clip(z, -p.ratio_cap, p.ratio_cap),
    }


def risk_share(n: np.ndarray, frauds: np.ndarray) -> np.ndarray:
    """Fraud share among ``n`` labelled transactions (0 when there are none)."""
    return np.where(n > 0, frauds / np.where(n > 0, n, 1.0), 0.0)


def delayed_risk(
    df: pd.DataFrame, key: str | list[str], windows: list[str], delay: str, prefix: str
) -> pd.DataFrame:
    """Number of labelled transactions and fraud share per key over windows that end
    ``delay`` before each row, so only labels already known at that time are used.

    Transactions whose label is still unknown (null) count in neither."""
    delay_td = _delta(delay, "features.label_delay")
    keys = [df[k] for k in key] if isinstance(key, list) else df[key]
    axis = SortedAxis.build(
        keys, df[schema.TIMESTAMP], max(_delta(w, "") for w in windows) + delay_td
    )
    label = df[schema.LABEL].astype("Float64")
    labelled = axis.sorted_values(label.notna().astype("float64"))
    fraud = axis.sorted_values(label.fillna(0).astype("float64"))
    out = {}
    for w in windows:
        lo, hi = axis.bounds(_delta(w, ""), delay_td)
        n = axis.window_sum(labelled, lo, hi)
        f = axis.window_sum(fraud, lo, hi)
        suffix = window_suffix(w)
        out[f"{prefix}_nb_tx_{suffix}"] = n
        out[f"{prefix}_risk_{suffix}"] = risk_share(n, f)
    return pd.DataFrame({k: axis.unsort(v) for k, v in out.items()}, index=df.index)


def window_counts(
    df: pd.DataFrame, key: str | list[str], windows: list[str], prefix: str
) -> pd.DataFrame:
    """Number of transactions per key over past windows, the current one included."""
    keys = [df[k] for k in key] if isinstance(key, list) else df[key]
    axis = SortedAxis.build(keys, df[schema.TIMESTAMP], max(_delta(w, "") for w in windows))
    ones = np.ones(len(df))
    out = {}
    for w in windows:
        lo, hi = axis.bounds(_delta(w, ""))
        out[f"{prefix}_nb_tx_{window_suffix(w)}"] = axis.unsort(
            axis.window_sum(ones[axis.order], lo, hi)
        )
    return pd.DataFrame(out, index=df.index)


def create_features(transactions: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Builds the model's feature table from validated transactions.

    Cleansing, temporal features, per-customer windows, per-terminal activity and
    delayed fraud-risk windows, per-category delayed risk, and novelty counts (how
    often the customer used this country, channel and terminal before). Categorical
    columns are kept as cleaned text; the model pipeline one-hot encodes them, fitted
    on training data only.

    Returns:
        One row per transaction, in time order: id columns, the label, the cleaned
        categoricals and the numeric features.
    """
    p = FeatureParams.from_dict(params)
    df = cleanse(transactions)
    c, t, nov = schema.CUSTOMER_ID, schema.TERMINAL_ID, [p.novelty_window]
    parts = [
        df[[*ID_COLUMNS, schema.AMOUNT, *schema.CATEGORICAL_COLUMNS, schema.LABEL]],
        add_temporal_features(df, p.night_until_hour),
        add_customer_windows(df, p),
        window_counts(df, t, p.terminal_activity_windows, "terminal_activity"),
        delayed_risk(df, t, p.terminal_windows, p.label_delay, "terminal"),
        delayed_risk(
            df, schema.MERCHANT_CATEGORY, p.category_risk_windows, p.label_delay, "category"
        ),
        window_counts(df, [c, schema.COUNTRY], nov, "customer_country"),
        window_counts(df, [c, schema.CHANNEL], nov, "customer_channel"),
        window_counts(df, [c, t], nov, "customer_terminal"),
    ]
    features = pd.concat(parts, axis=1)
    logger.info(
        "Created %d features for %d transactions",
        features.shape[1] - len(parts[0].columns),
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


def feature_horizon(p: FeatureParams) -> pd.Timedelta:
    """How much history before a row its features read (the longest window, delays included)."""
    windows = [
        pd.Timedelta(w)
        for w in (*p.customer_windows, *p.terminal_activity_windows, p.novelty_window)
    ]
    delayed = [
        pd.Timedelta(w) + pd.Timedelta(p.label_delay)
        for w in (*p.terminal_windows, *p.category_risk_windows)
    ]
    return max(*windows, *delayed, pd.Timedelta(days=p.max_gap_days))
