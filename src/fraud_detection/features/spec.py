"""``FeatureSpec``: the one declarative definition of the model's features.

Every engine (pandas for training and monitoring, the scorer's online engine, Spark
for data past one machine) reads this spec and nothing else to know which columns to
build: the entity keys, what is aggregated over which past windows, the label delay
and the formulas that turn window sums into features. Adding a feature means adding it
here (and its formula, if new, to every engine); the parity tests then check that each
engine's output columns equal :func:`feature_names` exactly.

The spec is built from the strict ``params:features`` model (:class:`FeatureParams`,
defaults in ``conf/base/parameters_feature_engineering.yml``) by :func:`build_spec`.

Window semantics (shared by all engines):

- ``count`` and ``amount`` aggregations: the key's rows with time in ``(t - w, t]``
  that arrived no later than the row itself (the current row included, as it is known
  at scoring time).
- ``fraud`` aggregations: the key's labelled rows with time in
  ``(t - delay - w, t - delay]``; rows whose label is unknown count in neither the
  number of labelled rows nor the frauds.

Derived formulas (``fraud_detection.features.pandas_engine`` holds them as numpy
functions every engine can call):

- ``amount``: the mean and sample std of the window's amounts (``nb_tx``, ``avg_amount``,
  ``std_amount`` per window); optionally the seconds since the key's previous row
  (capped at ``max_gap_days``; the cap for its first row) and, over the ``history``
  window, the amount's ratio to the mean (clipped to ``[0, ratio_cap]``) and its
  z-score (clipped to ``[-ratio_cap, ratio_cap]``, 0 when the std is 0).
- ``fraud``: the number of labelled rows and the fraud share (0 when there are none).
- ``count``: the number of rows (over a composite key such as (customer, country) it is
  a novelty count: how often the customer used this country before, plus one).

Writing an engine: clean the rows as ``cleanse`` does (time order, stable; categoricals
stripped, lower case, ``unknown`` when missing), start from ``passthrough_columns(spec)``,
add ``spec.temporal`` (``temporal_features``), then for each ``agg`` in
``spec.aggregations`` partition by ``agg.keys``, order by (time, arrival) and compute,
for each ``w`` in ``agg.windows`` (``w.ms``, ``w.delta``), the columns named by
``agg.count_column(w)``, ``agg.mean_column(w)`` ... in ``agg.columns()`` order.
Rows sharing a timestamp see only those that arrived before them. The output's columns
must be ``feature_names(spec)``; ``tests/features/parity.py`` (``assert_frames_match``)
compares an engine's table with ``create_features``: counts exactly, the rest to 1e-9.

Example::

    spec = build_spec(params["features"])
    spec.aggregation("terminal").columns()
    # ['terminal_nb_tx_1d', 'terminal_risk_1d', 'terminal_nb_tx_7d', ...]
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, ClassVar

import pandas as pd
from pydantic import AfterValidator, Field, field_validator

from fraud_detection import schema
from fraud_detection.params import StrictParams

ID_COLUMNS = [schema.TRANSACTION_ID, schema.TIMESTAMP, schema.CUSTOMER_ID, schema.TERMINAL_ID]

_MS = pd.Timedelta(milliseconds=1)


def _duration(text: str) -> str:
    """A pandas offset alias such as ``1h``, ``7D``; raises naming the bad value."""
    try:
        pd.Timedelta(text)
    except ValueError as exc:
        raise ValueError(f"invalid duration {text!r} (use e.g. '1h', '7D')") from exc
    return text


Duration = Annotated[str, AfterValidator(_duration)]


class FeatureParams(StrictParams):
    """Typed ``params:features`` (defaults in ``conf/base/parameters_feature_engineering.yml``)."""

    group: ClassVar[str] = "features"

    customer_windows: list[Duration] = Field(min_length=1)
    terminal_windows: list[Duration] = Field(min_length=1)
    terminal_activity_windows: list[Duration] = Field(min_length=1)
    category_risk_windows: list[Duration] = Field(min_length=1)
    # Optional: the terminal's amounts (count, mean, std per window; the amount against
    # the last window's mean and std). Empty: none.
    terminal_amount_windows: list[Duration] = Field(default_factory=list)
    novelty_window: Duration
    # Optional: the customer's amounts at this terminal over the novelty window and the
    # seconds since the customer's previous transaction there (customer-terminal recency).
    customer_terminal_recency: bool = False
    label_delay: Duration
    night_until_hour: int = Field(ge=0, le=23)
    max_gap_days: float = Field(gt=0)
    ratio_cap: float = Field(gt=0)

    @field_validator("label_delay")
    @classmethod
    def _positive_delay(cls, value: str) -> str:
        if pd.Timedelta(value) <= pd.Timedelta(0):
            raise ValueError("label_delay must be positive so that current labels never leak")
        return value


class Measure(StrEnum):
    """What an aggregation sums over its windows."""

    COUNT = "count"  # rows
    AMOUNT = "amount"  # rows, amounts and squared amounts (mean and std)
    FRAUD = "fraud"  # labelled rows and frauds, over windows ending ``delay`` ago


@dataclass(frozen=True, slots=True)
class Window:
    """A past window: its text as configured (``'7D'``), its length and name suffix."""

    text: str

    @property
    def delta(self) -> pd.Timedelta:
        return pd.Timedelta(self.text)

    @property
    def ms(self) -> int:
        return int(self.delta // _MS)

    @property
    def suffix(self) -> str:
        """'1D' -> '1d', '30D' -> '30d', '1h' -> '1h': stable feature-name suffixes."""
        return window_suffix(self.text)


@dataclass(frozen=True, slots=True)
class Aggregation:
    """Window aggregates of one entity (one key column or several forming one key).

    Attributes:
        name: Prefix of the output columns (``customer``, ``terminal``, ...).
        keys: The key columns, in the cleaned transaction schema.
        measure: What is summed over each window.
        windows: The window lengths, in output order.
        delay: For ``fraud``: how old a label must be to count (the label delay).
        since_previous: For ``amount``: add the seconds since the key's previous row.
        history: For ``amount``: the window whose mean and std the row's amount is
            compared with (ratio and z-score); one of ``windows``.
    """

    name: str
    keys: tuple[str, ...]
    measure: Measure
    windows: tuple[Window, ...]
    delay: Window | None = None
    since_previous: bool = False
    history: Window | None = None

    def __post_init__(self) -> None:
        if (self.delay is not None) != (self.measure is Measure.FRAUD):
            raise ValueError(f"aggregation {self.name!r}: a delay goes with 'fraud' windows only")
        if (self.since_previous or self.history) and self.measure is not Measure.AMOUNT:
            raise ValueError(f"aggregation {self.name!r}: history features need 'amount'")
        if self.history is not None and self.history not in self.windows:
            raise ValueError(f"aggregation {self.name!r}: history window not among its windows")

    @property
    def reach(self) -> pd.Timedelta:
        """How far back before a row this aggregation reads (longest window + delay)."""
        longest = max(w.delta for w in self.windows)
        return longest + (self.delay.delta if self.delay else pd.Timedelta(0))

    # Column names: the only place they are spelled.
    def count_column(self, window: Window) -> str:
        return f"{self.name}_nb_tx_{window.suffix}"

    def mean_column(self, window: Window) -> str:
        return f"{self.name}_avg_amount_{window.suffix}"

    def std_column(self, window: Window) -> str:
        return f"{self.name}_std_amount_{window.suffix}"

    def risk_column(self, window: Window) -> str:
        return f"{self.name}_risk_{window.suffix}"

    @property
    def since_previous_column(self) -> str:
        return f"{self.name}_seconds_since_prev_tx"

    @property
    def ratio_column(self) -> str:
        assert self.history is not None
        return f"amount_to_{self.name}_avg_{self.history.suffix}"

    @property
    def zscore_column(self) -> str:
        assert self.history is not None
        return f"amount_zscore_{self.name}_{self.history.suffix}"

    def columns(self) -> list[str]:
        """The output columns, in order: per window, then the history features."""
        out: list[str] = []
        for w in self.windows:
            out.append(self.count_column(w))
            if self.measure is Measure.AMOUNT:
                out += [self.mean_column(w), self.std_column(w)]
            elif self.measure is Measure.FRAUD:
                out.append(self.risk_column(w))
        if self.since_previous:
            out.append(self.since_previous_column)
        if self.history is not None:
            out += [self.ratio_column, self.zscore_column]
        return out


# The temporal features of the row's own timestamp and amount (``temporal_features``).
TEMPORAL_FEATURES = (
    "tx_hour",
    "tx_day_of_week",
    "tx_during_weekend",
    "tx_during_night",
    "tx_hour_sin",
    "tx_hour_cos",
    "tx_dow_sin",
    "tx_dow_cos",
    "amount_log",
)


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """The feature table: passed-through columns, temporal features, aggregations.

    Attributes:
        aggregations: The window aggregations, in output order.
        label_delay: How old a label must be before any feature uses it.
        night_until_hour: ``tx_during_night`` is 1 for hours ``0..night_until_hour``.
        max_gap_days: Cap of the seconds since the previous transaction.
        ratio_cap: Cap of the amount ratio and z-score.
        categorical: Cleaned text columns passed through as model inputs (one-hot
            encoded by the model pipeline).
    """

    aggregations: tuple[Aggregation, ...]
    label_delay: Window
    night_until_hour: int
    max_gap_days: float
    ratio_cap: float
    categorical: tuple[str, ...] = tuple(schema.CATEGORICAL_COLUMNS)
    temporal: tuple[str, ...] = TEMPORAL_FEATURES

    @property
    def max_gap_ms(self) -> int:
        return int(self.max_gap_days * 86_400_000)

    @property
    def horizon(self) -> pd.Timedelta:
        """How much history before a row its features read (the longest window,
        delays included, and the gap cap): the state an online engine must keep."""
        return max(*(a.reach for a in self.aggregations), pd.Timedelta(days=self.max_gap_days))

    def aggregation(self, name: str) -> Aggregation:
        for agg in self.aggregations:
            if agg.name == name:
                return agg
        raise KeyError(f"no aggregation named {name!r} in the feature spec")


def window_suffix(window: str) -> str:
    """'1D' -> '1d', '30D' -> '30d', '1h' -> '1h': stable feature-name suffixes."""
    return window.lower()


def build_spec(params: dict[str, Any] | FeatureParams) -> FeatureSpec:
    """The feature spec of ``params:features`` (validated strictly: a missing, unknown
    or bad key fails naming it).

    The entities and what is aggregated for each are declared here; the windows and
    constants come from the parameters.
    """
    p = params if isinstance(params, FeatureParams) else FeatureParams.from_dict(params)

    def windows(texts: list[str]) -> tuple[Window, ...]:
        return tuple(Window(w) for w in texts)

    delay = Window(p.label_delay)
    customer, terminal = schema.CUSTOMER_ID, schema.TERMINAL_ID
    novelty = windows([p.novelty_window])
    return FeatureSpec(
        aggregations=(
            Aggregation(
                "customer",
                (customer,),
                Measure.AMOUNT,
                windows(p.customer_windows),
                since_previous=True,
                history=Window(p.customer_windows[-1]),
            ),
            Aggregation(
                "terminal_activity",
                (terminal,),
                Measure.COUNT,
                windows(p.terminal_activity_windows),
            ),
            Aggregation("terminal", (terminal,), Measure.FRAUD, windows(p.terminal_windows), delay),
            Aggregation(
                "category",
                (schema.MERCHANT_CATEGORY,),
                Measure.FRAUD,
                windows(p.category_risk_windows),
                delay,
            ),
            *(
                [
                    Aggregation(
                        "terminal_amount",
                        (terminal,),
                        Measure.AMOUNT,
                        windows(p.terminal_amount_windows),
                        history=Window(p.terminal_amount_windows[-1]),
                    )
                ]
                if p.terminal_amount_windows
                else []
            ),
            # Novelty: the customer's past use of this country, channel and terminal.
            Aggregation("customer_country", (customer, schema.COUNTRY), Measure.COUNT, novelty),
            Aggregation("customer_channel", (customer, schema.CHANNEL), Measure.COUNT, novelty),
            Aggregation(
                "customer_terminal",
                (customer, terminal),
                Measure.AMOUNT if p.customer_terminal_recency else Measure.COUNT,
                novelty,
                since_previous=p.customer_terminal_recency,
            ),
        ),
        label_delay=delay,
        night_until_hour=p.night_until_hour,
        max_gap_days=p.max_gap_days,
        ratio_cap=p.ratio_cap,
    )


def passthrough_columns(spec: FeatureSpec) -> list[str]:
    """The transaction's own columns every feature table starts with: ids, the
    amount, the cleaned categoricals and the label."""
    return [*ID_COLUMNS, schema.AMOUNT, *spec.categorical, schema.LABEL]


def computed_feature_names(spec: FeatureSpec) -> list[str]:
    """The columns the engines compute (temporal and window features), in order."""
    return [*spec.temporal, *(c for agg in spec.aggregations for c in agg.columns())]


def feature_names(spec: FeatureSpec) -> list[str]:
    """Every column of the feature table, in order: what each engine's output equals."""
    return [*passthrough_columns(spec), *computed_feature_names(spec)]


def numeric_feature_names(spec: FeatureSpec) -> list[str]:
    """The numeric model inputs: the amount and the computed features."""
    return [schema.AMOUNT, *computed_feature_names(spec)]


def categorical_feature_names(spec: FeatureSpec) -> list[str]:
    """The categorical model inputs (cleaned text, encoded by the model pipeline)."""
    return list(spec.categorical)
