"""Promotion nodes.

The challenger (the model just logged to the registry) and the current champion are
scored on the same test rows; the challenger is promoted only when it clears the
configured floors and beats the champion by the configured margin.

A champion that cannot be compared (it fails or returns NaN scores on the test rows,
its training window is not recorded, or its training window reaches into the test
window) is never treated as absent: the decision says "not comparable" and why, an
alert is sent, and the challenger replaces it on the floors alone only when
``replace_incomparable_champion`` is set.

With ``live_evidence.required``, a challenger that wins against a comparable champion
is staged instead: the decision's ``stage`` is ``challenger`` (the registry dataset moves
that alias), and the monitoring pipeline promotes it once the live window agrees.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from fraud_detection import schema
from fraud_detection.promotion_rule import CHALLENGER, CHAMPION, PromotionParams

logger = logging.getLogger(__name__)

__all__ = ["PromotionParams", "compare", "decide_promotion", "record_promotion"]


class NotComparableError(Exception):
    """The champion cannot be compared with the challenger on these test rows."""


def _score(model: Any, test_set: pd.DataFrame) -> dict[str, float]:
    out = model.predict(test_set)
    scores = np.asarray(out["score"], dtype=float)
    if np.isnan(scores).any():
        raise NotComparableError(
            f"returns NaN scores for {int(np.isnan(scores).sum())} of {len(scores)} test rows"
        )
    labels = test_set[schema.LABEL].astype(int).to_numpy()
    return {
        "average_precision": float(average_precision_score(labels, scores)),
        "roc_auc": float(roc_auc_score(labels, scores)),
    }


def training_window_problem(
    training_window: dict[str, Any] | None, plan: dict[str, Any]
) -> str | None:
    """Why the champion's training window makes the comparison unfair, if it does.

    The champion must have been trained on days that all end before the test window
    starts (``train_end`` is exclusive), else it has seen the test rows' labels.
    """
    if not training_window or not training_window.get("end"):
        return "its training window is not recorded on its MLflow run"
    end, test_start = pd.Timestamp(training_window["end"]), pd.Timestamp(plan["test_start"])
    if end > test_start:
        return (
            f"its training window ends {end.date()}, after the test window starts "
            f"{test_start.date()}: it has seen the labels it would be judged on"
        )
    return None


def _floors(challenger: dict[str, float], p: PromotionParams) -> str | None:
    if challenger["average_precision"] < p.min_average_precision:
        return (
            f"challenger AP {challenger['average_precision']:.4f} "
            f"is below the floor {p.min_average_precision}"
        )
    if challenger["roc_auc"] < p.min_roc_auc:
        return f"challenger ROC-AUC {challenger['roc_auc']:.4f} is below the floor {p.min_roc_auc}"
    return None


def compare_incomparable(
    challenger: dict[str, float], problem: str, p: PromotionParams
) -> tuple[bool, str]:
    """The rule when the champion cannot be compared: keep it, unless
    ``replace_incomparable_champion`` allows replacement on the floors alone."""
    below = _floors(challenger, p)
    if below is not None:
        return False, f"champion not comparable ({problem}) and {below}"
    if p.replace_incomparable_champion:
        return (
            True,
            f"champion not comparable ({problem}); replaced on the floors alone "
            "(replace_incomparable_champion is set)",
        )
    return (
        False,
        f"champion not comparable ({problem}); champion kept: compare by hand, or set "
        "params:promotion.replace_incomparable_champion to replace it on the floors alone",
    )


def compare(
    challenger: dict[str, float], champion: dict[str, float] | None, p: PromotionParams
) -> tuple[bool, str]:
    """The promotion rule: floors first, then the margin over the champion."""
    below = _floors(challenger, p)
    if below is not None:
        return False, below
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


def stage_for_live_evidence(
    promote: bool, reason: str, has_champion: bool, comparable: bool, p: PromotionParams
) -> tuple[bool, str | None, str]:
    """Where an offline decision leaves the challenger: ``(promote, stage, reason)``.

    ``stage`` is the alias it receives (``champion``, ``challenger``) or ``None``. With
    ``live_evidence.required``, a winner against a comparable champion is made
    ``challenger`` (``promote`` false) so that it is shadowed and compared live first;
    with no champion at all there is nothing to compare it with, so it becomes champion.
    """
    if not promote:
        return False, None, reason
    if not p.live_evidence.required:
        return True, CHAMPION, reason
    required = f"{reason}; live evidence is required (params:promotion.live_evidence.required)"
    if not has_champion:
        why = "but there is no champion to compare with live, so it becomes champion directly"
        return True, CHAMPION, f"{required} {why}"
    if not comparable:
        # The champion could not be compared here; replace_incomparable_champion decided.
        return True, CHAMPION, reason
    why = (
        "made challenger, to be shadowed and compared with the champion on live "
        "transactions before the monitoring pipeline promotes it"
    )
    return False, CHALLENGER, f"{required}: {why}"


def _champion_metrics(
    current_champion: dict[str, Any], test_set: pd.DataFrame, plan: dict[str, Any]
) -> tuple[dict[str, float] | None, str | None]:
    """The champion's test metrics, or why it cannot be compared."""
    problem = training_window_problem(current_champion.get("training_window"), plan)
    if problem is not None:
        return None, problem
    try:
        return _score(current_champion["model"], test_set), None
    except NotComparableError as exc:
        return None, str(exc)
    except (ValueError, KeyError) as exc:
        # E.g. its inputs were renamed: it cannot score today's features.
        return None, f"it cannot score the test rows: {type(exc).__name__}: {exc}"


def decide_promotion(
    fraud_model: Any,
    current_champion: dict[str, Any] | None,
    test_set: pd.DataFrame,
    split_plan: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """Scores challenger and champion, both as loaded from MLflow, on the same test
    rows and decides.

    Returns:
        The decision: ``promote`` (moves ``champion``), ``stage`` (the alias the
        challenger receives: ``champion``, ``challenger`` when live evidence is required
        first, or ``None``), ``reason``, ``comparable`` (false when a champion exists but
        cannot be compared, with ``not_comparable_reason``), both models' metrics and
        identities, and the test window.
    """
    p = PromotionParams.from_dict(params)
    challenger = _score(fraud_model, test_set)
    champion, problem = None, None
    if current_champion is not None:
        champion, problem = _champion_metrics(current_champion, test_set, split_plan)
    if problem is not None:
        logger.warning(
            "Champion version %s is not comparable: %s", current_champion["version"], problem
        )
        promote, reason = compare_incomparable(challenger, problem, p)
    else:
        promote, reason = compare(challenger, champion, p)
    promote, stage, reason = stage_for_live_evidence(
        promote, reason, current_champion is not None, problem is None, p
    )
    decision = {
        "promote": promote,
        "stage": stage,
        "reason": reason,
        "comparable": problem is None,
        "not_comparable_reason": problem,
        "rule": p.model_dump(),
        "challenger": {"metrics": challenger, "run_id": fraud_model.metadata.run_id},
        "champion": None
        if current_champion is None
        else {
            "version": current_champion["version"],
            "run_id": current_champion["run_id"],
            "metrics": champion,
            "training_window": current_champion.get("training_window"),
        },
        "challenger_run_id": fraud_model.metadata.run_id,
        "test_window": {"start": split_plan["test_start"], "end": split_plan["test_end"]},
        "test_rows": len(test_set),
    }
    logger.info("Promotion decision: %s (%s)", stage or "reject", reason)
    return decision


def record_promotion(decision: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Passes the decision to the two registry datasets (``champion_alias``,
    ``challenger_alias``); each moves its alias when the decision's ``stage`` names it."""
    return decision, decision
