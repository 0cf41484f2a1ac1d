"""The model as one artifact: feature selection, preprocessing, resampling, classifier.

``build_model_pipeline`` assembles the imbalanced-learn pipeline that training searches
over; ``FraudModel`` wraps the fitted pipeline with its decision threshold for MLflow,
so the registry serves exactly what was evaluated.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline as ImbPipeline
from imblearn.under_sampling import RandomUnderSampler
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.feature_selection import mutual_info_classif
from sklearn.preprocessing import OneHotEncoder, StandardScaler

logger = logging.getLogger(__name__)

RESAMPLING_STRATEGIES = ("none", "smote", "undersample", "class_weight")


class CorrelationMISelector(TransformerMixin, BaseEstimator):
    """Keeps informative, non-redundant numeric features; passes categoricals through.

    Fitted on training rows only: numeric features are ranked by mutual information
    with the label (estimated on quantile bins, which is fast and robust to the heavy
    tails of amounts and counts), a feature is dropped when its absolute Pearson correlation with a
    better-ranked kept feature exceeds ``max_correlation``, and at most ``top_k``
    numeric features are kept (all when ``None``).
    """

    def __init__(  # noqa: PLR0917 (scikit-learn estimators take keyword defaults)
        self,
        numeric: list[str] | None = None,
        categorical: list[str] | None = None,
        max_correlation: float = 0.95,
        top_k: int | None = None,
        mi_sample_size: int = 20_000,
        mi_bins: int = 20,
        random_state: int = 0,
    ):
        self.numeric = numeric
        self.categorical = categorical
        self.max_correlation = max_correlation
        self.top_k = top_k
        self.mi_sample_size = mi_sample_size
        self.mi_bins = mi_bins
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: Any = None) -> CorrelationMISelector:
        numeric = list(self.numeric or [])
        y_arr = np.asarray(y)
        rng = np.random.default_rng(self.random_state)
        idx = np.arange(len(X))
        if len(idx) > self.mi_sample_size:
            idx = np.sort(rng.choice(idx, self.mi_sample_size, replace=False))
        sample = X.iloc[idx][numeric]
        # Rank-based bins: ties (e.g. many zero counts) share a bin.
        binned = (
            np.column_stack(
                [
                    pd.qcut(
                        sample[c].rank(method="dense"),
                        self.mi_bins,
                        labels=False,
                        duplicates="drop",
                    )
                    for c in numeric
                ]
            )
            if numeric
            else np.empty((len(idx), 0))
        )
        mi = mutual_info_classif(
            binned, y_arr[idx], discrete_features=True, random_state=self.random_state
        )
        self.mutual_information_ = dict(zip(numeric, mi.tolist(), strict=True))
        ranked = [numeric[i] for i in np.argsort(-mi, kind="stable")]
        corr = X[numeric].corr().abs().fillna(0.0)
        kept: list[str] = []
        for name in ranked:
            if self.top_k is not None and len(kept) >= self.top_k:
                break
            if all(corr.at[name, other] <= self.max_correlation for other in kept):
                kept.append(name)
        self.selected_numeric_ = kept
        self.selected_features_ = kept + list(self.categorical or [])
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return X[self.selected_features_]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(self.selected_features_, dtype=object)


def import_class(path: str) -> type:
    """Imports ``package.module.Class`` named in the parameters."""
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(
            f"Cannot import classifier {path!r} named in params:training: {exc}"
        ) from exc


def build_model_pipeline(
    classifier: BaseEstimator,
    numeric: list[str],
    categorical: list[str],
    selection: dict[str, Any],
    random_state: int = 0,
) -> ImbPipeline:
    """The searched pipeline: select -> preprocess -> resample -> classifier."""
    preprocess = ColumnTransformer(
        [
            ("numeric", StandardScaler(), make_column_selector(dtype_include=np.number)),
            (
                "categorical",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist", min_frequency=20, sparse_output=False
                ),
                make_column_selector(dtype_exclude=np.number),
            ),
        ],
        verbose_feature_names_out=False,
    )
    return ImbPipeline(
        [
            (
                "select",
                CorrelationMISelector(numeric, categorical, random_state=random_state, **selection),
            ),
            ("preprocess", preprocess),
            ("resample", "passthrough"),
            ("classifier", classifier),
        ]
    )


def resampling_grid(
    strategy: str, classifier_path: str, scale_pos_weight: float, random_state: int
) -> dict[str, list[Any]]:
    """Search-space entries that implement one resampling strategy."""
    if strategy == "none":
        return {"resample": ["passthrough"]}
    if strategy == "smote":
        return {"resample": [SMOTE(random_state=random_state)]}
    if strategy == "undersample":
        return {"resample": [RandomUnderSampler(random_state=random_state)]}
    if strategy == "class_weight":
        if classifier_path.startswith("xgboost."):
            return {"resample": ["passthrough"], "classifier__scale_pos_weight": [scale_pos_weight]}
        return {"resample": ["passthrough"], "classifier__class_weight": ["balanced"]}
    raise ValueError(
        f"Unknown resampling strategy {strategy!r}; expected one of {RESAMPLING_STRATEGIES}"
    )


def describe_params(params: dict[str, Any]) -> dict[str, Any]:
    """Search parameters as plain, loggable values (estimators by class name)."""
    out = {}
    for key, value in params.items():
        if isinstance(value, BaseEstimator):
            out[key] = type(value).__name__
        elif isinstance(value, np.generic):
            out[key] = value.item()
        else:
            out[key] = value
    return out


def positive_scores(model: Any, features: pd.DataFrame) -> np.ndarray:
    """Fraud probability of every row."""
    return model.predict_proba(features)[:, 1]


class FraudModel(mlflow.pyfunc.PythonModel):
    """The registered model: a fitted pipeline plus its decision threshold.

    ``predict`` takes rows of ``create_features`` output and returns the fraud score
    and the decision at the threshold chosen on validation data. ``training_window``
    (``{"start", "end"}``, end exclusive) is the labelled period the pipeline was fitted
    on; the model dataset records it as tags of the MLflow run, where promotion reads it.
    """

    def __init__(  # noqa: PLR0917
        self,
        pipeline: ImbPipeline,
        threshold: float,
        input_columns: list[str],
        name: str,
        training_window: dict[str, str] | None = None,
    ):
        self.pipeline = pipeline
        self.threshold = float(threshold)
        self.input_columns = list(input_columns)
        self.name = name
        self.training_window = dict(training_window) if training_window else None

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        missing = [c for c in self.input_columns if c not in model_input.columns]
        if missing:
            raise ValueError(f"Model input lacks feature column(s) {missing}")
        scores = positive_scores(self.pipeline, model_input[self.input_columns])
        return pd.DataFrame(
            {"score": scores, "decision": (scores >= self.threshold).astype("int64")}
        )


class MeanEnsemble:
    """Fitted model pipelines as one model: the mean of their fraud scores.

    Built from already fitted members (training's ``ensemble`` candidate); each member
    reads its own columns of the rows it is given (its ``select`` step picks them), so
    the ensemble takes the union of their inputs.
    """

    def __init__(self, members: dict[str, Any]):
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two members, got {list(members)}")
        self.members = dict(members)
        self.classes_ = np.array([0, 1])

    @property
    def selected_features_(self) -> list[str]:
        """The model inputs any member uses, in member order."""
        names: dict[str, None] = {}
        for member in self.members.values():
            names.update(dict.fromkeys(member.named_steps["select"].selected_features_))
        return list(names)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        score = np.mean([positive_scores(m, features) for m in self.members.values()], axis=0)
        return np.column_stack([1.0 - score, score])


def feature_importance(pipeline: Any) -> pd.Series:
    """Importance per model input: impurity/gain importances for trees, absolute
    coefficients (on standardised inputs) for linear models; for an ensemble, the mean
    over its members of each member's importances scaled to sum to one."""
    if isinstance(pipeline, MeanEnsemble):
        shares = [feature_importance(m) for m in pipeline.members.values()]
        shares = [s / s.sum() if s.sum() > 0 else s for s in shares]
        mean = pd.concat(shares, axis=1).fillna(0.0).mean(axis=1)
        return mean.sort_values(ascending=False)
    classifier = pipeline.named_steps["classifier"]
    names = pipeline.named_steps["preprocess"].get_feature_names_out()
    return pd.Series(_importances(classifier, len(names)), index=names).sort_values(ascending=False)


def _importances(classifier: Any, n_columns: int) -> np.ndarray:
    """One importance per model-matrix column: the classifier's own (trees), its
    absolute coefficients (linear), or for a bagging ensemble (e.g. imbalanced-learn's
    ``BalancedBaggingClassifier``) the mean over its members of their importances, each
    on the columns that member was given."""
    if hasattr(classifier, "feature_importances_"):
        return np.asarray(classifier.feature_importances_, dtype=np.float64)
    if hasattr(classifier, "coef_"):
        return np.abs(np.ravel(classifier.coef_))
    members = getattr(classifier, "estimators_", None)
    columns = getattr(classifier, "estimators_features_", None)
    if members is not None and columns is not None:
        total = np.zeros(n_columns)
        for member, used in zip(members, columns, strict=True):
            final = member.steps[-1][1] if hasattr(member, "steps") else member
            total[np.asarray(used)] += _importances(final, len(used))
        return total / max(len(members), 1)
    raise ValueError(
        f"{type(classifier).__name__} gives no feature importances, coefficients or "
        "bagged members with importances"
    )
