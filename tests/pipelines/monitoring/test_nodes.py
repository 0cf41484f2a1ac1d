"""Monitoring nodes: no drift on a held-back slice of the same distribution; drift
when the simulator shifts amounts, the merchant mix or the fraud rate."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from fraud_detection import schema
from fraud_detection.drift.statistics import (
    MonitoringParams,
    build_reference_profile,
    psi,
)
from fraud_detection.features import (
    create_features,
    feature_columns,
)
from fraud_detection.model import FraudModel, build_model_pipeline
from fraud_detection.pipelines.evaluation.nodes import model_metrics
from fraud_detection.pipelines.monitoring.nodes import (
    build_window_features,
    compare_challenger,
    decide_live_promotion,
    detect_drift,
    render_drift_report,
    score_window,
)
from fraud_detection.simulator import simulate_transactions
from tests.conftest import base_parameters
from tests.features.test_online import PARAMS as FEATURES
from tests.simulator.helpers import merged, simulation_parameters

SIM = simulation_parameters(n_days=42, n_customers=400, n_terminals=800, seed=21)
_BASE = base_parameters("monitoring")
MONITORING = {
    **_BASE,
    "window_days": 7,
    "min_rows": 300,
    "sample_size": 1000,
    "exclude_features": [
        "tx_day_of_week",
        "tx_during_weekend",
        "tx_dow_sin",
        "tx_dow_cos",
        "category_nb_tx_7d",
    ],
    "thresholds": {**_BASE["thresholds"], "min_labelled_rows": 300, "min_frauds": 5},
}


def days(frame: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    start = frame[schema.TIMESTAMP].min().normalize()
    day = (frame[schema.TIMESTAMP] - start).dt.days
    return frame[(day >= first) & (day <= last)]


@pytest.fixture(scope="module")
def trained():
    """A champion fitted on days 10-27, its reference profile from days 28-34."""
    transactions = simulate_transactions(SIM)
    features = create_features(transactions, FEATURES)
    numeric, categorical = feature_columns(features)
    train, test = days(features, 10, 27), days(features, 28, 34)
    pipeline = build_model_pipeline(
        LogisticRegression(max_iter=500),
        numeric,
        categorical,
        {"mi_sample_size": 3000, "top_k": 15},
    )
    pipeline.fit(train[numeric + categorical], train[schema.LABEL].astype(int))
    model = FraudModel(pipeline, 0.3, numeric + categorical, "logistic_regression")
    scores = model.predict(None, test)["score"].to_numpy()
    predictions = pd.DataFrame(
        {schema.TRANSACTION_ID: test[schema.TRANSACTION_ID], "score_logistic_regression": scores}
    )
    report = {
        "metrics": {
            "logistic_regression": model_metrics(
                test[schema.LABEL].astype(int).to_numpy(), scores, 0.3
            )
        }
    }
    selection = {"selected": "logistic_regression", "threshold": 0.3}
    selected = list(pipeline.named_steps["select"].selected_features_)
    profile = build_reference_profile(test, predictions, selection, report, selected, MONITORING)
    return {"transactions": transactions, "model": model, "profile": profile}


def monitor(trained, transactions: pd.DataFrame) -> dict:
    """The monitoring nodes on days 35-41 of ``transactions``, history before them."""
    current = days(transactions, 28, 41)
    window = build_window_features(current, days(transactions, 0, 27), FEATURES, MONITORING)
    scored = score_window(window, {"version": "1", "model": _Pyfunc(trained["model"])})
    verdict, metrics = detect_drift(scored, trained["profile"], MONITORING)
    assert metrics["monitoring_drift_detected"]["value"] == float(verdict["drift_detected"])
    return verdict


class _Pyfunc:
    def __init__(self, model):
        self.model = model

    def predict(self, features):
        return self.model.predict(None, features)


def test_no_drift_on_a_held_back_slice_of_the_same_distribution(trained):
    verdict = monitor(trained, trained["transactions"])
    assert verdict["drift_detected"] is False, verdict["reasons"]
    assert verdict["recommendation"] == "none" and verdict["status"] == "ok"
    assert verdict["window"]["rows"] > 1000
    assert verdict["performance"]["status"] == "measured"
    assert all(f["psi"] < 0.1 for f in verdict["features"].values()), {
        n: f["psi"] for n, f in verdict["features"].items()
    }


@pytest.mark.parametrize(
    ("shift", "expected"),
    [
        ({"mean_amount": [15.0, 300.0]}, "amount"),
        ({"online_terminal_share": 0.4, "travel_daily_rate": 0.03}, "country"),
        (
            {
                "scenarios": {
                    "compromised_terminals": {"daily_rate": 1.5e-3},
                    "compromised_customers": {"daily_rate": 3.0e-3},
                }
            },
            "fraud rate",
        ),
    ],
    ids=["amounts", "merchant_mix", "fraud_rate"],
)
def test_drift_is_detected_when_the_simulator_shifts(trained, shift, expected):
    verdict = monitor(trained, simulate_transactions(merged(SIM, shift)))
    assert verdict["drift_detected"] is True and verdict["recommendation"] == "retrain"
    assert expected in " ".join(verdict["reasons"]), verdict["reasons"]
    html = render_drift_report(verdict)
    assert "DRIFT DETECTED" in html and "data:image/png;base64," in html


def test_a_short_window_says_insufficient_data(trained):
    window = build_window_features(
        days(trained["transactions"], 40, 41),
        trained["transactions"],
        FEATURES,
        {**MONITORING, "window_days": 0.01},
    )
    scored = score_window(window, {"version": "1", "model": _Pyfunc(trained["model"])})
    verdict, _ = detect_drift(scored, trained["profile"], MONITORING)
    assert verdict["status"] == "insufficient_data" and verdict["drift_detected"] is False


def test_psi_and_parameters():
    assert psi([0.5, 0.5], [0.5, 0.5], 1e-4) == 0.0
    assert psi([0.9, 0.1], [0.5, 0.5], 1e-4) > 0.2
    with pytest.raises(ValueError, match="thresholds: \\['psii'\\]"):
        MonitoringParams.from_dict({"thresholds": {"psii": 0.1}})
    with pytest.raises(ValueError, match="Unknown key"):
        MonitoringParams.from_dict({"window": 7})


def test_the_challenger_is_compared_with_the_champion_on_the_same_window(trained):
    """Agreement, rank correlation, alerts a day, and AP/recall of each on the rows
    whose label has arrived, recomputed here from the two models' own scores."""
    from sklearn.metrics import average_precision_score

    transactions = trained["transactions"]
    current = days(transactions, 28, 41)
    window = build_window_features(current, days(transactions, 0, 27), FEATURES, MONITORING)
    # Labels of the first days only have arrived.
    late = window[schema.TIMESTAMP] > window[schema.TIMESTAMP].min() + pd.Timedelta("4D")
    window[schema.LABEL] = window[schema.LABEL].astype("Float64").mask(late)
    scored = score_window(window, {"version": "1", "model": _Pyfunc(trained["model"])})
    challenger_model = FraudModel(
        trained["model"].pipeline, 0.6, trained["model"].input_columns, "stricter"
    )
    result = compare_challenger(scored, {"version": "2", "model": _Pyfunc(challenger_model)})
    assert result["available"] and result["challenger_version"] == "2"
    # Same scores, another threshold: ranks agree fully, the stricter one alerts less.
    assert result["score_rank_correlation"] == pytest.approx(1.0)
    ours = scored["score"].to_numpy()
    assert result["decision_agreement"] == pytest.approx(((ours >= 0.3) == (ours >= 0.6)).mean())
    n_days = scored[schema.TIMESTAMP].dt.floor("D").nunique()
    assert result["alerts_per_day"]["challenger"] == pytest.approx((ours >= 0.6).sum() / n_days)
    assert result["alerts_per_day"]["challenger"] < result["alerts_per_day"]["champion"]
    known = scored[schema.LABEL].notna().to_numpy()
    y = scored.loc[known, schema.LABEL].astype(int).to_numpy()
    assert result["labelled"] == known.sum() < len(scored) and result["labelled_frauds"] == y.sum()
    ap = average_precision_score(y, ours[known])
    assert result["champion"]["average_precision"] == pytest.approx(ap)
    assert result["challenger"]["average_precision"] == pytest.approx(ap)
    assert result["challenger"]["recall"] == pytest.approx((ours[known][y == 1] >= 0.6).mean())


def test_no_challenger_or_the_champion_itself_is_said_plainly(trained):
    scored = pd.DataFrame({"score": [0.1], "decision": [0], "model_version": ["1"]})
    assert compare_challenger(scored, None) == {
        "available": False,
        "reason": "no model behind the 'challenger' alias",
    }
    same = compare_challenger(scored, {"version": "1", "model": None})
    assert not same["available"] and "points at the champion" in same["reason"]


# decide_live_promotion: the challenger_comparison above against params:promotion.
def _comparison(**overrides) -> dict:
    comparison = {
        "available": True,
        "transactions": 20000,
        "days": 7,
        "champion_version": "3",
        "challenger_version": "5",
        "decision_agreement": 0.99,
        "score_rank_correlation": 0.9,
        "alerts_per_day": {"champion": 40.0, "challenger": 44.0},
        "labelled": 5000,
        "labelled_frauds": 60,
        "champion": {"average_precision": 0.60, "recall": 0.55},
        "challenger": {"average_precision": 0.595, "recall": 0.57},
    }
    return {**comparison, **overrides}


def _promotion(**live_evidence) -> dict:
    params = base_parameters("promotion")
    return {
        **params,
        "live_evidence": {**params["live_evidence"], "required": True, **live_evidence},
    }


def _decide(comparison, **live_evidence) -> dict:
    report, alias_decision = decide_live_promotion(comparison, _promotion(**live_evidence))
    assert report is alias_decision
    return report


def test_live_promotion_records_not_required_and_moves_nothing_by_default():
    report, _ = decide_live_promotion(_comparison(), base_parameters("promotion"))
    assert report["required"] is False and report["outcome"] == "not_required"
    assert report["promote"] is False and report["stage"] is None
    assert report["challenger_version"] is None  # the registry dataset tags no version
    assert report["compared"]["challenger_version"] == "5"


def test_live_promotion_without_a_challenger_says_so():
    reason = "no model behind the 'challenger' alias"
    report = _decide({"available": False, "reason": reason})
    assert report["outcome"] == "no_challenger" and report["stage"] is None
    assert report["reason"] == f"nothing to promote: {reason}" and report["evidence"] is None
    assert _decide(None)["outcome"] == "no_challenger"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"labelled": 900}, "900 of 2000 labelled rows and 60 of 30 labelled frauds needed"),
        ({"labelled_frauds": 12}, "5000 of 2000 labelled rows and 12 of 30 labelled frauds"),
    ],
)
def test_live_promotion_waits_for_enough_labels(overrides, expected):
    report = _decide(_comparison(**overrides))
    assert report["outcome"] == "insufficient_labels" and report["promote"] is False
    assert report["stage"] is None and report["challenger_version"] == "5"
    assert report["reason"].startswith("champion version 3 kept: insufficient live labels")
    assert expected in report["reason"]


def test_live_promotion_keeps_the_champion_when_the_ap_loss_is_too_large():
    report = _decide(_comparison(challenger={"average_precision": 0.55, "recall": 0.5}))
    assert report["outcome"] == "rejected" and report["stage"] is None
    assert "challenger live AP 0.5500 is 0.0500 below the champion's 0.6000" in report["reason"]
    assert "(at most 0.01 allowed)" in report["reason"]


def test_live_promotion_keeps_the_champion_when_the_challenger_alerts_too_much():
    report = _decide(_comparison(alerts_per_day={"champion": 40.0, "challenger": 60.0}))
    assert report["outcome"] == "rejected" and report["stage"] is None
    assert "60.0 alerts a day, 1.50 times the champion's 40.0" in report["reason"]
    assert "(at most 1.25 times allowed)" in report["reason"]


def test_live_promotion_moves_champion_to_the_compared_version_when_the_evidence_suffices():
    report = _decide(_comparison())
    assert report["outcome"] == "promoted" and report["promote"] is True
    assert report["stage"] == "champion" and report["challenger_version"] == "5"
    assert report["reason"].startswith(
        "challenger version 5 promoted over champion version 3 on live evidence"
    )
    assert report["evidence"]["labelled_frauds"] == 60
    assert report["evidence"]["average_precision"] == {"champion": 0.60, "challenger": 0.595}
