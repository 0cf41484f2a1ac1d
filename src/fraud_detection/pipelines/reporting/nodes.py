"""Reporting nodes: one self-contained HTML model report for stakeholders.

The report is rendered from the run's data (never from files on disk): figures are
drawn with matplotlib and embedded as base64 PNG, styles are inline, so the single
HTML file opens anywhere, offline, and can be mailed or archived as it is.
"""

from __future__ import annotations

import base64
import io
import logging
from datetime import datetime, timezone
from typing import Any, ClassVar

import jinja2
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from pydantic import Field, field_validator

from fraud_detection import schema
from fraud_detection.drift.verdict import drifted_features
from fraud_detection.explain import Explainer, one_hot_input
from fraud_detection.model import feature_importance, positive_scores
from fraud_detection.params import StrictParams
from fraud_detection.plotting import (
    new_figure,
    plot_confusion_matrix,
    plot_pr_curves,
    plot_roc_curves,
    plot_score_distribution,
)
from fraud_detection.spark import summary as spark_summary

logger = logging.getLogger(__name__)

# Below this change of the mean fraud probability, a feature is said to have no clear
# effect (fraud probabilities are small, so the bar is low).
EFFECT_TOLERANCE = 1e-4
RAISES, LOWERS = "higher values raise the fraud score", "higher values lower the fraud score"
CATEGORY_RAISES, CATEGORY_LOWERS = (
    "this category raises the fraud score",
    "this category lowers the fraud score",
)
FLAT, MIXED = "no clear effect", "mixed: rises and falls"


class ReportingParams(StrictParams):
    """Typed ``params:reporting`` (defaults in ``conf/base/parameters_reporting.yml``)."""

    group: ClassVar[str] = "reporting"

    title: str
    top_features: int = Field(ge=1)
    effect_sample_size: int = Field(ge=1)
    effect_grid: tuple[float, ...]
    random_state: int
    top_scored: int = Field(default=10, ge=0)

    @field_validator("effect_grid")
    @classmethod
    def _increasing_quantiles(cls, grid: tuple[float, ...]) -> tuple[float, ...]:
        if len(grid) < 2 or list(grid) != sorted(grid) or not 0.0 <= grid[0] < grid[-1] <= 1.0:
            raise ValueError(
                "effect_grid must be at least two increasing quantiles between 0 and 1"
            )
        return grid


def _transaction_stats(validated_transactions: pd.DataFrame) -> dict[str, Any]:
    """Counts, span and daily volumes of a validated table (``summarise_data``)."""
    labels = validated_transactions[schema.LABEL]
    timestamps = validated_transactions[schema.TIMESTAMP]
    daily = (
        pd.DataFrame({"day": timestamps.dt.floor("D"), "fraud": labels.fillna(0).astype(int)})
        .groupby("day")["fraud"]
        .agg(transactions="size", frauds="sum")
        .reset_index()
    )
    return {
        "rows": len(validated_transactions),
        "labelled": int(labels.notna().sum()),
        "frauds": int(labels.fillna(0).astype(int).sum()),
        "customers": int(validated_transactions[schema.CUSTOMER_ID].nunique()),
        "terminals": int(validated_transactions[schema.TERMINAL_ID].nunique()),
        "first_transaction": str(timestamps.min()) if len(timestamps) else None,
        "last_transaction": str(timestamps.max()) if len(timestamps) else None,
        "daily": daily,
    }


def summarise_data(
    validated_transactions: pd.DataFrame,
    data_quality_report: dict[str, Any],
    split_plan: dict[str, Any],
) -> dict[str, Any]:
    """Rows, fraud rate, quarantine and split windows of the data the model saw.

    Returns:
        The data-quality counts, labelled rows and fraud rate of the validated data,
        its time span, the split windows and counts, and transactions and frauds per
        day (for the report's volume chart).
    """
    if isinstance(validated_transactions, pd.DataFrame):
        stats = _transaction_stats(validated_transactions)
    else:  # a Spark table (the spark environment): aggregated in Spark
        stats = spark_summary.transaction_stats(validated_transactions)
    labelled, frauds, daily = stats["labelled"], stats["frauds"], stats["daily"]
    dq = dict(data_quality_report)
    return {
        "rows_in": int(dq.get("rows_in", stats["rows"])),
        "rows_valid": int(dq.get("rows_valid", stats["rows"])),
        "rows_quarantined": int(dq.get("rows_quarantined", 0)),
        "invalid_share": float(dq.get("invalid_share", 0.0)),
        "max_invalid_share": float(dq.get("max_invalid_share", 0.0)),
        "quarantined_by_reason": {
            str(k): int(v) for k, v in (dq.get("quarantined_by_reason") or {}).items()
        },
        "labelled_rows": labelled,
        "unlabelled_rows": int(stats["rows"] - labelled),
        "frauds": frauds,
        "fraud_rate": frauds / labelled if labelled else 0.0,
        "customers": stats["customers"],
        "terminals": stats["terminals"],
        "first_transaction": stats["first_transaction"],
        "last_transaction": stats["last_transaction"],
        "split": {
            **{
                key: split_plan.get(key)
                for key in (
                    "development_start",
                    "train_start",
                    "train_end",
                    "test_start",
                    "test_end",
                    "delay_days",
                )
            },
            "n_folds": len(split_plan.get("folds") or []),
            **{key: int(value) for key, value in (split_plan.get("counts") or {}).items()},
        },
        "daily": [
            {
                "day": str(row.day.date()),
                "transactions": int(row.transactions),
                "frauds": int(row.frauds),
            }
            for row in daily.itertuples(index=False)
        ],
    }


def _input_columns(pipeline: Any) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """Numeric inputs of the preprocessing step, and each one-hot output's
    (input column, category)."""
    preprocess = pipeline.named_steps["preprocess"]
    numeric: list[str] = []
    one_hot: dict[str, tuple[str, str]] = {}
    for name, transformer, _ in preprocess.transformers_:
        if transformer in ("drop", "passthrough") or not hasattr(
            transformer, "get_feature_names_out"
        ):
            continue
        inputs = [str(c) for c in getattr(transformer, "feature_names_in_", [])]
        if name == "categorical":
            for out in transformer.get_feature_names_out():
                column = one_hot_input(str(out), inputs)
                if column is not None:
                    one_hot[str(out)] = (column, str(out)[len(column) + 1 :])
        else:
            numeric += inputs
    return numeric, one_hot


def _mean_score(pipeline: Any, frame: pd.DataFrame) -> float:
    return float(np.mean(positive_scores(pipeline, frame)))


def _direction(curve: list[float] | None, category: bool = False) -> str:
    """Reads a partial-dependence curve: mostly rising, mostly falling, flat or mixed."""
    if not curve or len(curve) < 2:
        return "not measured"
    steps = np.diff(curve)
    rise, fall = float(steps[steps > 0].sum()), float(-steps[steps < 0].sum())
    if max(rise, fall) < EFFECT_TOLERANCE:
        return FLAT
    if rise >= 2 * fall:
        return CATEGORY_RAISES if category else RAISES
    if fall >= 2 * rise:
        return CATEGORY_LOWERS if category else LOWERS
    return MIXED


def feature_effects_of(
    pipeline: Any, sample: pd.DataFrame, top: pd.Series, grid: tuple[float, ...]
) -> list[dict[str, Any]]:
    """Importance and direction of effect of the ``top`` model features.

    The direction comes from partial dependence on ``sample``: the mean fraud score
    with a numeric input set, in every row, to each quantile of ``grid`` in turn (a
    curve from low to high values); for a one-hot category, the mean score with the
    category set in every row against the rows as they are. Inputs move one at a
    time, so this is the model's response, not a causal claim.
    """
    numeric, one_hot = _input_columns(pipeline)
    baseline = _mean_score(pipeline, sample)
    out = []
    for feature, importance in top.items():
        entry: dict[str, Any] = {
            "feature": str(feature),
            "importance": float(importance),
            "input": None,
            "category": None,
            "values": None,
            "curve": None,
            "effect": None,
        }
        if feature in numeric and feature in sample.columns:
            observed = pd.to_numeric(sample[feature], errors="coerce").dropna()
            values = (
                sorted({float(v) for v in observed.quantile(list(grid))}) if len(observed) else []
            )
            curve = [_mean_score(pipeline, sample.assign(**{feature: v})) for v in values]
            entry.update(
                input=str(feature),
                values=values,
                curve=curve,
                effect=curve[-1] - curve[0] if len(curve) > 1 else 0.0,
            )
        elif feature in one_hot:
            column, category = one_hot[feature]
            entry.update(input=column, category=category)
            if not category.startswith("infrequent"):
                entry["curve"] = [
                    baseline,
                    _mean_score(pipeline, sample.assign(**{column: category})),
                ]
                entry["effect"] = entry["curve"][1] - baseline
        entry["direction"] = _direction(entry["curve"], category=entry["category"] is not None)
        out.append(entry)
    return out


def explain_models(
    trained_candidates: dict[str, Any],
    model_selection: dict[str, Any],
    test_set: pd.DataFrame,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Feature importance of every candidate and the direction of its top features'
    effect on the fraud score, measured on a sample of test rows.

    Returns:
        Per model: its kind (``tree`` importances or ``linear`` coefficients), what
        the importance measures, and the top features with importance, the values
        compared, the change in mean fraud score and its direction.
    """
    p = ReportingParams.from_dict(params)
    models: dict[str, Any] = {}
    for name, entry in trained_candidates.items():
        pipeline = entry["pipeline"]
        if not hasattr(pipeline, "named_steps") or not {"preprocess", "classifier"} <= set(
            pipeline.named_steps
        ):
            continue  # the baseline has no feature pipeline to explain
        classifier = pipeline.named_steps["classifier"]
        # Trees and bagged trees give impurity importances; linear models coefficients.
        tree = not hasattr(classifier, "coef_")
        rows = test_set[entry["inputs"]]
        sample = (
            rows.sample(min(p.effect_sample_size, len(rows)), random_state=p.random_state)
            if len(rows)
            else rows
        )
        top = feature_importance(pipeline).head(p.top_features)
        models[name] = {
            "kind": "tree" if tree else "linear",
            "classifier": type(classifier).__name__,
            "importance_measure": "impurity / gain importance"
            if tree
            else "absolute coefficient on standardised inputs",
            "sample_rows": len(sample),
            "features": feature_effects_of(pipeline, sample, top, p.effect_grid),
        }
        logger.info("Explained %s on %d test rows (%d features)", name, len(sample), len(top))
    selected = model_selection["selected"]
    return {
        "selected": selected,
        "grid": list(p.effect_grid),
        "models": models,
        "top_scored": top_scored_reasons(trained_candidates.get(selected), test_set, p.top_scored),
    }


def top_scored_reasons(
    entry: dict[str, Any] | None, test_set: pd.DataFrame, n: int
) -> dict[str, Any] | None:
    """The ``n`` highest-scored test transactions of a model with their reason codes,
    computed as the real-time scorer computes them (``fraud_detection.explain``)."""
    pipeline = (entry or {}).get("pipeline")
    explainer = Explainer.of(pipeline) if pipeline is not None else None
    if explainer is None or not n or not len(test_set):
        return None
    rows = test_set[entry["inputs"]]
    scores = positive_scores(pipeline, rows)
    top = np.argsort(-scores, kind="stable")[:n]
    chosen = rows.iloc[top]
    reasons = explainer.reasons(
        explainer.matrix(pipeline, chosen), lambda i, name: chosen[name].iloc[i]
    )
    ids = test_set[schema.TRANSACTION_ID].iloc[top] if schema.TRANSACTION_ID in test_set else top
    labels = test_set[schema.LABEL].iloc[top] if schema.LABEL in test_set else [None] * len(top)
    return {
        "classifier": explainer.kind,
        "scale": explainer.scale,
        "transactions": [
            {
                "transaction_id": str(tid),
                "score": float(scores[i]),
                "is_fraud": None if label is None else int(label),
                "reasons": why,
            }
            for tid, i, label, why in zip(ids, top, labels, reasons, strict=True)
        ],
    }


def figure_to_base64(fig: Figure) -> str:
    """PNG of a figure as base64 text, for ``<img src="data:image/png;base64,...">``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plot_daily_volume(data_summary: dict[str, Any]) -> Figure:
    """Transactions and fraud rate per day, with the training and test windows."""
    daily = pd.DataFrame(data_summary["daily"])
    fig, ax = new_figure(figsize=(8, 3.2))
    if daily.empty:
        ax.text(0.5, 0.5, "no transactions", ha="center", va="center")
        return fig
    days = pd.to_datetime(daily["day"])
    ax.bar(days, daily["transactions"], color="#9db4c0", width=0.9, label="transactions")
    ax.set_ylabel("transactions per day")
    rate = ax.twinx()
    rate.plot(
        days,
        100 * daily["frauds"] / daily["transactions"].clip(lower=1),
        color="#c0392b",
        lw=1.5,
        label="fraud rate",
    )
    rate.set_ylabel("fraud rate (%)")
    split = data_summary.get("split") or {}
    for start, end, label, colour in (
        ("train_start", "train_end", "final training", "#2e86de"),
        ("test_start", "test_end", "test", "#f39c12"),
    ):
        if split.get(start) and split.get(end):
            ax.axvspan(
                pd.Timestamp(split[start]),
                pd.Timestamp(split[end]),
                color=colour,
                alpha=0.15,
                label=f"{label} window",
            )
    handles = ax.get_legend_handles_labels()[0] + rate.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=8, loc="upper left")
    ax.set_title("Transactions and fraud rate per day")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def plot_feature_effects(model: dict[str, Any], name: str) -> Figure:
    """Top features by importance, coloured by the direction of their effect."""
    features = model["features"][::-1]
    colours = {
        RAISES: "#c0392b",
        CATEGORY_RAISES: "#c0392b",
        LOWERS: "#2e86de",
        CATEGORY_LOWERS: "#2e86de",
        MIXED: "#8e44ad",
    }
    fig, ax = new_figure(figsize=(7.5, 0.32 * len(features) + 1.6))
    labels = [f["feature"] for f in features]
    ax.barh(
        labels,
        [f["importance"] for f in features],
        color=[colours.get(f["direction"], "#95a5a6") for f in features],
    )
    ax.set(xlabel=model["importance_measure"], title=f"Feature importance and direction: {name}")
    legend = [
        Patch(color=colours[RAISES], label="higher values (or this category) raise the score"),
        Patch(color=colours[LOWERS], label="... lower the score"),
        Patch(color=colours[MIXED], label="mixed"),
        Patch(color="#95a5a6", label="no clear effect"),
    ]
    ax.legend(handles=legend, fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_drift(entries: list[dict[str, Any]]) -> Figure | None:
    """PSI per feature, drifted features highlighted; ``None`` without PSI values."""
    rows = [e for e in entries if isinstance(e.get("psi"), int | float)][:25]
    if not rows:
        return None
    rows = rows[::-1]
    fig, ax = new_figure(figsize=(7.5, 0.3 * len(rows) + 1.6))
    ax.barh(
        [str(e["feature"]) for e in rows],
        [float(e["psi"]) for e in rows],
        color=["#c0392b" if e.get("drifted") else "#95a5a6" for e in rows],
    )
    ax.set(
        xlabel="population stability index (PSI)",
        title="Drift per feature, current window vs training reference",
    )
    fig.tight_layout()
    return fig


def explain_threshold(
    thresholds: dict[str, Any], evaluation_report: dict[str, Any]
) -> dict[str, Any]:
    """The selected model's threshold, the rule that chose it and what it means on
    the test window, in words."""
    selected = evaluation_report["selected"]
    chosen = thresholds[selected]
    config = chosen.get("config") or {}
    value = chosen.get("objective_value")
    if chosen.get("objective", "f_beta") == "f_beta":
        beta = float(config.get("beta", 1.0))
        rule = (
            f"It maximises F{beta:g} (recall weighted {beta:g}x as much as precision) "
            "on the out-of-fold scores of the prequential validation folds, "
            f"where F{beta:g} reached {value:.3f}."
        )
    elif chosen.get("objective") == "alert_budget":
        rule = (
            f"It is the lowest threshold that raises at most {config.get('max_alerts_per_day')} "
            "alerts on every day of the out-of-fold validation scores, which catches the "
            f"most fraud amount within that budget: {float(value):,.2f} a day there."
        )
    else:
        rule = (
            "It minimises the expected cost per transaction on the out-of-fold validation "
            f"scores, with a missed fraud costing {config.get('cost_false_negative')} "
            f"and a false alarm {config.get('cost_false_positive')}; "
            f"the expected cost there was {-float(value):.3f} per transaction."
        )
    cm = evaluation_report["confusion_matrix"]
    flagged = cm["tp"] + cm["fp"]
    frauds = cm["tp"] + cm["fn"]
    return {
        "model": selected,
        "threshold": float(chosen["threshold"]),
        "objective": chosen.get("objective", "f_beta"),
        "rule": rule + " The test window was not used to choose it.",
        "on_test": (
            f"On the test window it flags {flagged:,} of {evaluation_report['test_rows']:,} "
            f"transactions: {cm['tp']:,} of {frauds:,} frauds caught, {cm['fn']:,} missed, "
            f"and {cm['fp']:,} genuine transactions flagged "
            f"({cm['fp'] / max(cm['fp'] + cm['tn'], 1):.2%} of genuine ones)."
            + _alerts_in_words(evaluation_report.get("alerts"))
        ),
        "alerts": evaluation_report.get("alerts"),
        "validation_alerts": chosen.get("validation"),
    }


def _alerts_in_words(alerts: dict[str, Any] | None) -> str:
    if not alerts:
        return ""
    return (
        f" That is {alerts['alerts_per_day']:.1f} alerts a day on average (at most "
        f"{alerts['max_alerts_per_day']:.0f}), catching {alerts['fraud_amount_caught']:,.2f} "
        f"of {alerts['fraud_amount_total']:,.2f} in fraudulent amounts "
        f"({alerts['fraud_amount_caught_per_day']:,.2f} a day)."
    )


def _model_rows(
    evaluation_report: dict[str, Any],
    model_selection: dict[str, Any],
    thresholds: dict[str, Any],
    search_results: dict[str, Any],
) -> list[dict[str, Any]]:
    validation_ap = {
        **{n: r.get("validation_average_precision") for n, r in search_results.items()},
        **model_selection.get("validation_average_precision", {}),
    }
    rows = []
    for name, metrics in evaluation_report["metrics"].items():
        rows.append(
            {
                "name": name,
                "selected": name == evaluation_report["selected"],
                "validation_average_precision": validation_ap.get(name),
                "threshold": (thresholds.get(name) or {}).get("threshold"),
                "metrics": metrics,
                "best_params": (search_results.get(name) or {}).get("best_params"),
            }
        )
    return sorted(
        rows, key=lambda r: (not r["selected"], -(r["metrics"].get("average_precision") or 0.0))
    )


def _promotion(promotion_report: dict[str, Any]) -> dict[str, Any]:
    challenger = (promotion_report.get("challenger") or {}).get("metrics") or {}
    champion_entry = promotion_report.get("champion") or {}
    champion = champion_entry.get("metrics") or {}
    metrics = []
    for metric in sorted(set(challenger) | set(champion)):
        new, old = challenger.get(metric), champion.get(metric)
        metrics.append(
            {
                "metric": metric,
                "challenger": new,
                "champion": old,
                "gain": new - old
                if isinstance(new, int | float) and isinstance(old, int | float)
                else None,
            }
        )
    return {
        "promoted": bool(promotion_report.get("promote")),
        "stage": promotion_report.get("stage"),
        "reason": promotion_report.get("reason", ""),
        "comparable": promotion_report.get("comparable", True) is not False,
        "not_comparable_reason": promotion_report.get("not_comparable_reason"),
        "rule": promotion_report.get("rule") or {},
        "champion_version": champion_entry.get("version"),
        "champion_run_id": champion_entry.get("run_id"),
        "challenger_run_id": promotion_report.get("challenger_run_id"),
        "test_rows": promotion_report.get("test_rows"),
        "metrics": metrics,
    }


def _backtest(results: dict[str, Any] | None) -> dict[str, Any] | None:
    """The backtest table for the report: per model mean, std and intervals of AP,
    CP@k and ROC-AUC, best first, and the windows."""
    if results is None:
        return None
    cp = f"card_precision_at_{results['card_precision_k']}"
    rows = [
        {
            "name": name,
            "average_precision": m["mean"]["average_precision"],
            "average_precision_std": m["std"]["average_precision"],
            "average_precision_ci": m["intervals"]["average_precision"],
            "card_precision": m["mean"][cp],
            "card_precision_std": m["std"][cp],
            "card_precision_ci": m["intervals"][cp],
            "roc_auc": m["mean"]["roc_auc"],
            "per_window_ap": m["per_window"]["average_precision"],
            "per_window_cp": m["per_window"][cp],
        }
        for name, m in results["models"].items()
    ]
    return {
        "k": results["card_precision_k"],
        "n_windows": results["n_windows"],
        "bootstrap": results["bootstrap"],
        "best": results.get("best_by_mean_average_precision"),
        "windows": results["windows"],
        "models": sorted(rows, key=lambda r: -r["average_precision"]),
    }


def _drift(monitoring_verdict: dict[str, Any] | None) -> dict[str, Any] | None:
    if monitoring_verdict is None:
        return None
    entries = drifted_features(monitoring_verdict)
    statistics = [
        s
        for s in ("psi", "ks_statistic", "ks_pvalue", "chi2_pvalue")
        if any(s in e for e in entries)
    ]
    figure = plot_drift(entries)
    performance = [
        {"metric": m, "current": v.get("current"), "reference": v.get("reference")}
        for m, v in (monitoring_verdict.get("performance") or {}).items()
        if isinstance(v, dict)
    ]
    return {
        "detected": bool(monitoring_verdict.get("drift_detected")),
        "status": monitoring_verdict.get("status"),
        "recommendation": monitoring_verdict.get("recommendation"),
        "reasons": [str(r) for r in monitoring_verdict.get("reasons") or []],
        "model_version": monitoring_verdict.get("model_version"),
        "window": monitoring_verdict.get("window") or {},
        "thresholds": monitoring_verdict.get("thresholds") or {},
        "features": entries,
        "drifted": [e["feature"] for e in entries if e.get("drifted")],
        "statistics": statistics,
        "score": monitoring_verdict.get("score") or {},
        "performance": performance,
        "figure": figure_to_base64(figure) if figure is not None else None,
    }


def _shadow(challenger_comparison: dict[str, Any] | None) -> dict[str, Any] | None:
    """The challenger beside the champion on the monitored window, for the report;
    ``None`` when monitoring has not compared one (no comparison, or none available)."""
    if not challenger_comparison or not challenger_comparison.get("available"):
        return None
    c = challenger_comparison
    models = ("champion", "challenger")
    return {
        "champion_version": c.get("champion_version"),
        "challenger_version": c.get("challenger_version"),
        "transactions": c.get("transactions"),
        "days": c.get("days"),
        "decision_agreement": c.get("decision_agreement"),
        "score_rank_correlation": c.get("score_rank_correlation"),
        "labelled": c.get("labelled"),
        "labelled_frauds": c.get("labelled_frauds"),
        "rows": [
            {
                "model": m,
                "version": c.get(f"{m}_version"),
                "alerts_per_day": (c.get("alerts_per_day") or {}).get(m),
                "average_precision": (c.get(m) or {}).get("average_precision"),
                "recall": (c.get(m) or {}).get("recall"),
            }
            for m in models
        ],
    }


def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("fraud_detection.pipelines.reporting", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["num"] = lambda v, digits=4: "-" if v is None else f"{v:.{digits}f}"
    environment.filters["pct"] = lambda v, digits=2: "-" if v is None else f"{100 * v:.{digits}f}%"
    environment.filters["count"] = lambda v: "-" if v is None else f"{int(v):,}"
    return environment.get_template("model_report.html.j2")


def render_model_report(  # noqa: PLR0917
    data_summary: dict[str, Any],
    evaluation_report: dict[str, Any],
    model_selection: dict[str, Any],
    decision_thresholds: dict[str, Any],
    search_results: dict[str, Any],
    test_predictions: pd.DataFrame,
    feature_effects: dict[str, Any],
    promotion_report: dict[str, Any],
    monitoring_verdict: dict[str, Any] | None,
    challenger_comparison: dict[str, Any] | None,
    backtest_results: dict[str, Any] | None,
    params: dict[str, Any],
) -> str:
    """The model report as one HTML document with every figure embedded.

    Sections: summary, data, models (every candidate and the baseline), threshold,
    curves, confusion matrix, feature importance and effects, promotion against the
    champion, the rolling backtest (when it has run; ``None`` says it has not), drift
    (when a monitoring verdict exists; ``None`` says monitoring has not run) and the
    shadow challenger beside the champion on the monitored window (when monitoring
    compared one; ``None`` or ``available: false`` says there is no challenger).
    """
    p = ReportingParams.from_dict(params)
    selected = evaluation_report["selected"]
    effects = feature_effects["models"]
    figures = {
        "daily_volume": figure_to_base64(plot_daily_volume(data_summary)),
        "pr_curve": figure_to_base64(plot_pr_curves(test_predictions, model_selection)),
        "roc_curve": figure_to_base64(plot_roc_curves(test_predictions, model_selection)),
        "score_distribution": figure_to_base64(
            plot_score_distribution(test_predictions, model_selection, decision_thresholds)
        ),
        "confusion_matrix": figure_to_base64(plot_confusion_matrix(evaluation_report)),
    }
    if selected in effects:
        figures["feature_importance"] = figure_to_base64(
            plot_feature_effects(effects[selected], selected)
        )
    html = _template().render(
        title=p.title,
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        selected=selected,
        selection_reason=model_selection.get("reason", ""),
        headline=evaluation_report["metrics"][selected],
        data=data_summary,
        models=_model_rows(evaluation_report, model_selection, decision_thresholds, search_results),
        metric_names=list(next(iter(evaluation_report["metrics"].values())).keys()),
        threshold=explain_threshold(decision_thresholds, evaluation_report),
        classification_report=evaluation_report.get("classification_report") or {},
        effects=effects,
        effect_grid=feature_effects.get("grid", list(p.effect_grid)),
        top_scored=feature_effects.get("top_scored"),
        promotion=_promotion(promotion_report),
        drift=_drift(monitoring_verdict),
        shadow=_shadow(challenger_comparison),
        shadow_reason=(challenger_comparison or {}).get("reason")
        or "monitoring has not compared a challenger",
        backtest=_backtest(backtest_results),
        figures=figures,
    )
    logger.info("Model report rendered: %d KB, %d figures", len(html) // 1024, len(figures))
    return html
