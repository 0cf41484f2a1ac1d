"""Reason codes: why a transaction got its score, in the model's own input names.

Every prediction can carry the three model inputs that pushed its score up the most,
with their values, their contributions and a sentence an analyst can read ("amount
6.2x the customer's 30-day average"). The contributions are additive: with the base
value they sum to the model's raw output for the row.

- XGBoost: the booster's own TreeSHAP (``pred_contribs``), on the log-odds scale;
- scikit-learn tree ensembles (random forest, extra trees, gradient boosting): shap's
  ``TreeExplainer`` (exact TreeSHAP), on the probability scale for forests;
- linear models (logistic regression): the coefficient times the standardised value
  (the model's inputs are standardised by its own scaler), on the log-odds scale.

Other classifiers (e.g. a balanced bagging ensemble) get no reason codes:
:meth:`Explainer.of` returns ``None`` and the prediction says so. The contributions of
a categorical input are the sum over its one-hot columns.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

TOP_REASONS = 3

_UNITS = {"h": ("hour", "hours"), "d": ("day", "days")}


def _window(suffix: str) -> str:
    """``1h`` -> "1 hour", ``30d`` -> "30 days"."""
    n, unit = int(suffix[:-1]), suffix[-1].lower()
    one, many = _UNITS.get(unit, (unit, unit))
    return f"{n} {one if n == 1 else many}"


def _span(suffix: str) -> str:
    """``30d`` -> "30-day" (before a noun)."""
    n, unit = int(suffix[:-1]), suffix[-1].lower()
    return f"{n}-{_UNITS.get(unit, (unit, unit))[0]}"


def _number(value: float) -> str:
    if value != value:  # noqa: PLR0124 - NaN
        return "unknown"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _duration(seconds: float) -> str:
    if seconds != seconds:  # noqa: PLR0124 - NaN
        return "no earlier transaction in the window"
    for size, unit in ((86_400, "day"), (3_600, "hour"), (60, "minute")):
        if seconds >= size:
            n = seconds / size
            return f"{n:.1f} {unit}s" if n != 1 else f"1 {unit}"
    return f"{seconds:.0f} s"


# Whose history an amount is compared with, by aggregation name.
_OWNER = {"customer": "customer", "terminal_amount": "terminal"}

# (pattern, sentence) over the names create_features gives; {w} is the window.
_TEMPLATES: list[tuple[re.Pattern[str], Any]] = [
    (
        re.compile(r"^amount_to_(customer|terminal_amount)_avg_(\w+)$"),
        lambda m, v: f"amount {v:.1f}x the {_OWNER[m[1]]}'s {_span(m[2])} average",
    ),
    (
        re.compile(r"^amount_zscore_(customer|terminal_amount)_(\w+)$"),
        lambda m, v: (
            f"amount {abs(v):.1f} standard deviations {'above' if v >= 0 else 'below'} "
            f"the {_OWNER[m[1]]}'s {_span(m[2])} mean"
        ),
    ),
    (
        re.compile(r"^customer_nb_tx_(\w+)$"),
        lambda m, v: f"{_number(v)} transactions by the customer in {_window(m[1])}",
    ),
    (
        re.compile(r"^customer_avg_amount_(\w+)$"),
        lambda m, v: f"customer's average amount over {_window(m[1])}: {_number(v)}",
    ),
    (
        re.compile(r"^customer_std_amount_(\w+)$"),
        lambda m, v: f"customer's amount spread (std) over {_window(m[1])}: {_number(v)}",
    ),
    (
        re.compile(r"^customer_seconds_since_prev_tx$"),
        lambda m, v: f"{_duration(v)} since the customer's previous transaction",
    ),
    (
        re.compile(r"^terminal_(?:activity|amount)_nb_tx_(\w+)$"),
        lambda m, v: f"{_number(v)} transactions at the terminal in {_window(m[1])}",
    ),
    (
        re.compile(r"^terminal_risk_(\w+)$"),
        lambda m, v: f"terminal's fraud rate {v:.0%} over {_window(m[1])} (known labels)",
    ),
    (
        re.compile(r"^terminal_nb_tx_(\w+)$"),
        lambda m, v: f"{_number(v)} labelled transactions at the terminal over {_window(m[1])}",
    ),
    (
        re.compile(r"^category_risk_(\w+)$"),
        lambda m, v: f"merchant category's fraud rate {v:.1%} over {_window(m[1])}",
    ),
    (
        re.compile(r"^category_nb_tx_(\w+)$"),
        lambda m, v: f"{_number(v)} labelled transactions in the category over {_window(m[1])}",
    ),
    (
        re.compile(r"^terminal_amount_(avg|std)_amount_(\w+)$"),
        lambda m, v: (
            f"terminal's {'average amount' if m[1] == 'avg' else 'amount spread (std)'} "
            f"over {_window(m[2])}: {_number(v)}"
        ),
    ),
    (
        re.compile(r"^customer_terminal_(avg|std)_amount_(\w+)$"),
        lambda m, v: (
            f"customer's {'average amount' if m[1] == 'avg' else 'amount spread (std)'} "
            f"at this terminal over {_window(m[2])}: {_number(v)}"
        ),
    ),
    (
        re.compile(r"^customer_terminal_seconds_since_prev_tx$"),
        lambda m, v: f"{_duration(v)} since the customer's previous transaction at this terminal",
    ),
    (
        re.compile(r"^customer_(country|channel|terminal)_nb_tx_(\w+)$"),
        lambda m, v: (
            f"first use of this {m[1]} by the customer in {_window(m[2])}"
            if v == 0
            else f"this {m[1]} used {_number(v)} times by the customer in {_window(m[2])}"
        ),
    ),
    (re.compile(r"^amount$"), lambda m, v: f"amount {_number(v)}"),
    (re.compile(r"^amount_log$"), lambda m, v: f"amount {_number(math.expm1(v))}"),
    (re.compile(r"^tx_hour$"), lambda m, v: f"at {int(v):02d}h"),
    (re.compile(r"^tx_during_night$"), lambda m, v: "at night" if v else "in the daytime"),
    (re.compile(r"^tx_during_weekend$"), lambda m, v: "at the weekend" if v else "on a weekday"),
    (re.compile(r"^src_(\w+)$"), lambda m, v: f"{m[1].replace('_', ' ')} {v}"),
]


def describe(feature: str, value: Any) -> str:
    """A readable sentence for one model input and its value."""
    if isinstance(value, str):
        return f"{feature.replace('_', ' ')} {value}"
    number = float(value)
    for pattern, sentence in _TEMPLATES:
        match = pattern.match(feature)
        if match:
            try:
                return sentence(match, number)
            except (ValueError, OverflowError):
                break
    return f"{feature.replace('_', ' ')} {_number(number)}"


def one_hot_input(output: str, inputs: list[str]) -> str | None:
    """The categorical input a one-hot output column encodes: the longest input name
    that prefixes it (``channel_pos`` -> ``channel``), or ``None``."""
    return max((c for c in inputs if output.startswith(f"{c}_")), key=len, default=None)


def model_columns(preprocess: Any) -> tuple[list[str], list[str]]:
    """The preprocessing step's output columns and, for each, the model input it comes
    from (a one-hot column -> its categorical input)."""
    outputs: list[str] = []
    inputs: list[str] = []
    for name, transformer, _ in preprocess.transformers_:
        if isinstance(transformer, str) or not hasattr(transformer, "get_feature_names_out"):
            continue
        columns = [str(c) for c in getattr(transformer, "feature_names_in_", [])]
        for output in transformer.get_feature_names_out():
            out = str(output)
            source = (one_hot_input(out, columns) or out) if name == "categorical" else out
            outputs.append(out)
            inputs.append(source)
    return outputs, inputs


class Explainer:
    """Additive contributions of the model inputs to one fitted pipeline's output."""

    def __init__(self, kind: str, classifier: Any, preprocess: Any, scale: str) -> None:
        self.kind = kind
        self.classifier = classifier
        self.scale = scale  # "log-odds" or "probability"
        outputs, inputs = model_columns(preprocess)
        self.inputs = list(dict.fromkeys(inputs))
        position = {name: i for i, name in enumerate(self.inputs)}
        # Column j of the model matrix adds to input group[j].
        self._group = np.asarray([position[name] for name in inputs], dtype=np.int64)
        self._n_columns = len(outputs)
        self._shap: Any = None
        self._booster: Any = None

    @classmethod
    def of(cls, pipeline: Any) -> Explainer | None:
        """The explainer of a ``FraudModel`` pipeline, or ``None`` for a classifier with
        no exact additive explanation here."""
        steps = getattr(pipeline, "named_steps", None)
        if not steps or "preprocess" not in steps:
            return None
        classifier = pipeline.steps[-1][1]
        preprocess = steps["preprocess"]
        kind = type(classifier).__name__
        if hasattr(classifier, "get_booster"):
            return cls(kind, classifier, preprocess, "log-odds")
        if kind in {"LogisticRegression", "SGDClassifier"} and hasattr(classifier, "coef_"):
            return cls(kind, classifier, preprocess, "log-odds")
        if kind in {
            "RandomForestClassifier",
            "ExtraTreesClassifier",
            "DecisionTreeClassifier",
            "GradientBoostingClassifier",
        }:
            scale = "log-odds" if kind == "GradientBoostingClassifier" else "probability"
            return cls(kind, classifier, preprocess, scale)
        return None

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """``(rows, inputs)`` contributions of the model matrix's rows, by model input."""
        matrix = np.asarray(matrix, dtype=np.float64)
        if hasattr(self.classifier, "get_booster"):
            import xgboost

            booster = self._booster = self._booster or self.classifier.get_booster()
            dmatrix = xgboost.DMatrix(matrix, feature_names=booster.feature_names)
            per_column = booster.predict(dmatrix, pred_contribs=True)[:, : self._n_columns]
        elif hasattr(self.classifier, "coef_"):
            per_column = matrix * np.ravel(self.classifier.coef_)[None, :]
        else:
            if self._shap is None:
                import shap

                self._shap = shap.TreeExplainer(self.classifier)
            values = self._shap.shap_values(matrix, check_additivity=False)
            values = np.asarray(values[1] if isinstance(values, list) else values)
            per_column = values[..., 1] if values.ndim == 3 else values
        out = np.zeros((matrix.shape[0], len(self.inputs)), dtype=np.float64)
        np.add.at(out.T, self._group, per_column.T)
        return out

    def matrix(self, pipeline: Any, rows: Any) -> np.ndarray:
        """The model matrix of ``rows`` (inputs of the pipeline's ``select`` step)."""
        steps = pipeline.named_steps
        selected = steps["select"].transform(rows) if "select" in steps else rows
        return np.asarray(steps["preprocess"].transform(selected), dtype=np.float64)

    def reasons(
        self,
        matrix: np.ndarray,
        value_of: Callable[[int, str], Any],
        k: int = TOP_REASONS,
    ) -> list[list[dict[str, Any]]]:
        """For each row, the ``k`` inputs with the largest positive contributions (the
        ones that pushed the score up), as ``{"feature", "value", "contribution",
        "text"}``; ``value_of(i, name)`` is row ``i``'s value of input ``name``."""
        contributions = self.contributions(matrix)
        out: list[list[dict[str, Any]]] = []
        for i, row in enumerate(contributions):
            top = np.argpartition(-row, k)[:k] if len(row) > k else np.arange(len(row))
            top = top[np.argsort(-row[top], kind="stable")]
            reasons = []
            for j in top:
                if row[j] <= 0:
                    break
                name = self.inputs[j]
                value = value_of(i, name)
                reasons.append(
                    {
                        "feature": name,
                        "value": _plain(value),
                        "contribution": round(float(row[j]), 6),
                        "text": describe(name, value),
                    }
                )
            out.append(reasons)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else round(float(value), 6)
    if isinstance(value, np.integer):
        return int(value)
    return value
