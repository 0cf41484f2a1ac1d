"""Rolling backtest: windows, retraining per window, summary and intervals."""

import numpy as np
import pandas as pd
import pytest

from fraud_detection.features import create_features
from fraud_detection.metrics import bootstrap_intervals, card_precision_at_k
from fraud_detection.pipelines.backtest.nodes import (
    SELECTED,
    plan_backtest,
    run_backtest,
    summarise_backtest,
)
from tests.conftest import base_parameters, make_transactions

SPLIT = {**base_parameters("split"), "n_folds": 2, "remove_known_compromised": False}
TRAINING = {
    **base_parameters("training"),
    "search": "grid",
    "selection": {"mi_sample_size": 2000, "top_k": 8},
    "candidates": {
        "logistic_regression": {
            "classifier": "sklearn.linear_model.LogisticRegression",
            "init": {"max_iter": 500},
            "resampling": ["none"],
            "search_space": {"classifier__C": [0.1, 1.0]},
        },
        "xgboost": {
            "classifier": "xgboost.XGBClassifier",
            "init": {"n_estimators": 10, "max_depth": 2, "n_jobs": 1},
            "resampling": ["none"],
            "search_space": {},
        },
    },
}
BACKTEST = base_parameters(
    "backtest",
    n_windows=3,
    n_folds=None,
    n_iter=None,
    families=None,
    bootstrap={"unit": "day", "n_resamples": 50, "confidence": 0.9, "random_state": 1},
)


@pytest.fixture(scope="module")
def features():
    n, days, seed = 6000, 80, 5
    tx = make_transactions(n=n, days=days, seed=seed, fraud_rate=0.0)
    tx["customer_id"] = np.random.default_rng(seed).choice([f"C{i}" for i in range(300)], n)
    rng = np.random.default_rng(seed)
    fraud = rng.uniform(size=n) < 0.05
    tx.loc[fraud, "amount"] = tx.loc[fraud, "amount"] * 5 + 120
    tx["is_fraud"] = fraud.astype("int64")
    return create_features(tx, base_parameters("features"))


@pytest.fixture(scope="module")
def backtest(features):
    plan = plan_backtest(features, SPLIT, BACKTEST)
    predictions, windows = run_backtest(features, plan, SPLIT, TRAINING, BACKTEST)
    table, metrics, runs = summarise_backtest(predictions, windows, BACKTEST)
    return plan, predictions, windows, table, metrics, runs


def test_windows_are_consecutive_and_end_with_the_split_test_window(features, backtest):
    plan, _, windows, _, _, _ = backtest
    starts = [pd.Timestamp(w["test_start"]) for w in windows]
    assert [b - a for a, b in zip(starts, starts[1:], strict=False)] == [pd.Timedelta(days=7)] * 2
    last_day = features["timestamp"].dt.floor("D").max()
    assert pd.Timestamp(windows[-1]["test_end"]) == last_day + pd.Timedelta(days=1)
    assert [w["test_start"] for w in plan["windows"]] == [str(s.date()) for s in starts]


def test_every_window_trains_before_its_delay_gap_and_scores_only_its_test_days(backtest):
    _, predictions, windows, _, _, _ = backtest
    for w in windows:
        assert pd.Timestamp(w["train_end"]) + pd.Timedelta(days=7) == pd.Timestamp(w["test_start"])
        rows = predictions[predictions["window"] == w["window"]]
        assert len(rows) == w["counts"]["test_rows"]
        assert rows["timestamp"].min() >= pd.Timestamp(w["test_start"])
        assert rows["timestamp"].max() < pd.Timestamp(w["test_end"])


def test_selection_is_per_window_from_its_own_validation(backtest):
    _, predictions, windows, _, _, _ = backtest
    for w in windows:
        validation = {k: v for k, v in w["validation_average_precision"].items() if k != "baseline"}
        assert w["selected"] == max(validation, key=validation.get)
        rows = predictions[predictions["window"] == w["window"]]
        assert (rows[f"score_{SELECTED}"] == rows[f"score_{w['selected']}"]).all()


def test_summary_mean_std_and_metrics_match_the_windows(backtest):
    _, predictions, windows, table, metrics, runs = backtest
    ap = [w["metrics"]["xgboost"]["average_precision"] for w in windows]
    summary = table["models"]["xgboost"]
    assert summary["mean"]["average_precision"] == pytest.approx(np.mean(ap))
    assert summary["std"]["average_precision"] == pytest.approx(np.std(ap, ddof=1))
    assert metrics["backtest_xgboost_average_precision_mean"]["value"] == pytest.approx(np.mean(ap))
    first = predictions[predictions["window"] == 0]
    assert windows[0]["metrics"]["xgboost"]["card_precision_at_100"] == card_precision_at_k(
        first, "score_xgboost", 100
    )
    assert [r["params"]["test_start"] for r in runs] == [w["test_start"] for w in windows]
    assert runs[0]["metrics"]["test_xgboost_average_precision"] == ap[0]
    assert set(table["models"]) == {"logistic_regression", "xgboost", "baseline", SELECTED}


def test_intervals_bracket_the_mean_over_windows(backtest):
    _, _, _, table, _, _ = backtest
    for name, model in table["models"].items():
        for metric in ("average_precision", "card_precision_at_100"):
            ci = model["intervals"][metric]
            assert ci["estimate"] == pytest.approx(model["mean"][metric]), (name, metric)
            assert ci["low"] <= ci["high"] and ci["n_resamples"] == 50


def test_card_bootstrap_treats_a_card_drawn_twice_as_two_cards(backtest):
    _, predictions, _, _, _, _ = backtest
    frames = [g for _, g in predictions.groupby("window")]
    by_card = bootstrap_intervals(frames, "score_xgboost", 100, "card", 20, 0.9, 3)
    by_day = bootstrap_intervals(frames, "score_xgboost", 100, "day", 20, 0.9, 3)
    assert by_card["average_precision"]["estimate"] == by_day["average_precision"]["estimate"]
    assert by_card["average_precision"]["unit"] == "card"
    assert 0 <= by_card["card_precision_at_100"]["low"] <= by_card["card_precision_at_100"]["high"]
    with pytest.raises(ValueError, match="bootstrap unit must be 'day' or 'card'"):
        bootstrap_intervals(frames, "score_xgboost", 100, "week", 20, 0.9, 3)


def test_too_many_windows_for_the_data_are_refused_naming_the_days(features):
    with pytest.raises(ValueError, match="A backtest of 9 test windows .* does not fit the data"):
        plan_backtest(features, SPLIT, {**BACKTEST, "n_windows": 9})


def test_backtest_can_narrow_the_folds_and_the_search(features):
    narrow = {**BACKTEST, "n_windows": 1, "n_folds": 1, "n_iter": 1}
    plan = plan_backtest(features, {**SPLIT, "n_folds": 9}, narrow)  # 9 folds do not fit
    _, windows = run_backtest(features, plan, {**SPLIT, "n_folds": 9}, TRAINING, narrow)
    assert len(windows) == 1 and windows[0]["validation_folds"] == 1
