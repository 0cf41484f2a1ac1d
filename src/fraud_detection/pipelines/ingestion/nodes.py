"""Ingestion nodes: column mapping and data-quality guards (``fraud_detection.quality``).

Every input row ends up either in the validated table or in quarantine with the
reasons it failed; the counts always add up, and the run stops when the invalid share
of the new rows passes the configured limit.

Each node runs on what the catalog loads: a pandas frame, or a Spark table in the
``spark`` environment (``fraud_detection.spark.quality``, the same rules and report).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraud_detection import quality
from fraud_detection.spark import quality as spark_quality


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
