"""The out-of-time split, the known-compromised rule and the training reduction as Spark
jobs; only the reduced development set and the test window reach the driver.

The window dates come from ``splits.plan_split`` (pure date arithmetic, one definition);
the row filters are the ones of ``splits.split_out_of_time``. The prequential folds are
date windows inside the development set (``splits.fold_indices`` on the driver): every
fraud is kept by the reduction, so the known-compromised rule gives the same rows
there as on the whole table.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pandas as pd

from fraud_detection import schema, splits
from fraud_detection.splits import SAMPLE_WEIGHT, SplitParams

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

logger = logging.getLogger(__name__)

_DAY = "_day"


def _with_day(frame: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return frame.withColumn(_DAY, F.date_trunc("day", F.col(schema.TIMESTAMP).cast("timestamp")))


def _ts(value: str | pd.Timestamp) -> Column:
    from pyspark.sql import functions as F

    return F.lit(pd.Timestamp(value).to_pydatetime())


def known_compromised_spark(
    frame: DataFrame, history_start: pd.Timestamp, eval_start: pd.Timestamp, delay_days: int
) -> Column:
    """``splits.known_compromised`` as a boolean column of ``frame`` (with ``_day``)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    day = F.col(_DAY)
    is_fraud = (F.coalesce(F.col(schema.LABEL).cast("int"), F.lit(0)) == 1) & (
        day >= _ts(history_start)
    )
    first_fraud = F.min(F.when(is_fraud, day)).over(Window.partitionBy(schema.CUSTOMER_ID))
    cutoff = F.date_sub(day, delay_days + 1).cast("timestamp")
    return (day >= _ts(eval_start)) & first_fraud.isNotNull() & (first_fraud <= cutoff)


def reduce_development_spark(development: DataFrame, ratio: float, seed: int) -> DataFrame:
    """``splits.reduce_development`` in Spark: every fraud, a ``ratio`` share of the
    genuine rows (Bernoulli, seeded), each weighted ``1 / ratio``."""
    from pyspark.sql import functions as F

    if ratio >= 1:
        return development
    genuine = F.col(schema.LABEL).cast("int") == 0
    return development.filter(~genuine | (F.rand(seed) < ratio)).withColumn(
        SAMPLE_WEIGHT, F.when(genuine, F.lit(1.0 / ratio)).otherwise(F.lit(1.0))
    )


def to_driver(frame: DataFrame) -> pd.DataFrame:
    """Collects a Spark table as pandas, in time order (ties by transaction id).

    The edge between Spark and the driver: Spark's timestamps come back as
    ``datetime64[us]``; the driver's code expects nanoseconds, as pandas reads them.
    """
    out = frame.orderBy(schema.TIMESTAMP, schema.TRANSACTION_ID).toPandas()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].astype("datetime64[ns]")
    if schema.LABEL in out.columns:
        out[schema.LABEL] = out[schema.LABEL].astype("Int8")
    return out


def split_out_of_time_spark(
    features: DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """``splits.split_out_of_time`` in Spark, then the training reduction, then the
    driver.

    Returns:
        The reduced development set (pandas, with ``sample_weight`` when genuine rows
        were sampled), the test window (pandas) and the split plan.
    """
    from pyspark.sql import functions as F

    p = SplitParams.from_dict(params)
    df = _with_day(features)
    bounds = df.agg(F.min(_DAY).alias("first"), F.max(_DAY).alias("last")).first()
    plan = splits.plan_split(pd.Timestamp(bounds["first"]), pd.Timestamp(bounds["last"]), p)
    day, labelled = F.col(_DAY), F.col(schema.LABEL).isNotNull()
    development = df.filter(
        (day >= _ts(plan["development_start"])) & (day < _ts(plan["train_end"])) & labelled
    )
    window = df.filter((day >= _ts(plan["train_start"])) & (day < _ts(plan["test_end"])))
    test_mask = (day >= _ts(plan["test_start"])) & labelled
    if p.remove_known_compromised:
        history, start = pd.Timestamp(plan["train_start"]), pd.Timestamp(plan["test_start"])
        # A window function cannot sit in a filter: flag the rows first.
        flag = known_compromised_spark(window, history, start, p.delay_days)
        window = window.withColumn("_compromised", flag)
        test_mask = test_mask & ~F.col("_compromised")
    test = window.filter(test_mask).drop("_compromised")
    fraud = F.col(schema.LABEL).cast("long")
    dev_counts = development.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(fraud).alias("frauds"),
        F.countDistinct(fraud).alias("classes"),
    ).first()
    test_counts = test.agg(F.count(F.lit(1)).alias("rows"), F.sum(fraud).alias("frauds")).first()
    if dev_counts["classes"] < 2 or test_counts["rows"] == 0:
        raise ValueError(
            f"The split left {dev_counts['rows']} development rows with "
            f"{dev_counts['frauds'] or 0} frauds and {test_counts['rows']} test rows: "
            "both classes are needed to train; check the data's dates and labels."
        )
    plan["counts"] = {
        "development_rows": int(dev_counts["rows"]),
        "development_frauds": int(dev_counts["frauds"]),
        "test_rows": int(test_counts["rows"]),
        "test_frauds": int(test_counts["frauds"] or 0),
    }
    reduced = reduce_development_spark(development, p.legit_sample_ratio, p.sample_seed)
    dev_pd = to_driver(reduced.drop(_DAY))
    test_pd = to_driver(test.drop(_DAY))
    plan["legit_sample_ratio"] = p.legit_sample_ratio
    plan["counts"]["development_rows_kept"] = len(dev_pd)
    logger.info("Out-of-time split (Spark): %s", plan["counts"])
    return dev_pd, test_pd, plan
