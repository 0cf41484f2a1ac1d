"""The scorer's compiled model path scores like the fitted pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from xgboost import XGBClassifier

from fraud_detection import schema
from fraud_detection.features import (
    create_features,
    feature_columns,
)
from fraud_detection.model import FraudModel, build_model_pipeline
from fraud_detection.scoring.champion import (
    CompiledPipeline,
    LoadedModel,
    parse_model_uri,
)
from fraud_detection.scoring.features import OnlineFeatures, TransactionRecords
from tests.conftest import make_transactions
from tests.features.test_online import PARAMS
from tests.scoring.conftest import fit_loaded_model


class _Pyfunc:
    def __init__(self, model):
        self.model = model

    def unwrap_python_model(self):
        return self.model


@pytest.mark.parametrize(
    "classifier",
    [
        LogisticRegression(max_iter=300),
        XGBClassifier(n_estimators=20, max_depth=3),
        RandomForestClassifier(n_estimators=10, random_state=0),
    ],
)
def test_compiled_pipeline_scores_like_the_pipeline(classifier):
    transactions = make_transactions(n=3000, days=40, seed=2)
    transactions.loc[transactions.index[::17], "country"] = "XX"  # rare: infrequent for the encoder
    features = create_features(transactions, PARAMS)
    numeric, categorical = feature_columns(features)
    pipeline = build_model_pipeline(
        classifier, numeric, categorical, {"mi_sample_size": 2000, "top_k": 12}
    )
    pipeline.fit(features[numeric + categorical], features[schema.LABEL])
    model = LoadedModel(
        "m", "1", None, _Pyfunc(FraudModel(pipeline, 0.2, numeric + categorical, "m"))
    )
    assert isinstance(model.compiled, CompiledPipeline)
    online = OnlineFeatures(PARAMS)
    scores, expected = [], []
    for start in range(0, len(transactions), 50):
        batch = online.update_records(
            TransactionRecords.from_frame(transactions.iloc[start : start + 50])
        )
        got, decisions = model.predict_batch(batch)
        reference = model.predict(batch.frame())
        scores.append(got)
        expected.append(reference["score"].to_numpy())
        assert decisions.tolist() == reference["decision"].tolist()
    assert model.compiled is not None  # still trusted after the verification rows
    np.testing.assert_allclose(np.concatenate(scores), np.concatenate(expected), rtol=0, atol=1e-12)


def test_model_uris_name_an_alias_or_a_version():
    assert parse_model_uri("models:/fraud-detection@champion") == (
        "fraud-detection",
        "champion",
        None,
    )
    assert parse_model_uri("models:/fraud-detection/3") == ("fraud-detection", None, "3")
    with pytest.raises(ValueError, match="models:/<name>@<alias>"):
        parse_model_uri("runs:/abc/model")


def test_a_different_compiled_result_falls_back_to_the_pipeline():
    transactions = make_transactions(n=800, days=10, seed=4)
    model = fit_loaded_model(
        transactions, LogisticRegression(max_iter=300), {"mi_sample_size": 500}, 0.5
    )
    model.compiled.mean = model.compiled.mean + 1.0  # a broken compilation
    batch = OnlineFeatures(PARAMS).update_records(TransactionRecords.from_frame(transactions))
    scores, _ = model.predict_batch(batch)
    assert model.compiled is None
    np.testing.assert_array_equal(scores, model.predict(batch.frame())["score"].to_numpy())
    assert isinstance(batch.frame(), pd.DataFrame)
