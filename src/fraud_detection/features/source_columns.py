"""Your own columns as model inputs: extra source columns declared in parameters.

Bring-your-own tables often carry columns beyond the canonical schema (customer age,
merchant location, device, MCC). ``add_source_columns`` copies the ones that
``params:source_columns`` declares into the feature table, as numeric or categorical
model inputs, and derives distances between coordinate pairs (home to merchant). Every
such input is named ``src_<name>``, so the model search finds it (``source_inputs``)
and nobody mistakes it for a point-in-time feature.

The leakage guard refuses, with an error naming the column and the reason:

- a column on the deny list (``deny``: the simulator's ``fraud_scenario`` and other
  columns written after the fact, such as chargeback or case status), or the label or
  an id column;
- a column (or derived distance) that predicts the label perfectly on the labelled
  rows of the training window (every row the validation folds and the final model
  train or validate on): a categorical whose every value has a single label, or a
  numeric column with a threshold that separates frauds from genuine rows.

Values are copied as they are in the source row (no history is read), so they carry
no future information by themselves; whether the column was known at payment time is
the data owner's call, which the deny list records.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from fraud_detection import schema
from fraud_detection.params import StrictParams

logger = logging.getLogger(__name__)

PREFIX = "src_"
# Never model inputs, whatever the parameters say.
ALWAYS_DENIED = (
    schema.LABEL,
    schema.TRANSACTION_ID,
    schema.TIMESTAMP,
    schema.CUSTOMER_ID,
    schema.TERMINAL_ID,
)
EARTH_RADIUS_KM = 6371.0088


class DistanceSpec(StrictParams):
    """A derived distance between two coordinate pairs of the source row."""

    name: str = Field(min_length=1)
    from_columns: tuple[str, str]
    to_columns: tuple[str, str]
    metric: Literal["euclidean", "haversine"]  # haversine: (latitude, longitude) in km


class SourceColumnParams(StrictParams):
    """Typed ``params:source_columns`` (defaults in
    ``conf/base/parameters_feature_engineering.yml``)."""

    group: ClassVar[str] = "source_columns"

    numeric: list[str]
    categorical: list[str]
    distances: list[DistanceSpec]
    missing_numeric: float
    deny: list[str]

    @property
    def declares_any(self) -> bool:
        return bool(self.numeric or self.categorical or self.distances)


def source_inputs(features: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The declared source columns of a feature table, as (numeric, categorical)."""
    columns = [c for c in features.columns if c.startswith(PREFIX)]
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(features[c])]
    return numeric, [c for c in columns if c not in numeric]


def _distance(source: pd.DataFrame, spec: DistanceSpec) -> pd.Series:
    (x1, y1), (x2, y2) = (
        [pd.to_numeric(source[c], errors="coerce") for c in spec.from_columns],
        [pd.to_numeric(source[c], errors="coerce") for c in spec.to_columns],
    )
    if spec.metric == "euclidean":
        return np.sqrt((x1 - x2) ** 2 + (y1 - y2) ** 2)
    lat1, lon1, lat2, lon2 = (np.radians(v) for v in (x1, y1, x2, y2))
    a = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a.clip(0, 1)))


def perfectly_predictive(values: pd.Series, labels: pd.Series) -> str | None:
    """Why ``values`` give ``labels`` away on these rows, or ``None``.

    Both classes must be present for a column to be able to predict them.
    """
    labels = labels.astype(int)
    if labels.nunique() < 2:
        return None
    if pd.api.types.is_numeric_dtype(values):
        fraud, genuine = values[labels == 1], values[labels == 0]
        if fraud.min() > genuine.max() or fraud.max() < genuine.min():
            return "a threshold on it separates every fraud from every genuine transaction"
        return None
    classes = labels.groupby(values.astype(str).to_numpy()).nunique()
    if (classes == 1).all():
        return f"each of its {len(classes)} values occurs with a single label"
    return None


def _check_declared(source: pd.DataFrame, p: SourceColumnParams) -> None:
    declared = [*p.numeric, *p.categorical]
    for spec in p.distances:
        declared += [*spec.from_columns, *spec.to_columns]
    denied = {*ALWAYS_DENIED, *p.deny}
    for column in declared:
        if column in denied:
            raise ValueError(
                f"Source column {column!r} is refused as a model input: it is on the deny "
                "list (params:source_columns.deny, or the label and id columns), as it gives "
                "the label away or identifies the row"
            )
    missing = sorted({c for c in declared if c not in source.columns})
    if missing:
        extra = sorted(set(source.columns) - set(schema.COLUMN_NAMES))
        raise ValueError(
            f"params:source_columns declares column(s) {missing} that the validated "
            f"transactions do not have; their extra columns are {extra}"
        )
    twice = sorted({c for c in declared if p.numeric.count(c) + p.categorical.count(c) > 1})
    if twice or set(p.numeric) & set(p.categorical):
        raise ValueError(
            f"Source column(s) {sorted(set(p.numeric) & set(p.categorical)) or twice} are "
            "declared more than once in params:source_columns"
        )


def add_source_columns(
    features: pd.DataFrame,
    transactions: pd.DataFrame,
    params: dict[str, Any],
    training_window: tuple[pd.Timestamp, pd.Timestamp] | None,
) -> pd.DataFrame:
    """The feature table with the declared source columns as ``src_<name>`` inputs.

    Args:
        features: ``create_features`` output (one row per transaction).
        transactions: The validated transactions, with their extra columns.
        params: ``params:source_columns``.
        training_window: ``[start, end)`` of the labelled rows that train and
            validate the models; the leakage guard checks there. ``None``: every
            labelled row.

    Returns:
        ``features`` unchanged when nothing is declared; else a new frame with the
        source columns appended (numeric missing values set to ``missing_numeric``,
        categorical ones to ``"missing"``).

    Raises:
        ValueError: A declared column is missing, denied, or gives the label away.
    """
    p = SourceColumnParams.from_dict(params)
    if not p.declares_any:
        return features
    _check_declared(transactions, p)
    source = transactions.drop_duplicates(schema.TRANSACTION_ID).set_index(schema.TRANSACTION_ID)
    source = source.reindex(features[schema.TRANSACTION_ID].to_numpy())
    added: dict[str, pd.Series] = {}
    for column in p.numeric:
        values = pd.to_numeric(source[column], errors="coerce")
        bad = int((values.isna() & source[column].notna()).sum())
        if bad:
            raise ValueError(
                f"Source column {column!r} is declared numeric but {bad} value(s) are not "
                f"numbers (e.g. {source[column][values.isna() & source[column].notna()].iloc[0]!r})"
            )
        added[PREFIX + column] = values.astype(float)
    for spec in p.distances:
        added[PREFIX + spec.name] = _distance(source, spec).astype(float)
    for column in p.categorical:
        added[PREFIX + column] = source[column].astype("string").fillna("missing").astype(object)
    frame = pd.DataFrame(added).reset_index(drop=True)
    labels = features[schema.LABEL].reset_index(drop=True)
    mask = labels.notna()
    if training_window is not None:
        day = features[schema.TIMESTAMP].dt.floor("D").reset_index(drop=True)
        mask &= (day >= training_window[0]) & (day < training_window[1])
    for name, values in frame.items():
        reason = perfectly_predictive(values[mask].dropna(), labels[mask][values[mask].notna()])
        if reason is not None:
            raise ValueError(
                f"Source column {name.removeprefix(PREFIX)!r} is refused as a model input: "
                f"on the {int(mask.sum()):,} labelled rows of the training window {reason}, "
                "which means it gives the label away (add it to params:source_columns.deny "
                "or drop it from the declared columns)"
            )
    for name in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[name]):
            frame[name] = frame[name].fillna(p.missing_numeric)
    clash = sorted(set(frame.columns) & set(features.columns))
    if clash:
        raise ValueError(f"Source columns {clash} clash with feature columns of the same name")
    logger.info("Source columns as model inputs: %s", list(frame.columns))
    return pd.concat([features.reset_index(drop=True), frame], axis=1)
