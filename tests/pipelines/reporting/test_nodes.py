"""Reporting nodes on a small training run whose fraud follows the amount."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import pytest

from fraud_detection.datasets.optional_dataset import OptionalDataset
from fraud_detection.pipelines.reporting import nodes
from fraud_detection.pipelines.reporting.nodes import (
    ReportingParams,
    explain_threshold,
    render_model_report,
)
from tests.conftest import base_parameters
from tests.pipelines.reporting.conftest import PROMOTION_REPORT, params
from tests.pipelines.reporting.html_probe import ReportParser, external_urls

SECTIONS = [
    "summary",
    "data",
    "models",
    "threshold",
    "curves",
    "confusion-matrix",
    "feature-importance",
    "reason-codes",
    "promotion",
    "backtest",
    "drift",
    "shadow",
]
FIGURES = {
    "daily_volume",
    "pr_curve",
    "roc_curve",
    "score_distribution",
    "confusion_matrix",
    "feature_importance",
}
VERDICT = {
    "drift_detected": True,
    "window": {"start": "2026-11-20", "end": "2026-11-27", "rows": 5400},
    "thresholds": {"psi": 0.2, "ks_pvalue": 0.01},
    "features": {
        "amount": {"psi": 0.41, "ks_pvalue": 0.0001, "drifted": True},
        "tx_hour_sin": {"psi": 0.02, "ks_pvalue": 0.6, "drifted": False},
    },
    "score": {"psi": 0.31, "drifted": True},
    "performance": {"average_precision": {"current": 0.41, "reference": 0.6}},
}


def render(report_run, verdict=None, **overrides) -> str:
    inputs = {
        name: report_run.load(name)
        for name in (
            "data_summary",
            "evaluation_report",
            "model_selection",
            "decision_thresholds",
            "search_results",
            "test_predictions",
            "feature_effects",
        )
    }
    inputs.update(
        promotion_report=PROMOTION_REPORT,
        monitoring_verdict=verdict,
        challenger_comparison=None,
        backtest_results=None,
        params=params()["reporting"],
    )
    inputs.update(overrides)
    return render_model_report(**inputs)


def test_data_summary_counts_rows_quarantine_and_fraud_rate(report_run):
    summary = report_run.load("data_summary")
    assert summary["rows_in"] == 6000 and summary["rows_quarantined"] == 5
    assert summary["quarantined_by_reason"] == {"amount_out_of_range": 5}
    assert sum(day["transactions"] for day in summary["daily"]) == summary["rows_valid"] == 5995
    assert summary["fraud_rate"] == pytest.approx(summary["frauds"] / summary["labelled_rows"])
    assert 0.005 < summary["fraud_rate"] < 0.05
    assert summary["split"]["n_folds"] == 2 and summary["split"]["test_rows"] > 0


def test_amount_driven_fraud_reads_as_higher_amounts_raise_the_score(report_run):
    effects = report_run.load("feature_effects")
    assert set(effects["models"]) == {
        "logistic_regression",
        "xgboost",
    }  # the baseline has no feature pipeline
    xgb = effects["models"]["xgboost"]
    assert xgb["kind"] == "tree" and effects["models"]["logistic_regression"]["kind"] == "linear"
    amount = next(f for f in xgb["features"] if f["feature"] == "amount")
    assert amount["direction"] == nodes.RAISES
    assert amount["effect"] > 0.3
    assert amount["values"] == sorted(amount["values"]) and len(amount["curve"]) == len(
        amount["values"]
    )
    assert xgb["features"][0]["importance"] >= xgb["features"][-1]["importance"]


def test_direction_of_a_partial_dependence_curve():
    assert nodes._direction([0.1, 0.1, 0.5]) == nodes.RAISES
    assert nodes._direction([0.5, 0.2, 0.1]) == nodes.LOWERS
    assert nodes._direction([0.1, 0.1 + 1e-6]) == nodes.FLAT
    assert nodes._direction([0.1, 0.5, 0.1]) == nodes.MIXED
    assert nodes._direction([0.2, 0.3], category=True) == nodes.CATEGORY_RAISES


def test_report_has_every_section_and_only_embedded_png_figures(report_run):
    html = report_run.load("model_report")
    page = ReportParser(html)
    assert page.sections == SECTIONS
    assert {img["data-figure"] for img in page.images} == FIGURES
    for img in page.images:
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix) and img["alt"]
        assert base64.b64decode(img["src"][len(prefix) :])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not {"script", "link", "iframe", "object", "embed"} & page.tags
    assert external_urls(html) == []
    assert all(url.startswith(("data:", "#")) for url in page.urls)


def test_report_shows_every_model_the_threshold_rule_and_the_promotion_side_by_side(report_run):
    html = report_run.load("model_report")
    for model in ("xgboost", "logistic_regression", "baseline"):
        assert f'<td class="name">{model}' in html
    threshold = report_run.load("decision_thresholds")[
        report_run.load("model_selection")["selected"]
    ]["threshold"]
    assert (
        f"{threshold:.4f}" in html
        and "maximises F1" in html
        and "The test window was not used to choose it." in html
    )
    assert "<td>0.4000</td><td>0.4500</td>" in html and "-0.0500" in html and "(version 4)" in html
    assert "does not beat champion" in html and "rejected" in html
    assert "amount_out_of_range" in html


def _backtest_results() -> dict:
    def model(ap, cp):
        return {
            "per_window": {
                "average_precision": ap,
                "card_precision_at_100": cp,
                "roc_auc": [0.9] * 2,
            },
            "mean": {
                "average_precision": sum(ap) / 2,
                "card_precision_at_100": sum(cp) / 2,
                "roc_auc": 0.9,
            },
            "std": {"average_precision": 0.05, "card_precision_at_100": 0.01, "roc_auc": 0.0},
            "intervals": {
                "average_precision": {"low": 0.61, "high": 0.73},
                "card_precision_at_100": {"low": 0.27, "high": 0.31},
            },
        }

    window = {
        "train_start": "2025-01-01",
        "train_end": "2025-01-08",
        "counts": {"test_rows": 900, "test_frauds": 12},
        "selected": "xgboost",
    }
    return {
        "n_windows": 2,
        "card_precision_k": 100,
        "bootstrap": {"unit": "day", "n_resamples": 200, "confidence": 0.95},
        "windows": [
            {**window, "window": 0, "test_start": "2025-01-15", "test_end": "2025-01-22"},
            {**window, "window": 1, "test_start": "2025-01-22", "test_end": "2025-01-29"},
        ],
        "models": {
            "xgboost": model([0.7, 0.64], [0.3, 0.28]),
            "baseline": model([0.2, 0.1], [0.1, 0.05]),
        },
        "best_by_mean_average_precision": "xgboost",
    }


def test_backtest_section_shows_mean_std_and_intervals_per_model(report_run):
    html = report_run.load("model_report")  # the catalog's backtest file does not exist
    assert 'id="backtest-not-run"' in html and "kedro run --pipelines backtest" in html
    html = render(report_run, backtest_results=_backtest_results())
    assert "Best mean AP: <strong>xgboost</strong>" in html and "95% bootstrap intervals" in html
    assert "<td>0.670 &plusmn; 0.050</td>" in html and "<td>0.610 &ndash; 0.730</td>" in html
    assert "<td>0.290 &plusmn; 0.010</td>" in html and "<td>0.700, 0.640</td>" in html
    assert html.index('<td class="name">xgboost</td><td>0.670') < html.index(
        '<td class="name">baseline</td><td>0.150'
    )
    assert "2025-01-22 &ndash; 2025-01-29" in html


def test_threshold_section_shows_alerts_a_day_and_money_caught(report_run):
    html = report_run.load("model_report")
    alerts = report_run.load("evaluation_report")["alerts"]
    assert 'id="threshold-alerts"' in html and "alerts a day on average" in html
    assert f"{alerts['fraud_amount_caught']:,.2f}" in html
    budget = render(
        report_run,
        decision_thresholds={
            name: {**t, "objective": "alert_budget", "config": {"max_alerts_per_day": 25}}
            for name, t in report_run.load("decision_thresholds").items()
        },
    )
    assert "raises at most 25 alerts on every day" in budget


def test_incomparable_champion_is_flagged_in_the_promotion_section(report_run):
    html = render(
        report_run,
        promotion_report={
            **PROMOTION_REPORT,
            "comparable": False,
            "not_comparable_reason": "it cannot score the test rows: KeyError: 'amount'",
        },
    )
    assert 'id="promotion-not-comparable"' in html and "KeyError: &#39;amount&#39;" in html
    assert 'id="promotion-not-comparable"' not in report_run.load("model_report")


def test_drift_section_says_monitoring_has_not_run_without_a_verdict(report_run):
    html = report_run.load("model_report")  # the catalog's verdict file does not exist
    assert 'id="drift-not-run"' in html and "not monitored yet" in html


def test_drift_section_summarises_a_verdict_with_its_figure(report_run):
    html = render(report_run, VERDICT)
    page = ReportParser(html)
    assert "drift" in {img["data-figure"] for img in page.images}
    assert "drift detected" in html and "Drifted features: <strong>amount</strong>" in html
    assert "Window 2026-11-20 to 2026-11-27 (5,400 transactions). Drifted features" in html
    assert "Score distribution: drifted (PSI 0.310)" in html
    assert "<td>0.4100</td><td>0.6000</td>" in html  # AP now vs at training
    quiet = render(
        report_run,
        {
            "drift_detected": False,
            "features": [{"feature": "amount", "ks_pvalue": 0.5, "drifted": False}],
        },
    )
    assert "no drift" in quiet and 'data-figure="drift"' not in quiet


COMPARISON = {
    "available": True,
    "transactions": 20480,
    "days": 7,
    "champion_version": "3",
    "challenger_version": "5",
    "decision_agreement": 0.987,
    "score_rank_correlation": 0.912,
    "alerts_per_day": {"champion": 41.3, "challenger": 38.9},
    "labelled": 9120,
    "labelled_frauds": 71,
    "champion": {"average_precision": 0.66, "recall": 0.58},
    "challenger": {"average_precision": 0.69, "recall": 0.59},
}


def test_shadow_section_says_no_challenger_until_monitoring_compared_one(report_run):
    html = report_run.load("model_report")  # the catalog's comparison file does not exist
    assert 'id="shadow-none"' in html and "no challenger" in html
    assert "monitoring has not compared a challenger" in html
    unavailable = render(
        report_run,
        challenger_comparison={
            "available": False,
            "reason": "no model behind the 'challenger' alias",
        },
    )
    assert 'id="shadow-comparison"' not in unavailable
    assert "live transactions: no model behind the &#39;challenger&#39; alias." in unavailable


def test_shadow_section_shows_the_challenger_beside_the_champion(report_run):
    html = render(report_run, challenger_comparison=COMPARISON)
    assert 'id="shadow-none"' not in html
    assert (
        "Challenger version 5 beside champion version 3 on the same 20,480 monitored "
        "transactions (7 days)"
    ) in html
    assert "98.7% of decisions agree, score rank correlation (Spearman) 0.912" in html
    assert "9,120 of them are labelled, 71 as fraud." in html
    assert (
        '<tr><td class="name">champion</td><td>3</td><td>41.3</td><td>0.6600</td>'
        "<td>0.5800</td></tr>"
    ) in html
    assert (
        '<tr><td class="name">challenger</td><td>5</td><td>38.9</td><td>0.6900</td>'
        "<td>0.5900</td></tr>"
    ) in html
    waiting = render(
        report_run,
        challenger_comparison={
            **COMPARISON,
            "labelled_frauds": 0,
            "champion": {"average_precision": None, "recall": None},
            "challenger": {"average_precision": None, "recall": None},
        },
    )
    assert "AP and recall wait for labelled frauds and genuine rows" in waiting


def test_a_challenger_staged_for_live_evidence_is_shown_as_such(report_run):
    staged = {**PROMOTION_REPORT, "promote": False, "stage": "challenger"}
    html = render(report_run, promotion_report=staged)
    assert "made challenger: awaits live evidence" in html
    assert '<span class="badge neutral">challenger</span>' in html


def test_report_and_alert_read_the_monitoring_pipelines_verdict(report_run):
    """A verdict from the monitoring pipeline's own nodes: the test window with amounts
    tripled, against the reference profile of the same run."""
    from fraud_detection.alerting import events
    from fraud_detection.drift.statistics import build_reference_profile
    from fraud_detection.pipelines.monitoring.nodes import detect_drift, score_window

    monitoring = {**params()["monitoring"], "min_rows": 100, "window_days": None}
    test_set = report_run.load("test_set")
    profile = build_reference_profile(
        test_set,
        report_run.load("test_predictions"),
        report_run.load("model_selection"),
        report_run.load("evaluation_report"),
        report_run.load("selected_features"),
        monitoring,
    )
    model = report_run.load("fraud_model")
    champion = {
        "model": SimpleNamespace(predict=lambda frame: model.predict(None, frame)),
        "version": "3",
    }
    shifted = test_set.assign(amount=test_set["amount"] * 3)
    verdict, _ = detect_drift(score_window(shifted, champion), profile, monitoring)
    assert verdict["drift_detected"] and "amount" in verdict["drifted_features"]

    html = render(report_run, verdict)
    assert "drift detected" in html and '<td class="name">amount</td>' in html
    assert 'id="drift-reasons"' in html and "Recommendation: <strong>retrain</strong>" in html
    assert "Champion version monitored: 3" in html

    alert = events.drift_detected(
        verdict, events.RunInfo(environment="local", run_id="monitoring-1")
    )
    assert alert.title.startswith("[local] Drift detected: ") and "feature(s)" in alert.title
    assert (
        "amount" in alert.facts["drifted features"] and alert.facts["recommendation"] == "retrain"
    )
    assert verdict["reasons"][0] in alert.summary
    assert alert.table.rows[0][0] in verdict["drifted_features"]


def test_threshold_explained_for_expected_cost():
    thresholds = {
        "m": {
            "threshold": 0.2,
            "objective": "expected_cost",
            "objective_value": -1.25,
            "config": {
                "objective": "expected_cost",
                "cost_false_negative": 100.0,
                "cost_false_positive": 5.0,
            },
        }
    }
    report = {
        "selected": "m",
        "test_rows": 1000,
        "confusion_matrix": {"tn": 950, "fp": 20, "fn": 10, "tp": 20},
    }
    out = explain_threshold(thresholds, report)
    assert (
        "missed fraud costing 100.0 and a false alarm 5.0" in out["rule"]
        and "1.250 per transaction" in out["rule"]
    )
    assert out["on_test"] == (
        "On the test window it flags 40 of 1,000 transactions: 20 of 30 frauds caught, 10 missed, "
        "and 20 genuine transactions flagged (2.06% of genuine ones)."
    )


def test_unknown_reporting_parameter_fails_with_its_name():
    with pytest.raises(
        ValueError, match=r"Unknown key\(s\) in params:reporting: \['top_feature'\]"
    ):
        ReportingParams.from_dict({"top_feature": 3})
    with pytest.raises(ValueError, match="effect_grid must be at least two increasing quantiles"):
        ReportingParams.from_dict(base_parameters("reporting", effect_grid=[0.9, 0.1]))


def test_optional_dataset_loads_none_until_written(tmp_path):
    dataset = OptionalDataset(
        dataset={"type": "json.JSONDataset", "filepath": str(tmp_path / "verdict.json")}
    )
    assert dataset.load() is None and not dataset.exists()
    dataset.save(VERDICT)
    assert dataset.load() == VERDICT and dataset.exists()


def test_the_highest_scored_test_transactions_are_shown_with_their_reason_codes(report_run):
    effects = report_run.load("feature_effects")
    top = effects["top_scored"]
    selected = effects["selected"]
    assert top is not None, selected
    scores = [t["score"] for t in top["transactions"]]
    assert len(scores) == params()["reporting"]["top_scored"] and scores == sorted(scores)[::-1]
    test_scores = report_run.load("test_predictions")
    assert scores[0] == pytest.approx(float(test_scores[f"score_{selected}"].max()))
    # Amount drives fraud in this data: the amount is a reason of the top transactions.
    features = [r["feature"] for t in top["transactions"] for r in t["reasons"]]
    assert "amount" in features or "amount_log" in features
    assert all(
        r["contribution"] > 0 and r["text"] for t in top["transactions"] for r in t["reasons"]
    )
    html = render(report_run)
    assert top["transactions"][0]["transaction_id"] in html
    assert top["transactions"][0]["reasons"][0]["text"].split(" ")[0] in html
