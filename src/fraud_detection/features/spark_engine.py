"""``create_features_spark``: the features of ``create_features``, computed by Spark.

For tables past one machine's memory. The result equals the pandas engine's on the
same rows (``tests/features/test_spark_engine.py``: counts exactly, every other value
within 1e-9), because nothing is defined twice:

- Spark computes only what needs the whole table: per key, window counts and window
  sums with ``Window.partitionBy(key).orderBy(epoch_ms)`` frames. As in
  ``SortedAxis``, a window sum is the difference of two prefix sums, the row's own and
  that of the last row before the window (found with a ``rangeBetween`` frame ending
  ``w`` before the row), and a count is the difference of two row numbers. So a window
  ``(t - w, t]`` holds the rows arriving no later than the row itself, ties in time
  included, and the label-delayed windows ``(t - delay - w, t - delay]`` only rows at
  least ``delay`` old.
- The formulas turning those sums into features (temporal features, mean and std,
  seconds since the previous transaction, the amount against the customer's history,
  the fraud share) are the numpy functions of ``pandas_engine``, applied to each Arrow
  batch with ``mapInArrow``: no pandas conversion in the middle of the job.

Prefix sums of amounts are exact (decimals) and rounded once to the nearest double;
pandas keeps them Kahan-compensated, which is the same double almost always, so the
differences the two engines subtract agree to the last bits.

Rows are tied in time by their arrival: the ``ARRIVAL`` column when the table has it
(the Spark ingestion adds it when it reads the source), otherwise the order of the
input as Spark reads it (``monotonically_increasing_id``, the file order for one file).

pyspark is imported lazily: ``fraud_detection.features`` imports without it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraud_detection import schema
from fraud_detection.features.pandas_engine import (
    ID_COLUMNS,
    FeatureParams,
    amount_moments,
    amount_vs_history,
    risk_share,
    seconds_since_previous,
    temporal_features,
)
from fraud_detection.features.spec import window_suffix

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa
    from pyspark.sql import Column, DataFrame

logger = logging.getLogger(__name__)

# Arrival order of the rows (a long, increasing with arrival); ties in time follow it.
ARRIVAL = "arrival_order"

_MS = "_epoch_ms"
_US = "_epoch_us"
_TEMPORAL = [
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
_INT_FEATURES = {"tx_hour", "tx_day_of_week", "tx_during_weekend", "tx_during_night"}
# Decimal prefix sums: 18 decimals below the unit, 20 above (amounts up to 1e6, squared).
_DECIMAL = "decimal(38,18)"


def _ms(text: str) -> int:
    return int(pd.Timedelta(text) // pd.Timedelta(milliseconds=1))


def feature_names_spark(p: FeatureParams) -> list[str]:
    """The engine's output columns, in the pandas engine's order."""
    longest = window_suffix(p.customer_windows[-1])
    names = [*ID_COLUMNS, schema.AMOUNT, *schema.CATEGORICAL_COLUMNS, schema.LABEL, *_TEMPORAL]
    for w in p.customer_windows:
        s = window_suffix(w)
        names += [f"customer_nb_tx_{s}", f"customer_avg_amount_{s}", f"customer_std_amount_{s}"]
    names += [
        "customer_seconds_since_prev_tx",
        f"amount_to_customer_avg_{longest}",
        f"amount_zscore_customer_{longest}",
    ]
    names += [f"terminal_activity_nb_tx_{window_suffix(w)}" for w in p.terminal_activity_windows]
    delayed = (("terminal", p.terminal_windows), ("category", p.category_risk_windows))
    for prefix, windows in delayed:
        for w in windows:
            names += [f"{prefix}_nb_tx_{window_suffix(w)}", f"{prefix}_risk_{window_suffix(w)}"]
    nov = window_suffix(p.novelty_window)
    names += [f"customer_{k}_nb_tx_{nov}" for k in ("country", "channel", "terminal")]
    return names


def cleanse_spark(df: DataFrame) -> DataFrame:
    """``cleanse`` in Spark: trimmed lower-case categoricals, ``unknown`` when missing
    or blank, amounts as doubles, and the arrival order kept for ties in time."""
    from pyspark.sql import functions as F

    if ARRIVAL not in df.columns:
        df = df.withColumn(ARRIVAL, F.monotonically_increasing_id())
    for col in schema.CATEGORICAL_COLUMNS:
        text = F.lower(F.regexp_replace(F.col(col).cast("string"), r"^\s+|\s+$", ""))
        df = df.withColumn(col, F.when(text.isNull() | (text == ""), "unknown").otherwise(text))
    return df.withColumn(schema.AMOUNT, F.col(schema.AMOUNT).cast("double"))


def _check_utc(df: DataFrame) -> None:
    tz = df.sparkSession.conf.get("spark.sql.session.timeZone")
    if tz not in {"UTC", "Etc/UTC", "GMT", "Z", "+00:00"}:
        raise ValueError(
            f"spark.sql.session.timeZone is {tz!r}: set it to UTC (conf/spark/spark.yml), "
            "as transaction times are naive UTC and features read hours and weekdays"
        )


def _with_epoch(df: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    us = F.unix_micros(F.col(schema.TIMESTAMP).cast("timestamp"))
    df = df.withColumn(_US, us)
    # Floor division (also right before 1970): milliseconds, SortedAxis' resolution.
    return df.withColumn(_MS, F.expr(f"({_US} - pmod({_US}, 1000)) div 1000"))


class _Axis:
    """One key's window frames: the Spark counterpart of ``SortedAxis``."""

    def __init__(self, keys: list[str], name: str) -> None:
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        self.F, self.Window, self.name = F, Window, name
        self.by_time = Window.partitionBy(*keys).orderBy(_MS)
        self.rows = Window.partitionBy(*keys).orderBy(_MS, ARRIVAL)
        self.seq = f"_{name}_seq"

    def running(self) -> Any:
        return self.rows.rowsBetween(self.Window.unboundedPreceding, self.Window.currentRow)

    def until(self, offset_ms: int) -> Any:
        """Rows of the key with time at most ``t - offset_ms``."""
        return self.by_time.rangeBetween(self.Window.unboundedPreceding, -offset_ms)

    def seq_column(self) -> Column:
        return self.F.row_number().over(self.rows).cast("long")

    def before(self, offset_ms: int) -> Column:
        """Row number of the last row with time at most ``t - offset_ms`` (0 if none)."""
        return self.F.coalesce(self.F.max(self.seq).over(self.until(offset_ms)), self.F.lit(0))

    def prefix_before(self, prefix: str, offset_ms: int) -> Column:
        """Prefix sum at that row (0.0 if none)."""
        at = self.F.max_by(self.F.col(prefix), self.F.col(self.seq)).over(self.until(offset_ms))
        return self.F.coalesce(at, self.F.lit(0.0))


def _exact_prefix(value: Column, window: Any) -> Column:
    """Running sum in decimals, rounded once to the nearest double (via its text, which
    Java parses with correct rounding)."""
    from pyspark.sql import functions as F

    return F.sum(value.cast(_DECIMAL)).over(window).cast("string").cast("double")


def _customer_sums(df: DataFrame, p: FeatureParams) -> DataFrame:
    from pyspark.sql import functions as F

    ax = _Axis([schema.CUSTOMER_ID], "customer")
    first = F.first(schema.AMOUNT).over(ax.running())
    df = df.withColumn("_first", first).withColumn(ax.seq, ax.seq_column())
    shifted = F.col(schema.AMOUNT) - F.col("_first")
    df = df.withColumn("_shifted", shifted)
    df = df.withColumn("_ps", _exact_prefix(F.col("_shifted"), ax.running()))
    df = df.withColumn("_pss", _exact_prefix(F.col("_shifted") * F.col("_shifted"), ax.running()))
    df = df.withColumn("_gap_ms", F.col(_MS) - F.lag(_MS).over(ax.rows))
    for w in p.customer_windows:
        s, w_ms = window_suffix(w), _ms(w)
        df = df.withColumns(
            {
                f"_cn_{s}": (F.col(ax.seq) - ax.before(w_ms)).cast("double"),
                f"_cs_{s}": F.col("_ps") - ax.prefix_before("_ps", w_ms),
                f"_css_{s}": F.col("_pss") - ax.prefix_before("_pss", w_ms),
            }
        )
    return df


def _counts(df: DataFrame, keys: list[str], name: str, windows: list[str], prefix: str):
    from pyspark.sql import functions as F

    ax = _Axis(keys, name)
    df = df.withColumn(ax.seq, ax.seq_column())
    return df.withColumns(
        {
            f"{prefix}_nb_tx_{window_suffix(w)}": (F.col(ax.seq) - ax.before(_ms(w))).cast("double")
            for w in windows
        }
    )


def _delayed(df: DataFrame, key: str, windows: list[str], delay: str, prefix: str):
    """Labelled and fraudulent counts over ``(t - delay - w, t - delay]``; labels still
    unknown (null) count in neither."""
    from pyspark.sql import functions as F

    ax = _Axis([key], prefix)
    d = _ms(delay)
    labelled = F.col(schema.LABEL).isNotNull().cast("long")
    fraud = F.coalesce(F.col(schema.LABEL).cast("long"), F.lit(0))
    df = df.withColumns(
        {
            f"_{prefix}_labelled": F.sum(labelled).over(ax.running()),
            f"_{prefix}_frauds": F.sum(fraud).over(ax.running()),
        }
    )
    # Running counts never decrease: the last row of a frame holds its maximum.
    out = {}
    hi_l = F.coalesce(F.max(f"_{prefix}_labelled").over(ax.until(d)), F.lit(0))
    hi_f = F.coalesce(F.max(f"_{prefix}_frauds").over(ax.until(d)), F.lit(0))
    for w in windows:
        lo = ax.until(d + _ms(w))
        s = window_suffix(w)
        lo_l = F.coalesce(F.max(f"_{prefix}_labelled").over(lo), F.lit(0))
        lo_f = F.coalesce(F.max(f"_{prefix}_frauds").over(lo), F.lit(0))
        out[f"{prefix}_nb_tx_{s}"] = (hi_l - lo_l).cast("double")
        out[f"_{prefix}_nf_{s}"] = (hi_f - lo_f).cast("double")
    return df.withColumns(out)


def _formulas(p: FeatureParams, names: list[str]):
    """The Arrow batch function applying the pandas engine's formulas to the sums."""
    customer = [window_suffix(w) for w in p.customer_windows]
    delayed = [
        (prefix, window_suffix(w))
        for prefix, windows in (
            ("terminal", p.terminal_windows),
            ("category", p.category_risk_windows),
        )
        for w in windows
    ]

    def apply(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        for batch in batches:
            col = {name: batch.column(i) for i, name in enumerate(batch.schema.names)}

            def num(name: str, cols: dict[str, pa.Array] = col) -> np.ndarray:
                return cols[name].to_numpy(zero_copy_only=False).astype(np.float64)

            amount = num(schema.AMOUNT)
            ns = col[_US].to_numpy(zero_copy_only=False).astype(np.int64) * 1000
            out: dict[str, Any] = dict(temporal_features(ns, amount, p.night_until_hour))
            windows: dict[str, np.ndarray] = {}
            first = num("_first")
            for s in customer:
                n = num(f"_cn_{s}")
                windows[f"customer_nb_tx_{s}"] = n
                mean, std = amount_moments(n, num(f"_cs_{s}"), num(f"_css_{s}"), first)
                windows[f"customer_avg_amount_{s}"] = mean
                windows[f"customer_std_amount_{s}"] = std
            out.update(windows)
            out["customer_seconds_since_prev_tx"] = seconds_since_previous(
                num("_gap_ms"), p.max_gap_days
            )
            # The ratio and z-score against the longest customer window (the spec's
            # ``history`` window of the customer amount aggregation).
            longest = customer[-1]
            (
                out[f"amount_to_customer_avg_{longest}"],
                out[f"amount_zscore_customer_{longest}"],
            ) = amount_vs_history(
                amount,
                windows[f"customer_avg_amount_{longest}"],
                windows[f"customer_std_amount_{longest}"],
                p.ratio_cap,
            )
            for prefix, s in delayed:
                out[f"{prefix}_risk_{s}"] = risk_share(
                    num(f"{prefix}_nb_tx_{s}"), num(f"_{prefix}_nf_{s}")
                )
            arrays = [col[name] if name not in out else pa.array(out[name]) for name in names]
            yield pa.RecordBatch.from_arrays(arrays, names=names)

    return apply


def create_features_spark(transactions: DataFrame, params: dict[str, Any]) -> DataFrame:
    """Builds the feature table of ``create_features`` from validated transactions.

    Args:
        transactions: Validated transactions (Spark), optionally with ``ARRIVAL``.
        params: ``params:features``.

    Returns:
        One row per transaction with the pandas engine's columns, in its column order
        (Spark tables have no row order: sort by time when it matters).
    """
    from pyspark.sql import types as T

    p = FeatureParams.from_dict(params)
    _check_utc(transactions)
    names = feature_names_spark(p)
    df = _with_epoch(cleanse_spark(transactions))
    df = _customer_sums(df, p)
    c, t = schema.CUSTOMER_ID, schema.TERMINAL_ID
    df = _counts(df, [t], "terminal_activity", p.terminal_activity_windows, "terminal_activity")
    df = _delayed(df, t, p.terminal_windows, p.label_delay, "terminal")
    df = _delayed(df, schema.MERCHANT_CATEGORY, p.category_risk_windows, p.label_delay, "category")
    nov = [p.novelty_window]
    df = _counts(df, [c, schema.COUNTRY], "customer_country", nov, "customer_country")
    df = _counts(df, [c, schema.CHANNEL], "customer_channel", nov, "customer_channel")
    df = _counts(df, [c, t], "customer_terminal", nov, "customer_terminal")

    computed = set(names) - set(df.columns)
    inputs = df.columns
    source_types = {f.name: f.dataType for f in df.schema.fields}
    fields = []
    for name in names:
        if name in computed:
            kind = T.LongType() if name in _INT_FEATURES else T.DoubleType()
            fields.append(T.StructField(name, kind, True))
        else:
            fields.append(T.StructField(name, source_types[name], True))
    logger.info("Spark features: %d columns from %d inputs", len(names), len(inputs))
    return df.mapInArrow(_formulas(p, names), T.StructType(fields))
