import numpy as np
import pandas as pd
import pytest

from fraud_detection.features import create_features
from fraud_detection.pipelines.training.nodes import (
    TrainingParams,
    _best_threshold,
    choose_thresholds,
    fit_candidates,
    package_model,
    select_model,
    tune_candidates,
)
from fraud_detection.splits import split_out_of_time
from tests.conftest import base_parameters, make_transactions

FEATURES = base_parameters("features")
SPLIT = base_parameters("split")

SMALL = {
    **base_parameters("training"),
    "search": "grid",
    "selection": {"mi_sample_size": 2000, "top_k": 8},
    "candidates": {
        "logistic_regression": {
            "classifier": "sklearn.linear_model.LogisticRegression",
            "init": {"max_iter": 500},
            "resampling": ["none", "class_weight", "undersample", "smote"],
            "search_space": {"classifier__C": [0.1]},
        },
        "xgboost": {
            "classifier": "xgboost.XGBClassifier",
            "init": {"n_estimators": 10, "max_depth": 2, "n_jobs": 1},
            "resampling": ["none", "class_weight"],
            "search_space": {},
        },
    },
}


def _learnable(n=4000, days=60, seed=2):
    tx = make_transactions(n=n, days=days, seed=seed, fraud_rate=0.0)
    rng = np.random.default_rng(seed)
    fraud = rng.uniform(size=n) < 0.06
    tx.loc[fraud, "amount"] = tx.loc[fraud, "amount"] * 6 + 150  # large amounts are fraud
    tx["is_fraud"] = fraud.astype("int64")
    return create_features(tx, FEATURES)


@pytest.fixture(scope="module")
def trained():
    features = _learnable()
    dev, test, plan = split_out_of_time(
        features, {**SPLIT, "n_folds": 2, "remove_known_compromised": False}
    )
    results, oof = tune_candidates(dev, plan, SMALL)
    fitted = fit_candidates(dev, plan, results, SMALL)
    return dev, test, plan, results, oof, fitted


def test_search_covers_every_resampling_strategy(trained):
    _, _, _, results, _, _ = trained
    tried = {t["params"]["resample"] for t in results["logistic_regression"]["tried"]}
    assert tried == {"passthrough", "RandomUnderSampler", "SMOTE"}
    weights = [
        t["params"].get("classifier__class_weight") for t in results["logistic_regression"]["tried"]
    ]
    assert "balanced" in weights
    assert any("classifier__scale_pos_weight" in t["params"] for t in results["xgboost"]["tried"])


def test_out_of_fold_predictions_come_from_validation_rows_only(trained):
    dev, _, plan, _, oof, _ = trained
    valid_start = min(pd.Timestamp(f["valid_start"]) for f in plan["folds"])
    ts = dev.set_index("transaction_id").loc[oof["transaction_id"], "timestamp"]
    assert (ts >= valid_start).all()
    assert set(oof["candidate"]) == {"logistic_regression", "xgboost", "baseline"}


def test_learns_a_planted_signal_and_beats_the_baseline(trained):
    _, _, _, results, _, fitted = trained
    assert results["logistic_regression"]["validation_average_precision"] > 0.8
    assert set(fitted) == {"logistic_regression", "xgboost", "baseline"}


def test_selection_uses_validation_and_model_is_one_artifact(trained):
    dev, test, _, results, oof, fitted = trained
    thresholds = choose_thresholds(oof, SMALL)
    selection, features = select_model(results, fitted, thresholds)
    best = max(
        (n for n in results if n != "baseline"),
        key=lambda n: results[n]["validation_average_precision"],
    )
    assert selection["selected"] == best
    assert 0 < len(features) <= 8 + 4
    model = package_model(fitted, selection, dev, SMALL)
    out = model.predict(None, test)
    assert list(out.columns) == ["score", "decision"]
    assert ((out["score"] >= selection["threshold"]).astype(int) == out["decision"]).all()
    with pytest.raises(ValueError, match="lacks feature column"):
        model.predict(None, test.drop(columns=["amount"]))


def test_threshold_maximises_f1_on_given_scores():
    labels = np.array([0, 0, 1, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.8, 0.9])
    threshold, value = _best_threshold(labels, scores, {"objective": "f_beta", "beta": 1.0})
    # Flagging >= 0.3 catches all 3 frauds with one false alarm: F1 6/7 beats 0.8 at 0.8.
    assert threshold == 0.3 and value == pytest.approx(6 / 7)
    threshold, _ = _best_threshold(
        labels,
        scores,
        {"objective": "expected_cost", "cost_false_negative": 1, "cost_false_positive": 100},
    )
    assert threshold == 0.8  # false alarms now cost far more than a missed fraud


def test_bad_training_params_are_named():
    with pytest.raises(ValueError, match="n_iters"):
        TrainingParams.from_dict({**SMALL, "n_iters": 3})
    with pytest.raises(ValueError, match="candidates.xgboost: \\['grid'\\]"):
        TrainingParams.from_dict(
            {"candidates": {"xgboost": {"classifier": "xgboost.XGBClassifier", "grid": {}}}}
        )
    with pytest.raises(ValueError, match="Unknown resampling strategy 'oversample'"):
        from fraud_detection.model import resampling_grid

        resampling_grid("oversample", "x.Y", 1.0, 0)


def test_weighted_threshold_equals_the_threshold_on_the_full_rows():
    """A genuine row of weight 4 counts as 4 genuine rows: thresholds chosen on a
    sample weighted 1 / ratio are those of the full data."""
    rng = np.random.default_rng(0)
    labels = (rng.uniform(size=400) < 0.2).astype(int)
    scores = np.clip(rng.normal(0.3 + 0.4 * labels, 0.2), 0, 1).round(3)
    weights = np.where(labels == 0, 4.0, 1.0)
    full_labels = np.repeat(labels, weights.astype(int))
    full_scores = np.repeat(scores, weights.astype(int))
    for cfg in (
        {"objective": "f_beta", "beta": 2.0},
        {"objective": "expected_cost", "cost_false_negative": 10, "cost_false_positive": 1},
    ):
        weighted = _best_threshold(labels, scores, cfg, weights)
        full = _best_threshold(full_labels, full_scores, cfg)
        assert weighted == pytest.approx(full)
    assert _best_threshold(labels, scores, {"beta": 1.0}, weights) != _best_threshold(
        labels, scores, {"beta": 1.0}
    )


def test_sampled_development_rows_are_weighted_in_search_and_thresholds():
    tx = make_transactions(n=3000, days=70, seed=2, fraud_rate=0.05)
    features = create_features(tx, FEATURES)
    development, _, plan = split_out_of_time(
        features,
        {**SPLIT, "n_folds": 2, "remove_known_compromised": False, "legit_sample_ratio": 0.5},
    )
    assert development["sample_weight"].isin([1.0, 2.0]).all()
    assert (development.loc[development["is_fraud"] == 1, "sample_weight"] == 1.0).all()
    assert plan["counts"]["development_rows_kept"] < plan["counts"]["development_rows"]
    params = {**SMALL, "candidates": {"xgboost": SMALL["candidates"]["xgboost"]}}
    results, predictions = tune_candidates(development, plan, params)
    # The weight is never a model input, and the validation rows carry their weights.
    fitted = fit_candidates(development, plan, results, params)
    assert "sample_weight" not in fitted["xgboost"]["inputs"]
    by_id = development.set_index("transaction_id")["sample_weight"]
    assert (predictions["weight"].to_numpy() == by_id.loc[predictions["transaction_id"]]).all()
    # Search scores are the weighted average precision of the validation folds.
    from sklearn.metrics import average_precision_score

    for name in ("xgboost", "baseline"):
        rows = predictions[predictions["candidate"] == name]
        expected = np.mean(
            [
                average_precision_score(g["label"], g["score"], sample_weight=g["weight"])
                for _, g in rows.groupby("fold")
            ]
        )
        unweighted = np.mean(
            [average_precision_score(g["label"], g["score"]) for _, g in rows.groupby("fold")]
        )
        assert results[name]["validation_average_precision"] == pytest.approx(expected)
        assert expected != pytest.approx(unweighted)
