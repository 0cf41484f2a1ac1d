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
