"""The model the scorer serves: the registry's ``champion``, reloaded when the alias moves.

``ChampionWatcher`` resolves ``models:/<name>@<alias>`` to a model version, loads that
version and, on a background thread, asks the registry every ``check_interval_s``
which version the alias points to. When it moved, the new version is loaded on the
same thread and swapped in between two micro-batches, so scoring never waits for a
load and every prediction names the version that produced it.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from fraud_detection.explain import Explainer
from fraud_detection.redaction import redact
from fraud_detection.scoring.features import FeatureBatch

logger = logging.getLogger(__name__)

_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)$")
_VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


class ModelUnavailableError(RuntimeError):
    """The registry has no such model, alias or version; the message says which."""


class CompiledPipeline:
    """The fitted model pipeline evaluated on arrays, for micro-batches of a few rows.

    ``FraudModel``'s pipeline is select -> ColumnTransformer(StandardScaler on the
    numeric columns, OneHotEncoder on the categorical ones) -> (resampling, skipped at
    prediction) -> classifier. Through scikit-learn that costs milliseconds of input
    validation and pandas indexing per call. Here the scaler's own arithmetic
    (``(x - mean_) / scale_``) runs on a numpy matrix, the encoder's output is memoised
    per distinct combination of categorical values (computed by the encoder itself),
    and the classifier's ``predict_proba`` gets the same matrix the ColumnTransformer
    would build. ``LoadedModel`` checks it against the full pipeline on real rows
    before relying on it.
    """

    def __init__(
        self,
        numeric: list[str],
        scaler: StandardScaler,
        categorical: list[str],
        encoder: OneHotEncoder,
        classifier: Any,
    ):
        self.numeric = numeric
        self.mean = scaler.mean_ if scaler.with_mean else None
        self.scale = scaler.scale_ if scaler.with_std else None
        self.categorical = categorical
        self.encoder = encoder
        self.classifier = classifier
        self._encoded: dict[tuple, np.ndarray] = {}

    @classmethod
    def build(cls, python_model: Any) -> CompiledPipeline | None:
        """The compiled form of ``python_model.pipeline``, or ``None`` for other shapes."""
        pipeline = getattr(python_model, "pipeline", None)
        steps = getattr(pipeline, "named_steps", None)
        if (
            not steps
            or "preprocess" not in steps
            or not hasattr(pipeline.steps[-1][1], "predict_proba")
        ):
            return None
        ct = steps["preprocess"]
        if not isinstance(ct, ColumnTransformer) or getattr(ct, "sparse_output_", True):
            return None
        names = [name for name, _ in pipeline.steps]
        if names[: names.index("preprocess")] not in ([], ["select"]):  # select only picks columns
            return None
        parts = [
            (t, list(cols))
            for _, t, cols in ct.transformers_
            if not (isinstance(t, str) and t == "drop") and len(cols)
        ]
        if [type(t) for t, _ in parts] != [StandardScaler, OneHotEncoder] or any(
            not isinstance(c, str) for _, cols in parts for c in cols
        ):
            return None
        (scaler, numeric), (encoder, categorical) = parts
        return cls(numeric, scaler, categorical, encoder, pipeline.steps[-1][1])

    def scores(self, batch: FeatureBatch) -> np.ndarray:
        if not len(batch):
            return np.empty(0, dtype=np.float64)
        return self.classifier.predict_proba(self.matrix(batch))[:, 1]

    def matrix(self, batch: FeatureBatch) -> np.ndarray:
        """The model matrix the ColumnTransformer would build for ``batch``."""
        x = np.column_stack([batch.column(c) for c in self.numeric]).astype(np.float64)
        if self.mean is not None:
            x -= self.mean
        if self.scale is not None:
            x /= self.scale
        combos = list(zip(*(batch.categorical[c] for c in self.categorical), strict=True))
        missing = [combo for combo in set(combos) if combo not in self._encoded]
        if missing:
            encoded = self.encoder.transform(
                pd.DataFrame(missing, columns=self.categorical, dtype=object)
            )
            self._encoded.update(zip(missing, np.asarray(encoded, dtype=np.float64), strict=True))
        onehot = np.vstack([self._encoded[combo] for combo in combos])
        return np.hstack([x, onehot])


@dataclass
class LoadedModel:
    """One registered model version, ready to score feature rows."""

    name: str
    version: str
    run_id: str | None
    pyfunc: Any
    compiled: CompiledPipeline | None = None
    explainer: Explainer | None = None
    verified_rows: int = 0
    VERIFY_ROWS = 200  # rows scored both ways before the compiled path is trusted

    def __post_init__(self) -> None:
        python_model = self._python_model
        _single_threaded(getattr(python_model, "pipeline", None))
        self.compiled = CompiledPipeline.build(python_model) if python_model is not None else None
        pipeline = getattr(python_model, "pipeline", None)
        self.explainer = Explainer.of(pipeline) if pipeline is not None else None

    @property
    def _python_model(self) -> Any:
        try:
            return self.pyfunc.unwrap_python_model()
        except (AttributeError, MlflowException):
            return None

    @property
    def input_columns(self) -> list[str] | None:
        return list(getattr(self._python_model, "input_columns", None) or []) or None

    @property
    def threshold(self) -> float | None:
        value = getattr(self._python_model, "threshold", None)
        return None if value is None else float(value)

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Scores rows of ``create_features`` output: columns ``score`` and ``decision``.

        The project's ``FraudModel`` is called directly (MLflow's input schema check
        costs milliseconds per call; the columns were checked when loading).
        """
        python_model = self._python_model
        if python_model is not None and hasattr(python_model, "input_columns"):
            return python_model.predict(None, features)
        return self.pyfunc.predict(features)

    def predict_batch(self, batch: FeatureBatch) -> tuple[np.ndarray, np.ndarray]:
        """(scores, decisions) of a feature batch; the compiled path once verified.

        The first ``VERIFY_ROWS`` rows are scored both ways; any difference above
        1e-12 switches the compiled path off for this model, with a warning.
        """
        if self.compiled is None or self.threshold is None:
            out = self.predict(batch.frame())
            return out["score"].to_numpy(np.float64), out["decision"].to_numpy(np.int64)
        scores = self.compiled.scores(batch)
        if self.verified_rows < self.VERIFY_ROWS:
            reference = self.predict(batch.frame())["score"].to_numpy(np.float64)
            gap = float(np.max(np.abs(scores - reference))) if len(scores) else 0.0
            if gap > 1e-12:
                logger.warning(
                    "The compiled scoring path of %s v%s differs from the pipeline by %.3g: "
                    "using the pipeline",
                    self.name,
                    self.version,
                    gap,
                )
                self.compiled = None
                scores = reference
            else:
                self.verified_rows += len(scores)
        return scores, (scores >= self.threshold).astype(np.int64)

    def explain_batch(self, batch: FeatureBatch) -> list[list[dict[str, Any]]] | None:
        """The top reason codes of every row (``fraud_detection.explain``), or ``None``
        when the model has no explainer."""
        if self.explainer is None:
            return None
        if self.compiled is not None:
            matrix = self.compiled.matrix(batch)
        else:
            columns = self.input_columns or []
            matrix = self.explainer.matrix(self._python_model.pipeline, batch.frame()[columns])
        categorical = batch.categorical

        def value_of(i: int, name: str) -> Any:
            if name in categorical:
                return categorical[name][i]
            return float(batch.column(name)[i])

        return self.explainer.reasons(matrix, value_of)


def _single_threaded(pipeline: Any) -> None:
    """Scores with one thread: a micro-batch is a few rows, and thread pools (OpenMP
    in XGBoost, joblib in random forests) cost far more than they save on them while
    the broker and the Kafka client threads need the cores. Predictions are the same."""
    for _, step in getattr(pipeline, "steps", []):
        if hasattr(step, "get_params") and "n_jobs" in step.get_params(deep=False):
            step.set_params(n_jobs=1)


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``models:/name@alias`` -> (name, alias, None); ``models:/name/3`` -> (name, None, "3")."""
    if match := _ALIAS_URI.match(uri):
        return match["name"], match["alias"], None
    if match := _VERSION_URI.match(uri):
        return match["name"], None, match["version"]
    raise ValueError(f"Model URI {uri!r} is not models:/<name>@<alias> or models:/<name>/<version>")


class ChampionWatcher:
    """Keeps the model behind ``models:/<name>@<alias>`` loaded and current.

    Args:
        model_uri: ``models:/<name>@<alias>`` (followed) or ``models:/<name>/<version>``
            (fixed).
        check_interval_s: How often the registry is asked where the alias points.
        required_columns: Feature columns the scorer produces; a model needing others
            is refused (the previous one keeps serving).
        optional: The alias may point nowhere (a shadow ``challenger``): ``check``
            then serves nothing (``current_or_none`` is ``None``) instead of failing,
            and picks the model up once the alias is set.
    """

    def __init__(
        self,
        model_uri: str,
        *,
        check_interval_s: float = 30.0,
        required_columns: list[str] | None = None,
        optional: bool = False,
    ) -> None:
        self.name, self.alias, self._fixed_version = parse_model_uri(model_uri)
        self.optional = optional
        self.model_uri = model_uri
        self.check_interval_s = check_interval_s
        self._available = set(required_columns) if required_columns else None
        self._current: LoadedModel | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reloads = 0

    @property
    def current_or_none(self) -> LoadedModel | None:
        """The model served now, or ``None`` (an optional alias pointing nowhere)."""
        return self._current

    @property
    def current(self) -> LoadedModel:
        if self._current is None:
            raise ModelUnavailableError("No model loaded yet: call load() first")
        return self._current

    def _resolve(self) -> tuple[str, str | None]:
        client = MlflowClient()
        try:
            if self._fixed_version is not None:
                version = client.get_model_version(self.name, self._fixed_version)
            else:
                version = client.get_model_version_by_alias(self.name, self.alias)
        except MlflowException as exc:
            raise ModelUnavailableError(
                f"Cannot resolve {self.model_uri} in the MLflow registry at "
                f"{redact(mlflow.get_registry_uri())}: "
                f"{exc.message if hasattr(exc, 'message') else exc}. Train and promote a model "
                "first (kedro run), or point MLFLOW_TRACKING_URI at the registry that has it."
            ) from exc
        return str(version.version), version.run_id

    def load(self) -> LoadedModel:
        """Loads the version the URI points to now (blocking); fails when there is none."""
        version, run_id = self._resolve()
        model = self._load_version(version, run_id)
        self._current = model
        logger.info("Serving %s version %s (run %s)", self.name, version, run_id)
        return model

    def _load_version(self, version: str, run_id: str | None) -> LoadedModel:
        pyfunc = mlflow.pyfunc.load_model(f"models:/{self.name}/{version}")
        model = LoadedModel(self.name, version, run_id, pyfunc)
        needed = model.input_columns
        if self._available is not None and needed is not None:
            missing = sorted(set(needed) - self._available)
            if missing:
                raise ModelUnavailableError(
                    f"{self.name} version {version} needs feature column(s) {missing} that the "
                    "scorer does not compute (trained with other feature parameters?)"
                )
        return model

    def check(self) -> bool:
        """Reloads when the alias points to another version; returns whether it did."""
        if self._fixed_version is not None:
            return False
        try:
            version, run_id = self._resolve()
        except ModelUnavailableError:
            if not self.optional:
                raise
            if self._current is None:
                return False
            logger.info(
                "The '%s' alias of %s points nowhere any more: version %s no longer served",
                self.alias,
                self.name,
                self._current.version,
            )
            self._current = None
            return True
        if self._current is not None and version == self._current.version:
            return False
        previous = self._current.version if self._current is not None else None
        self._current = self._load_version(version, run_id)
        self.reloads += 1
        logger.info(
            "The '%s' alias of %s moved from version %s to %s: now serving %s",
            self.alias,
            self.name,
            previous,
            version,
            version,
        )
        return True

    def start(self) -> None:
        """Checks the alias every ``check_interval_s`` on a daemon thread."""
        if self._fixed_version is not None or self.check_interval_s <= 0:
            return
        self._thread = threading.Thread(target=self._watch, name="champion-watcher", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.check_interval_s):
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001 (the registry being down must not stop scoring)
                logger.warning(
                    "Checking %s failed, still serving version %s: %s",
                    self.model_uri,
                    self._current.version if self._current else None,
                    exc,
                )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(self.check_interval_s, 5.0) + 60.0)
