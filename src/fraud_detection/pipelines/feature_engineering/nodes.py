"""Feature engineering nodes: the point-in-time feature table from the validated
transactions, then the extra source columns declared as model inputs."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraud_detection import features, schema
from fraud_detection.features import spark_engine
from fraud_detection.features.source_columns import SourceColumnParams, add_source_columns
from fraud_detection.splits import SplitParams, plan_split


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
        The feature table the split reads. A Spark table (the ``spark`` environment)
        passes through when no source column is declared.

    Raises:
        NotImplementedError: Source columns declared on a Spark table: the join and its
            leakage guard are pandas only.
    """
    if not SourceColumnParams.from_dict(params).declares_any:
        return point_in_time_features
    if not isinstance(point_in_time_features, pd.DataFrame):
        raise NotImplementedError(
            "params:source_columns declares source columns, but the feature table is a Spark "
            "table (the spark environment): the source-column join and its leakage guard "
            "run on pandas only; declare no source columns in the spark environment"
        )
    day = point_in_time_features[schema.TIMESTAMP].dt.floor("D")
    plan = plan_split(day.min(), day.max(), SplitParams.from_dict(split_params))
    window = (pd.Timestamp(plan["development_start"]), pd.Timestamp(plan["train_end"]))
    return add_source_columns(point_in_time_features, transactions, params, window)
