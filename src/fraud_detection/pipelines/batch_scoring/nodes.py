"""Batch scoring nodes: the features of the rows to score, then the champion's
predictions (the logic lives in ``fraud_detection.predictions``).

Each node takes a pandas or a Spark DataFrame, whichever the catalog gives: the
``spark`` environment's catalog (``conf/spark/catalog_batch_scoring.yml``) reads and
writes Spark DataFrames, so the same pipeline runs on Spark there.
"""

from __future__ import annotations

import logging
from typing import Any

from fraud_detection import predictions

logger = logging.getLogger(__name__)


def build_features_to_score(
    transactions: Any, feature_params: dict[str, Any], params: dict[str, Any]
) -> Any:
    """``create_features`` rows of the transactions in ``params:batch_scoring``'s window,
    computed over the window and the history its features read."""
    if predictions.is_spark(transactions):
        return predictions.spark_features_to_score(transactions, feature_params, params)
    return predictions.features_to_score(transactions, feature_params, params)


def score_transactions(features: Any, champion: dict[str, Any] | None) -> Any:
    """The champion's score, decision, threshold, model name and version per row.

    Raises:
        ValueError: When the registry has no champion yet.
    """
    model = predictions.Champion.from_loaded(champion)
    if predictions.is_spark(features):
        logger.info("Scoring with %s on Spark (mlflow.pyfunc.spark_udf)", model.uri)
        return predictions.spark_predict(features, model)
    return predictions.predict(features, model)
