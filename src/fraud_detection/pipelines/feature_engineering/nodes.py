"""Feature engineering node: the feature table from the validated transactions."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraud_detection import features


def create_features(transactions: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Point-in-time features of every transaction (``fraud_detection.features``).

    Args:
        transactions: Validated transactions.
        params: ``params:features``.

    Returns:
        One row per transaction, in time order: id columns, the label, the cleaned
        categoricals and the numeric features.
    """
    return features.create_features(transactions, params)
