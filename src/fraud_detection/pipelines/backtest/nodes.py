"""Rolling backtest nodes.

One test week says little: a 0.01 difference in AP between two families is within the
noise of a single window. The backtest repeats the whole model search on ``K``
consecutive test windows (the split's shape: train window, label-delay gap, test
window, each window moved by the test length), every family retrained on each window
with selection and thresholds on that window's own validation folds, and reports per
window, mean and standard deviation, and bootstrap confidence intervals of AP and
Card Precision@k.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from fraud_detection import schema
from fraud_detection.metrics import bootstrap_intervals, card_precision_at_k, model_metrics
from fraud_detection.model import positive_scores
from fraud_detection.model_search import (
    choose_thresholds,
    fit_candidates,
    select_model,
    tune_candidates,
)
from fraud_detection.params import StrictParams
from fraud_detection.splits import SplitParams, rolling_test_starts, split_out_of_time

logger = logging.getLogger(__name__)

# The per-window selected model (whichever family won that window's validation).
SELECTED = "selected"


class BootstrapParams(StrictParams):
    """How the confidence intervals are drawn."""

    unit: Literal["day", "card"]
    n_resamples: int = Field(ge=10)
    confidence: float = Field(gt=0, lt=1)
    random_state: int


class BacktestParams(StrictParams):
    """Typed ``params:backtest`` (defaults in ``conf/base/parameters_backtest.yml``)."""

    group: ClassVar[str] = "backtest"

    n_windows: int = Field(ge=1)
    n_folds: int | None = Field(ge=1)
    n_iter: int | None = Field(ge=1)
    families: list[str] | None
    card_precision_k: int = Field(ge=1)
    bootstrap: BootstrapParams


def plan_backtest(
    features: pd.DataFrame, split_params: dict[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    """The test windows of the backtest, checked against the data's dates.

    Returns:
        ``{"windows": [{"window", "test_start"}], "test_days", "n_windows"}``.
    """
    p = BacktestParams.from_dict(params)
    sp = SplitParams.from_dict(_split_params(split_params, p))
    day = features[schema.TIMESTAMP].dt.floor("D")
    starts = rolling_test_starts(day.min(), day.max(), sp, p.n_windows)
    windows = [{"window": i, "test_start": str(s.date())} for i, s in enumerate(starts)]
    logger.info("Backtest: %d windows of %d days from %s", len(windows), sp.test_days, windows[0])
    return {"windows": windows, "test_days": sp.test_days, "n_windows": p.n_windows}


def _split_params(split: dict[str, Any], p: BacktestParams) -> dict[str, Any]:
    return {**split, "n_folds": p.n_folds} if p.n_folds is not None else dict(split)


def _training_params(training: dict[str, Any], p: BacktestParams) -> dict[str, Any]:
    out = dict(training)
    if p.n_iter is not None:
        # The backtest's number of settings replaces every family's own as well.
        out["n_iter"] = p.n_iter
        out["candidates"] = {
            name: {**spec, "n_iter": None} for name, spec in training["candidates"].items()
        }
    if p.families is not None:
        out["families"] = p.families
    return out


def run_backtest(  # noqa: PLR0917 (a Kedro node: one input per dataset)
    features: pd.DataFrame,
    backtest_plan: dict[str, Any],
    split_params: dict[str, Any],
    training_params: dict[str, Any],
    params: dict[str, Any],
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Retrains and scores every family on every window.

    Per window: the out-of-time split at that window's test start, the search of
    ``params:training`` (``n_iter``, ``families`` and the number of folds may be
    narrowed by ``params:backtest``) on that window's prequential folds, refits on its training
    window, thresholds on its out-of-fold scores, selection by validation AP; only
    then are its test rows scored.

    Returns:
        The test predictions of every window (one ``score_<model>`` column per model,
        plus ``score_selected``), and per window its dates, counts, selected model,
        validation AP and test metrics of every model.
    """
    p = BacktestParams.from_dict(params)
    training = _training_params(training_params, p)
    split = _split_params(split_params, p)
    parts, windows = [], []
    for w in backtest_plan["windows"]:
        dev, test, plan = split_out_of_time(features, {**split, "test_start": w["test_start"]})
        results, oof = tune_candidates(dev, plan, training)
        fitted = fit_candidates(dev, plan, results, training)
        thresholds = choose_thresholds(oof, training)
        selection, _ = select_model(results, fitted, thresholds)
        frame = test[
            [
                schema.TRANSACTION_ID,
                schema.TIMESTAMP,
                schema.CUSTOMER_ID,
                schema.AMOUNT,
                schema.LABEL,
            ]
        ].copy()
        frame[schema.LABEL] = frame[schema.LABEL].astype(int)
        frame.insert(0, "window", w["window"])
        for name, entry in fitted.items():
            frame[f"score_{name}"] = positive_scores(entry["pipeline"], test[entry["inputs"]])
        frame[f"score_{SELECTED}"] = frame[f"score_{selection['selected']}"]
        thresholds[SELECTED] = thresholds[selection["selected"]]
        labels = frame[schema.LABEL].to_numpy(int)
        metrics = {}
        for name in [*fitted, SELECTED]:
            column = f"score_{name}"
            m = model_metrics(labels, frame[column].to_numpy(float), thresholds[name]["threshold"])
            m[f"card_precision_at_{p.card_precision_k}"] = card_precision_at_k(
                frame, column, p.card_precision_k
            )
            metrics[name] = m
        windows.append(
            {
                "window": w["window"],
                "train_start": plan["train_start"],
                "train_end": plan["train_end"],
                "test_start": plan["test_start"],
                "test_end": plan["test_end"],
                "counts": plan["counts"],
                "validation_folds": len(plan["folds"]),
                "selected": selection["selected"],
                "validation_average_precision": {
                    n: r["validation_average_precision"] for n, r in results.items()
                },
                "best_params": {n: r.get("best_params") for n, r in results.items()},
                "metrics": metrics,
            }
        )
        logger.info(
            "Backtest window %d (%s): selected %s, test AP %.4f, CP@%d %.4f",
            w["window"],
            plan["test_start"][:10],
            selection["selected"],
            metrics[SELECTED]["average_precision"],
            p.card_precision_k,
            metrics[SELECTED][f"card_precision_at_{p.card_precision_k}"],
        )
        parts.append(frame)
    return pd.concat(parts, ignore_index=True), windows


def summarise_backtest(
    backtest_predictions: pd.DataFrame,
    backtest_windows: list[dict[str, Any]],
    params: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """Mean, standard deviation and bootstrap intervals per model over the windows.

    Returns:
        The backtest table (per model: every window's metrics, mean, std and the
        intervals of AP and CP@k; per window: dates and selection), the parent run's
        MLflow metrics (``backtest_<model>_<metric>_{mean,std,ci_low,ci_high}``) and one
        child run per window.
    """
    p = BacktestParams.from_dict(params)
    b = p.bootstrap
    cp = f"card_precision_at_{p.card_precision_k}"
    names = list(backtest_windows[0]["metrics"])
    frames = [g for _, g in backtest_predictions.groupby("window", sort=True)]
    models: dict[str, Any] = {}
    for name in names:
        per_window = pd.DataFrame([w["metrics"][name] for w in backtest_windows])
        intervals = bootstrap_intervals(
            frames,
            f"score_{name}",
            p.card_precision_k,
            b.unit,
            b.n_resamples,
            b.confidence,
            b.random_state,
        )
        models[name] = {
            "per_window": per_window.to_dict(orient="list"),
            "mean": per_window.mean().to_dict(),
            # Sample std over windows; 0 with a single window.
            "std": per_window.std(ddof=1).fillna(0.0).to_dict()
            if len(per_window) > 1
            else {c: 0.0 for c in per_window.columns},
            "intervals": intervals,
        }
    table = {
        "n_windows": len(backtest_windows),
        "card_precision_k": p.card_precision_k,
        "bootstrap": b.model_dump(),
        "windows": [
            {
                k: w[k]
                for k in (
                    "window",
                    "train_start",
                    "train_end",
                    "test_start",
                    "test_end",
                    "counts",
                    "selected",
                )
            }
            for w in backtest_windows
        ],
        "models": models,
        "best_by_mean_average_precision": max(
            (n for n in names if n != SELECTED),
            key=lambda n: models[n]["mean"]["average_precision"],
        ),
    }
    metrics = {}
    for name, m in models.items():
        for metric in ("average_precision", "roc_auc", cp):
            metrics[f"backtest_{name}_{metric}_mean"] = {"value": m["mean"][metric], "step": 0}
            metrics[f"backtest_{name}_{metric}_std"] = {"value": m["std"][metric], "step": 0}
        for metric, ci in m["intervals"].items():
            metrics[f"backtest_{name}_{metric}_ci_low"] = {"value": ci["low"], "step": 0}
            metrics[f"backtest_{name}_{metric}_ci_high"] = {"value": ci["high"], "step": 0}
    runs = [
        {
            "name": f"backtest window {w['window']} ({w['test_start'][:10]})",
            "params": {
                "window": w["window"],
                "train_start": w["train_start"],
                "train_end": w["train_end"],
                "test_start": w["test_start"],
                "test_end": w["test_end"],
                "selected": w["selected"],
                "test_rows": w["counts"]["test_rows"],
                "test_frauds": w["counts"]["test_frauds"],
            },
            "metrics": {
                f"test_{name}_{metric}": value
                for name, values in w["metrics"].items()
                for metric, value in values.items()
                if value is not None and np.isfinite(value)
            },
            "tags": {"backtest.window": w["window"]},
        }
        for w in backtest_windows
    ]
    best = table["best_by_mean_average_precision"]
    logger.info(
        "Backtest over %d windows: best %s, mean AP %.4f (%.0f%% CI %.4f-%.4f)",
        len(backtest_windows),
        best,
        models[best]["mean"]["average_precision"],
        100 * b.confidence,
        models[best]["intervals"]["average_precision"]["low"],
        models[best]["intervals"]["average_precision"]["high"],
    )
    return table, metrics, runs
