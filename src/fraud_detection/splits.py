"""Out-of-time split and time-aware validation folds.

With test window starting at day ``T``, labels are known up to ``T - delay``: the
final model trains on ``[T - delay - train_days, T - delay)``, and validation folds
repeat that shape further back (prequential validation, as in the Fraud Detection
Handbook, chapter 5): fold ``k`` validates on
``[T - delay - (k + 1) * fold_days, T - delay - k * fold_days)`` with a model trained on
the ``train_days`` that end ``delay`` days before the fold starts.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from fraud_detection import schema
from fraud_detection.params import IsoDate, StrictParams

logger = logging.getLogger(__name__)

_DAY = pd.Timedelta(days=1)


class SplitParams(StrictParams):
    """Typed ``params:split`` (defaults in ``conf/base/parameters_data_split.yml``)."""

    group: ClassVar[str] = "split"

    train_days: int = Field(ge=1)
    delay_days: int = Field(ge=0)
    test_days: int = Field(ge=1)
    test_start: IsoDate | None
    n_folds: int = Field(ge=1)
    fold_days: int = Field(ge=1)
    remove_known_compromised: bool
    legit_sample_ratio: float = Field(gt=0, le=1)
    sample_seed: int


# Weight of each development row when genuine rows were sampled (1 / ratio for them, 1
# for frauds): validation scores, thresholds and metrics read it so they stay unbiased.
SAMPLE_WEIGHT = "sample_weight"


def sample_weights(frame: pd.DataFrame) -> np.ndarray:
    """Each row's weight: ``SAMPLE_WEIGHT`` when the rows were sampled, else 1."""
    if SAMPLE_WEIGHT in frame.columns:
        return frame[SAMPLE_WEIGHT].to_numpy(np.float64)
    return np.ones(len(frame))


def reduce_development(development: pd.DataFrame, ratio: float, seed: int) -> pd.DataFrame:
    """Keeps every fraud and a ``ratio`` share of genuine rows, weighted ``1 / ratio``.

    With ``ratio`` 1 the rows come back untouched, with no weight column.
    """
    if ratio >= 1:
        return development
    genuine = development[schema.LABEL].astype(int).to_numpy() == 0
    keep = ~genuine | (np.random.default_rng(seed).random(len(development)) < ratio)
    out = development[keep].copy()
    out[SAMPLE_WEIGHT] = np.where(genuine[keep], 1.0 / ratio, 1.0)
    return out


def _day(ts: pd.Series) -> pd.Series:
    return ts.dt.floor("D")


def plan_split(first_day: pd.Timestamp, last_day: pd.Timestamp, p: SplitParams) -> dict[str, Any]:
    """Computes the window dates of the split and of every validation fold.

    Raises:
        ValueError: When the data does not cover the requested windows, naming how
            many days are needed and how many there are.
    """
    test_start = pd.Timestamp(p.test_start) if p.test_start else last_day - (p.test_days - 1) * _DAY
    test_end = test_start + p.test_days * _DAY
    labels_known_until = test_start - p.delay_days * _DAY
    train_start = labels_known_until - p.train_days * _DAY
    folds = []
    for k in range(p.n_folds):
        valid_end = labels_known_until - k * p.fold_days * _DAY
        valid_start = valid_end - p.fold_days * _DAY
        fold_train_end = valid_start - p.delay_days * _DAY
        folds.append(
            {
                "fold": k,
                "train_start": str(fold_train_end - p.train_days * _DAY),
                "train_end": str(fold_train_end),
                "valid_start": str(valid_start),
                "valid_end": str(valid_end),
            }
        )
    earliest = min(pd.Timestamp(f["train_start"]) for f in folds)
    if earliest < first_day or test_end - _DAY > last_day:
        needed = (test_end - earliest) // _DAY
        available = (last_day - first_day) // _DAY + 1
        raise ValueError(
            f"The split needs data from {earliest.date()} to {(test_end - _DAY).date()} "
            f"({needed} days: {p.n_folds} folds of {p.fold_days} days, train {p.train_days}, "
            f"delay {p.delay_days}, test {p.test_days}) but the data covers "
            f"{first_day.date()} to {last_day.date()} ({available} days). Reduce "
            "params:split (n_folds, train_days, ...) or provide more history."
        )
    return {
        "train_start": str(train_start),
        "train_end": str(labels_known_until),
        "test_start": str(test_start),
        "test_end": str(test_end),
        "delay_days": p.delay_days,
        "development_start": str(earliest),
        "folds": folds,
        "remove_known_compromised": p.remove_known_compromised,
    }


def rolling_test_starts(
    first_day: pd.Timestamp, last_day: pd.Timestamp, p: SplitParams, n_windows: int
) -> list[pd.Timestamp]:
    """Starts of ``n_windows`` consecutive test windows for a rolling backtest.

    The last window is the split's own test window (``test_start``, else the last
    ``test_days`` of the data); each earlier one starts ``test_days`` before the next,
    so the windows tile the calendar without overlap and every window keeps the split's
    shape (validation folds, train window, delay gap, test window).

    Raises:
        ValueError: When the data does not cover the first window's history, naming
            the days needed (from ``plan_split``).
    """
    anchor = pd.Timestamp(p.test_start) if p.test_start else last_day - (p.test_days - 1) * _DAY
    starts = [anchor - (n_windows - 1 - k) * p.test_days * _DAY for k in range(n_windows)]
    try:
        plan_split(first_day, last_day, p.model_copy(update={"test_start": str(starts[0].date())}))
    except ValueError as exc:
        raise ValueError(
            f"A backtest of {n_windows} test windows of {p.test_days} days ending "
            f"{(anchor + (p.test_days - 1) * _DAY).date()} does not fit the data: {exc}"
        ) from exc
    return starts


def known_compromised(
    frame: pd.DataFrame, history_start: pd.Timestamp, eval_start: pd.Timestamp, delay_days: int
) -> np.ndarray:
    """Flags evaluation rows of customers already known to be compromised that day.

    A customer is known compromised on day ``D`` when one of their transactions from
    ``history_start`` up to ``D - delay - 1`` is labelled fraud (the Handbook's rule:
    such cards are blocked, so scoring them again says nothing). Rows before
    ``eval_start`` are never flagged.
    """
    day = _day(frame[schema.TIMESTAMP])
    is_fraud = (frame[schema.LABEL].fillna(0).astype(int) == 1) & (day >= history_start)
    first_fraud = day.where(is_fraud).groupby(frame[schema.CUSTOMER_ID]).transform("min")
    cutoff = day - (delay_days + 1) * _DAY
    return ((day >= eval_start) & first_fraud.notna() & (first_fraud <= cutoff)).to_numpy()


def split_out_of_time(
    features: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Splits the feature table by time into development data and a test window.

    The development set holds every labelled row the validation folds and the final
    training window need; rows in the delay gap (labels not yet known when the test
    starts) are in neither set. Test rows of customers already known compromised are
    removed when ``remove_known_compromised`` is set.

    Returns:
        The development set, the test set and the split plan (dates, folds, counts).
    """
    p = SplitParams.from_dict(params)
    day = _day(features[schema.TIMESTAMP])
    plan = plan_split(day.min(), day.max(), p)
    start, known_until = pd.Timestamp(plan["development_start"]), pd.Timestamp(plan["train_end"])
    test_start, test_end = pd.Timestamp(plan["test_start"]), pd.Timestamp(plan["test_end"])
    labelled = features[schema.LABEL].notna()
    development = features[(day >= start) & (day < known_until) & labelled]
    window = features[(day >= pd.Timestamp(plan["train_start"])) & (day < test_end)]
    test_mask = (_day(window[schema.TIMESTAMP]) >= test_start) & window[schema.LABEL].notna()
    if p.remove_known_compromised:
        test_mask &= ~known_compromised(
            window, pd.Timestamp(plan["train_start"]), test_start, p.delay_days
        )
    test = window[test_mask]
    if development[schema.LABEL].nunique() < 2 or test.empty:
        raise ValueError(
            f"The split left {len(development)} development rows with labels "
            f"{sorted(development[schema.LABEL].dropna().unique().tolist())} "
            f"and {len(test)} test rows: "
            "both classes are needed to train; check the data's dates and labels."
        )
    plan["counts"] = {
        "development_rows": len(development),
        "development_frauds": int(development[schema.LABEL].sum()),
        "test_rows": len(test),
        "test_frauds": int(test[schema.LABEL].sum()),
    }
    development = reduce_development(development, p.legit_sample_ratio, p.sample_seed)
    plan["legit_sample_ratio"] = p.legit_sample_ratio
    plan["counts"]["development_rows_kept"] = len(development)
    logger.info("Out-of-time split: %s", plan["counts"])
    return development.reset_index(drop=True), test.reset_index(drop=True), plan


def fold_indices(
    development: pd.DataFrame, plan: dict[str, Any]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Row positions (train, validation) of every prequential fold in ``development``.

    Validation rows of customers known compromised at the fold's start are removed,
    as on the test window.
    """
    day = _day(development[schema.TIMESTAMP])
    out = []
    for f in plan["folds"]:
        train = (
            (day >= pd.Timestamp(f["train_start"])) & (day < pd.Timestamp(f["train_end"]))
        ).to_numpy()
        valid = (
            (day >= pd.Timestamp(f["valid_start"])) & (day < pd.Timestamp(f["valid_end"]))
        ).to_numpy()
        if plan.get("remove_known_compromised", True):
            valid = valid & ~known_compromised(
                development,
                pd.Timestamp(f["train_start"]),
                pd.Timestamp(f["valid_start"]),
                plan["delay_days"],
            )
        out.append((np.flatnonzero(train), np.flatnonzero(valid)))
    return out


def final_training_rows(development: pd.DataFrame, plan: dict[str, Any]) -> np.ndarray:
    """Row positions of the final training window in ``development``."""
    day = _day(development[schema.TIMESTAMP])
    mask = (day >= pd.Timestamp(plan["train_start"])) & (day < pd.Timestamp(plan["train_end"]))
    return np.flatnonzero(mask.to_numpy())
