"""A challenger scored in shadow: its predictions go to their own topic beside the
champion's, and nothing about it (absent, failing) changes the champion's stream.

Here the shadow is ``ShadowScorer`` in the scorer's thread, the logic the shadow's child
process runs; the Kafka clients are stand-ins. tests/integration/kafka/test_scorer.py
runs the child process (``ShadowProcess``) on a real broker with a registered
``challenger``. The models are real fitted pipelines."""

from __future__ import annotations

import orjson
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from fraud_detection import schema
from fraud_detection.features import create_features
from fraud_detection.scoring.champion import LoadedModel
from fraud_detection.scoring.features import OnlineFeatures
from fraud_detection.scoring.service import RealTimeScorer, ScorerConfig
from fraud_detection.scoring.shadow import ShadowScorer
from tests.conftest import make_transactions
from tests.features.test_online import PARAMS
from tests.scoring.conftest import fit_loaded_model
from tests.scoring.test_service import BOUNDS, _Consumer, _feed, _Producer, _valid


class _Watcher:
    """What the scorer reads of ``ChampionWatcher`` (``optional`` for the shadow)."""

    def __init__(self, model: LoadedModel | None):
        self.current = self.current_or_none = model
        self.name = model.name if model else "m"


class _Broken:
    name, version, threshold = "broken", "9", 0.5

    def predict_batch(self, batch):
        raise RuntimeError("this challenger cannot score")


@pytest.fixture(scope="module")
def challenger() -> LoadedModel:
    return fit_loaded_model(
        make_transactions(n=1500, days=40, seed=3),
        LogisticRegression(max_iter=300),
        {"mi_sample_size": 1000},
        0.5,
        version="2",
    )


def _run(champion, shadow) -> RealTimeScorer:
    config = ScorerConfig(bootstrap_servers="unused:9092", labels_topic=None, bounds=BOUNDS)
    scorer = RealTimeScorer(
        config,
        OnlineFeatures(PARAMS),
        _Watcher(champion),
        shadow=None if shadow is False else ShadowScorer(_Watcher(shadow)),
    )
    scorer._producer, scorer._consumer = _Producer(), _Consumer()
    if scorer.shadow is not None:
        scorer.shadow.bind(scorer._producer)
    _, values = _valid(300)
    _feed(scorer, values)
    scorer._refresh_shadow_counters()
    return scorer


def _messages(scorer, topic):
    return {
        m["transaction_id"]: m
        for m in (orjson.loads(v) for v, _ in scorer._producer.by_topic(topic))
    }


def test_every_scored_transaction_gets_a_shadow_prediction_beside_the_champions(model, challenger):
    plain = _messages(_run(model, False), "fraud_predictions")
    scorer = _run(model, challenger)
    served = _messages(scorer, "fraud_predictions")
    shadow = _messages(scorer, "fraud_predictions_shadow")
    # The champion's stream is unchanged by the shadow.
    assert {t: m["score"] for t, m in served.items()} == {t: m["score"] for t, m in plain.items()}
    assert set(shadow) == set(served) and len(shadow) == 300
    # Each shadow message: the challenger's decision, next to the champion's served one.
    for tid, m in shadow.items():
        assert m["model_version"] == "2" and m["champion_version"] == "1"
        assert m["champion_score"] == served[tid]["score"]
        assert m["champion_decision"] == served[tid]["decision"]
        assert m["decision"] == int(m["score"] >= 0.5)
    assert len({round(m["score"] - m["champion_score"], 6) for m in shadow.values()}) > 10
    assert scorer.counters.shadow_scored == 300 and scorer.counters.shadow_failed == 0


def test_the_shadow_scores_equal_the_challenger_on_the_same_feature_rows(model, challenger):
    """The shadow prediction is the challenger's own batch score of the same rows."""
    frame, _ = _valid(300)
    scorer = _run(model, challenger)
    shadow = _messages(scorer, "fraud_predictions_shadow")
    # The scorer takes labels from their topic only (none here): the batch without them.
    frame[schema.LABEL] = pd.array([pd.NA] * len(frame), dtype="Int8")
    features = create_features(frame, PARAMS)
    expected = challenger.predict(features)["score"].to_numpy()
    got = [shadow[t]["score"] for t in features[schema.TRANSACTION_ID]]
    assert got == pytest.approx(list(expected), abs=1e-9)


def test_no_challenger_or_a_failing_one_leaves_the_champion_alone(model):
    plain = _messages(_run(model, False), "fraud_predictions")
    absent = _run(model, None)
    assert _messages(absent, "fraud_predictions").keys() == plain.keys()
    assert not absent._producer.by_topic("fraud_predictions_shadow")
    broken = _run(model, _Broken())
    assert {t: m["score"] for t, m in _messages(broken, "fraud_predictions").items()} == {
        t: m["score"] for t, m in plain.items()
    }
    assert not broken._producer.by_topic("fraud_predictions_shadow")
    assert broken.counters.shadow_failed == 300 and broken.counters.scored == 300


def test_a_challenger_on_the_champions_version_is_not_scored_twice(model):
    scorer = _run(model, model)
    assert not scorer._producer.by_topic("fraud_predictions_shadow")
    assert scorer.counters.shadow_scored == 0
