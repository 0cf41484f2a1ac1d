"""Feature engineering node: the feature table from the validated transactions."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraud_detection import features


def create_features(transactions: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Point-in-time features of every transaction (``fraud_detection.features``).

    Args:
        transactions: Validated transactions.
        params: ``params:features``, from which the feature spec is built.

    Returns:
        One row per transaction, in time order, with the columns
        ``feature_names(build_spec(params))``: id columns, the amount, the cleaned
        categoricals, the label and the numeric features.
    """
    return features.create_features(transactions, params)
