"""Training nodes.

Every candidate family is one imbalanced-learn pipeline searched over a space defined in
``parameters_training.yml`` and scored by average precision on prequential validation
folds. Selection and decision thresholds use validation data only; the test window
is touched by the evaluation pipeline alone. The logic lives in
``fraud_detection.model_search``, which the backtest pipeline shares.

When the split sampled genuine rows (``params:split.legit_sample_ratio`` below 1), each
development row carries a ``sample_weight``: models fit on the reduced rows (an
undersampling), while validation average precision, the out-of-fold predictions and
the thresholds weigh every row, so they estimate what the full data would give.

With ``params:training.engine: spark`` (the spark environment), one more candidate is
XGBoost trained in Spark on the whole feature table
(``fraud_detection.spark.xgboost_training``), merged with the driver's candidates
before the thresholds and the selection.
"""

from typing import Any

import pandas as pd

from fraud_detection.model_search import (
    BASELINE,
    THRESHOLD_OBJECTIVES,
    TrainingParams,
    _best_threshold,
    choose_thresholds,
    fit_candidates,
    package_model,
    select_model,
    tune_candidates,
)
from fraud_detection.spark import xgboost_training

__all__ = [
    "BASELINE",
    "THRESHOLD_OBJECTIVES",
    "TrainingParams",
    "_best_threshold",
    "choose_thresholds",
    "fit_candidates",
    "merge_candidates",
    "package_model",
    "select_model",
    "train_spark_candidates",
    "tune_candidates",
]


def train_spark_candidates(
    features: Any, plan: dict[str, Any], params: dict[str, Any], feature_params: dict[str, Any]
) -> dict[str, Any]:
    """With ``params:training.engine: spark``, trains XGBoost in Spark on the feature
    table (``fraud_detection.spark.xgboost_training``); nothing with ``pandas``.

    Args:
        features: ``spark_feature_table``: the Spark feature table in the spark
            environment, ``None`` elsewhere (``AbsentDataset``: nothing is read).

    Raises:
        ValueError: With the spark engine outside the spark environment.
    """
    p = TrainingParams.from_dict(params)
    spark_params = xgboost_training.SparkXGBoostParams.from_dict(p.spark)
    if p.engine == "pandas":
        return {}
    if features is None or isinstance(features, pd.DataFrame):
        raise ValueError(
            "params:training.engine: spark trains on the Spark feature table: "
            "run in the spark environment (kedro run --env spark)"
        )
    return xgboost_training.train_spark_xgboost(features, plan, spark_params, feature_params)


def merge_candidates(
    search_results: dict[str, Any],
    validation_predictions: pd.DataFrame,
    trained_candidates: dict[str, Any],
    spark_candidates: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame, dict[str, Any]]:
    """Adds the Spark-trained candidate (if any) to the driver's candidates."""
    if not spark_candidates:
        return search_results, validation_predictions, trained_candidates
    clash = sorted(set(spark_candidates["search_results"]) & set(search_results))
    if clash:
        raise ValueError(
            f"params:training.spark.name {clash} is also a candidate of params:training: "
            "give the Spark candidate another name"
        )
    return (
        {**search_results, **spark_candidates["search_results"]},
        pd.concat(
            [validation_predictions, spark_candidates["validation_predictions"]],
            ignore_index=True,
        ),
        {**trained_candidates, **spark_candidates["trained_candidates"]},
    )
