"""Figures of the project, drawn with matplotlib's object-oriented API.

``Figure()`` objects are not attached to pyplot's global state, so no backend has to be
chosen at import time, nothing has to be closed, and figures can be drawn from any
thread (the Kedro runners, the scorer).
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from fraud_detection import schema
from fraud_detection.model import feature_importance


def new_figure(figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """A figure with one axes, outside pyplot."""
    fig = Figure(figsize=figsize)
    return fig, fig.add_subplot()


def figure_png(fig: Figure, dpi: int = 100) -> str:
    """The figure as a base64 PNG, for ``<img src="data:image/png;base64,...">``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return base64.b64encode(buffer.getvalue()).decode()


def _model_columns(predictions: pd.DataFrame) -> list[str]:
    return [c.removeprefix("score_") for c in predictions.columns if c.startswith("score_")]


def plot_pr_curves(predictions: pd.DataFrame, selection: dict[str, Any]) -> Figure:
    """Precision-recall curves of every model on the test window."""
    fig, ax = new_figure(figsize=(6, 5))
    y = predictions[schema.LABEL].to_numpy(int)
    for name in _model_columns(predictions):
        s = predictions[f"score_{name}"].to_numpy(float)
        precision, recall, _ = precision_recall_curve(y, s)
        ax.plot(
            recall,
            precision,
            lw=2.5 if name == selection["selected"] else 1,
            label=f"{name} (AP {average_precision_score(y, s):.3f})",
        )
    ax.axhline(y.mean(), color="grey", ls=":", label=f"fraud rate {y.mean():.3%}")
    ax.set(xlabel="Recall", ylabel="Precision", title="Precision-recall, test window")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_roc_curves(predictions: pd.DataFrame, selection: dict[str, Any]) -> Figure:
    """ROC curves of every model on the test window."""
    fig, ax = new_figure(figsize=(6, 5))
    y = predictions[schema.LABEL].to_numpy(int)
    for name in _model_columns(predictions):
        s = predictions[f"score_{name}"].to_numpy(float)
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(
            fpr,
            tpr,
            lw=2.5 if name == selection["selected"] else 1,
            label=f"{name} (AUC {roc_auc_score(y, s):.3f})",
        )
    ax.plot([0, 1], [0, 1], color="grey", ls=":")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC, test window")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(report: dict[str, Any]) -> Figure:
    """Confusion matrix of the selected model at its threshold."""
    cm = report["confusion_matrix"]
    matrix = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
    fig, ax = new_figure(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, f"{v:,}", ha="center", va="center", color="black")
    ax.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["genuine", "fraud"],
        yticklabels=["genuine", "fraud"],
        xlabel="Predicted",
        ylabel="Actual",
        title=f"{report['selected']} at threshold {report['threshold']:.3f}",
    )
    fig.tight_layout()
    return fig


def plot_feature_importance(
    trained_candidates: dict[str, Any], selection: dict[str, Any], params: dict[str, Any]
) -> Figure:
    """Top features of the selected model."""
    selected = selection["selected"]
    top = feature_importance(trained_candidates[selected]["pipeline"]).head(
        int(params.get("top_features", 20))
    )
    fig, ax = new_figure(figsize=(7, 0.3 * len(top) + 1.5))
    ax.barh(top.index[::-1], top.to_numpy()[::-1])
    ax.set(xlabel="importance", title=f"Feature importance: {selected}")
    fig.tight_layout()
    return fig


def plot_score_distribution(
    predictions: pd.DataFrame, selection: dict[str, Any], thresholds: dict[str, Any]
) -> Figure:
    """Score histograms of genuine and fraudulent test rows, with the threshold."""
    selected = selection["selected"]
    s = predictions[f"score_{selected}"]
    y = predictions[schema.LABEL] == 1
    fig, ax = new_figure(figsize=(6, 4))
    bins = np.linspace(0, 1, 51)
    ax.hist(s[~y], bins=bins, alpha=0.6, density=True, label="genuine")
    ax.hist(s[y], bins=bins, alpha=0.6, density=True, label="fraud")
    ax.axvline(thresholds[selected]["threshold"], color="black", ls="--", label="threshold")
    ax.set(
        yscale="log",
        xlabel="fraud score",
        ylabel="density",
        title=f"Score distribution: {selected}",
    )
    ax.legend()
    fig.tight_layout()
    return fig
