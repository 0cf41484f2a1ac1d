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
from itertools import product
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field as PydanticField
from pydantic import field_validator, model_validator
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fraud_detection import schema
from fraud_detection.features import feature_columns
from fraud_detection.features.source_columns import source_inputs
from fraud_detection.metrics import alert_summary
from fraud_detection.model import (
    FraudModel,
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
THRESHOLD_OBJECTIVES = ("f_beta", "expected_cost", "alert_budget")


class CandidateSpec(StrictParams):
    """One model family of ``params:training.candidates``."""

    classifier: str
    init: dict[str, Any]
    resampling: list[str] = PydanticField(min_length=1)
    search_space: dict[str, list[Any]]


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


def _search_space(
    spec: CandidateSpec, scale_pos_weight: float, random_state: int
) -> list[dict[str, list[Any]]]:
    return [
        {**resampling_grid(s, spec.classifier, scale_pos_weight, random_state), **spec.search_space}
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
    scoring = _average_precision(development)
    for name, spec in p.candidates.items():
        pipe, inputs = _candidate_pipeline(spec, development, p)
        space = _search_space(spec, scale_pos_weight, p.random_state)
        if p.search == "grid" or _space_size(space) <= p.n_iter:
            search = GridSearchCV(
                pipe, space, scoring=scoring, cv=folds, refit=False, error_score="raise"
            )
        else:
            search = RandomizedSearchCV(
                pipe,
                space,
                n_iter=p.n_iter,
                scoring=scoring,
                cv=folds,
                refit=False,
                random_state=p.random_state,
                error_score="raise",
            )
        search.fit(development[inputs], y)
        best = search.best_params_
        i = search.best_index_
        results[name] = {
            "classifier": spec.classifier,
            "best_params": describe_params(best),
            "validation_average_precision": float(search.best_score_),
            "validation_average_precision_std": float(search.cv_results_["std_test_score"][i]),
            "tried": [
                {"params": describe_params(prm), "mean_ap": float(m)}
                for prm, m in zip(
                    search.cv_results_["params"], search.cv_results_["mean_test_score"], strict=True
                )
            ],
        }
        logger.info(
            "Candidate %s: validation AP %.4f with %s",
            name,
            search.best_score_,
            results[name]["best_params"],
        )
        best_pipe = clone(pipe).set_params(**best)
        predictions.append(_out_of_fold(name, best_pipe, development, inputs, folds))
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


def _average_precision(development: pd.DataFrame) -> Any:
    """The search's score: average precision, weighted by ``sample_weight`` when the
    development rows carry it (the search passes validation rows with their index,
    which is their position in ``development``)."""
    if SAMPLE_WEIGHT not in development.columns:
        return "average_precision"
    weights = pd.Series(sample_weights(development), index=development.index)

    def weighted_average_precision(estimator: Any, features: pd.DataFrame, y: np.ndarray):
        return average_precision_score(
            y,
            positive_scores(estimator, features),
            sample_weight=weights.loc[features.index].to_numpy(),
        )

    return weighted_average_precision


def _baseline_pipeline(p: TrainingParams):
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def _out_of_fold(
    name: str, pipe: Any, development: pd.DataFrame, inputs: list[str], folds: list
) -> pd.DataFrame:
    y = development[schema.LABEL].astype(int).to_numpy()
    weights = sample_weights(development)
    parts = []
    for k, (tr, va) in enumerate(folds):
        model = clone(pipe).fit(development.iloc[tr][inputs], y[tr])
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
                    "score": positive_scores(model, development.iloc[va][inputs]),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


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
    features = list(pipe.named_steps["select"].selected_features_)
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
