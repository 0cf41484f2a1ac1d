"""Batch scoring nodes: the window's features equal ``create_features`` over the whole
table, and every prediction carries the champion's score, decision, threshold, name
and version."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraud_detection import schema
from fraud_detection.features import FeatureParams, create_features, feature_horizon
from fraud_detection.params import ParameterError
from fraud_detection.pipelines.batch_scoring.nodes import (
    build_features_to_score,
    score_transactions,
)
from fraud_detection.predictions import PREDICTION_COLUMNS, BatchScoringParams
from tests.pipelines.batch_scoring.conftest import FEATURES, MODEL, THRESHOLD, day_start


def window(transactions: pd.DataFrame, first: int, last: int) -> dict:
    return {
        "start": str(day_start(transactions, first)),
        "end": str(day_start(transactions, last)),
    }


def assert_same_features(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    assert got[schema.TRANSACTION_ID].tolist() == expected[schema.TRANSACTION_ID].tolist()
    for column in got.columns:
        if pd.api.types.is_numeric_dtype(expected[column]) and column != schema.LABEL:
            np.testing.assert_allclose(
                got[column].to_numpy(np.float64),
                expected[column].to_numpy(np.float64),
                rtol=1e-9,
                atol=1e-9,
                err_msg=column,
            )
        else:
            assert got[column].astype(str).tolist() == expected[column].astype(str).tolist(), column


def test_window_features_equal_create_features_over_the_whole_table(simulated):
    params = window(simulated, 40, 43)
    got = build_features_to_score(simulated, FEATURES, params)
    everything = create_features(simulated, FEATURES)
    ts = everything[schema.TIMESTAMP]
    expected = everything[
        (ts >= pd.Timestamp(params["start"])) & (ts < pd.Timestamp(params["end"]))
    ].reset_index(drop=True)
    assert len(got) > 100
    assert_same_features(got, expected)


def test_history_before_the_horizon_and_rows_after_the_window_are_not_read(simulated):
    """Changing what lies outside [start - horizon, end) changes no feature."""
    params = window(simulated, 40, 43)
    start = pd.Timestamp(params["start"])
    horizon = feature_horizon(FeatureParams.from_dict(FEATURES))
    ts = simulated[schema.TIMESTAMP]
    outside = (ts < start - horizon) | (ts >= pd.Timestamp(params["end"]))
    assert outside.sum() > 100
    changed = simulated.copy()
    changed.loc[outside, schema.AMOUNT] *= 7.0
    changed.loc[outside, schema.LABEL] = 1
    assert_same_features(
        build_features_to_score(changed, FEATURES, params),
        build_features_to_score(simulated, FEATURES, params),
    )


def test_open_bounds_score_the_whole_table(simulated):
    got = build_features_to_score(simulated, FEATURES, {"start": None, "end": None})
    assert len(got) == len(simulated)


def test_a_window_with_no_transaction_fails_naming_the_window(simulated):
    with pytest.raises(ValueError, match=r"No transaction in the scoring window \[2031-01-01"):
        build_features_to_score(simulated, FEATURES, {"start": "2031-01-01", "end": None})


def test_an_empty_table_fails(simulated):
    with pytest.raises(ValueError, match="batch_scoring_transactions is empty"):
        build_features_to_score(simulated.head(0), FEATURES, {"start": None, "end": None})


def test_parameters_are_strict():
    with pytest.raises(ParameterError, match=r"params:batch_scoring.*'strat' -> 'start'"):
        BatchScoringParams.from_dict({"strat": "2025-01-01", "end": None})
    with pytest.raises(ParameterError, match="must be before end"):
        BatchScoringParams.from_dict({"start": "2025-02-01", "end": "2025-01-01"})
    with pytest.raises(ParameterError, match="invalid timestamp 'soon'"):
        BatchScoringParams.from_dict({"start": "soon", "end": None})


def test_predictions_carry_score_decision_threshold_and_model_version(
    simulated, fraud_model, champion
):
    features = build_features_to_score(simulated, FEATURES, window(simulated, 40, 43))
    predictions = score_transactions(features, champion)
    assert list(predictions.columns) == PREDICTION_COLUMNS
    assert predictions[schema.TRANSACTION_ID].tolist() == features[schema.TRANSACTION_ID].tolist()
    expected = fraud_model.predict(None, features)["score"].to_numpy()
    np.testing.assert_allclose(predictions["score"].to_numpy(), expected, rtol=0, atol=1e-12)
    assert (predictions["decision"] == (predictions["score"] >= THRESHOLD).astype(int)).all()
    assert 0 < predictions["decision"].sum() < len(predictions)
    assert set(predictions["threshold"]) == {THRESHOLD}
    assert set(predictions["model_name"]) == {MODEL}
    assert set(predictions["model_version"]) == {"3"}


def test_scoring_without_a_champion_says_to_train_first(simulated):
    features = build_features_to_score(simulated, FEATURES, window(simulated, 40, 41))
    with pytest.raises(ValueError, match=r"no champion model to score with yet.*kedro run"):
        score_transactions(features, None)


def test_a_model_lacking_a_feature_is_refused(simulated, champion):
    features = build_features_to_score(simulated, FEATURES, window(simulated, 40, 41))
    with pytest.raises(ValueError, match=r"version 3 reads feature column\(s\) \['amount_log'\]"):
        score_transactions(features.drop(columns="amount_log"), champion)
