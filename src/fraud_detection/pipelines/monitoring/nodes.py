"""Monitoring nodes: the current window's features and scores, the drift verdict and
its reports (the statistics live in ``fraud_detection.drift``), the challenger beside
the champion and the live promotion decision (``fraud_detection.promotion_rule``)."""

from __future__ import annotations

import html
import logging
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score

from fraud_detection import quality, schema
from fraud_detection.drift import statistics as drift
from fraud_detection.features import FeatureParams, create_features, feature_horizon
from fraud_detection.plotting import figure_png, new_figure
from fraud_detection.promotion_rule import (
    CHAMPION,
    PROMOTED,
    PromotionParams,
    judge_live_evidence,
)
from fraud_detection.streaming.labels import LabelParams, attach_labels

logger = logging.getLogger(__name__)

MonitoringParams = drift.MonitoringParams


def validate_current_transactions(
    transactions: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The ingestion guards on the monitored window (``quality.validate_transactions``)."""
    return quality.validate_transactions(transactions, params)


def detect_drift(
    scored: pd.DataFrame, reference: dict[str, Any], params: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Compares the scored window with the reference profile (``drift.detect_drift``).

    Returns:
        The verdict as JSON (``drift_detected``, ``recommendation``, per-feature
        statistics, score drift, performance where labels arrived, the reasons) and the
        MLflow metrics (``monitoring_*``, ``psi_<feature>``, ``ks_<feature>``).
    """
    verdict, metrics = drift.detect_drift(scored, reference, params)
    return verdict.to_dict(), metrics


# ------------------------------------------------------------------ labels --


def attach_current_labels(
    current: pd.DataFrame, labels: pd.DataFrame, params: dict[str, Any]
) -> pd.DataFrame:
    """The monitored transactions with the labels known now, joined by transaction id
    (``params:labels.source``: only the label store with ``topic``), so performance is
    measured on the rows whose label has arrived, however late."""
    source = LabelParams.from_dict(params).source
    out = attach_labels(current, labels, source)
    logger.info(
        "Monitoring window: %d of %d transactions labelled (labels from %s)",
        int(out[schema.LABEL].notna().sum()),
        len(out),
        "the label topic" if source == "topic" else "the transactions",
    )
    return out


# ------------------------------------------------------------------ window --


def build_window_features(
    current: pd.DataFrame,
    history: pd.DataFrame,
    feature_params: dict[str, Any],
    params: dict[str, Any],
) -> pd.DataFrame:
    """``create_features`` rows of the monitored window.

    The window is the last ``window_days`` of ``current`` (all of it when null); its
    features are computed over the window plus the history they need (the longest
    window plus the label delay before it), taken from ``current`` itself and from
    ``history`` (the transactions ingested so far), so a short window is not
    mistaken for drift by its empty 30-day windows.
    """
    p = drift.MonitoringParams.from_dict(params)
    if current.empty:
        raise ValueError("current_transactions is empty: nothing to monitor")
    end = current[schema.TIMESTAMP].max()
    start = (
        end - pd.Timedelta(days=p.window_days) if p.window_days else current[schema.TIMESTAMP].min()
    )
    in_window = (
        current[schema.TIMESTAMP] > start if p.window_days else pd.Series(True, index=current.index)
    )
    window_ids = set(current.loc[in_window, schema.TRANSACTION_ID])
    horizon_start = start - feature_horizon(FeatureParams.from_dict(feature_params))
    past = history[
        (history[schema.TIMESTAMP] >= horizon_start)
        & ~history[schema.TRANSACTION_ID].isin(set(current[schema.TRANSACTION_ID]))
    ]
    combined = pd.concat(
        [past[current.columns.intersection(past.columns)], current], ignore_index=True
    )
    features = create_features(combined, feature_params)
    window = features[features[schema.TRANSACTION_ID].isin(window_ids)].reset_index(drop=True)
    logger.info(
        "Monitoring window %s to %s: %d transactions (%d rows of history)",
        start,
        end,
        len(window),
        len(past),
    )
    return window


def score_window(window_features: pd.DataFrame, champion: dict[str, Any] | None) -> pd.DataFrame:
    """The champion's score and decision for every window row, with its version."""
    if champion is None:
        raise ValueError(
            "There is no champion model to monitor yet: run the training flow (kedro run) first"
        )
    out = champion["model"].predict(window_features)
    scored = window_features.copy()
    scored["score"] = np.asarray(out["score"], dtype=np.float64)
    scored["decision"] = np.asarray(out["decision"], dtype=np.int64)
    scored.attrs["model_version"] = str(champion["version"])
    scored["model_version"] = str(champion["version"])
    return scored


def compare_challenger(scored: pd.DataFrame, challenger: dict[str, Any] | None) -> dict[str, Any]:
    """The registry's ``challenger`` against the champion on the same monitored
    transactions: how often their decisions agree, how their scores rank the rows
    (Spearman), alerts a day of each, and on the rows whose label has arrived the AP
    and recall of each (``None`` until labelled frauds and genuine rows are there).

    Returns ``{"available": False, ...}`` when no model is behind the alias, or when it
    is the champion's own version.
    """
    if challenger is None:
        return {"available": False, "reason": "no model behind the 'challenger' alias"}
    champion_version = str(scored.attrs.get("model_version", scored["model_version"].iloc[0]))
    if str(challenger["version"]) == champion_version:
        return {
            "available": False,
            "reason": f"the 'challenger' alias points at the champion (version {champion_version})",
        }
    out = challenger["model"].predict(scored)
    theirs = np.asarray(out["score"], dtype=np.float64)
    their_decision = np.asarray(out["decision"], dtype=np.int64)
    ours = scored["score"].to_numpy(np.float64)
    our_decision = scored["decision"].to_numpy(np.int64)
    days = max(scored[schema.TIMESTAMP].dt.floor("D").nunique(), 1)
    label = scored[schema.LABEL]
    known = label.notna().to_numpy()
    y = label[known].astype(int).to_numpy()
    comparable = bool(known.sum()) and 0 < y.sum() < len(y)

    def performance(scores: np.ndarray, decisions: np.ndarray) -> dict[str, float | None]:
        if not comparable:
            return {"average_precision": None, "recall": None}
        return {
            "average_precision": float(average_precision_score(y, scores[known])),
            "recall": float(decisions[known][y == 1].mean()),
        }

    result = {
        "available": True,
        "transactions": len(scored),
        "days": int(days),
        "champion_version": champion_version,
        "challenger_version": str(challenger["version"]),
        "decision_agreement": float((our_decision == their_decision).mean()),
        "score_rank_correlation": float(pd.Series(ours).corr(pd.Series(theirs), method="spearman")),
        "alerts_per_day": {
            "champion": float(our_decision.sum() / days),
            "challenger": float(their_decision.sum() / days),
        },
        "labelled": int(known.sum()),
        "labelled_frauds": int(y.sum()),
        "champion": performance(ours, our_decision),
        "challenger": performance(theirs, their_decision),
    }
    logger.info(
        "Challenger v%s vs champion v%s on %d transactions: %.1f%% decisions agree, "
        "%.1f vs %.1f alerts a day, %d labelled frauds",
        result["challenger_version"],
        champion_version,
        len(scored),
        100 * result["decision_agreement"],
        result["alerts_per_day"]["challenger"],
        result["alerts_per_day"]["champion"],
        result["labelled_frauds"],
    )
    return result


def decide_live_promotion(
    comparison: dict[str, Any] | None, params: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Whether the challenger's live evidence makes it champion
    (``params:promotion.live_evidence``).

    Only with ``live_evidence.required`` and an available comparison does anything move:
    ``champion`` goes to the exact version that was compared (``challenger_version``)
    when the labelled live rows are enough and the challenger's AP loss and alert
    volume are within their bounds; otherwise the champion is kept and the reason says
    which bound was not met.

    Returns:
        The decision twice: for ``live_promotion_report`` and for the registry dataset
        (``live_champion_alias``), which moves ``champion`` when ``stage`` names it.
        Keys: ``required``, ``promote``, ``stage``, ``outcome`` (``promoted``,
        ``insufficient_labels``, ``rejected``, ``not_required``, ``no_challenger``),
        ``reason``, ``rule``, ``compared`` (both versions), ``challenger_version`` (the
        version the decision is about, ``None`` when it is about none) and ``evidence``.
    """
    p = PromotionParams.from_dict(params).live_evidence
    # The optional dataset loads None when no monitoring run has compared a challenger.
    comparison = comparison or {"available": False, "reason": "no challenger was compared"}
    available = bool(comparison.get("available"))
    decision: dict[str, Any] = {
        "required": p.required,
        "promote": False,
        "stage": None,
        "rule": p.model_dump(),
        "compared": {
            "champion_version": comparison.get("champion_version"),
            "challenger_version": comparison.get("challenger_version"),
        },
        "challenger_version": None,
        "evidence": _live_evidence(comparison) if available else None,
    }
    if not p.required:
        outcome = "not_required"
        reason = (
            "live evidence is not required (params:promotion.live_evidence.required is "
            "false): the promotion pipeline alone moves 'champion'"
        )
    elif not available:
        outcome = "no_challenger"
        reason = f"nothing to promote: {comparison.get('reason') or 'no challenger compared'}"
    else:
        decision["challenger_version"] = str(comparison["challenger_version"])
        outcome, reason = judge_live_evidence(comparison, p)
        if outcome == PROMOTED:
            decision.update(promote=True, stage=CHAMPION)
            reason = (
                f"challenger version {comparison['challenger_version']} promoted over champion "
                f"version {comparison['champion_version']} on live evidence: {reason}"
            )
        else:
            reason = f"champion version {comparison['champion_version']} kept: {reason}"
    decision.update(outcome=outcome, reason=reason)
    logger.info("Live promotion decision: %s (%s)", outcome, reason)
    return decision, decision


def _live_evidence(comparison: dict[str, Any]) -> dict[str, Any]:
    """The parts of ``challenger_comparison`` the live rule reads."""
    return {
        "transactions": comparison.get("transactions"),
        "days": comparison.get("days"),
        "labelled": comparison["labelled"],
        "labelled_frauds": comparison["labelled_frauds"],
        "average_precision": {
            "champion": comparison["champion"]["average_precision"],
            "challenger": comparison["challenger"]["average_precision"],
        },
        "alerts_per_day": dict(comparison["alerts_per_day"]),
    }


# ----------------------------------------------------------------- reports --


def plot_drift(verdict: dict[str, Any]) -> Figure:
    """PSI per monitored feature and of the score, thresholds marked."""
    features = verdict.get("features") or {}
    names = [
        n
        for n in sorted(features, key=lambda n: -features[n].get("psi", 0.0))
        if "psi" in features[n]
    ][:30]
    values = [features[n]["psi"] for n in names]
    colors = ["#c0392b" if features[n]["drifted"] else "#7f8c8d" for n in names]
    if verdict.get("score"):
        names, values = ["score", *names], [verdict["score"]["psi"], *values]
        colors = ["#c0392b" if verdict["score"]["drifted"] else "#2c3e50", *colors]
    fig, ax = new_figure(figsize=(7, max(2.5, 0.28 * len(names) + 1)))
    ax.barh(names[::-1], values[::-1], color=colors[::-1])
    psi_threshold = (verdict.get("thresholds") or {}).get("psi")
    if psi_threshold is not None:
        ax.axvline(
            psi_threshold, color="#c0392b", ls="--", lw=1, label=f"PSI threshold {psi_threshold:g}"
        )
        ax.legend(fontsize=8, loc="lower right")
    window = verdict.get("window") or {}
    ax.set(
        xlabel="PSI vs reference",
        title=f"Drift, window {window.get('start', '?')[:10]} to {window.get('end', '?')[:10]}",
    )
    fig.tight_layout()
    return fig


def render_drift_report(verdict: dict[str, Any]) -> str:
    """A self-contained HTML page: verdict, reasons, per-feature table, the PSI chart."""
    esc = html.escape
    rows = []
    for name, f in sorted(
        (verdict.get("features") or {}).items(), key=lambda item: -item[1].get("psi", 0.0)
    ):
        cells = [
            name,
            f.get("kind", ""),
            _num(f.get("psi")),
            _num(f.get("ks_statistic")),
            _num(f.get("ks_pvalue")),
            "yes" if f.get("drifted") else "",
        ]
        style = ' style="background:#fdecea"' if f.get("drifted") else ""
        rows.append(f"<tr{style}>" + "".join(f"<td>{esc(str(c))}</td>" for c in cells) + "</tr>")
    perf = verdict.get("performance") or {}
    perf_rows = "".join(
        f"<tr><td>{esc(m)}</td><td>{_num(e.get('current'))}</td>"
        f"<td>{_num(e.get('reference'))}</td>"
        f"<td>{'yes' if e.get('degraded') or e.get('drifted') else ''}</td></tr>"
        for m, e in perf.items()
        if isinstance(e, dict)
    )
    score = verdict.get("score") or {}
    window = verdict.get("window") or {}
    reasons = "".join(f"<li>{esc(r)}</li>" for r in verdict.get("reasons") or []) or "<li>none</li>"
    chart = figure_png(plot_drift(verdict)) if verdict.get("features") else ""
    status = (
        "DRIFT DETECTED: retrain recommended"
        if verdict.get("drift_detected")
        else f"No drift ({verdict.get('status')})"
    )
    chart_html = (
        f'<h2>PSI per feature</h2><img alt="PSI per feature" src="data:image/png;base64,{chart}">'
        if chart
        else ""
    )
    return (
        "<!doctype html>\n"
        '<html><head><meta charset="utf-8"><title>Drift report</title>\n'
        "<style>body{font-family:sans-serif;margin:2em;max-width:60em}"
        "table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}</style>\n"
        "</head><body>\n"
        f"<h1>Drift report: {esc(status)}</h1>\n"
        f"<p>Window {esc(str(window.get('start')))} to {esc(str(window.get('end')))}, "
        f"{window.get('rows', 0):,} transactions;\n"
        f"model version {esc(str(verdict.get('model_version')))}; "
        f"reference: {esc(str((verdict.get('reference') or {}).get('window')))}.</p>\n"
        f"<h2>Reasons</h2><ul>{reasons}</ul>\n"
        f"<h2>Score</h2><p>PSI {_num(score.get('psi'))}, KS {_num(score.get('ks_statistic'))} "
        f"(p {_num(score.get('ks_pvalue'))}),\n"
        f"flagged share {_num(score.get('positive_rate'))} "
        f"vs {_num(score.get('reference_positive_rate'))} at training.</p>\n"
        "<h2>Performance where labels arrived</h2>\n"
        "<table><tr><th>metric</th><th>window</th><th>training</th><th>flagged</th></tr>"
        f"{perf_rows}</table>\n"
        "<h2>Features</h2>\n"
        "<table><tr><th>feature</th><th>kind</th><th>PSI</th><th>KS</th><th>KS p-value</th>"
        f"<th>drifted</th></tr>{''.join(rows)}</table>\n"
        f"{chart_html}\n"
        "</body></html>\n"
    )


def _num(value: Any) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
