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
    _, _, plan, _, _, _ = trained
    model = package_model(fitted, selection, dev, plan)
    assert model.training_window == {"start": plan["train_start"], "end": plan["train_end"]}
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


def _budget_day(day, scores, labels, amounts):
    return pd.DataFrame(
        {
            "candidate": "xgboost",
            "fold": 0,
            "transaction_id": [f"{day}-{i}" for i in range(len(scores))],
            "timestamp": pd.Timestamp(day) + pd.to_timedelta(np.arange(len(scores)), unit="h"),
            "amount": amounts,
            "label": labels,
            "score": scores,
        }
    )


def test_alert_budget_threshold_keeps_every_day_within_budget_and_catches_most_money():
    # Day 1 has four rows above 0.5, day 2 two: with two alerts a day the threshold must
    # leave day 1's third-highest score (0.7) unflagged.
    predictions = pd.concat(
        [
            _budget_day(
                "2025-03-01", [0.9, 0.8, 0.7, 0.6, 0.1], [1, 0, 1, 1, 0], [50, 5, 500, 70, 9]
            ),
            _budget_day("2025-03-02", [0.75, 0.72, 0.3, 0.2], [1, 1, 0, 1], [20, 30, 4, 900]),
        ],
        ignore_index=True,
    )
    params = {**SMALL, "threshold": {"objective": "alert_budget", "max_alerts_per_day": 2}}
    chosen = choose_thresholds(predictions, params)["xgboost"]
    assert chosen["threshold"] == 0.72  # the lowest score above 0.7
    validation = chosen["validation"]
    assert validation["max_alerts_per_day"] <= 2
    assert validation["alerts_per_day"] == pytest.approx((2 + 2) / 2)
    # Caught: 50 (day 1, 0.9) + 20 + 30 (day 2); any lower threshold breaks day 1's budget.
    assert validation["fraud_amount_caught"] == pytest.approx(100)
    assert chosen["objective_value"] == pytest.approx(100 / 2)
    assert validation["fraud_amount_total"] == pytest.approx(50 + 500 + 70 + 20 + 30 + 900)


def test_alert_budget_larger_than_any_day_flags_everything():
    predictions = _budget_day("2025-03-01", [0.9, 0.2, 0.1], [1, 0, 1], [10, 1, 7])
    params = {**SMALL, "threshold": {"objective": "alert_budget", "max_alerts_per_day": 10}}
    chosen = choose_thresholds(predictions, params)["xgboost"]
    assert chosen["threshold"] == 0.1 and chosen["validation"]["fraud_amount_caught"] == 17


def test_alert_budget_needs_a_whole_daily_budget():
    with pytest.raises(ValueError, match="max_alerts_per_day must be a whole number >= 1"):
        TrainingParams.from_dict({**SMALL, "threshold": {"objective": "alert_budget"}})
    with pytest.raises(ValueError, match="threshold.objective must be one of"):
        TrainingParams.from_dict({**SMALL, "threshold": {"objective": "recall"}})


def test_out_of_fold_scores_carry_day_and_amount_for_the_alert_budget(trained):
    dev, _, _, _, oof, _ = trained
    by_id = dev.set_index("transaction_id")
    assert (by_id.loc[oof["transaction_id"], "amount"].to_numpy() == oof["amount"]).all()
    assert (by_id.loc[oof["transaction_id"], "timestamp"].to_numpy() == oof["timestamp"]).all()


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
        weighted = _best_threshold(labels, scores, cfg, weights=weights)
        full = _best_threshold(full_labels, full_scores, cfg)
        assert weighted == pytest.approx(full)
    assert _best_threshold(labels, scores, {"beta": 1.0}, weights=weights) != _best_threshold(
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


def test_weighted_alert_budget_counts_a_row_of_weight_w_as_w_alerts():
    """Sampled genuine rows stand for ``1 / ratio`` rows: the daily budget, alerts a day
    and fraud amount are those the full day would give."""
    day = _budget_day("2025-03-01", [0.9, 0.8, 0.7, 0.6, 0.1], [1, 0, 1, 1, 0], [50, 5, 500, 70, 9])
    weights = np.where(day["label"] == 0, 3.0, 1.0)
    weighted = day.assign(weight=weights)
    full = day.loc[day.index.repeat(weights.astype(int))].reset_index(drop=True)
    full["transaction_id"] = [f"r{i}" for i in range(len(full))]
    params = {**SMALL, "threshold": {"objective": "alert_budget", "max_alerts_per_day": 4}}
    chosen = choose_thresholds(weighted, params)["xgboost"]
    expected = choose_thresholds(full, params)["xgboost"]
    # 0.9 (1 alert) + 0.8 (3 alerts) fill the budget of 4; 0.7 would make it 5.
    assert chosen["threshold"] == expected["threshold"] == 0.8
    assert chosen["validation"] == pytest.approx(expected["validation"])
    assert chosen["objective_value"] == pytest.approx(expected["objective_value"])
    unweighted = choose_thresholds(day, params)["xgboost"]
    assert unweighted["threshold"] == 0.6


def test_search_equals_scikit_learns_randomized_search_and_needs_no_refit(trained):
    """The search samples the settings RandomizedSearchCV samples, scores them as it
    does, and its out-of-fold scores are those of the best setting's fold models."""
    from sklearn.model_selection import RandomizedSearchCV

    from fraud_detection.model_search import _candidate_pipeline, _search_space
    from fraud_detection.splits import fold_indices

    dev, _, plan, _, _, _ = trained
    params = {
        **SMALL,
        "search": "random",
        "n_iter": 3,
        "candidates": {
            "logistic_regression": {
                **SMALL["candidates"]["logistic_regression"],
                "resampling": ["none", "class_weight"],
                "search_space": {"classifier__C": [0.001, 0.01, 0.1, 1.0]},
            }
        },
    }
    results, oof = tune_candidates(dev, plan, params)
    p = TrainingParams.from_dict(params)
    spec = p.candidates["logistic_regression"]
    pipe, inputs = _candidate_pipeline(spec, dev, p)
    folds = fold_indices(dev, plan)
    reference = RandomizedSearchCV(
        pipe,
        _search_space(spec, 1.0, p.random_state),
        n_iter=3,
        scoring="average_precision",
        cv=folds,
        refit=False,
        random_state=p.random_state,
    ).fit(dev[inputs], dev["is_fraud"].astype(int))
    found = results["logistic_regression"]
    assert [t["mean_ap"] for t in found["tried"]] == pytest.approx(
        list(reference.cv_results_["mean_test_score"])
    )
    assert found["validation_average_precision"] == pytest.approx(reference.best_score_)
    assert found["best_params"] == {
        k: (v if not hasattr(v, "get_params") else type(v).__name__)
        for k, v in reference.best_params_.items()
    }
    # Out-of-fold scores: the best setting refitted per fold gives the same scores.
    best = clone_with(pipe, reference.best_params_)
    y = dev["is_fraud"].astype(int).to_numpy()
    rows = oof[oof["candidate"] == "logistic_regression"]
    for k, (tr, va) in enumerate(folds):
        expected = best.fit(dev.iloc[tr][inputs], y[tr]).predict_proba(dev.iloc[va][inputs])[:, 1]
        assert rows.loc[rows["fold"] == k, "score"].to_numpy() == pytest.approx(expected)


def clone_with(pipe, setting):
    from sklearn.base import clone

    return clone(pipe).set_params(**setting)


def test_staged_trees_choose_the_number_of_rounds_on_the_folds_from_one_fit(trained):
    """Scoring the first k rounds of one fit equals fitting k rounds: the AP of every
    number of rounds is exact, the best number is a searched parameter, and the final
    model is fitted with it."""
    from fraud_detection.model_search import _candidate_pipeline
    from fraud_detection.splits import fold_indices

    dev, _, plan, _, _, _ = trained
    xgb = {
        "classifier": "xgboost.XGBClassifier",
        "init": {"max_depth": 2, "learning_rate": 0.3, "n_jobs": 1, "random_state": 0},
        "resampling": ["none"],
        "search_space": {},
        "staged_trees": [2, 5, 20],
    }
    params = {**SMALL, "candidates": {"xgboost": xgb}}
    results, oof = tune_candidates(dev, plan, params)
    tried = {
        t["params"]["classifier__n_estimators"]: t["mean_ap"] for t in results["xgboost"]["tried"]
    }
    assert set(tried) == {2, 5, 20}
    from sklearn.metrics import average_precision_score

    p = TrainingParams.from_dict(params)
    pipe, inputs = _candidate_pipeline(p.candidates["xgboost"], dev, p)
    y = dev["is_fraud"].astype(int).to_numpy()
    for k, mean_ap in tried.items():
        fitted_k = [
            clone_with(pipe, {"classifier__n_estimators": k}).fit(dev.iloc[tr][inputs], y[tr])
            for tr, _ in fold_indices(dev, plan)
        ]
        aps = [
            average_precision_score(y[va], m.predict_proba(dev.iloc[va][inputs])[:, 1])
            for m, (_, va) in zip(fitted_k, fold_indices(dev, plan), strict=True)
        ]
        assert mean_ap == pytest.approx(np.mean(aps), abs=1e-6)
    best_k = results["xgboost"]["best_params"]["classifier__n_estimators"]
    assert tried[best_k] == max(tried.values())
    fitted = fit_candidates(dev, plan, results, params)
    assert fitted["xgboost"]["pipeline"].named_steps["classifier"].n_estimators == best_k


def test_staged_trees_need_a_boosting_classifier():
    spec = {**SMALL["candidates"]["logistic_regression"], "staged_trees": [10]}
    with pytest.raises(ValueError, match="needs an xgboost classifier"):
        TrainingParams.from_dict({**SMALL, "candidates": {"logistic_regression": spec}})
    xgb = {
        **SMALL["candidates"]["xgboost"],
        "staged_trees": [10],
        "search_space": {"classifier__n_estimators": [5]},
    }
    with pytest.raises(ValueError, match="not both"):
        TrainingParams.from_dict({**SMALL, "candidates": {"xgboost": xgb}})


def test_ensemble_candidate_is_the_mean_of_its_members_without_another_fit(trained):
    """Its validation scores are the mean of its members' out-of-fold scores, its model
    the mean of their models; it can be selected and packaged like any candidate."""
    from sklearn.metrics import average_precision_score

    from fraud_detection.model import feature_importance

    dev, test, plan, _, _, _ = trained
    params = {**SMALL, "ensemble": ["logistic_regression", "xgboost"]}
    results, oof = tune_candidates(dev, plan, params)
    by = {n: g.sort_values(["fold", "transaction_id"]) for n, g in oof.groupby("candidate")}
    mean = (by["logistic_regression"]["score"].to_numpy() + by["xgboost"]["score"].to_numpy()) / 2
    assert by["ensemble"]["score"].to_numpy() == pytest.approx(mean)
    aps = [
        average_precision_score(g["label"], g["score"]) for _, g in by["ensemble"].groupby("fold")
    ]
    assert results["ensemble"]["validation_average_precision"] == pytest.approx(np.mean(aps))
    fitted = fit_candidates(dev, plan, results, params)
    ensemble = fitted["ensemble"]
    members = [
        fitted[m]["pipeline"].predict_proba(test[fitted[m]["inputs"]])[:, 1]
        for m in ("logistic_regression", "xgboost")
    ]
    got = ensemble["pipeline"].predict_proba(test[ensemble["inputs"]])[:, 1]
    assert got == pytest.approx(np.mean(members, axis=0))
    importance = feature_importance(ensemble["pipeline"])
    assert importance.sum() == pytest.approx(1.0) and importance.index.is_unique
    # Selected when it has the best validation AP, and served as one artifact.
    forced = {**results, "ensemble": {**results["ensemble"], "validation_average_precision": 2.0}}
    selection, features = select_model(forced, fitted, choose_thresholds(oof, params))
    assert selection["selected"] == "ensemble"
    assert set(features) <= set(ensemble["inputs"])
    model = package_model(fitted, selection, dev, plan)
    assert model.predict(None, test)["score"].to_numpy() == pytest.approx(got)


def test_ensemble_must_name_searched_candidates():
    with pytest.raises(ValueError, match="not searched: \\['random_forest'\\]"):
        TrainingParams.from_dict({**SMALL, "ensemble": ["xgboost", "random_forest"]})
    with pytest.raises(ValueError, match="at least two"):
        TrainingParams.from_dict({**SMALL, "ensemble": ["xgboost"]})


def test_a_family_can_have_its_own_number_of_settings(trained):
    dev, _, plan, _, _, _ = trained
    lr = {
        **SMALL["candidates"]["logistic_regression"],
        "resampling": ["none"],
        "search_space": {"classifier__C": [0.001, 0.01, 0.1, 1.0, 10.0]},
    }
    params = {
        **SMALL,
        "search": "random",
        "n_iter": 1,
        "candidates": {"few": lr, "many": {**lr, "n_iter": 3}},
    }
    results, _ = tune_candidates(dev, plan, params)
    assert len(results["few"]["tried"]) == 1
    assert len(results["many"]["tried"]) == 3


def test_bagged_trees_give_importances_over_the_columns_each_member_saw(trained):
    """Balanced bagging has no importances of its own: the mean of its trees', each
    placed on the columns its bag was given."""
    from fraud_detection.model import feature_importance

    dev, _, plan, _, _, _ = trained
    bagging = {
        "classifier": "imblearn.ensemble.BalancedBaggingClassifier",
        "init": {"n_estimators": 5, "max_features": 0.5, "random_state": 0},
        "resampling": ["none"],
        "search_space": {},
    }
    params = {**SMALL, "candidates": {"balanced_bagging": bagging}}
    results, _ = tune_candidates(dev, plan, params)
    pipeline = fit_candidates(dev, plan, results, params)["balanced_bagging"]["pipeline"]
    importance = feature_importance(pipeline)
    columns = pipeline.named_steps["preprocess"].get_feature_names_out()
    assert sorted(importance.index) == sorted(columns)
    assert importance.sum() == pytest.approx(1.0) and (importance >= 0).all()
