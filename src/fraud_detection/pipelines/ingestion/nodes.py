"""Ingestion nodes: column mapping and data-quality guards (``fraud_detection.quality``),
then the labels known so far joined to the validated transactions.

Every input row ends up either in the validated table or in quarantine with the
reasons it failed; the counts always add up, and the run stops when the invalid share
of the new rows passes the configured limit. Labels arrive apart from their
transactions (``fraud_detection.streaming.labels``): each run adds the new ones to the
label store, and the training data is every validated transaction with the labels known
at the run, so a label that arrives late still reaches the rows ingested before it.

Each node runs on what the catalog loads: a pandas frame, or a Spark table in the
``spark`` environment (``fraud_detection.spark``, the same rules and report).
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from fraud_detection import quality, schema
from fraud_detection.spark import labels as spark_labels
from fraud_detection.spark import quality as spark_quality
from fraud_detection.streaming import labels as late_labels
from fraud_detection.streaming.messages import empty_labels

logger = logging.getLogger(__name__)


def standardise_columns(raw: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Renames source columns to the canonical schema (``quality.standardise_columns``)."""
    if not isinstance(raw, pd.DataFrame):
        return spark_quality.standardise_columns_spark(raw, params)
    return quality.standardise_columns(raw, params)


def validate_transactions(
    transactions: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Valid rows, quarantined rows with reasons, and the report
    (``quality.validate_transactions``)."""
    if not isinstance(transactions, pd.DataFrame):
        return spark_quality.validate_transactions_spark(transactions, params)
    return quality.validate_transactions(transactions, params)


def enforce_quality_limit(
    screened: pd.DataFrame, report: dict[str, Any], params: dict[str, Any]
) -> pd.DataFrame:
    """Passes the valid rows on, or stops the run (``quality.enforce_quality_limit``)."""
    if not isinstance(screened, pd.DataFrame):
        return spark_quality.enforce_quality_limit_spark(screened, report, params)
    return quality.enforce_quality_limit(screened, report, params)


def collect_labels(raw_labels: pd.DataFrame | None) -> pd.DataFrame:
    """The labels of this run, one per transaction (the first one counts).

    Args:
        raw_labels: Label rows (``schema.LABEL_COLUMNS``) from the label topic or a
            file; ``None`` when the environment has no label source.
    """
    if raw_labels is None:
        return empty_labels()
    missing = [c for c in (schema.TRANSACTION_ID, schema.LABEL) if c not in raw_labels]
    if missing:
        raise ValueError(f"raw_labels lacks {missing}; a label row has {schema.LABEL_COLUMNS}")
    labels = raw_labels.drop_duplicates(schema.TRANSACTION_ID, keep="first").reset_index(drop=True)
    logger.info("%d new labels (%d repeats left out)", len(labels), len(raw_labels) - len(labels))
    return labels


def attach_labels(
    transactions: pd.DataFrame, labels: pd.DataFrame, params: dict[str, Any]
) -> pd.DataFrame:
    """The validated transactions with the labels known so far, joined by transaction id.

    With ``params:labels.source: topic`` only the label store counts (a transaction
    message's own ``is_fraud`` is ignored); with ``transactions`` the rows keep their
    own labels, completed from the store.
    """
    source = late_labels.LabelParams.from_dict(params).source
    if not isinstance(transactions, pd.DataFrame):
        logger.info("Labels from %s joined in Spark (%d in the store)", source, len(labels))
        return spark_labels.attach_labels_spark(transactions, labels, source)
    out = late_labels.attach_labels(transactions, labels, source)
    known = set(out[schema.TRANSACTION_ID])
    orphans = int((~labels[schema.TRANSACTION_ID].isin(known)).sum()) if len(labels) else 0
    logger.info(
        "Labels from %s: %d of %d transactions labelled; %d labels wait for a transaction "
        "not ingested yet",
        "the label topic" if source == "topic" else "the transactions",
        int(out[schema.LABEL].notna().sum()),
        len(out),
        orphans,
    )
    return out
