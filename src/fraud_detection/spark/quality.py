"""The ingestion checks of ``fraud_detection.quality`` as Spark jobs.

Same rules, same reason names, same report, so the quality gate
(``quality.enforce_quality_limit``) judges a Spark batch with its own code. Spark
timestamps cover years 1 to 9999, so the pandas engine's out-of-nanosecond-range
cases are simply too old or in the future here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pandas as pd

from fraud_detection import quality, schema
from fraud_detection.features.spark_engine import ARRIVAL
from fraud_detection.quality import QUARANTINE_REASON, IngestionParams
from fraud_detection.schema import TRANSACTION_SCHEMA

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

logger = logging.getLogger(__name__)


def standardise_columns_spark(raw: DataFrame, params: dict[str, Any]) -> DataFrame:
    """``quality.standardise_columns`` for a Spark table, plus the ``ARRIVAL`` column
    (the order rows were read in) that orders rows sharing a timestamp.

    Raises:
        ValueError: When a mapped or required column is absent, naming it.
    """
    from pyspark.sql import functions as F

    p = IngestionParams.from_dict(params)
    missing_sources = sorted(src for src in p.column_mapping.values() if src not in raw.columns)
    if missing_sources:
        raise ValueError(
            f"Column mapping names source column(s) {missing_sources} that the raw table "
            f"does not have; it has {list(raw.columns)}"
        )
    if ARRIVAL not in raw.columns:
        raw = raw.withColumn(ARRIVAL, F.monotonically_increasing_id())
    renamed_targets = set(p.column_mapping)
    keep = [c for c in raw.columns if c not in renamed_targets or c in p.column_mapping.values()]
    rename = {src: dst for dst, src in p.column_mapping.items()}
    out = raw.select(*[F.col(f"`{c}`").alias(rename.get(c, c)) for c in keep])
    missing = [c.name for c in TRANSACTION_SCHEMA if c.required and c.name not in out.columns]
    if missing:
        raise ValueError(
            f"Required column(s) {missing} are missing from the raw transactions; map them "
            "with params:ingestion.column_mapping (canonical name: source name)"
        )
    for col in TRANSACTION_SCHEMA:
        if col.name not in out.columns:
            default = F.lit(None).cast("double") if col.kind == "label" else F.lit(col.default)
            out = out.withColumn(col.name, default)
    ordered = list(schema.COLUMN_NAMES) + [c for c in out.columns if c not in schema.COLUMN_NAMES]
    return out.select(*ordered)


def _typed(df: DataFrame, unit: str | None) -> tuple[dict[str, Column], dict[str, Column]]:
    """Typed canonical columns and, per column, whether a present value failed to cast."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    kinds = {f.name: f.dataType for f in df.schema.fields}
    typed: dict[str, Column] = {}
    failed: dict[str, Column] = {}
    for col in TRANSACTION_SCHEMA:
        value = F.col(col.name)
        kind = kinds[col.name]
        present = value.isNotNull()
        if col.kind == "datetime":
            if isinstance(kind, (T.TimestampType, T.TimestampNTZType)):
                cast = value.cast("timestamp")
            elif isinstance(kind, T.NumericType) and unit:
                seconds = {"s": 1, "ms": 1_000, "us": 1_000_000}[unit]
                cast = F.timestamp_micros((value * (1_000_000 // seconds)).cast("long"))
            else:
                cast = F.try_to_timestamp(value.cast("string"))
        elif col.kind in {"float", "label"}:
            cast = value.try_cast("double")
        else:
            text = F.trim(value.cast("string"))
            cast = F.when(text != "", text)
            present = present & cast.isNotNull()
        failed[col.name] = present & cast.isNull()
        typed[col.name] = cast
    return typed, failed


def validate_transactions_spark(
    transactions: DataFrame, params: dict[str, Any]
) -> tuple[DataFrame, DataFrame, dict[str, Any]]:
    """``quality.validate_transactions`` in Spark: schema, types, nulls, ranges,
    timestamps and duplicate ids (the first arrival of an id is kept).

    Returns:
        The valid rows (typed, with ``ARRIVAL``), the quarantined rows (values as text
        and ``quarantine_reason``), and the report with counts (one Spark job).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    p = IngestionParams.from_dict(params)
    if ARRIVAL not in transactions.columns:
        transactions = transactions.withColumn(ARRIVAL, F.monotonically_increasing_id())
    typed, failed = _typed(transactions, p.timestamp_unit)
    reasons: dict[str, Column] = {}
    for col in TRANSACTION_SCHEMA:
        if not col.nullable:
            reasons[f"missing_{col.name}"] = typed[col.name].isNull() & ~failed[col.name]
        reasons[f"bad_type_{col.name}"] = failed[col.name]
    amount = typed[schema.AMOUNT]
    reasons["amount_out_of_range"] = amount.isNotNull() & (
        (amount < p.min_amount) | (amount > p.max_amount)
    )
    label = typed[schema.LABEL]
    reasons["label_not_0_or_1"] = label.isNotNull() & ~label.isin(0.0, 1.0)
    reference = (
        pd.Timestamp(p.reference_time)
        if p.reference_time
        else pd.Timestamp.now(tz="UTC").tz_localize(None)
    )
    latest = (reference + pd.Timedelta(p.max_future)).to_pydatetime()
    ts = typed[schema.TIMESTAMP]
    reasons["timestamp_too_old"] = ts.isNotNull() & (
        ts < F.lit(pd.Timestamp(p.min_timestamp).to_pydatetime())
    )
    reasons["timestamp_in_future"] = ts.isNotNull() & (ts > F.lit(latest))
    ids = typed[schema.TRANSACTION_ID]
    rank = F.row_number().over(Window.partitionBy(ids).orderBy(ARRIVAL))
    reasons["duplicate_transaction_id"] = ids.isNotNull() & (rank > 1)

    flags = {f"_r_{k}": F.coalesce(v, F.lit(False)) for k, v in reasons.items()}
    originals = {f"_orig_{c}": F.col(f"`{c}`").cast("string") for c in transactions.columns}
    screened = transactions.select(
        *[F.col(f"`{c}`") for c in transactions.columns],
        *[v.alias(k) for k, v in originals.items()],
    )
    screened = screened.withColumns({f"_t_{k}": v for k, v in typed.items()})
    # Reasons reference the original columns: evaluate them before the typed ones
    # replace those.
    screened = screened.withColumns(flags)
    screened = screened.withColumn("_invalid", F.greatest(*[F.col(k) for k in flags])).cache()

    counts = screened.agg(
        F.count(F.lit(1)).alias("rows_in"),
        F.sum(F.col("_invalid").cast("long")).alias("_bad"),
        *[F.sum(F.col(k).cast("long")).alias(k) for k in flags],
    ).first()
    n_in = int(counts["rows_in"])
    n_bad = int(counts["_bad"] or 0)
    by_reason = {k[3:]: int(counts[k]) for k in flags if counts[k]}

    extras = [c for c in transactions.columns if c not in schema.COLUMN_NAMES]
    valid = screened.filter(~F.col("_invalid")).select(
        *[
            F.col(f"_t_{c.name}")
            .cast("int" if c.kind == "label" else _spark_type(c.kind))
            .alias(c.name)
            for c in TRANSACTION_SCHEMA
        ],
        *[F.col(f"`{c}`") for c in extras],
    )
    reason = F.concat_ws(";", *[F.when(F.col(f"_r_{k}"), F.lit(k)) for k in reasons])
    quarantine = screened.filter(F.col("_invalid")).select(
        *[F.col(f"_orig_{c}").alias(c) for c in transactions.columns if c != ARRIVAL],
        reason.alias(QUARANTINE_REASON),
    )
    report = quality.quality_report(n_in, n_bad, p.max_invalid_share, by_reason)
    share = report["invalid_share"]
    logger.info(
        "Ingestion (Spark): %d rows in = %d valid + %d quarantined (%.3f%%); reasons %s",
        n_in,
        n_in - n_bad,
        n_bad,
        100 * share,
        by_reason,
    )
    return valid, quarantine, report


def _spark_type(kind: str) -> str:
    return {"str": "string", "float": "double", "datetime": "timestamp"}[kind]


def enforce_quality_limit_spark(
    screened: DataFrame, report: dict[str, Any], params: dict[str, Any]
) -> DataFrame:
    """``quality.enforce_quality_limit`` on a Spark table: the same gate, judged on the
    report and the table's row count."""
    # The gate reads only the frame's length: an index of that many rows, no data.
    rows = pd.DataFrame(index=pd.RangeIndex(screened.count()))
    quality.enforce_quality_limit(rows, report, params)
    return screened
