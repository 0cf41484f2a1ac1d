"""Model-quality metrics shared by evaluation, training and the backtest.

``card_precision_at_k`` is the Fraud Detection Handbook's Card Precision@k;
``alert_summary`` says what a threshold means for an investigation team (alerts a
day, fraud amount caught).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from fraud_detection import schema


def daily_card_precision(predictions: pd.DataFrame, score_column: str, k: int) -> pd.Series:
    """Card Precision@k of every test day, as in the Fraud Detection Handbook.

    Per day, each card's score is its highest transaction score and the value is the
    share of fraudulent cards among the ``k`` highest-scored cards. Cards detected
    (fraudulent and in the top ``k``) on a day are left out of later days.
    """
    day = predictions[schema.TIMESTAMP].dt.floor("D")
    detected: set = set()
    values = {}
    for d in sorted(day.unique()):
        today = predictions[(day == d) & ~predictions[schema.CUSTOMER_ID].isin(detected)]
        cards = today.groupby(schema.CUSTOMER_ID).agg(
            score=(score_column, "max"), fraud=(schema.LABEL, "max")
        )
        top = cards.sort_values("score", ascending=False, kind="stable").head(k)
        values[d] = top["fraud"].sum() / k
        detected |= set(top.index[top["fraud"] == 1])
    return pd.Series(values, dtype=float)


def card_precision_at_k(predictions: pd.DataFrame, score_column: str, k: int) -> float:
    """Card Precision@k as in the Fraud Detection Handbook: ``daily_card_precision``
    averaged over the test days."""
    values = daily_card_precision(predictions, score_column, k)
    return float(values.mean()) if len(values) else float("nan")


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


def alert_summary(
    labels: np.ndarray,
    scores: np.ndarray,
    amounts: np.ndarray,
    days: np.ndarray,
    threshold: float,
    *,
    weights: np.ndarray | None = None,
) -> dict[str, float]:
    """Alerts a day and fraud amount caught at ``threshold``: what an investigation
    team with a daily capacity sees. A row of weight ``w`` (a sampled row standing for
    ``w`` rows) counts as ``w`` alerts and ``w`` times its amount."""
    w = np.ones(len(scores)) if weights is None else np.asarray(weights, dtype=np.float64)
    flagged = scores >= threshold
    per_day = pd.Series(flagged * w).groupby(pd.Series(days)).sum()
    n_days = max(len(per_day), 1)
    fraud = labels == 1
    weighted_amounts = amounts * w
    caught = float(weighted_amounts[flagged & fraud].sum())
    return {
        "alerts_per_day": float((flagged * w).sum() / n_days),
        "max_alerts_per_day": float(per_day.max()) if len(per_day) else 0.0,
        "fraud_amount_caught": caught,
        "fraud_amount_caught_per_day": caught / n_days,
        "fraud_amount_total": float(weighted_amounts[fraud].sum()),
    }


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def bootstrap_intervals(  # noqa: PLR0913, PLR0917
    windows: list[pd.DataFrame],
    score_column: str,
    k: int,
    unit: str,
    n_resamples: int,
    confidence: float,
    random_state: int,
) -> dict[str, dict[str, float]]:
    """Bootstrap confidence intervals of the mean over windows of AP and CP@k.

    Each resample draws, within every window (stratified, so every window keeps its
    weight), the window's test days (``unit="day"``) or its cards (``unit="card"``)
    with replacement, recomputes the window's AP and Card Precision@k, and averages
    over windows. With days, a day's CP@k is the value it had in the window (the
    detected-card rule runs once, in time order); with cards, CP@k is recomputed on
    the resampled rows, a card drawn twice counting as two cards.

    Returns:
        ``{"average_precision": {...}, "card_precision_at_<k>": {...}}``, each with the
        point estimate (mean over windows), the interval ``low`` and ``high``, the
        confidence and the number of resamples.
    """
    if unit not in {"day", "card"}:
        raise ValueError(f"bootstrap unit must be 'day' or 'card', got {unit!r}")
    rng = np.random.default_rng(random_state)
    cp_name = f"card_precision_at_{k}"
    prepared = []
    for frame in windows:
        labels = frame[schema.LABEL].to_numpy(int)
        scores = frame[score_column].to_numpy(float)
        key = frame[schema.TIMESTAMP].dt.floor("D") if unit == "day" else frame[schema.CUSTOMER_ID]
        codes, groups = pd.factorize(key, sort=True)
        rows = [np.flatnonzero(codes == g) for g in range(len(groups))]
        daily = (
            daily_card_precision(frame, score_column, k).reindex(groups).to_numpy(float)
            if unit == "day"
            else None
        )
        prepared.append((frame, labels, scores, rows, daily))
    ap_draws, cp_draws = np.empty(n_resamples), np.empty(n_resamples)
    for b in range(n_resamples):
        aps, cps = [], []
        for frame, labels, scores, rows, daily in prepared:
            pick = rng.integers(0, len(rows), len(rows))
            idx = np.concatenate([rows[g] for g in pick])
            # A resample without fraud has no AP; it counts as 0 (no fraud found).
            aps.append(
                float(average_precision_score(labels[idx], scores[idx]))
                if labels[idx].any()
                else 0.0
            )
            if daily is not None:
                cps.append(float(daily[pick].mean()))
            else:
                drawn = frame.iloc[idx].copy()
                copy_no = np.concatenate([np.full(len(rows[g]), i) for i, g in enumerate(pick)])
                drawn[schema.CUSTOMER_ID] = (
                    drawn[schema.CUSTOMER_ID].astype(str)
                    + "#"
                    + (pd.Series(copy_no, index=drawn.index).astype(str))
                )
                cps.append(card_precision_at_k(drawn, score_column, k))
        ap_draws[b], cp_draws[b] = np.mean(aps), np.mean(cps)
    point_ap = float(
        np.mean([average_precision_score(labels, scores) for _, labels, scores, _, _ in prepared])
    )
    point_cp = float(np.mean([card_precision_at_k(f, score_column, k) for f, *_ in prepared]))
    out = {}
    for name, point, draws in (
        ("average_precision", point_ap, ap_draws),
        (cp_name, point_cp, cp_draws),
    ):
        low, high = _interval(draws, confidence)
        out[name] = {
            "estimate": point,
            "low": low,
            "high": high,
            "confidence": confidence,
            "n_resamples": n_resamples,
            "unit": unit,
        }
    return out
