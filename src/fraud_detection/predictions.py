"""The champion's predictions for a table of transactions, in pandas or in Spark.

Batch scoring serves back-fills (a period scored with the model that is champion now)
and re-scoring after a promotion. The rows to score are those of a time window; their
features are computed with ``create_features`` over the window plus the history they
read (``feature_horizon`` before its first row), so they are the features the
real-time scorer computes for the same rows. Each prediction names the model version
that produced it and the threshold behind its decision.

Two engines, one contract (``PREDICTION_COLUMNS``):

- pandas (:func:`features_to_score`, :func:`predict`): the pyfunc model's ``predict``;
- Spark (:func:`spark_features_to_score`, :func:`spark_predict`), for tables past one
  machine: ``mlflow.pyfunc.spark_udf`` over a Spark DataFrame, pinned to the same
  model version. pyspark is imported only here, when a Spark DataFrame arrives.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import AfterValidator, model_validator

from fraud_detection import schema
from fraud_detection.features import FeatureParams, create_features, feature_horizon
from fraud_detection.params import IsoDate, StrictParams

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkDataFrame

logger = logging.getLogger(__name__)

SCORE = "score"
DECISION = "decision"
THRESHOLD = "threshold"
MODEL_NAME = "model_name"
MODEL_VERSION = "model_version"
# One row per scored transaction (pandas: in time order), with these columns.
PREDICTION_COLUMNS = [
    schema.TRANSACTION_ID,
    schema.TIMESTAMP,
    schema.CUSTOMER_ID,
    schema.TERMINAL_ID,
    schema.AMOUNT,
    SCORE,
    DECISION,
    THRESHOLD,
    MODEL_NAME,
    MODEL_VERSION,
]
# What the Spark UDF returns per row: FraudModel.predict's columns.
_UDF_RESULT = f"{SCORE} double, {DECISION} long"


def _timestamp(text: str) -> str:
    try:
        pd.Timestamp(text)
    except ValueError as exc:
        raise ValueError(f"invalid timestamp {text!r} (use e.g. '2025-03-01T00:00:00')") from exc
    return text


Timestamp = Annotated[IsoDate, AfterValidator(_timestamp)]


class BatchScoringParams(StrictParams):
    """Typed ``params:batch_scoring`` (defaults in ``conf/base/parameters_batch_scoring.yml``).

    Rows with ``start <= timestamp < end`` are scored; a null bound leaves that side open.
    """

    group: ClassVar[str] = "batch_scoring"

    start: Timestamp | None
    end: Timestamp | None

    @model_validator(mode="after")
    def _ordered(self) -> BatchScoringParams:
        if self.start and self.end and pd.Timestamp(self.start) >= pd.Timestamp(self.end):
            raise ValueError(f"start {self.start} must be before end {self.end}")
        return self

    def describe(self) -> str:
        return f"[{self.start or 'first row'}, {self.end or 'last row'}]"


@dataclass(frozen=True)
class Champion:
    """The model version that scores, as ``MlflowChampionDataset`` loads it."""

    name: str
    version: str
    run_id: str | None
    model: Any  # mlflow.pyfunc.PyFuncModel

    @classmethod
    def from_loaded(cls, loaded: dict[str, Any] | None) -> Champion:
        """From the catalog's ``current_champion``; fails when there is none yet."""
        if loaded is None:
            raise ValueError(
                "There is no champion model to score with yet: run the training flow "
                "(kedro run) first, or point MLFLOW_TRACKING_URI at the registry that has one"
            )
        return cls(
            name=str(loaded["name"]),
            version=str(loaded["version"]),
            run_id=loaded.get("run_id"),
            model=loaded["model"],
        )

    @property
    def uri(self) -> str:
        """``models:/<name>/<version>``: the version itself, even if the alias moves."""
        return f"models:/{self.name}/{self.version}"

    @property
    def _python_model(self) -> Any:
        unwrap = getattr(self.model, "unwrap_python_model", None)
        try:
            return unwrap() if unwrap is not None else None
        except Exception:  # noqa: BLE001 (a pyfunc of another flavour has no python model)
            return None

    @property
    def threshold(self) -> float:
        """The decision threshold the model applies (NaN when it does not say)."""
        value = getattr(self._python_model, "threshold", None)
        return float("nan") if value is None else float(value)

    @property
    def input_columns(self) -> list[str]:
        """The feature columns the model reads: the model's own list, else its signature."""
        columns = getattr(self._python_model, "input_columns", None)
        if columns:
            return list(columns)
        signature = getattr(getattr(self.model, "metadata", None), "get_input_schema", None)
        schema_ = signature() if signature is not None else None
        if schema_ is not None and schema_.has_input_names():
            return list(schema_.input_names())
        raise ValueError(
            f"{self.name} version {self.version} names no input columns (no input_columns "
            "attribute, no signature): cannot select its features"
        )


# ------------------------------------------------------------------ pandas --


def features_to_score(
    transactions: pd.DataFrame, feature_params: dict[str, Any], params: dict[str, Any]
) -> pd.DataFrame:
    """``create_features`` rows of the transactions in the scoring window.

    The features are computed over the window and the ``feature_horizon`` of history
    before its first row, taken from ``transactions`` itself; rows after the window
    are not read (features only look back).

    Raises:
        ValueError: When the table is empty or no row falls in the window.
    """
    p = BatchScoringParams.from_dict(params)
    horizon = feature_horizon(FeatureParams.from_dict(feature_params))
    if transactions.empty:
        raise ValueError("batch_scoring_transactions is empty: nothing to score")
    ts = transactions[schema.TIMESTAMP]
    in_window = _window_mask(ts, p)
    if not in_window.any():
        raise ValueError(
            f"No transaction in the scoring window {p.describe()}: the table covers "
            f"{ts.min()} to {ts.max()} (params:batch_scoring.start/end)"
        )
    first = ts[in_window].min()
    history = (ts >= first - horizon) & (ts < first)
    features = create_features(transactions[in_window | history], feature_params)
    window = features[_window_mask(features[schema.TIMESTAMP], p)].reset_index(drop=True)
    logger.info(
        "Scoring window %s: %d transactions (%d rows of history before them)",
        p.describe(),
        len(window),
        int(history.sum()),
    )
    return window


def _window_mask(ts: pd.Series, p: BatchScoringParams) -> pd.Series:
    mask = pd.Series(True, index=ts.index)
    if p.start:
        mask &= ts >= pd.Timestamp(p.start)
    if p.end:
        mask &= ts < pd.Timestamp(p.end)
    return mask


def predict(features: pd.DataFrame, champion: Champion) -> pd.DataFrame:
    """The champion's score and decision for every feature row (``PREDICTION_COLUMNS``).

    Raises:
        ValueError: When the model reads a feature column the rows lack.
    """
    _check_columns(list(features.columns), champion)
    out = champion.model.predict(features[champion.input_columns])
    predictions = features[PREDICTION_COLUMNS[:5]].copy()
    predictions[SCORE] = np.asarray(out[SCORE], dtype=np.float64)
    predictions[DECISION] = np.asarray(out[DECISION], dtype=np.int64)
    predictions[THRESHOLD] = champion.threshold
    predictions[MODEL_NAME] = champion.name
    predictions[MODEL_VERSION] = champion.version
    logger.info(
        "Scored %d transactions with %s version %s: %d flagged at threshold %.4g",
        len(predictions),
        champion.name,
        champion.version,
        int(predictions[DECISION].sum()),
        champion.threshold,
    )
    return predictions


def _check_columns(available: list[str], champion: Champion) -> None:
    missing = [c for c in champion.input_columns if c not in set(available)]
    if missing:
        raise ValueError(
            f"{champion.name} version {champion.version} reads feature column(s) {missing} "
            "that the features to score lack (trained with other params:features?)"
        )


# ------------------------------------------------------------------- Spark --


def is_spark(frame: Any) -> bool:
    """Whether ``frame`` is a Spark DataFrame (classic or Connect), without importing pyspark."""
    return type(frame).__module__.startswith("pyspark.")


def spark_features_to_score(
    transactions: SparkDataFrame, feature_params: dict[str, Any], params: dict[str, Any]
) -> SparkDataFrame:
    """:func:`features_to_score` on a Spark DataFrame of transactions.

    Timestamps read as long nanoseconds (pandas-written parquet read with
    ``spark.sql.legacy.parquet.nanosAsLong``) are converted to timestamps first.
    """
    from pyspark.sql import functions as F

    from fraud_detection.features.spark_engine import create_features_spark

    p = BatchScoringParams.from_dict(params)
    horizon = feature_horizon(FeatureParams.from_dict(feature_params))
    transactions = _with_timestamps(transactions)
    ts = F.col(schema.TIMESTAMP)
    in_window = _spark_window(ts, p)
    first = transactions.where(in_window).agg(F.min(ts).alias("first")).first()["first"]
    if first is None:
        raise ValueError(
            f"No transaction in the scoring window {p.describe()} "
            "(params:batch_scoring.start/end), or the table is empty"
        )
    history = (ts >= F.lit(pd.Timestamp(first) - horizon)) & (ts < F.lit(first))
    # The spec's Spark engine: the window and its history never reach the driver.
    features = create_features_spark(transactions.where(in_window | history), feature_params)
    return features.where(_spark_window(F.col(schema.TIMESTAMP), p))


def _with_timestamps(frame: SparkDataFrame) -> SparkDataFrame:
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType

    if isinstance(frame.schema[schema.TIMESTAMP].dataType, LongType):
        micros = F.floor(F.col(schema.TIMESTAMP) / 1000)
        return frame.withColumn(schema.TIMESTAMP, F.timestamp_micros(micros))
    return frame


def _spark_window(ts: Any, p: BatchScoringParams) -> Any:
    from pyspark.sql import functions as F

    condition = F.lit(True)
    if p.start:
        condition &= ts >= F.lit(pd.Timestamp(p.start))
    if p.end:
        condition &= ts < F.lit(pd.Timestamp(p.end))
    return condition


def spark_predict(features: SparkDataFrame, champion: Champion) -> SparkDataFrame:
    """:func:`predict` with ``mlflow.pyfunc.spark_udf``: the executors load the same
    model version (``champion.uri``) and score their partitions.

    The executors need the model's Python packages (this project's among them, since
    the model is a ``FraudModel``) and the driver's Python version:
    ``env_manager="local"`` uses the executors' own environment.
    """
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    udf = mlflow.pyfunc.spark_udf(
        features.sparkSession, champion.uri, result_type=_UDF_RESULT, env_manager="local"
    )
    _check_columns(features.columns, champion)
    prediction = udf(F.struct(*champion.input_columns))
    return features.select(
        *[F.col(c) for c in PREDICTION_COLUMNS[:5]],
        prediction[SCORE].alias(SCORE),
        prediction[DECISION].alias(DECISION),
        F.lit(champion.threshold).cast("double").alias(THRESHOLD),
        F.lit(champion.name).alias(MODEL_NAME),
        F.lit(champion.version).alias(MODEL_VERSION),
    )
