"""Training nodes.

Every candidate family is one imbalanced-learn pipeline searched over a space defined in
``parameters_training.yml`` and scored by average precision on prequential validation
folds. Selection and decision thresholds use validation data only; the test window
is touched by the evaluation pipeline alone. The logic lives in
``fraud_detection.model_search``, which the backtest pipeline shares.
"""

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

__all__ = [
    "BASELINE",
    "THRESHOLD_OBJECTIVES",
    "TrainingParams",
    "_best_threshold",
    "choose_thresholds",
    "fit_candidates",
    "package_model",
    "select_model",
    "tune_candidates",
]
