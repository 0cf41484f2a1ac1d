"""Data split node: development set and out-of-time test window."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraud_detection import splits
from fraud_detection.spark import splits as spark_splits


def split_out_of_time(
    features: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Splits the feature table by time (``fraud_detection.splits.split_out_of_time``).

    Args:
        features: The feature table, one row per transaction.
        params: ``params:split``.

    Returns:
        The development set, the test set and the split plan (dates, folds, counts),
        as pandas frames: from a Spark table (the ``spark`` environment) the split and
        the training reduction run in Spark and only their result reaches the driver.
    """
    if not isinstance(features, pd.DataFrame):
        return spark_splits.split_out_of_time_spark(features, params)
    return splits.split_out_of_time(features, params)
