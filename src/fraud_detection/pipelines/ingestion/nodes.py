"""Ingestion nodes: column mapping and data-quality guards (``fraud_detection.quality``).

Every input row ends up either in the validated table or in quarantine with the
reasons it failed; the counts always add up, and the run stops when the invalid share
of the new rows passes the configured limit.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraud_detection import quality


def standardise_columns(raw: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Renames source columns to the canonical schema (``quality.standardise_columns``)."""
    return quality.standardise_columns(raw, params)


def validate_transactions(
    transactions: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Valid rows, quarantined rows with reasons, and the report
    (``quality.validate_transactions``)."""
    return quality.validate_transactions(transactions, params)


def enforce_quality_limit(
    screened: pd.DataFrame, report: dict[str, Any], params: dict[str, Any]
) -> pd.DataFrame:
    """Passes the valid rows on, or stops the run (``quality.enforce_quality_limit``)."""
    return quality.enforce_quality_limit(screened, report, params)
