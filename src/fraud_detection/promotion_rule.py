"""The promotion rule's parameters and its live-evidence check.

Both pipelines that move the ``champion`` alias read ``params:promotion``: the
``promotion`` pipeline (offline, on the test window) and the ``monitoring`` pipeline
(live, on the monitored window). The rule lives here, below both, because a pipeline
never imports another.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from fraud_detection.params import StrictParams

# The MLflow registry aliases a model moves through.
CHAMPION = "champion"
CHALLENGER = "challenger"

# Outcomes of the live rule.
PROMOTED = "promoted"
INSUFFICIENT_LABELS = "insufficient_labels"
REJECTED = "rejected"


class LiveEvidenceParams(StrictParams):
    """Typed ``params:promotion.live_evidence``.

    With ``required`` set, a model that wins offline is made ``challenger`` (shadowed by
    the scorer, compared by monitoring) and becomes ``champion`` only once the
    monitored window shows enough labelled rows and frauds, an AP loss within
    ``max_average_precision_loss`` and an alert volume within ``max_alert_ratio``.
    """

    group: ClassVar[str] = "promotion.live_evidence"

    required: bool
    min_labelled_rows: int = Field(ge=1)
    # AP needs both classes: at least one labelled fraud.
    min_labelled_frauds: int = Field(ge=1)
    max_average_precision_loss: float = Field(ge=0, le=1)
    max_alert_ratio: float = Field(gt=0)


class PromotionParams(StrictParams):
    """Typed ``params:promotion`` (defaults in ``conf/base/parameters_promotion.yml``)."""

    group: ClassVar[str] = "promotion"

    metric: Literal["average_precision", "roc_auc"]
    min_improvement: float
    min_average_precision: float = Field(ge=0, le=1)
    min_roc_auc: float = Field(ge=0, le=1)
    replace_incomparable_champion: bool
    live_evidence: LiveEvidenceParams


def judge_live_evidence(comparison: dict[str, Any], p: LiveEvidenceParams) -> tuple[str, str]:
    """Whether the challenger's live comparison with the champion warrants promotion.

    Args:
        comparison: An available ``challenger_comparison`` (``compare_challenger``).
        p: The live-evidence thresholds.

    Returns:
        ``(outcome, reason)``: outcome ``promoted``, ``insufficient_labels`` or
        ``rejected``; the first unmet condition is the reason, in the order labels,
        average precision, alert volume.
    """
    labelled, frauds = int(comparison["labelled"]), int(comparison["labelled_frauds"])
    if labelled < p.min_labelled_rows or frauds < p.min_labelled_frauds:
        return INSUFFICIENT_LABELS, (
            f"insufficient live labels: {labelled} of {p.min_labelled_rows} labelled rows and "
            f"{frauds} of {p.min_labelled_frauds} labelled frauds needed"
        )
    ours = comparison["champion"]["average_precision"]
    theirs = comparison["challenger"]["average_precision"]
    if ours is None or theirs is None:
        # compare_challenger leaves AP null until both classes are labelled.
        return INSUFFICIENT_LABELS, "insufficient live labels: no genuine labelled rows for AP"
    loss = ours - theirs
    if loss > p.max_average_precision_loss:
        return REJECTED, (
            f"challenger live AP {theirs:.4f} is {loss:.4f} below the champion's {ours:.4f} "
            f"(at most {p.max_average_precision_loss} allowed)"
        )
    alerts = comparison["alerts_per_day"]
    if alerts["challenger"] > p.max_alert_ratio * alerts["champion"]:
        ratio = (
            f"{alerts['challenger'] / alerts['champion']:.2f} times"
            if alerts["champion"]
            else "more than"
        )
        return REJECTED, (
            f"challenger raises {alerts['challenger']:.1f} alerts a day, {ratio} the champion's "
            f"{alerts['champion']:.1f} (at most {p.max_alert_ratio} times allowed)"
        )
    return PROMOTED, (
        f"challenger live AP {theirs:.4f} vs champion {ours:.4f} (loss {loss:+.4f}, at most "
        f"{p.max_average_precision_loss}) on {labelled} labelled rows with {frauds} frauds, "
        f"{alerts['challenger']:.1f} vs {alerts['champion']:.1f} alerts a day"
    )
