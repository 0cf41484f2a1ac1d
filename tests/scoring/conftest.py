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


def fit_loaded_model(
    transactions, classifier, selection: dict, threshold: float, version: str = "1"
) -> LoadedModel:
    """A project pipeline around ``classifier`` fitted on the features of
    ``transactions``, served as registry model ``m`` version ``version``."""
    features = create_features(transactions, PARAMS)
    numeric, categorical = feature_columns(features)
    pipeline = build_model_pipeline(classifier, numeric, categorical, selection)
    pipeline.fit(features[numeric + categorical], features[schema.LABEL])
    fitted = FraudModel(pipeline, threshold, numeric + categorical, "m")
    return LoadedModel("m", version, None, _Pyfunc(fitted))


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    return fit_loaded_model(
        make_transactions(n=1500, days=40, seed=2),
        XGBClassifier(n_estimators=10, max_depth=3),
        {"mi_sample_size": 1000, "top_k": 12},
        0.3,
    )
