"""Evaluation nodes: test-window metrics from probabilities, and plots.

Every candidate and the baseline are scored on the same test rows, so a regression
against the simple baseline is visible; only the selected model's figures are the
headline metrics.
"""

from __future__ import annotations

import logging
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    average_precision_score,
    classification_report,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from fraud_detection import schema  # noqa: E402
from fraud_detection.model import positive_scores  # noqa: E402

logger = logging.getLogger(__name__)


def score_test_set(trained_candidates: dict[str, Any], test_set: pd.DataFrame) -> pd.DataFrame:
    """Fraud scores of every model on the test rows, one column per model."""
    out = test_set[[schema.TRANSACTION_ID, schema.TIMESTAMP, schema.CUSTOMER_ID, schema.LABEL]].copy()
    out[schema.LABEL] = out[schema.LABEL].astype(int)
    for name, entry in trained_candidates.items():
        out[f"score_{name}"] = positive_scores(entry["pipeline"], test_set[entry["inputs"]])
    return out


def card_precision_at_k(predictions: pd.DataFrame, score_column: str, k: int) -> float:
    """Card Precision@k as in the Fraud Detection Handbook.

    Per test day, each card's score is its highest transaction score; the share of
    fraudulent cards among the ``k`` highest-scored cards is averaged over days. Cards
    detected (fraudulent and in the top ``k``) on a day are left out of later days.
    """
    day = predictions[schema.TIMESTAMP].dt.floor("D")
    detected: set = set()
    values = []
    for d in sorted(day.unique()):
        today = predictions[(day == d) & ~predictions[schema.CUSTOMER_ID].isin(detected)]
        cards = today.groupby(schema.CUSTOMER_ID).agg(score=(score_column, "max"), fraud=(schema.LABEL, "max"))
        top = cards.sort_values("score", ascending=False, kind="stable").head(k)
        values.append(top["fraud"].sum() / k)
        detected |= set(top.index[top["fraud"] == 1])
    return float(np.mean(values)) if values else float("nan")


def model_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Threshold-free and at-threshold metrics of one model."""
    decisions = (scores >= threshold).astype(int)
    return {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "average_precision": float(average_precision_score(labels, scores)),
        "precision": float(precision_score(labels, decisions, zero_division=0)),
        "recall": float(recall_score(labels, decisions, zero_division=0)),
        "f1": float(f1_score(labels, decisions, zero_division=0)),
    }


def evaluate_on_test(
    predictions: pd.DataFrame, thresholds: dict[str, Any], selection: dict[str, Any], params: dict[str, Any]
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
    report = {
        "selected": selected,
        "threshold": threshold,
        "test_rows": len(predictions),
        "test_frauds": int(labels.sum()),
        "metrics": per_model,
        "confusion_matrix": {"tn": int(matrix[0, 0]), "fp": int(matrix[0, 1]), "fn": int(matrix[1, 0]), "tp": int(matrix[1, 1])},
        "classification_report": classification_report(labels, decisions, output_dict=True, zero_division=0),
    }
    metrics = {f"test_{name}_{key}": {"value": value, "step": 0} for name, m in per_model.items() for key, value in m.items()}
    metrics.update({f"test_{key}": {"value": value, "step": 0} for key, value in per_model[selected].items()})
    metrics["decision_threshold"] = {"value": threshold, "step": 0}
    logger.info("Test metrics of %s: %s", selected, per_model[selected])
    return metrics, report


def _model_columns(predictions: pd.DataFrame) -> list[str]:
    return [c.removeprefix("score_") for c in predictions.columns if c.startswith("score_")]


def plot_pr_curves(predictions: pd.DataFrame, selection: dict[str, Any]) -> Figure:
    """Precision-recall curves of every model on the test window."""
    fig, ax = plt.subplots(figsize=(6, 5))
    y = predictions[schema.LABEL].to_numpy(int)
    for name in _model_columns(predictions):
        s = predictions[f"score_{name}"].to_numpy(float)
        precision, recall, _ = precision_recall_curve(y, s)
        ax.plot(recall, precision, lw=2.5 if name == selection["selected"] else 1, label=f"{name} (AP {average_precision_score(y, s):.3f})")
    ax.axhline(y.mean(), color="grey", ls=":", label=f"fraud rate {y.mean():.3%}")
    ax.set(xlabel="Recall", ylabel="Precision", title="Precision-recall, test window")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_roc_curves(predictions: pd.DataFrame, selection: dict[str, Any]) -> Figure:
    """ROC curves of every model on the test window."""
    fig, ax = plt.subplots(figsize=(6, 5))
    y = predictions[schema.LABEL].to_numpy(int)
    for name in _model_columns(predictions):
        s = predictions[f"score_{name}"].to_numpy(float)
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, lw=2.5 if name == selection["selected"] else 1, label=f"{name} (AUC {roc_auc_score(y, s):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", ls=":")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC, test window")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(report: dict[str, Any]) -> Figure:
    """Confusion matrix of the selected model at its threshold."""
    cm = report["confusion_matrix"]
    matrix = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, f"{v:,}", ha="center", va="center", color="black")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["genuine", "fraud"], yticklabels=["genuine", "fraud"],
           xlabel="Predicted", ylabel="Actual", title=f"{report['selected']} at threshold {report['threshold']:.3f}")
    fig.tight_layout()
    return fig


def feature_importance(pipeline: Any) -> pd.Series:
    """Importance per model input: impurity/gain importances for trees, absolute
    coefficients (on standardised inputs) for linear models."""
    classifier = pipeline.named_steps["classifier"]
    names = pipeline.named_steps["preprocess"].get_feature_names_out()
    if hasattr(classifier, "feature_importances_"):
        values = classifier.feature_importances_
    else:
        values = np.abs(np.ravel(classifier.coef_))
    return pd.Series(values, index=names).sort_values(ascending=False)


def plot_feature_importance(trained_candidates: dict[str, Any], selection: dict[str, Any], params: dict[str, Any]) -> Figure:
    """Top features of the selected model."""
    selected = selection["selected"]
    top = feature_importance(trained_candidates[selected]["pipeline"]).head(int(params.get("top_features", 20)))
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(top) + 1.5))
    ax.barh(top.index[::-1], top.to_numpy()[::-1])
    ax.set(xlabel="importance", title=f"Feature importance: {selected}")
    fig.tight_layout()
    return fig


def plot_score_distribution(predictions: pd.DataFrame, selection: dict[str, Any], thresholds: dict[str, Any]) -> Figure:
    """Score histograms of genuine and fraudulent test rows, with the threshold."""
    selected = selection["selected"]
    s = predictions[f"score_{selected}"]
    y = predictions[schema.LABEL] == 1
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0, 1, 51)
    ax.hist(s[~y], bins=bins, alpha=0.6, density=True, label="genuine")
    ax.hist(s[y], bins=bins, alpha=0.6, density=True, label="fraud")
    ax.axvline(thresholds[selected]["threshold"], color="black", ls="--", label="threshold")
    ax.set(yscale="log", xlabel="fraud score", ylabel="density", title=f"Score distribution: {selected}")
    ax.legend()
    fig.tight_layout()
    return fig
