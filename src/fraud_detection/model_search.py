"""Model search: tuning, fitting, thresholds and selection of the candidate families.

Every candidate family is one imbalanced-learn pipeline searched over a space defined in
``parameters_training.yml`` and scored by average precision on prequential validation
folds. Selection and decision thresholds use validation data only; the test window
is touched by evaluation alone. The training pipeline's nodes and the rolling backtest
(which repeats the same search on every window) both call these functions.

When the split sampled genuine rows (``params:split.legit_sample_ratio`` below 1), each
development row carries a ``sample_weight``: models fit on the reduced rows (an
undersampling), while validation average precision, the out-of-fold predictions and
the thresholds (alert budget included: a row of weight ``w`` counts as ``w`` alerts)
weigh every row, so they estimate what the full data would give.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from itertools import product
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field as PydanticField
from pydantic import field_validator, model_validator
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.model_selection import ParameterGrid, ParameterSampler
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fraud_detection import schema
from fraud_detection.features import feature_columns
from fraud_detection.features.source_columns import source_inputs
from fraud_detection.metrics import alert_summary
from fraud_detection.model import (
    FraudModel,
    MeanEnsemble,
    build_model_pipeline,
    describe_params,
    import_class,
    positive_scores,
    resampling_grid,
)
from fraud_detection.params import StrictParams
from fraud_detection.splits import (
    SAMPLE_WEIGHT,
    final_training_rows,
    fold_indices,
    sample_weights,
)

logger = logging.getLogger(__name__)

BASELINE = "baseline"
ENSEMBLE = "ensemble"
THRESHOLD_OBJECTIVES = ("f_beta", "expected_cost", "alert_budget")


N_ESTIMATORS = "classifier__n_estimators"


class CandidateSpec(StrictParams):
    """One model family of ``params:training.candidates``.

    ``staged_trees`` (XGBoost only): numbers of boosting rounds scored from one fit.
    Every setting is fitted once per fold with the largest number, and its first ``k``
    rounds are scored for each ``k``; the number of rounds is then chosen on the
    validation folds like any other parameter (early stopping on the folds, without
    refitting per ``k``). Random search samples the other parameters ``n_iter`` times.
    """

    classifier: str
    init: dict[str, Any]
    resampling: list[str] = PydanticField(min_length=1)
    search_space: dict[str, list[Any]]
    staged_trees: list[int] | None = None
    # Settings sampled for this family in random search (None: ``training.n_iter``):
    # the budget can go where fits are cheap or pay most.
    n_iter: int | None = PydanticField(default=None, ge=1)

    @model_validator(mode="after")
    def _staged_boosting_only(self) -> CandidateSpec:
        if self.staged_trees is None:
            return self
        if not self.classifier.startswith("xgboost."):
            raise ValueError(
                f"staged_trees scores the first k boosting rounds of one fit: it needs an "
                f"xgboost classifier, not {self.classifier!r}"
            )
        if not self.staged_trees or min(self.staged_trees) < 1:
            raise ValueError(
                f"staged_trees must be numbers of rounds >= 1 (got {self.staged_trees})"
            )
        if N_ESTIMATORS in self.search_space:
            raise ValueError(
                f"give the numbers of rounds in staged_trees or in search_space.{N_ESTIMATORS}, "
                "not both"
            )
        return self


class TrainingParams(StrictParams):
    """Typed ``params:training`` (defaults in ``conf/base/parameters_training.yml``)."""

    group: ClassVar[str] = "training"

    candidates: dict[str, CandidateSpec] = PydanticField(min_length=1)
    random_state: int
    search: Literal["random", "grid"]
    n_iter: int = PydanticField(ge=1)
    selection: dict[str, Any]
    threshold: dict[str, Any]
    baseline_features: list[str] = PydanticField(min_length=1)
    families: list[str] | None
    # Candidates whose scores are averaged as one more candidate, ``ensemble`` (no extra
    # fit: its validation scores are the mean of theirs, its model the mean of theirs).
    ensemble: list[str] | None = None
    # pandas: the searches below on the driver; spark: also XGBoost trained in Spark on
    # the whole development table (fraud_detection.spark.xgboost_training).
    engine: Literal["pandas", "spark"]
    spark: dict[str, Any]

    @field_validator("threshold")
    @classmethod
    def _known_objective(cls, threshold: dict[str, Any]) -> dict[str, Any]:
        objective = threshold.get("objective", "f_beta")
        if objective not in THRESHOLD_OBJECTIVES:
            raise ValueError(f"threshold.objective must be one of {THRESHOLD_OBJECTIVES}")
        budget = threshold.get("max_alerts_per_day")
        if objective == "alert_budget" and not (
            isinstance(budget, int) and not isinstance(budget, bool) and budget >= 1
        ):
            raise ValueError(
                "threshold.max_alerts_per_day must be a whole number >= 1 with "
                f"objective alert_budget (got {budget!r})"
            )
        return threshold

    @model_validator(mode="after")
    def _families_among_candidates(self) -> TrainingParams:
        if self.families is None:
            return self
        missing = sorted(set(self.families) - set(self.candidates))
        if missing or not self.families:
            raise ValueError(
                f"families {self.families} must name some of the candidates "
                f"{sorted(self.candidates)}"
            )
        # Only the chosen families are searched.
        kept = {name: spec for name, spec in self.candidates.items() if name in self.families}
        object.__setattr__(self, "candidates", kept)
        return self

    @model_validator(mode="after")
    def _ensemble_of_candidates(self) -> TrainingParams:
        if self.ensemble is None:
            return self
        if ENSEMBLE in self.candidates or BASELINE in self.candidates:
            raise ValueError(f"{ENSEMBLE!r} and {BASELINE!r} are reserved candidate names")
        missing = sorted(set(self.ensemble) - set(self.candidates))
        if len(set(self.ensemble)) < 2 or missing:
            raise ValueError(
                f"ensemble {self.ensemble} must name at least two of the searched candidates "
                f"{sorted(self.candidates)}" + (f" (not searched: {missing})" if missing else "")
            )
        return self


def _search_space(
    spec: CandidateSpec, scale_pos_weight: float, random_state: int
) -> list[dict[str, list[Any]]]:
    """Every setting the family may take (the staged numbers of rounds included, so
    that a chosen setting can be found again by ``_resolve``)."""
    staged = {N_ESTIMATORS: sorted(set(spec.staged_trees))} if spec.staged_trees else {}
    return [
        {
            **resampling_grid(s, spec.classifier, scale_pos_weight, random_state),
            **spec.search_space,
            **staged,
        }
        for s in spec.resampling
    ]


def _scale_pos_weight(development: pd.DataFrame) -> float:
    """Genuine-to-fraud ratio of the development labels, XGBoost's class weight."""
    y = development[schema.LABEL].astype(int).to_numpy()
    return float((y == 0).sum() / max((y == 1).sum(), 1))


def _space_size(space: list[dict[str, list[Any]]]) -> int:
    return sum(int(np.prod([len(v) for v in grid.values()])) for grid in space)


def _candidate_pipeline(spec: CandidateSpec, development: pd.DataFrame, p: TrainingParams):
    numeric, categorical = feature_columns(development)
    # The sampling weight is never a model input.
    numeric = [c for c in numeric if c != SAMPLE_WEIGHT]
    # Declared source columns (src_<name>): numeric ones are numeric features already.
    categorical = categorical + source_inputs(development)[1]
    classifier = import_class(spec.classifier)(**spec.init)
    return build_model_pipeline(
        classifier, numeric, categorical, p.selection, p.random_state
    ), numeric + categorical


def tune_candidates(
    development: pd.DataFrame, plan: dict[str, Any], params: dict[str, Any]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Searches every candidate's space on the prequential folds, scored by AP.

    Returns:
        Per candidate the best parameters and validation AP (mean and std over folds)
        with every tried setting, and the out-of-fold validation scores of each
        candidate's best setting and of the baseline (for thresholds).
    """
    p = TrainingParams.from_dict(params)
    folds = fold_indices(development, plan)
    for k, (tr, va) in enumerate(folds):
        y_tr, y_va = (
            development[schema.LABEL].to_numpy()[tr],
            development[schema.LABEL].to_numpy()[va],
        )
        if len(np.unique(y_tr)) < 2 or len(np.unique(y_va)) < 2:
            raise ValueError(
                f"Validation fold {k} has a single class "
                f"(train {len(tr)} rows, valid {len(va)} rows): "
                "use fewer or longer folds in params:split"
            )
    y = development[schema.LABEL].astype(int).to_numpy()
    scale_pos_weight = _scale_pos_weight(development)
    results: dict[str, Any] = {}
    predictions = []
    weights = sample_weights(development)
    for name, spec in p.candidates.items():
        pipe, inputs = _candidate_pipeline(spec, development, p)
        space = _search_space(spec, scale_pos_weight, p.random_state)
        search = _search(pipe, space, spec, p, development[inputs], y, weights, folds)
        results[name] = {
            "classifier": spec.classifier,
            "best_params": describe_params(search.best_params),
            "validation_average_precision": search.best_mean,
            "validation_average_precision_std": search.best_std,
            "tried": [{"params": describe_params(prm), "mean_ap": m} for prm, m in search.tried],
        }
        logger.info(
            "Candidate %s: validation AP %.4f with %s",
            name,
            search.best_mean,
            results[name]["best_params"],
        )
        predictions.append(_fold_frame(name, development, folds, search.best_scores))
    if p.ensemble:
        results[ENSEMBLE], ensemble_scores = _ensemble_search(
            p.ensemble, predictions, y, weights, folds
        )
        predictions.append(_fold_frame(ENSEMBLE, development, folds, ensemble_scores))
    baseline = _baseline_pipeline(p)
    predictions.append(_out_of_fold(BASELINE, baseline, development, p.baseline_features, folds))
    base_pred = predictions[-1]
    results[BASELINE] = {
        "classifier": "sklearn.linear_model.LogisticRegression",
        "features": p.baseline_features,
        "validation_average_precision": float(
            np.mean(
                [
                    average_precision_score(g["label"], g["score"], sample_weight=g["weight"])
                    for _, g in base_pred.groupby("fold")
                ]
            )
        ),
    }
    return results, pd.concat(predictions, ignore_index=True)


@dataclass
class _SearchResult:
    """What the search keeps: every setting's mean validation AP, and the best
    setting's AP (mean, std over folds) and validation scores per fold."""

    tried: list[tuple[dict[str, Any], float]] = dataclass_field(default_factory=list)
    best_params: dict[str, Any] = dataclass_field(default_factory=dict)
    best_mean: float = -np.inf
    best_std: float = 0.0
    best_scores: list[np.ndarray] = dataclass_field(default_factory=list)

    def add(self, setting: dict[str, Any], fold_scores: list[np.ndarray], aps: list[float]):
        mean = float(np.mean(aps))
        self.tried.append((setting, mean))
        # The first of equal settings wins, as in scikit-learn's searches.
        if mean > self.best_mean:
            self.best_params, self.best_mean = setting, mean
            self.best_std, self.best_scores = float(np.std(aps)), fold_scores


def _ensemble_search(
    members: list[str],
    predictions: list[pd.DataFrame],
    y: np.ndarray,
    weights: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The ensemble's validation AP from its members' out-of-fold scores (their mean,
    row by row: every member was scored on the same validation rows)."""
    by_name = {frame["candidate"].iloc[0]: frame for frame in predictions}
    scores, aps = [], []
    for k, (_, va) in enumerate(folds):
        member_scores = [
            by_name[m].loc[by_name[m]["fold"] == k, "score"].to_numpy() for m in members
        ]
        scores.append(np.mean(member_scores, axis=0))
        aps.append(float(average_precision_score(y[va], scores[-1], sample_weight=weights[va])))
    result = {
        "classifier": "fraud_detection.model.MeanEnsemble",
        "members": list(members),
        "best_params": {"members": list(members)},
        "validation_average_precision": float(np.mean(aps)),
        "validation_average_precision_std": float(np.std(aps)),
        "tried": [{"params": {"members": list(members)}, "mean_ap": float(np.mean(aps))}],
    }
    logger.info("Candidate %s of %s: validation AP %.4f", ENSEMBLE, members, np.mean(aps))
    return result, scores


def _settings(
    space: list[dict[str, list[Any]]], p: TrainingParams, n_iter: int | None = None
) -> list[dict[str, Any]]:
    """The settings to try: all of them (grid, or a space no larger than ``n_iter``,
    default ``p.n_iter``), else ``n_iter`` sampled as scikit-learn's
    ``RandomizedSearchCV`` samples them."""
    n = n_iter or p.n_iter
    if p.search == "grid" or _space_size(space) <= n:
        return list(ParameterGrid(space))
    return list(ParameterSampler(space, n_iter=n, random_state=p.random_state))


def _search(  # noqa: PLR0913, PLR0917 (one family's search over the prepared folds)
    pipe: Any,
    space: list[dict[str, list[Any]]],
    spec: CandidateSpec,
    p: TrainingParams,
    X: pd.DataFrame,
    y: np.ndarray,
    weights: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
) -> _SearchResult:
    """Fits every setting on every fold's training rows and scores its validation rows
    by average precision (weighted by ``weights``), keeping the best setting's
    validation scores as the out-of-fold predictions (no refit).

    With ``spec.staged_trees`` the numbers of rounds are not sampled: each setting of
    the other parameters is fitted with the largest and scored at every number.
    """
    result = _SearchResult()
    rounds = sorted(set(spec.staged_trees)) if spec.staged_trees else None
    base_space = [{k: v for k, v in g.items() if k != N_ESTIMATORS} for g in space]
    settings = _settings(base_space if rounds else space, p, spec.n_iter)
    for setting in settings:
        per_round: dict[int | None, list[np.ndarray]] = {}
        fitted_setting = {**setting, N_ESTIMATORS: rounds[-1]} if rounds else setting
        for tr, va in folds:
            # Settings hold estimators (samplers): every fit gets its own copies.
            model = clone(pipe).set_params(**clone(fitted_setting, safe=False))
            model.fit(X.iloc[tr], y[tr])
            for k, scores in _staged_scores(model, X.iloc[va], rounds):
                per_round.setdefault(k, []).append(scores)
        for k, fold_scores in per_round.items():
            aps = [
                average_precision_score(y[va], s, sample_weight=weights[va])
                for (_, va), s in zip(folds, fold_scores, strict=True)
            ]
            result.add({**setting, N_ESTIMATORS: k} if k else setting, fold_scores, aps)
    return result


def _staged_scores(
    model: Any, X: pd.DataFrame, rounds: list[int] | None
) -> list[tuple[int | None, np.ndarray]]:
    """The fitted pipeline's fraud scores of ``X``: once (``rounds`` None), or for the
    first ``k`` boosting rounds of its XGBoost classifier, for each ``k`` in ``rounds``."""
    if rounds is None:
        return [(None, positive_scores(model, X))]
    matrix = model[:-1].transform(X)  # samplers are skipped outside fit
    booster = model[-1]
    return [(k, booster.predict_proba(matrix, iteration_range=(0, k))[:, 1]) for k in rounds]


def _fold_frame(
    name: str,
    development: pd.DataFrame,
    folds: list[tuple[np.ndarray, np.ndarray]],
    fold_scores: list[np.ndarray],
) -> pd.DataFrame:
    """Out-of-fold validation scores of one candidate, with what thresholds need."""
    y = development[schema.LABEL].astype(int).to_numpy()
    weights = sample_weights(development)
    parts = []
    for k, ((_, va), scores) in enumerate(zip(folds, fold_scores, strict=True)):
        parts.append(
            pd.DataFrame(
                {
                    "candidate": name,
                    "fold": k,
                    schema.TRANSACTION_ID: development[schema.TRANSACTION_ID].to_numpy()[va],
                    # Day and amount: the alert-budget threshold counts alerts a day and
                    # the fraud amount they catch.
                    schema.TIMESTAMP: development[schema.TIMESTAMP].to_numpy()[va],
                    schema.AMOUNT: development[schema.AMOUNT].to_numpy(float)[va],
                    "label": y[va],
                    "weight": weights[va],
                    "score": scores,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _baseline_pipeline(p: TrainingParams):
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def _out_of_fold(
    name: str, pipe: Any, development: pd.DataFrame, inputs: list[str], folds: list
) -> pd.DataFrame:
    """Fits ``pipe`` on every fold's training rows and scores its validation rows."""
    y = development[schema.LABEL].astype(int).to_numpy()
    scores = [
        positive_scores(
            clone(pipe).fit(development.iloc[tr][inputs], y[tr]), development.iloc[va][inputs]
        )
        for tr, va in folds
    ]
    return _fold_frame(name, development, folds, scores)


def fit_candidates(
    development: pd.DataFrame,
    plan: dict[str, Any],
    search_results: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """Refits every candidate's best setting, and the baseline, on the final
    training window (the most recent labelled days)."""
    p = TrainingParams.from_dict(params)
    rows = final_training_rows(development, plan)
    train = development.iloc[rows]
    y = train[schema.LABEL].astype(int).to_numpy()
    scale_pos_weight = _scale_pos_weight(development)
    fitted = {}
    for name, spec in p.candidates.items():
        pipe, inputs = _candidate_pipeline(spec, development, p)
        # Re-resolve the best setting from the same space, so estimators are real
        # objects rather than their logged names.
        space = _search_space(spec, scale_pos_weight, p.random_state)
        best = _resolve(space, search_results[name]["best_params"])
        fitted[name] = {"pipeline": pipe.set_params(**best).fit(train[inputs], y), "inputs": inputs}
        logger.info("Fitted %s on %d rows (%d frauds)", name, len(train), int(y.sum()))
    if p.ensemble:
        inputs = list(dict.fromkeys(c for m in p.ensemble for c in fitted[m]["inputs"]))
        fitted[ENSEMBLE] = {
            "pipeline": MeanEnsemble({m: fitted[m]["pipeline"] for m in p.ensemble}),
            "inputs": inputs,
        }
    fitted[BASELINE] = {
        "pipeline": _baseline_pipeline(p).fit(train[p.baseline_features], y),
        "inputs": p.baseline_features,
    }
    return fitted


def _resolve(space: list[dict[str, list[Any]]], described: dict[str, Any]) -> dict[str, Any]:
    """Finds the setting in ``space`` whose description matches ``described``."""
    for grid in space:
        keys = list(grid)
        for values in product(*(grid[k] for k in keys)):
            setting = dict(zip(keys, values, strict=True))
            if describe_params(setting) == described:
                return setting
    raise ValueError(f"Setting {described} is not in the search space any more; re-run tuning")


def _cuts(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by score (highest first) and the positions where a threshold can
    cut: only between distinct scores, as a threshold flags every row scoring >= it."""
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    last_of_value = np.r_[s[1:] != s[:-1], True]
    return order, last_of_value


def _budget_threshold(
    scores: np.ndarray,
    days: np.ndarray,
    max_alerts_per_day: int,
    weights: np.ndarray | None = None,
) -> float:
    """The lowest threshold that flags at most ``max_alerts_per_day`` alerts on every
    day, a row of weight ``w`` (a sampled genuine row standing for ``w`` rows) counting
    as ``w`` alerts.

    Lowering a threshold only adds alerts and never loses caught fraud amount, so the
    lowest threshold within the budget is the one that catches the most fraud amount.
    A day breaks the budget at threshold ``t`` when the weight of its rows scoring
    ``>= t`` exceeds ``N``: the day's limit is the score of the row, in decreasing score
    order, at which the running weight first exceeds ``N`` (the ``(N + 1)``-th highest
    score with unit weights); the threshold must sit above the highest limit.
    """
    w = np.ones(len(scores)) if weights is None else np.asarray(weights, dtype=np.float64)
    frame = pd.DataFrame({"score": scores, "day": days, "weight": w})
    ranked = frame.sort_values("score", ascending=False, kind="stable")
    running = ranked.groupby("day", sort=False)["weight"].cumsum()
    # A small tolerance: weights 1 / ratio need not add up exactly in floating point.
    breaking = ranked[running > max_alerts_per_day + 1e-9]
    over = breaking.groupby("day", sort=False)["score"].first()
    if over.empty:
        return float(scores.min())
    limit = float(over.max())
    above = scores[scores > limit]
    # Nothing scores above the limit: no row can be flagged within the budget.
    return float(above.min()) if above.size else float(np.nextafter(limit, np.inf))


def _best_threshold(
    labels: np.ndarray,
    scores: np.ndarray,
    cfg: dict[str, Any],
    amounts: np.ndarray | None = None,
    days: np.ndarray | None = None,
    *,
    weights: np.ndarray | None = None,
) -> tuple[float, float]:
    """Threshold maximising F-beta, minimising expected cost, or catching the most
    fraud amount within the daily alert budget (``alert_budget``; value: fraud amount
    caught per day), on given data (rows weighted by ``weights``, e.g. 1 / sampling
    ratio: a row of weight ``w`` counts as ``w`` rows, alerts and frauds)."""
    objective = cfg.get("objective", "f_beta")
    if objective == "alert_budget":
        if amounts is None or days is None:
            raise ValueError(
                "threshold.objective alert_budget needs the amount and the day of every "
                "validation row; re-run tuning to write them into validation_predictions"
            )
        threshold = _budget_threshold(scores, days, int(cfg["max_alerts_per_day"]), weights)
        caught = alert_summary(labels, scores, amounts, days, threshold, weights=weights)
        return threshold, caught["fraud_amount_caught_per_day"]
    w = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    order, last_of_value = _cuts(scores)
    s, y, w = scores[order], labels[order], w[order]
    tp = np.cumsum(y * w)
    fp = np.cumsum((1 - y) * w)
    tp, fp, thresholds = tp[last_of_value], fp[last_of_value], s[last_of_value]
    positives = (y * w).sum()
    fn = positives - tp
    if objective == "f_beta":
        b2 = float(cfg.get("beta", 1.0)) ** 2
        value = (1 + b2) * tp / np.maximum((1 + b2) * tp + b2 * fn + fp, 1)
        best = int(np.argmax(value))
    else:
        value = (
            -(float(cfg["cost_false_negative"]) * fn + float(cfg["cost_false_positive"]) * fp)
            / w.sum()
        )
        best = int(np.argmax(value))
    return float(thresholds[best]), float(value[best])


def choose_thresholds(
    validation_predictions: pd.DataFrame, params: dict[str, Any]
) -> dict[str, Any]:
    """Chooses each candidate's decision threshold on its out-of-fold validation
    scores by the configured objective (F-beta, expected cost per transaction, or the
    most fraud amount caught within ``max_alerts_per_day`` alerts on every validation
    day), with the alerts a day and fraud amount caught it gives there."""
    p = TrainingParams.from_dict(params)
    has_days = {schema.TIMESTAMP, schema.AMOUNT} <= set(validation_predictions.columns)
    out = {}
    for name, g in validation_predictions.groupby("candidate", sort=True):
        labels, scores = g["label"].to_numpy(int), g["score"].to_numpy(float)
        amounts = g[schema.AMOUNT].to_numpy(float) if has_days else None
        days = g[schema.TIMESTAMP].dt.floor("D").to_numpy() if has_days else None
        weights = g["weight"].to_numpy(float) if "weight" in g.columns else None
        threshold, value = _best_threshold(
            labels, scores, p.threshold, amounts, days, weights=weights
        )
        out[name] = {
            "threshold": threshold,
            "objective": p.threshold.get("objective", "f_beta"),
            "objective_value": value,
            "config": dict(p.threshold),
        }
        if has_days:
            out[name]["validation"] = alert_summary(
                labels, scores, amounts, days, threshold, weights=weights
            )
        logger.info(
            "Threshold for %s: %.4f (%s = %.4f on validation)",
            name,
            threshold,
            out[name]["objective"],
            value,
        )
    return out


def select_model(
    search_results: dict[str, Any], trained_candidates: dict[str, Any], thresholds: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Picks the candidate with the best validation AP (never test data)."""
    scores = {
        n: r["validation_average_precision"] for n, r in search_results.items() if n != BASELINE
    }
    selected = max(scores, key=scores.get)
    pipe = trained_candidates[selected]["pipeline"]
    # A pipeline's select step, or an ensemble: the inputs its model uses.
    features = list(getattr(pipe, "named_steps", {}).get("select", pipe).selected_features_)
    selection = {
        "selected": selected,
        "reason": "highest mean average precision on the prequential validation folds",
        "validation_average_precision": scores,
        "threshold": thresholds[selected]["threshold"],
        "best_params": search_results[selected]["best_params"],
    }
    logger.info("Selected %s (validation AP %.4f)", selected, scores[selected])
    return selection, features


def package_model(
    trained_candidates: dict[str, Any],
    selection: dict[str, Any],
    development: pd.DataFrame,
    plan: dict[str, Any],
) -> FraudModel:
    """Wraps the selected pipeline and its threshold as the model to register, with
    an input example from the training data for the signature and the training window
    (recorded on the MLflow run, so a later promotion can check it is fair)."""
    name = selection["selected"]
    entry = trained_candidates[name]
    window = {"start": plan["train_start"], "end": plan["train_end"]}
    model = FraudModel(
        entry["pipeline"], selection["threshold"], entry["inputs"], name, training_window=window
    )
    model.input_example = development[entry["inputs"]].head(5).reset_index(drop=True)
    return model
