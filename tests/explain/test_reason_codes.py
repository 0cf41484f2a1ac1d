"""Reason codes: additive contributions that sum to the model's raw output, grouped by
the model's input names, the same in the scorer and in batch, readable sentences."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logit
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from xgboost import XGBClassifier

from fraud_detection import schema
from fraud_detection.explain import Explainer, describe
from fraud_detection.features import create_features, feature_columns
from fraud_detection.model import FraudModel, build_model_pipeline
from fraud_detection.scoring.champion import LoadedModel
from fraud_detection.scoring.features import OnlineFeatures, TransactionRecords
from tests.conftest import make_transactions
from tests.features.test_online import PARAMS


class _Pyfunc:
    def __init__(self, model):
        self.model = model

    def unwrap_python_model(self):
        return self.model


def _fitted(classifier):
    transactions = make_transactions(n=2500, days=40, seed=3)
    features = create_features(transactions, PARAMS)
    numeric, categorical = feature_columns(features)
    pipeline = build_model_pipeline(
        classifier, numeric, categorical, {"mi_sample_size": 2000, "top_k": 12}
    )
    pipeline.fit(features[numeric + categorical], features[schema.LABEL])
    return transactions, features, pipeline, numeric + categorical


CLASSIFIERS = [
    LogisticRegression(max_iter=500),
    XGBClassifier(n_estimators=30, max_depth=3),
    RandomForestClassifier(n_estimators=15, max_depth=6, random_state=0),
]


@pytest.mark.parametrize("classifier", CLASSIFIERS, ids=lambda c: type(c).__name__)
def test_contributions_sum_to_the_models_output_and_use_input_names(classifier):
    _, features, pipeline, inputs = _fitted(classifier)
    explainer = Explainer.of(pipeline)
    rows = features[inputs].iloc[:200]
    matrix = explainer.matrix(pipeline, rows)
    contributions = explainer.contributions(matrix)
    # Grouped by the model's own inputs: every categorical input once, no one-hot names.
    selected = list(pipeline.named_steps["select"].transform(rows).columns)
    assert sorted(explainer.inputs) == sorted(selected)
    proba = pipeline.predict_proba(rows)[:, 1]
    total = contributions.sum(axis=1)
    if explainer.scale == "log-odds":
        # Up to the intercept / base value, the same for every row.
        offset = logit(np.clip(proba, 1e-12, 1 - 1e-12)) - total
        assert np.ptp(offset) < 1e-4, explainer.kind
    else:
        offset = proba - total
        assert np.ptp(offset) < 1e-6, explainer.kind


def test_the_scorer_gives_the_reasons_batch_gives_for_the_same_rows():
    transactions, features, pipeline, inputs = _fitted(XGBClassifier(n_estimators=30, max_depth=3))
    model = LoadedModel("m", "1", None, _Pyfunc(FraudModel(pipeline, 0.2, inputs, "m")))
    online = OnlineFeatures(PARAMS)
    batch = online.update_records(TransactionRecords.from_frame(transactions))
    online_reasons = model.explain_batch(batch)
    explainer = Explainer.of(pipeline)
    rows = features[inputs]
    matrix = explainer.matrix(pipeline, rows)
    batch_reasons = explainer.reasons(matrix, lambda i, name: rows[name].iloc[i])
    assert len(online_reasons) == len(batch_reasons) == len(transactions)
    for got, expected in zip(online_reasons, batch_reasons, strict=True):
        assert [r["feature"] for r in got] == [r["feature"] for r in expected]
        np.testing.assert_allclose(
            [r["contribution"] for r in got], [r["contribution"] for r in expected], atol=1e-5
        )
    flagged = [r for r in online_reasons if r]
    assert flagged and all(len(r) <= 3 for r in flagged)
    assert all(r["contribution"] > 0 and r["text"] for reasons in flagged for r in reasons)


def test_a_classifier_without_an_exact_explanation_gets_none():
    from sklearn.ensemble import BaggingClassifier

    _, _, pipeline, _ = _fitted(BaggingClassifier(n_estimators=3, random_state=0))
    assert Explainer.of(pipeline) is None


@pytest.mark.parametrize(
    ("feature", "value", "text"),
    [
        ("amount_to_customer_avg_30d", 6.2, "amount 6.2x the customer's 30-day average"),
        ("customer_nb_tx_1h", 5.0, "5 transactions by the customer in 1 hour"),
        (
            "customer_terminal_nb_tx_30d",
            0.0,
            "first use of this terminal by the customer in 30 days",
        ),
        ("terminal_risk_7d", 0.4, "terminal's fraud rate 40% over 7 days (known labels)"),
        (
            "customer_seconds_since_prev_tx",
            90.0,
            "1.5 minutes since the customer's previous transaction",
        ),
        ("amount_to_terminal_amount_avg_30d", 3.0, "amount 3.0x the terminal's 30-day average"),
        (
            "customer_terminal_seconds_since_prev_tx",
            7200.0,
            "2.0 hours since the customer's previous transaction at this terminal",
        ),
        ("merchant_category", "travel", "merchant category travel"),
        ("some_new_feature", 1.5, "some new feature 1.50"),
    ],
)
def test_reasons_read_as_sentences(feature, value, text):
    assert describe(feature, value) == text
