"""Drift monitoring: the champion's inputs and scores on a current window against the
reference profile saved when the model was trained.

At training, ``build_reference_profile`` summarises the test window (held out, the
most recent labelled days, scored out of sample by the packaged model, the same rows
as the training-time metrics): quantile bins, a random sample and category shares per
monitored feature, the same for the score, and the model's test metrics. The test
window rather than the development set, because development rows include the
training rows (whose scores are optimistic) and, in short histories, the first weeks
in which the 30-day windows are still filling up.

The ``monitoring`` pipeline computes the current window's features with
``create_features`` over the window plus the history it needs, scores them with the
champion, and compares: PSI on the reference bins (numeric and categorical), the
two-sample KS test (``scipy.stats.ks_2samp``) against the reference sample, the same
for the score, and, where labels have arrived, AP / precision / recall against the
training-time figures and the fraud rate against the reference's (binomial test).
Thresholds come from ``params:monitoring``; the verdict says ``drift_detected``, which
features moved and by how much, and recommends ``retrain``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field
from scipy import stats
from sklearn.metrics import (
    average_precision_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from fraud_detection import schema
from fraud_detection.drift.verdict import DriftVerdict
from fraud_detection.params import StrictParams

logger = logging.getLogger(__name__)

OTHER = "__other__"
PROFILE_VERSION = 1


class Thresholds(StrictParams):
    """When a statistic counts as drift (``params:monitoring.thresholds``)."""

    psi: float = Field(gt=0)
    psi_warning: float = Field(gt=0)
    ks_pvalue: float = Field(gt=0, lt=1)
    ks_statistic: float = Field(ge=0, le=1)
    min_drifted_features: int = Field(ge=1)
    score_psi: float = Field(gt=0)
    score_ks_statistic: float = Field(ge=0, le=1)
    min_labelled_rows: int = Field(ge=1)
    min_frauds: int = Field(ge=1)
    max_average_precision_drop: float
    max_recall_drop: float
    max_precision_drop: float
    fraud_rate_ratio: float = Field(gt=1)
    fraud_rate_pvalue: float = Field(gt=0, lt=1)


class MonitoringParams(StrictParams):
    """Typed ``params:monitoring`` (defaults in ``conf/base/parameters_monitoring.yml``)."""

    group: ClassVar[str] = "monitoring"

    window_days: float | None = Field(gt=0)
    min_rows: int = Field(ge=1)
    extra_features: list[str]
    exclude_features: list[str]
    bins: int = Field(ge=2)
    sample_size: int = Field(ge=10)
    min_category_share: float = Field(ge=0, lt=1)
    seed: int
    epsilon: float = Field(gt=0)
    thresholds: Thresholds


# ----------------------------------------------------------------- profiles --


def _numeric_profile(
    values: np.ndarray, p: MonitoringParams, rng: np.random.Generator
) -> dict[str, Any]:
    values = values[~np.isnan(values)]
    edges = (
        np.unique(np.quantile(values, np.linspace(0, 1, p.bins + 1)[1:-1]))
        if len(values)
        else np.array([])
    )
    sample = (
        rng.choice(values, size=min(p.sample_size, len(values)), replace=False)
        if len(values)
        else values
    )
    return {
        "kind": "numeric",
        "edges": edges.tolist(),
        "shares": _bin_shares(values, edges).tolist(),
        "sample": np.sort(sample).tolist(),
        "mean": float(values.mean()) if len(values) else None,
        "std": float(values.std()) if len(values) else None,
    }


def _bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of ``values`` in the bins ``(-inf, e1], (e1, e2], ..., (ek, inf)``."""
    values = values[~np.isnan(values)]
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def _categorical_profile(values: pd.Series, p: MonitoringParams) -> dict[str, Any]:
    shares = values.astype("str").value_counts(normalize=True)
    kept = shares[shares >= p.min_category_share]
    out = {str(k): float(v) for k, v in kept.items()}
    rest = float(shares[shares < p.min_category_share].sum())
    out[OTHER] = rest
    return {"kind": "categorical", "shares": out}


def _categorical_shares(values: pd.Series, reference: dict[str, float]) -> dict[str, float]:
    shares = values.astype("str").value_counts(normalize=True)
    out = {k: float(shares.get(k, 0.0)) for k in reference if k != OTHER}
    out[OTHER] = float(1.0 - sum(out.values()))
    return out


def profile_features(
    features: pd.DataFrame, scores: np.ndarray, names: list[str], p: MonitoringParams
) -> dict[str, Any]:
    """Bins, samples and category shares of ``names`` and of the scores."""
    rng = np.random.default_rng(p.seed)
    profiles: dict[str, Any] = {}
    for name in names:
        column = features[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            profiles[name] = _numeric_profile(column.to_numpy(np.float64), p, rng)
        else:
            profiles[name] = _categorical_profile(column, p)
    return {
        "features": profiles,
        "score": _numeric_profile(np.asarray(scores, dtype=np.float64), p, rng),
    }


def build_reference_profile(  # noqa: PLR0917 (a Kedro node: one input per dataset)
    test_set: pd.DataFrame,
    test_predictions: pd.DataFrame,
    model_selection: dict[str, Any],
    evaluation_report: dict[str, Any],
    selected_features: list[str],
    params: dict[str, Any],
) -> dict[str, Any]:
    """The reference the monitoring pipeline compares current windows with.

    Profiles the selected model's input features (those its feature selection kept,
    plus ``extra_features``, less ``exclude_features``) and its scores on the test
    window, with the test metrics at the model's threshold.
    """
    p = MonitoringParams.from_dict(params)
    selected = model_selection["selected"]
    names = [
        n
        for n in dict.fromkeys([*selected_features, *p.extra_features])
        if n not in p.exclude_features and n in test_set.columns
    ]
    scores = (
        test_predictions.set_index(schema.TRANSACTION_ID)
        .loc[test_set[schema.TRANSACTION_ID], f"score_{selected}"]
        .to_numpy()
    )
    labels = test_set[schema.LABEL]
    profile = profile_features(test_set, scores, names, p)
    threshold = float(model_selection["threshold"])
    metrics = evaluation_report.get("metrics", {}).get(selected, {})
    profile.update(
        {
            "version": PROFILE_VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": "test window",
            "model": {"selected": selected, "threshold": threshold},
            "window": {
                "start": str(test_set[schema.TIMESTAMP].min()),
                "end": str(test_set[schema.TIMESTAMP].max()),
                "rows": len(test_set),
            },
            "fraud_rate": float(labels.astype("float64").mean()),
            "positive_rate": float((scores >= threshold).mean()),
            "performance": {
                k: float(metrics[k])
                for k in ("average_precision", "precision", "recall", "roc_auc")
                if k in metrics
            },
        }
    )
    logger.info(
        "Reference profile of %s: %d features, %d rows", selected, len(names), len(test_set)
    )
    return profile


# ------------------------------------------------------------------- drift --


def psi(current: np.ndarray, reference: np.ndarray, epsilon: float) -> float:
    """Population stability index of two share vectors (floored at ``epsilon``)."""
    c = np.clip(np.asarray(current, dtype=float), epsilon, None)
    r = np.clip(np.asarray(reference, dtype=float), epsilon, None)
    return float(np.sum((c - r) * np.log(c / r)))


def _numeric_drift(
    values: np.ndarray, ref: dict[str, Any], p: MonitoringParams, psi_max: float, ks_min: float
) -> dict[str, Any]:
    values = values[~np.isnan(values)]
    shares = _bin_shares(values, np.asarray(ref["edges"]))
    value = psi(shares, ref["shares"], p.epsilon)
    ks = (
        stats.ks_2samp(np.asarray(ref["sample"]), values) if len(values) and ref["sample"] else None
    )
    ks_stat, ks_p = (float(ks.statistic), float(ks.pvalue)) if ks is not None else (None, None)
    # KS alone flags negligible shifts on large windows: it confirms a moderate PSI.
    ks_drift = (
        ks is not None
        and value >= p.thresholds.psi_warning
        and ks_p < p.thresholds.ks_pvalue
        and ks_stat >= ks_min
    )
    return {
        "kind": "numeric",
        "psi": value,
        "ks_statistic": ks_stat,
        "ks_pvalue": ks_p,
        "mean": float(values.mean()) if len(values) else None,
        "reference_mean": ref.get("mean"),
        "drifted": bool(value >= psi_max or ks_drift),
        "reason": ("psi" if value >= psi_max else "") + ("+ks" if ks_drift else ""),
    }


def _categorical_drift(
    values: pd.Series, ref: dict[str, Any], p: MonitoringParams
) -> dict[str, Any]:
    shares = _categorical_shares(values, ref["shares"])
    keys = list(ref["shares"])
    value = psi([shares[k] for k in keys], [ref["shares"][k] for k in keys], p.epsilon)
    moved = sorted(keys, key=lambda k: -abs(shares[k] - ref["shares"][k]))[:3]
    return {
        "kind": "categorical",
        "psi": value,
        "drifted": bool(value >= p.thresholds.psi),
        "reason": "psi" if value >= p.thresholds.psi else "",
        "largest_changes": {
            k: {"current": shares[k], "reference": ref["shares"][k]} for k in moved
        },
    }


def _performance(
    scored: pd.DataFrame, reference: dict[str, Any], p: MonitoringParams
) -> tuple[dict[str, Any], list[str]]:
    labelled = scored[scored[schema.LABEL].notna()]
    t = p.thresholds
    y = labelled[schema.LABEL].astype(int).to_numpy()
    out: dict[str, Any] = {"labelled_rows": len(labelled), "frauds": int(y.sum())}
    reasons: list[str] = []
    if len(labelled) < t.min_labelled_rows or y.sum() < t.min_frauds or y.sum() == len(y):
        out["status"] = "insufficient_labels"
        return out, reasons
    s, d = labelled["score"].to_numpy(), labelled["decision"].to_numpy()
    current = {
        "average_precision": float(average_precision_score(y, s)),
        "precision": float(precision_score(y, d, zero_division=0)),
        "recall": float(recall_score(y, d, zero_division=0)),
        "roc_auc": float(roc_auc_score(y, s)),
    }
    ref_perf = reference.get("performance", {})
    limits = {
        "average_precision": t.max_average_precision_drop,
        "precision": t.max_precision_drop,
        "recall": t.max_recall_drop,
    }
    for metric, value in current.items():
        entry: dict[str, Any] = {"current": value, "reference": ref_perf.get(metric)}
        if metric in limits and ref_perf.get(metric) is not None:
            entry["drop"] = ref_perf[metric] - value
            entry["degraded"] = bool(entry["drop"] > limits[metric])
            if entry["degraded"]:
                reasons.append(f"{metric} fell from {ref_perf[metric]:.3f} to {value:.3f}")
        out[metric] = entry
    rate, ref_rate = float(y.mean()), float(reference.get("fraud_rate") or 0.0)
    test = stats.binomtest(int(y.sum()), len(y), min(max(ref_rate, 1e-9), 1 - 1e-9))
    ratio = rate / ref_rate if ref_rate > 0 else float("inf")
    shifted = test.pvalue < t.fraud_rate_pvalue and (
        ratio >= t.fraud_rate_ratio or ratio <= 1 / t.fraud_rate_ratio
    )
    out["fraud_rate"] = {
        "current": rate,
        "reference": ref_rate,
        "ratio": ratio,
        "pvalue": float(test.pvalue),
        "drifted": bool(shifted),
    }
    if shifted:
        reasons.append(f"fraud rate {rate:.4f} vs {ref_rate:.4f} at training (x{ratio:.2f})")
    out["status"] = "measured"
    return out, reasons


def detect_drift(
    scored: pd.DataFrame, reference: dict[str, Any], params: dict[str, Any]
) -> tuple[DriftVerdict, dict[str, Any]]:
    """Compares the scored window with the reference profile.

    Returns:
        The verdict (``drift_detected``, ``recommendation``, per-feature statistics,
        score drift, performance and fraud rate where labels arrived, the reasons) and
        the MLflow metrics (``monitoring_*``, ``psi_<feature>``, ``ks_<feature>``).
    """
    p = MonitoringParams.from_dict(params)
    t = p.thresholds
    window = {
        "start": str(scored[schema.TIMESTAMP].min()) if len(scored) else None,
        "end": str(scored[schema.TIMESTAMP].max()) if len(scored) else None,
        "rows": len(scored),
    }
    verdict: dict[str, Any] = {
        "drift_detected": False,
        "recommendation": "none",
        "status": "ok",
        "window": window,
        "model_version": scored["model_version"].iloc[0]
        if len(scored) and "model_version" in scored
        else None,
        "reference": {
            "window": reference.get("window"),
            "model": reference.get("model"),
            "created_at": reference.get("created_at"),
        },
        "thresholds": t.model_dump(),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if len(scored) < p.min_rows:
        verdict.update(
            status="insufficient_data",
            reasons=[f"{len(scored)} rows in the window, fewer than min_rows={p.min_rows}"],
            features={},
            drifted_features=[],
        )
        return DriftVerdict.from_dict(verdict), {
            "monitoring_window_rows": {"value": float(len(scored)), "step": 0},
            "monitoring_drift_detected": {"value": 0.0, "step": 0},
        }
    features: dict[str, Any] = {}
    for name, ref in reference["features"].items():
        if name not in scored.columns:
            features[name] = {
                "kind": ref["kind"],
                "drifted": False,
                "reason": "missing from the window",
            }
        elif ref["kind"] == "numeric":
            features[name] = _numeric_drift(
                scored[name].to_numpy(np.float64), ref, p, t.psi, t.ks_statistic
            )
        else:
            features[name] = _categorical_drift(scored[name], ref, p)
    score = _numeric_drift(
        scored["score"].to_numpy(np.float64),
        reference["score"],
        p,
        t.score_psi,
        t.score_ks_statistic,
    )
    threshold = float(reference.get("model", {}).get("threshold", 0.5))
    score["positive_rate"] = float((scored["score"].to_numpy() >= threshold).mean())
    score["reference_positive_rate"] = reference.get("positive_rate")
    performance, reasons = _performance(scored, reference, p)
    drifted = sorted(
        (n for n, f in features.items() if f["drifted"]), key=lambda n: -features[n].get("psi", 0.0)
    )
    if len(drifted) >= t.min_drifted_features:
        reasons.insert(
            0,
            f"{len(drifted)} feature(s) drifted: "
            + ", ".join(f"{n} (PSI {features[n]['psi']:.3f})" for n in drifted[:10]),
        )
    if score["drifted"]:
        reasons.append(
            f"score distribution drifted (PSI {score['psi']:.3f}, KS {score['ks_statistic']:.3f})"
        )
    detected = bool(reasons)
    verdict.update(
        drift_detected=detected,
        recommendation="retrain" if detected else "none",
        status="drift" if detected else "ok",
        drifted_features=drifted,
        features=features,
        score=score,
        performance=performance,
        reasons=reasons,
    )
    metrics = {
        "monitoring_drift_detected": float(detected),
        "monitoring_drifted_features": float(len(drifted)),
        "monitoring_window_rows": float(len(scored)),
        "monitoring_score_psi": score["psi"],
        "monitoring_score_ks_statistic": score["ks_statistic"] or 0.0,
        "monitoring_positive_rate": score["positive_rate"],
        **{f"psi_{n}": f["psi"] for n, f in features.items() if "psi" in f},
        **{
            f"ks_{n}": f["ks_statistic"]
            for n, f in features.items()
            if f.get("ks_statistic") is not None
        },
        **{
            f"monitoring_{m}": e["current"]
            for m, e in performance.items()
            if isinstance(e, dict) and "current" in e
        },
    }
    logger.info(
        "Monitoring verdict: drift_detected=%s; %s", detected, "; ".join(reasons) or "no drift"
    )
    return DriftVerdict.from_dict(verdict), {
        k: {"value": float(v), "step": 0} for k, v in metrics.items()
    }
