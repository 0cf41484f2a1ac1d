import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from fraud_detection.pipelines.evaluation.nodes import (
    card_precision_at_k,
    evaluate_on_test,
    plot_confusion_matrix,
    plot_pr_curves,
    plot_roc_curves,
    plot_score_distribution,
)


def _predictions():
    return pd.DataFrame(
        {
            "transaction_id": list("abcdef"),
            "timestamp": pd.to_datetime(["2025-01-01"] * 3 + ["2025-01-02"] * 3),
            "customer_id": ["c1", "c2", "c3", "c1", "c2", "c4"],
            "amount": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
            "is_fraud": [1, 0, 0, 1, 1, 0],
            "score_m": [0.9, 0.2, 0.1, 0.95, 0.3, 0.4],
            "score_baseline": [0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
        }
    )


def test_card_precision_removes_cards_detected_on_earlier_days():
    # Day 1: top-1 card c1 is fraud (1.0); day 2: c1 already detected, so the top
    # card is c4 (0.4, genuine): 0.0. Mean 0.5.
    assert card_precision_at_k(_predictions(), "score_m", 1) == 0.5
    assert card_precision_at_k(_predictions(), "score_m", 2) == pytest.approx((0.5 + 0.5) / 2)


def test_metrics_for_every_model_and_headline_for_the_selected():
    thresholds = {"m": {"threshold": 0.5}, "baseline": {"threshold": 0.5}}
    metrics, report = evaluate_on_test(
        _predictions(), thresholds, {"selected": "m"}, {"card_precision_k": [1]}
    )
    assert metrics["test_average_precision"]["value"] == report["metrics"]["m"]["average_precision"]
    assert metrics["test_baseline_roc_auc"]["value"] == 0.5
    assert report["confusion_matrix"] == {"tn": 3, "fp": 0, "fn": 1, "tp": 2}
    assert report["metrics"]["m"]["precision"] == 1.0 and report["metrics"]["m"][
        "recall"
    ] == pytest.approx(2 / 3)
    assert "card_precision_at_1" in report["metrics"]["baseline"]
    # m flags a, d (frauds, 10 + 40) on two days; e (fraud, 50) scores 0.3 < 0.5.
    assert report["alerts"] == {
        "alerts_per_day": 1.0,
        "max_alerts_per_day": 1.0,
        "fraud_amount_caught": 50.0,
        "fraud_amount_caught_per_day": 25.0,
        "fraud_amount_total": 100.0,
    }
    assert metrics["test_fraud_amount_caught"]["value"] == 50.0


def test_plots_are_figures_with_labels():
    p = _predictions()
    thresholds = {"m": {"threshold": 0.5}, "baseline": {"threshold": 0.5}}
    _, report = evaluate_on_test(p, thresholds, {"selected": "m"}, {})
    for fig in (
        plot_pr_curves(p, {"selected": "m"}),
        plot_roc_curves(p, {"selected": "m"}),
        plot_confusion_matrix(report),
        plot_score_distribution(p, {"selected": "m"}, thresholds),
    ):
        assert isinstance(fig, Figure)
        assert fig.axes[0].get_title()
    legend = [
        t.get_text() for t in plot_pr_curves(p, {"selected": "m"}).axes[0].get_legend().get_texts()
    ]
    assert any(text.startswith("baseline (AP") for text in legend)
    assert np.isfinite(report["threshold"])
