"""Evaluation nodes: test-window metrics from probabilities, and plots.

Every candidate and the baseline are scored on the same test rows, so a regression
against the simple baseline is visible; only the selected model's figures are the
headline metrics.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from sklearn.metrics import (
    classification_report,
    confusion_matrix,
)

from fraud_detection import schema
from fraud_detection.drift import statistics as drift
from fraud_detection.metrics import alert_summary, card_precision_at_k, model_metrics
from fraud_detection.model import positive_scores
from fraud_detection.plotting import (
    plot_confusion_matrix,
    plot_feature_importance,
    plot_pr_curves,
    plot_roc_curves,
    plot_score_distribution,
)

logger = logging.getLogger(__name__)


def score_test_set(trained_candidates: dict[str, Any], test_set: pd.DataFrame) -> pd.DataFrame:
    """Fraud scores of every model on the test rows, one column per model."""
    out = test_set[
        [schema.TRANSACTION_ID, schema.TIMESTAMP, schema.CUSTOMER_ID, schema.AMOUNT, schema.LABEL]
    ].copy()
    out[schema.LABEL] = out[schema.LABEL].astype(int)
    for name, entry in trained_candidates.items():
        out[f"score_{name}"] = positive_scores(entry["pipeline"], test_set[entry["inputs"]])
    return out


def evaluate_on_test(
    predictions: pd.DataFrame,
    thresholds: dict[str, Any],
    selection: dict[str, Any],
    params: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Test metrics of every model, at its own validation-chosen threshold.

    Returns:
        Metrics for MLflow (``test_<model>_<metric>`` plus the selected model's as
        ``test_<metric>``), and a report with the same figures, the selected model's
        classification report and confusion matrix.
    """
    ks = list(params.get("card_precision_k", [100]))
    labels = predictions[schema.LABEL].to_numpy(int)
    per_model: dict[str, dict[str, float]] = {}
    for column in [c for c in predictions.columns if c.startswith("score_")]:
        name = column.removeprefix("score_")
        scores = predictions[column].to_numpy(float)
        m = model_metrics(labels, scores, thresholds[name]["threshold"])
        for k in ks:
            m[f"card_precision_at_{k}"] = card_precision_at_k(predictions, column, k)
        per_model[name] = m
    selected = selection["selected"]
    threshold = thresholds[selected]["threshold"]
    decisions = (predictions[f"score_{selected}"].to_numpy(float) >= threshold).astype(int)
    matrix = confusion_matrix(labels, decisions, labels=[0, 1])
    alerts = alert_summary(
        labels,
        predictions[f"score_{selected}"].to_numpy(float),
        predictions[schema.AMOUNT].to_numpy(float),
        predictions[schema.TIMESTAMP].dt.floor("D").to_numpy(),
        threshold,
    )
    report = {
        "selected": selected,
        "threshold": threshold,
        "test_rows": len(predictions),
        "test_frauds": int(labels.sum()),
        "metrics": per_model,
        "confusion_matrix": {
            "tn": int(matrix[0, 0]),
            "fp": int(matrix[0, 1]),
            "fn": int(matrix[1, 0]),
            "tp": int(matrix[1, 1]),
        },
        "classification_report": classification_report(
            labels, decisions, output_dict=True, zero_division=0
        ),
        # What the threshold means for the investigators: alerts a day, money caught.
        "alerts": alerts,
    }
    metrics = {
        f"test_{name}_{key}": {"value": value, "step": 0}
        for name, m in per_model.items()
        for key, value in m.items()
    }
    metrics.update(
        {f"test_{key}": {"value": value, "step": 0} for key, value in per_model[selected].items()}
    )
    metrics["decision_threshold"] = {"value": threshold, "step": 0}
    metrics.update({f"test_{key}": {"value": value, "step": 0} for key, value in alerts.items()})
    logger.info("Test metrics of %s: %s", selected, per_model[selected])
    return metrics, report


def build_reference_profile(  # noqa: PLR0917 (a Kedro node: one input per dataset)
    test_set: pd.DataFrame,
    test_predictions: pd.DataFrame,
    model_selection: dict[str, Any],
    evaluation_report: dict[str, Any],
    selected_features: list[str],
    params: dict[str, Any],
) -> dict[str, Any]:
    """The reference profile the monitoring pipeline compares windows with
    (``drift.build_reference_profile``): the selected model's inputs and scores on the
    test window, with its test metrics."""
    return drift.build_reference_profile(
        test_set, test_predictions, model_selection, evaluation_report, selected_features, params
    )


__all__ = [
    "alert_summary",
    "build_reference_profile",
    "card_precision_at_k",
    "evaluate_on_test",
    "model_metrics",
    "plot_confusion_matrix",
    "plot_feature_importance",
    "plot_pr_curves",
    "plot_roc_curves",
    "plot_score_distribution",
    "score_test_set",
]
