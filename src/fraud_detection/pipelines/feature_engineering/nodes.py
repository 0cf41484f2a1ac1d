"""Feature engineering nodes: the point-in-time feature table from the validated
transactions, then the extra source columns declared as model inputs."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraud_detection import features, schema
from fraud_detection.features.source_columns import SourceColumnParams, add_source_columns
from fraud_detection.splits import SplitParams, plan_split


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


def add_source_columns_node(
    point_in_time_features: pd.DataFrame,
    transactions: pd.DataFrame,
    params: dict[str, Any],
    split_params: dict[str, Any],
) -> pd.DataFrame:
    """Appends the source columns of ``params:source_columns`` as ``src_<name>``
    model inputs (``fraud_detection.features.source_columns``), after the leakage
    guard has checked them on the split's training window.

    Args:
        point_in_time_features: ``create_features`` output.
        transactions: Validated transactions, with their extra columns.
        params: ``params:source_columns``.
        split_params: ``params:split``, for the training window the guard checks.

    Returns:
        The feature table the split reads.
    """
    if not SourceColumnParams.from_dict(params).declares_any:
        return point_in_time_features
    day = point_in_time_features[schema.TIMESTAMP].dt.floor("D")
    plan = plan_split(day.min(), day.max(), SplitParams.from_dict(split_params))
    window = (pd.Timestamp(plan["development_start"]), pd.Timestamp(plan["train_end"]))
    return add_source_columns(point_in_time_features, transactions, params, window)
