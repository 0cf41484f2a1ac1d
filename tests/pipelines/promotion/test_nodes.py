import pytest

from fraud_detection.pipelines.promotion.nodes import PromotionParams, compare
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
