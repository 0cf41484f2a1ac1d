import types

import numpy as np
import pandas as pd
import pytest

from fraud_detection.pipelines.promotion.nodes import (
    PromotionParams,
    compare,
    decide_promotion,
    training_window_problem,
)
from tests.conftest import base_parameters

P = PromotionParams.from_dict(
    base_parameters("promotion", min_improvement=0.01, min_average_precision=0.3, min_roc_auc=0.7)
)


def test_first_model_promoted_when_it_clears_the_floors():
    assert compare({"average_precision": 0.5, "roc_auc": 0.9}, None, P)[0] is True


def test_worse_model_is_never_promoted():
    promote, reason = compare(
        {"average_precision": 0.50, "roc_auc": 0.9}, {"average_precision": 0.55, "roc_auc": 0.9}, P
    )
    assert promote is False and "does not beat champion" in reason


def test_better_but_within_margin_is_not_promoted():
    promote, _ = compare(
        {"average_precision": 0.555, "roc_auc": 0.9}, {"average_precision": 0.55, "roc_auc": 0.9}, P
    )
    assert promote is False


def test_better_by_margin_is_promoted():
    promote, reason = compare(
        {"average_precision": 0.57, "roc_auc": 0.9}, {"average_precision": 0.55, "roc_auc": 0.9}, P
    )
    assert promote is True and "+0.0200" in reason


def test_floors_hold_even_without_champion():
    promote, reason = compare({"average_precision": 0.2, "roc_auc": 0.9}, None, P)
    assert promote is False and "below the floor 0.3" in reason
    assert compare({"average_precision": 0.9, "roc_auc": 0.6}, None, P)[0] is False


def test_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="params:promotion.metric"):
        PromotionParams.from_dict({"metric": "accuracy"})


# decide_promotion with both models as MLflow would load them: `predict` on feature
# rows, the challenger's run id in `metadata`.
class _Model:
    def __init__(self, scores=None, error=None, run_id="challenger-run"):
        self._scores, self._error = scores, error
        self.metadata = types.SimpleNamespace(run_id=run_id)

    def predict(self, rows):
        if self._error is not None:
            raise self._error
        scores = self._scores(rows) if callable(self._scores) else self._scores
        return pd.DataFrame({"score": scores})


PLAN = {"test_start": "2025-02-01 00:00:00", "test_end": "2025-02-08 00:00:00"}
FAIR_WINDOW = {"start": "2025-01-18 00:00:00", "end": "2025-01-25 00:00:00"}


@pytest.fixture
def test_rows():
    rng = np.random.default_rng(0)
    labels = (rng.uniform(size=400) < 0.1).astype(int)
    return pd.DataFrame({"amount": labels * 50 + rng.uniform(0, 80, 400), "is_fraud": labels})


def _good(rows):
    return rows["amount"].to_numpy() / 200.0


def _champion(model, window=FAIR_WINDOW):
    return {"version": "3", "run_id": "champion-run", "model": model, "training_window": window}


def _decide(champion, rows, **overrides):
    params = base_parameters("promotion", **overrides)
    return decide_promotion(_Model(_good), champion, rows, PLAN, params)


@pytest.mark.parametrize(
    ("champion_model", "cause"),
    [
        (_Model(error=KeyError("amount")), "cannot score the test rows: KeyError"),
        (_Model(error=ValueError("bad input")), "cannot score the test rows: ValueError"),
        (_Model(lambda rows: np.full(len(rows), np.nan)), "returns NaN scores for 400 of 400"),
    ],
)
def test_champion_that_cannot_score_is_not_comparable_and_is_kept(test_rows, champion_model, cause):
    decision = _decide(_champion(champion_model), test_rows)
    assert decision["promote"] is False and decision["comparable"] is False
    assert cause in decision["not_comparable_reason"]
    assert "no champion yet" not in decision["reason"]
    assert "champion kept" in decision["reason"] and decision["champion"]["version"] == "3"


def test_parameter_allows_replacing_an_incomparable_champion_on_the_floors(test_rows):
    champion = _champion(_Model(error=KeyError("amount")))
    decision = _decide(champion, test_rows, replace_incomparable_champion=True)
    assert decision["promote"] is True and decision["comparable"] is False
    assert "replaced on the floors alone" in decision["reason"]
    weak = _decide(
        champion, test_rows, replace_incomparable_champion=True, min_average_precision=1.0
    )
    assert weak["promote"] is False and "below the floor 1.0" in weak["reason"]


@pytest.mark.parametrize(
    ("window", "cause"),
    [
        ({"start": "2025-01-25", "end": "2025-02-03"}, "after the test window starts 2025-02-01"),
        (None, "training window is not recorded"),
    ],
)
def test_champion_trained_into_the_test_window_is_not_promoted_on(test_rows, window, cause):
    # The champion scores perfectly (it has seen these labels): no comparison is made.
    seen = _Model(lambda rows: rows["is_fraud"].to_numpy(float))
    decision = _decide(_champion(seen, window), test_rows, replace_incomparable_champion=False)
    assert decision["promote"] is False and decision["comparable"] is False
    assert cause in decision["reason"] and decision["champion"]["metrics"] is None


def test_comparable_champion_is_compared_on_the_same_rows(test_rows):
    decision = _decide(_champion(_Model(_good)), test_rows)
    assert decision["comparable"] is True and decision["not_comparable_reason"] is None
    assert decision["champion"]["metrics"] == decision["challenger"]["metrics"]
    assert decision["promote"] is False and "does not beat champion" in decision["reason"]
    assert decision["test_window"] == {"start": PLAN["test_start"], "end": PLAN["test_end"]}


def test_window_ending_when_the_test_starts_is_fair():
    assert training_window_problem({"start": "x", "end": PLAN["test_start"]}, PLAN) is None


# params:promotion.live_evidence: a winner against a comparable champion is staged.
def _live(**live_evidence) -> dict:
    params = base_parameters("promotion")
    return {**params, "live_evidence": {**params["live_evidence"], **live_evidence}}


def test_live_evidence_is_off_by_default_and_the_winner_becomes_champion(test_rows):
    weak = _champion(_Model(lambda rows: np.random.default_rng(1).uniform(size=len(rows))))
    decision = _decide(weak, test_rows)
    assert decision["rule"]["live_evidence"]["required"] is False
    assert decision["promote"] is True and decision["stage"] == "champion"
    assert "live evidence" not in decision["reason"]


def test_winner_is_made_challenger_when_live_evidence_is_required(test_rows):
    weak = _champion(_Model(lambda rows: np.random.default_rng(1).uniform(size=len(rows))))
    decision = decide_promotion(_Model(_good), weak, test_rows, PLAN, _live(required=True))
    assert decision["promote"] is False and decision["stage"] == "challenger"
    assert "beats champion" in decision["reason"]
    assert (
        "live evidence is required (params:promotion.live_evidence.required)"
        in (decision["reason"])
    )
    assert "made challenger" in decision["reason"]


def test_first_model_becomes_champion_directly_even_when_live_evidence_is_required(test_rows):
    decision = decide_promotion(_Model(_good), None, test_rows, PLAN, _live(required=True))
    assert decision["promote"] is True and decision["stage"] == "champion"
    assert "no champion to compare with live" in decision["reason"]


def test_a_loser_gets_no_alias_whether_or_not_live_evidence_is_required(test_rows):
    for required in (False, True):
        decision = decide_promotion(
            _Model(_good), _champion(_Model(_good)), test_rows, PLAN, _live(required=required)
        )
        assert decision["promote"] is False and decision["stage"] is None


def test_unknown_live_evidence_key_fails_with_its_name():
    with pytest.raises(ValueError, match=r"params:promotion.live_evidence: \['min_frauds'\]"):
        PromotionParams.from_dict(_live(min_frauds=3))
    with pytest.raises(ValueError, match="params:promotion.live_evidence.min_labelled_frauds"):
        PromotionParams.from_dict(_live(min_labelled_frauds=0))
