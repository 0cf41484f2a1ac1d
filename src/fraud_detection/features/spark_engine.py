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

from fraud_detection import schema
from fraud_detection.features.pandas_engine import (
    amount_moments,
    amount_vs_history,
    risk_share,
    seconds_since_previous,
    temporal_features,
)
from fraud_detection.features.spec import (
    Aggregation,
    FeatureSpec,
    Measure,
    build_spec,
    computed_feature_names,
    feature_names,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa
    from pyspark.sql import Column, DataFrame

logger = logging.getLogger(__name__)

# Arrival order of the rows (a long, increasing with arrival); ties in time follow it.
ARRIVAL = "arrival_order"

_MS = "_epoch_ms"
_US = "_epoch_us"
_INT_FEATURES = {"tx_hour", "tx_day_of_week", "tx_during_weekend", "tx_during_night"}
# Decimal prefix sums: 18 decimals below the unit, 20 above (amounts up to 1e6, squared).
_DECIMAL = "decimal(38,18)"


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


def _amount_sums(df: DataFrame, agg: Aggregation) -> DataFrame:
    """An ``amount`` aggregation's window counts and shifted sums (as ``SortedAxis``)."""
    from pyspark.sql import functions as F

    ax = _Axis(list(agg.keys), agg.name)
    n = agg.name
    first = F.first(schema.AMOUNT).over(ax.running())
    df = df.withColumn(f"_{n}_first", first).withColumn(ax.seq, ax.seq_column())
    shifted = F.col(schema.AMOUNT) - F.col(f"_{n}_first")
    df = df.withColumn(f"_{n}_shifted", shifted)
    df = df.withColumn(f"_{n}_ps", _exact_prefix(F.col(f"_{n}_shifted"), ax.running()))
    squares = F.col(f"_{n}_shifted") * F.col(f"_{n}_shifted")
    df = df.withColumn(f"_{n}_pss", _exact_prefix(squares, ax.running()))
    if agg.since_previous:
        df = df.withColumn(f"_{n}_gap_ms", F.col(_MS) - F.lag(_MS).over(ax.rows))
    for w in agg.windows:
        s = w.suffix
        df = df.withColumns(
            {
                f"_{n}_cn_{s}": (F.col(ax.seq) - ax.before(w.ms)).cast("double"),
                f"_{n}_cs_{s}": F.col(f"_{n}_ps") - ax.prefix_before(f"_{n}_ps", w.ms),
                f"_{n}_css_{s}": F.col(f"_{n}_pss") - ax.prefix_before(f"_{n}_pss", w.ms),
            }
        )
    return df


def _counts(df: DataFrame, agg: Aggregation) -> DataFrame:
    """A ``count`` aggregation: rows per key over past windows, the current one included."""
    from pyspark.sql import functions as F

    ax = _Axis(list(agg.keys), agg.name)
    df = df.withColumn(ax.seq, ax.seq_column())
    return df.withColumns(
        {agg.count_column(w): (F.col(ax.seq) - ax.before(w.ms)).cast("double") for w in agg.windows}
    )


def _delayed(df: DataFrame, agg: Aggregation) -> DataFrame:
    """A ``fraud`` aggregation: labelled and fraudulent counts over
    ``(t - delay - w, t - delay]``; labels still unknown (null) count in neither.

    Both counts depend on the key and the time only, so they are computed on one narrow
    row per key and millisecond (the labelled and fraudulent rows at that time) and
    joined back: the window partitions of a key with millions of rows (a merchant
    category) then buffer a few columns, not the whole feature row.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    assert agg.delay is not None
    keys, n, d = list(agg.keys), agg.name, agg.delay.ms
    labelled = F.col(schema.LABEL).isNotNull().cast("long")
    fraud = F.coalesce(F.col(schema.LABEL).cast("long"), F.lit(0))
    per_ms = df.groupBy(*keys, _MS).agg(
        F.sum(labelled).alias(f"_{n}_l"), F.sum(fraud).alias(f"_{n}_f")
    )
    ax = _Axis(keys, n)
    running = ax.by_time.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    per_ms = per_ms.withColumns(
        {
            f"_{n}_labelled": F.sum(f"_{n}_l").over(running),
            f"_{n}_frauds": F.sum(f"_{n}_f").over(running),
        }
    )

    # Running counts never decrease: the last time of a frame holds its maximum.
    out = {}
    hi_l = F.coalesce(F.max(f"_{n}_labelled").over(ax.until(d)), F.lit(0))
    hi_f = F.coalesce(F.max(f"_{n}_frauds").over(ax.until(d)), F.lit(0))
    for w in agg.windows:
        lo = ax.until(d + w.ms)
        lo_l = F.coalesce(F.max(f"_{n}_labelled").over(lo), F.lit(0))
        lo_f = F.coalesce(F.max(f"_{n}_frauds").over(lo), F.lit(0))
        out[agg.count_column(w)] = (hi_l - lo_l).cast("double")
        out[f"_{n}_nf_{w.suffix}"] = (hi_f - lo_f).cast("double")
    counts = per_ms.withColumns(out).select(*keys, _MS, *out)
    # Keys are never null: categoricals are filled by cleanse_spark, ids required by
    # the quality checks (a null key would match no row of the join).
    return df.join(counts, on=[*keys, _MS], how="left")


_SUMS = {Measure.AMOUNT: _amount_sums, Measure.COUNT: _counts, Measure.FRAUD: _delayed}


def _widest_partitions_first(spec: FeatureSpec) -> list[Aggregation]:
    """The aggregations in the order their windows run: those not keyed by the customer
    (merchant category, terminal: few keys, so window partitions of millions of rows,
    each buffered whole by Spark) first, while the rows are narrowest, the one with the
    fewest key columns and the last in the spec first; then the customer's. The output
    does not depend on the order."""
    customer = [a for a in spec.aggregations if schema.CUSTOMER_ID in a.keys]
    others = [a for a in reversed(spec.aggregations) if schema.CUSTOMER_ID not in a.keys]
    return others + customer


def _formulas(spec: FeatureSpec, names: list[str]):
    """The Arrow batch function applying the pandas engine's formulas to the sums."""

    def apply(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        for batch in batches:
            col = {name: batch.column(i) for i, name in enumerate(batch.schema.names)}

            def num(name: str, cols: dict[str, pa.Array] = col) -> np.ndarray:
                return cols[name].to_numpy(zero_copy_only=False).astype(np.float64)

            amount = num(schema.AMOUNT)
            ns = col[_US].to_numpy(zero_copy_only=False).astype(np.int64) * 1000
            out: dict[str, Any] = dict(temporal_features(ns, amount, spec.night_until_hour))
            for agg in spec.aggregations:
                out.update(_agg_formulas(agg, spec, num, amount))
            arrays = [col[name] if name not in out else pa.array(out[name]) for name in names]
            yield pa.RecordBatch.from_arrays(arrays, names=names)

    return apply


def _agg_formulas(agg: Aggregation, spec: FeatureSpec, num: Any, amount: np.ndarray) -> dict:
    """One aggregation's feature columns from its window sums (the shared formulas)."""
    n = agg.name
    if agg.measure is Measure.COUNT:
        return {}  # the counts are the features
    if agg.measure is Measure.FRAUD:
        return {
            agg.risk_column(w): risk_share(num(agg.count_column(w)), num(f"_{n}_nf_{w.suffix}"))
            for w in agg.windows
        }
    out: dict[str, np.ndarray] = {}
    first = num(f"_{n}_first")
    for w in agg.windows:
        count = num(f"_{n}_cn_{w.suffix}")
        out[agg.count_column(w)] = count
        out[agg.mean_column(w)], out[agg.std_column(w)] = amount_moments(
            count, num(f"_{n}_cs_{w.suffix}"), num(f"_{n}_css_{w.suffix}"), first
        )
    if agg.since_previous:
        out[agg.since_previous_column] = seconds_since_previous(
            num(f"_{n}_gap_ms"), spec.max_gap_days
        )
    if agg.history is not None:
        out[agg.ratio_column], out[agg.zscore_column] = amount_vs_history(
            amount,
            out[agg.mean_column(agg.history)],
            out[agg.std_column(agg.history)],
            spec.ratio_cap,
        )
    return out


def create_features_spark(transactions: DataFrame, params: dict[str, Any]) -> DataFrame:
    """Builds the feature table of ``create_features`` from validated transactions.

    Args:
        transactions: Validated transactions (Spark), optionally with ``ARRIVAL``.
        params: ``params:features``, from which the feature spec is built.

    Returns:
        One row per transaction with the columns ``feature_names(build_spec(params))``
        (Spark tables have no row order: sort by time when it matters).
    """
    from pyspark.sql import types as T

    spec = build_spec(params)
    _check_utc(transactions)
    names = feature_names(spec)
    df = _with_epoch(cleanse_spark(transactions))
    for agg in _widest_partitions_first(spec):
        df = _SUMS[agg.measure](df, agg)

    computed = set(computed_feature_names(spec))
    source_types = {f.name: f.dataType for f in df.schema.fields}
    fields = []
    for name in names:
        if name in computed:
            kind = T.LongType() if name in _INT_FEATURES else T.DoubleType()
            fields.append(T.StructField(name, kind, True))
        else:
            fields.append(T.StructField(name, source_types[name], True))
    logger.info("Spark features: %d columns from %d inputs", len(names), len(df.columns))
    return df.mapInArrow(_formulas(spec, names), T.StructType(fields))
