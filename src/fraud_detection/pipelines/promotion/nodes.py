"""Promotion nodes.

The challenger (the model just logged to the registry) and the current champion are
scored on the same test rows; the challenger is promoted only when it clears the
configured floors and beats the champion by the configured margin.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field
from sklearn.metrics import average_precision_score, roc_auc_score

from fraud_detection import schema
from fraud_detection.params import StrictParams

logger = logging.getLogger(__name__)


class PromotionParams(StrictParams):
    """Typed ``params:promotion`` (defaults in ``conf/base/parameters_promotion.yml``)."""

    group: ClassVar[str] = "promotion"

    metric: Literal["average_precision", "roc_auc"]
    min_improvement: float
    min_average_precision: float = Field(ge=0, le=1)
    min_roc_auc: float = Field(ge=0, le=1)


def _score(model: Any, test_set: pd.DataFrame) -> dict[str, float]:
    out = model.predict(test_set)
    scores = np.asarray(out["score"], dtype=float)
    labels = test_set[schema.LABEL].astype(int).to_numpy()
    return {
        "average_precision": float(average_precision_score(labels, scores)),
        "roc_auc": float(roc_auc_score(labels, scores)),
    }


def compare(
    challenger: dict[str, float], champion: dict[str, float] | None, p: PromotionParams
) -> tuple[bool, str]:
    """The promotion rule: floors first, then the margin over the champion."""
    if challenger["average_precision"] < p.min_average_precision:
        return (
            False,
            f"challenger AP {challenger['average_precision']:.4f} "
            f"is below the floor {p.min_average_precision}",
        )
    if challenger["roc_auc"] < p.min_roc_auc:
        return (
            False,
            f"challenger ROC-AUC {challenger['roc_auc']:.4f} is below the floor {p.min_roc_auc}",
        )
    if champion is None:
        return True, "no champion yet and the challenger clears the floors"
    gain = challenger[p.metric] - champion[p.metric]
    if gain >= p.min_improvement:
        return (
            True,
            f"challenger {p.metric} {challenger[p.metric]:.4f} beats champion "
            f"{champion[p.metric]:.4f} by {gain:+.4f} (margin {p.min_improvement})",
        )
    return (
        False,
        f"challenger {p.metric} {challenger[p.metric]:.4f} does not beat champion "
        f"{champion[p.metric]:.4f} by the margin {p.min_improvement} (gain {gain:+.4f})",
    )


def decide_promotion(
    fraud_model: Any,
    current_champion: dict[str, Any] | None,
    test_set: pd.DataFrame,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Scores challenger and champion, both as loaded from MLflow, on the same test
    rows and decides.

    Returns:
        The decision: ``promote``, ``reason``, both models' metrics and identities.
    """
    p = PromotionParams.from_dict(params)
    challenger = _score(fraud_model, test_set)
    champion = None
    if current_champion is not None:
        try:
            champion = _score(current_champion["model"], test_set)
        except (ValueError, KeyError) as exc:
            # A champion that cannot score today's features (e.g. its inputs were
            # renamed) cannot be compared; it is replaced only if the floors hold.
            logger.warning(
                "Champion version %s cannot score the test set: %s",
                current_champion["version"],
                exc,
            )
    promote, reason = compare(challenger, champion, p)
    decision = {
        "promote": promote,
        "reason": reason,
        "rule": p.model_dump(),
        "challenger": {"metrics": challenger, "run_id": fraud_model.metadata.run_id},
        "champion": None
        if current_champion is None
        else {
            "version": current_champion["version"],
            "run_id": current_champion["run_id"],
            "metrics": champion,
        },
        "challenger_run_id": fraud_model.metadata.run_id,
        "test_rows": len(test_set),
    }
    logger.info("Promotion decision: %s (%s)", "promote" if promote else "reject", reason)
    return decision


def record_promotion(decision: dict[str, Any]) -> dict[str, Any]:
    """Passes the decision to the registry dataset, which moves the alias."""
    return decision
