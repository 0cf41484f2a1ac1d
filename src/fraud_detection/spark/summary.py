"""The model report's data summary of a Spark table, aggregated in Spark."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from fraud_detection import schema

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def transaction_stats(validated: DataFrame) -> dict[str, Any]:
    """Rows, labelled rows, frauds, distinct customers and terminals, time span and
    daily volumes of a validated table: what ``reporting.summarise_data`` reads, with
    only the per-day counts collected."""
    from pyspark.sql import functions as F

    fraud = F.coalesce(F.col(schema.LABEL).cast("long"), F.lit(0))
    ts = F.col(schema.TIMESTAMP).cast("timestamp")
    totals = validated.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count(schema.LABEL).alias("labelled"),
        F.sum(fraud).alias("frauds"),
        F.countDistinct(schema.CUSTOMER_ID).alias("customers"),
        F.countDistinct(schema.TERMINAL_ID).alias("terminals"),
        F.min(ts).alias("first"),
        F.max(ts).alias("last"),
    ).first()
    daily = (
        validated.groupBy(F.date_trunc("day", ts).alias("day"))
        .agg(F.count(F.lit(1)).alias("transactions"), F.sum(fraud).alias("frauds"))
        .orderBy("day")
        .toPandas()
    )
    daily["day"] = pd.to_datetime(daily["day"])
    rows = int(totals["rows"])
    return {
        "rows": rows,
        "labelled": int(totals["labelled"]),
        "frauds": int(totals["frauds"] or 0),
        "customers": int(totals["customers"]),
        "terminals": int(totals["terminals"]),
        "first_transaction": str(pd.Timestamp(totals["first"])) if rows else None,
        "last_transaction": str(pd.Timestamp(totals["last"])) if rows else None,
        "daily": daily,
    }
