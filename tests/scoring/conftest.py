"""Fixtures of the scorer tests."""

from __future__ import annotations

import pytest
from xgboost import XGBClassifier

from fraud_detection import schema
from fraud_detection.features import create_features, feature_columns
from fraud_detection.model import FraudModel, build_model_pipeline
from fraud_detection.scoring.champion import LoadedModel
from tests.conftest import make_transactions
from tests.features.test_online import PARAMS


class _Pyfunc:
    def __init__(self, model):
        self.model = model

    def unwrap_python_model(self):
        return self.model


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    history = make_transactions(n=1500, days=40, seed=2)
    features = create_features(history, PARAMS)
    numeric, categorical = feature_columns(features)
    classifier = XGBClassifier(n_estimators=10, max_depth=3)
    selection = {"mi_sample_size": 1000, "top_k": 12}
    pipeline = build_model_pipeline(classifier, numeric, categorical, selection)
    pipeline.fit(features[numeric + categorical], features[schema.LABEL])
    fitted = FraudModel(pipeline, 0.3, numeric + categorical, "m")
    return LoadedModel("m", "1", None, _Pyfunc(fitted))
