"""XGBoost trained in Spark (``xgboost.spark.SparkXGBClassifier``) on the whole
development table, for development sets too big for the driver
(``params:training.engine: spark``).

The candidate is trained on the Spark feature table before the driver's training
reduction, on the numeric model inputs of ``params:features`` (the amount and the
computed features, assembled with ``VectorAssembler``; the categorical columns are
left out: one-hot encoding them in Spark would be a second encoding to keep equal to
the model pipeline's). Every row has weight 1 (nothing is sampled); the class
imbalance is handled by ``scale_pos_weight`` (genuine-to-fraud ratio of the training
rows) when ``class_weight`` is set.

Validation is the most recent prequential fold (fold 0 of the split plan): the model
is fitted on that fold's training window, scores its validation window in Spark, and
only the validation rows' ids, labels and scores reach the driver, where the usual
threshold code chooses the decision threshold. The final model is then fitted on the
final training window, like the driver's candidates, and turned into a driver-side
scikit-learn pipeline (``select`` -> ``preprocess`` -> ``classifier``, an
``xgboost.XGBClassifier`` holding the trained booster), so evaluation, packaging,
the registry, promotion and the real-time scorer treat it as any other candidate.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.metrics import average_precision_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from fraud_detection import schema
from fraud_detection.features import build_spec, numeric_feature_names
from fraud_detection.params import StrictParams
from fraud_detection.spark.splits import _DAY, _ts, _with_day, known_compromised_spark

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

logger = logging.getLogger(__name__)

CLASSIFIER = "xgboost.spark.SparkXGBClassifier"
_FEATURES = "_features"
_LABEL = "_label"


class SparkXGBoostParams(StrictParams):
    """Typed ``params:training.spark`` (defaults in ``conf/base/parameters_training.yml``)."""

    group: ClassVar[str] = "training.spark"

    name: str = Field(min_length=1)
    num_workers: int = Field(ge=1)
    class_weight: bool
    params: dict[str, Any]


class SelectedColumns(TransformerMixin, BaseEstimator):
    """Picks the model's input columns (the ``select`` step of the other candidates,
    without a fitted selection: Spark trained on these columns)."""

    def __init__(self, columns: list[str] | None = None):
        self.columns = columns

    def fit(self, X: pd.DataFrame, y: Any = None) -> SelectedColumns:
        self.selected_features_ = list(self.columns or [])
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return X[self.selected_features_]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(self.selected_features_, dtype=object)


def _as_float(frame: pd.DataFrame) -> np.ndarray:
    return frame.to_numpy(dtype=np.float64, na_value=np.nan)


def driver_pipeline(booster: Any, inputs: list[str], sample: pd.DataFrame) -> Pipeline:
    """A fitted scikit-learn pipeline scoring pandas rows with ``booster``.

    Args:
        booster: The ``xgboost.Booster`` trained in Spark on ``inputs`` in that order.
        inputs: The model's input columns.
        sample: A few rows with those columns (fits the column steps, which learn
            nothing but the names).
    """
    from xgboost import XGBClassifier

    classifier = XGBClassifier()
    classifier.load_model(bytearray(booster.save_raw("json")))
    select = SelectedColumns(inputs).fit(sample)
    preprocess = ColumnTransformer(
        [
            (
                "numeric",
                FunctionTransformer(_as_float, feature_names_out="one-to-one"),
                list(inputs),
            )
        ],
        verbose_feature_names_out=False,
    ).fit(sample[inputs])
    return Pipeline([("select", select), ("preprocess", preprocess), ("classifier", classifier)])


def _model_inputs(features: DataFrame, feature_params: dict[str, Any]) -> list[str]:
    inputs = numeric_feature_names(build_spec(feature_params))
    missing = [c for c in inputs if c not in features.columns]
    if missing:
        raise ValueError(
            f"The Spark feature table lacks the model input column(s) {missing} of "
            "params:features: re-run feature_engineering with these parameters"
        )
    return inputs


def _window(frame: DataFrame, start: str, end: str) -> DataFrame:
    from pyspark.sql import functions as F

    day = F.col(_DAY)
    return frame.filter((day >= _ts(start)) & (day < _ts(end)))


def _prepared(features: DataFrame, inputs: list[str]) -> DataFrame:
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import functions as F

    labelled = _with_day(features).filter(F.col(schema.LABEL).isNotNull())
    numeric = labelled.select(
        schema.TRANSACTION_ID,
        schema.CUSTOMER_ID,
        _DAY,
        schema.LABEL,
        F.col(schema.LABEL).cast("double").alias(_LABEL),
        *[F.col(c).cast("double").alias(c) for c in inputs],
    )
    assembler = VectorAssembler(inputCols=inputs, outputCol=_FEATURES, handleInvalid="keep")
    return assembler.transform(numeric)


def _fit(train: DataFrame, p: SparkXGBoostParams) -> tuple[Any, float | None]:
    from pyspark.sql import functions as F
    from xgboost.spark import SparkXGBClassifier

    extra: dict[str, Any] = {}
    scale_pos_weight = None
    if p.class_weight:
        counts = train.agg(
            F.sum(F.col(_LABEL)).alias("frauds"), F.count(F.lit(1)).alias("rows")
        ).first()
        frauds = float(counts["frauds"] or 0.0)
        scale_pos_weight = (counts["rows"] - frauds) / max(frauds, 1.0)
        extra["scale_pos_weight"] = scale_pos_weight
    classifier = SparkXGBClassifier(
        features_col=_FEATURES,
        label_col=_LABEL,
        num_workers=p.num_workers,
        **{**p.params, **extra},
    )
    return classifier.fit(train), scale_pos_weight


def spark_scores(model: Any, rows: DataFrame) -> DataFrame:
    """``rows`` with a ``score`` column: the fraud probability the Spark model gives."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    return model.transform(rows).withColumn(
        "score", vector_to_array(F.col(model.getOrDefault("probabilityCol")))[1]
    )


def train_spark_xgboost(
    features: DataFrame,
    plan: dict[str, Any],
    params: SparkXGBoostParams | dict[str, Any],
    feature_params: dict[str, Any],
) -> dict[str, Any]:
    """Trains the Spark XGBoost candidate (see the module's docstring).

    Args:
        features: The Spark feature table (every row, before the training reduction).
        plan: The split plan (``split_plan``): the fold and final training windows.
        params: ``params:training.spark``.
        feature_params: ``params:features`` (which columns are the model inputs).

    Returns:
        ``search_results``, ``validation_predictions`` and ``trained_candidates``
        entries of the candidate, in the shapes of the driver's candidates.
    """
    p = params if isinstance(params, SparkXGBoostParams) else SparkXGBoostParams.from_dict(params)
    inputs = _model_inputs(features, feature_params)
    table = _prepared(features, inputs)
    fold = next(f for f in plan["folds"] if int(f["fold"]) == 0)
    fold_train = _window(table, fold["train_start"], fold["train_end"])
    valid = _window(table, fold["valid_start"], fold["valid_end"])
    if plan.get("remove_known_compromised", True):
        history = _window(table, fold["train_start"], fold["valid_end"])
        flagged = history.withColumn(
            "_compromised",
            known_compromised_spark(
                history,
                pd.Timestamp(fold["train_start"]),
                pd.Timestamp(fold["valid_start"]),
                plan["delay_days"],
            ),
        )
        valid = _window(flagged, fold["valid_start"], fold["valid_end"])
        valid = valid.filter(~valid["_compromised"]).drop("_compromised")
    model, fold_weight = _fit(fold_train, p)
    scored = (
        spark_scores(model, valid)
        .select(schema.TRANSACTION_ID, _LABEL, "score")
        .orderBy(schema.TRANSACTION_ID)
        .toPandas()
    )
    labels = scored[_LABEL].astype(int).to_numpy()
    if len(np.unique(labels)) < 2:
        raise ValueError(
            f"The Spark candidate's validation fold 0 has a single class ({len(labels)} rows): "
            "use longer folds in params:split"
        )
    ap = float(average_precision_score(labels, scored["score"].to_numpy(float)))
    validation = pd.DataFrame(
        {
            "candidate": p.name,
            "fold": 0,
            schema.TRANSACTION_ID: scored[schema.TRANSACTION_ID].to_numpy(),
            "label": labels,
            "weight": 1.0,
            "score": scored["score"].to_numpy(float),
        }
    )
    final_train = _window(table, plan["train_start"], plan["train_end"])
    final, scale_pos_weight = _fit(final_train, p)
    sample = final_train.select(*inputs).limit(5).toPandas()
    pipeline = driver_pipeline(final.get_booster(), inputs, sample)
    described = {**p.params, "num_workers": p.num_workers}
    if scale_pos_weight is not None:
        described["scale_pos_weight"] = scale_pos_weight
    logger.info(
        "Spark candidate %s: validation AP %.4f on fold 0 (%d rows, scale_pos_weight %s)",
        p.name,
        ap,
        len(validation),
        fold_weight,
    )
    return {
        "search_results": {
            p.name: {
                "classifier": CLASSIFIER,
                "engine": "spark",
                "features": inputs,
                "best_params": described,
                "validation_average_precision": ap,
                # One validation fold: no spread over folds to report.
                "validation_average_precision_std": None,
                "validation_folds": [0],
                "tried": [{"params": described, "mean_ap": ap}],
            }
        },
        "validation_predictions": validation,
        "trained_candidates": {p.name: {"pipeline": pipeline, "inputs": inputs}},
    }
