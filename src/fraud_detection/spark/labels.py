"""The label join of ingestion as a Spark job: the validated transactions with the labels
known so far, joined by transaction id (``streaming.labels.attach_labels``' rules).

The label store stays a pandas table (labels are few next to transactions); it is
broadcast to the join.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from fraud_detection import schema

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_KEY, _KNOWN = "_label_tid", "_label_known"


def attach_labels_spark(
    transactions: DataFrame, labels: pd.DataFrame | None, source: str
) -> DataFrame:
    """Same rows and columns as ``transactions``, ``is_fraud`` as a nullable tinyint.

    Args:
        transactions: A Spark table in the canonical schema.
        labels: Label rows (``transaction_id``, ``is_fraud``, ...); the first label of a
            transaction counts. ``None`` or empty: none known yet.
        source: ``topic``: only ``labels`` count; ``transactions``: the rows' own labels,
            completed by ``labels``.
    """
    from pyspark.sql import functions as F

    if source not in ("transactions", "topic"):
        raise ValueError(f"source must be 'transactions' or 'topic', got {source!r}")
    own = (
        F.col(schema.LABEL).cast("double")
        if schema.LABEL in transactions.columns and source == "transactions"
        else F.lit(None).cast("double")
    )
    out = transactions.withColumn(schema.LABEL, own)
    if labels is not None and len(labels):
        first = labels.drop_duplicates(schema.TRANSACTION_ID, keep="first")
        known = pd.DataFrame(
            {
                _KEY: first[schema.TRANSACTION_ID].astype("str").to_numpy(),
                _KNOWN: pd.to_numeric(first[schema.LABEL], errors="coerce").astype("float64"),
            }
        )
        store = transactions.sparkSession.createDataFrame(known)
        out = (
            out.withColumn(_KEY, F.col(schema.TRANSACTION_ID).cast("string"))
            .join(F.broadcast(store), on=_KEY, how="left")
            .withColumn(schema.LABEL, F.coalesce(F.col(schema.LABEL), F.col(_KNOWN)))
            .drop(_KEY, _KNOWN)
        )
    return out.withColumn(schema.LABEL, F.col(schema.LABEL).cast("tinyint")).select(
        *transactions.columns
        if schema.LABEL in transactions.columns
        else [*transactions.columns, schema.LABEL]
    )
