"""Feature engineering node: the feature table from the validated transactions."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraud_detection import features
from fraud_detection.features import spark_engine


def create_features(transactions: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Point-in-time features of every transaction (``fraud_detection.features``).

    Args:
        transactions: Validated transactions.
        params: ``params:features``, from which the feature spec is built.

    Returns:
        One row per transaction, in time order, with the columns
        ``feature_names(build_spec(params))``: id columns, the amount, the cleaned
        categoricals, the label and the numeric features. A Spark
        table (the ``spark`` environment) gives a Spark table with the same columns.
    """
    if not isinstance(transactions, pd.DataFrame):
        return spark_engine.create_features_spark(transactions, params)
    return features.create_features(transactions, params)
