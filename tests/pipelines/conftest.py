"""A real MLflow registry on SQLite for the pipeline tests that move aliases: two small
pyfunc models (one ranking frauds well, one mostly noise) registered as versions of a
model name of their own, so each test reads its own aliases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from fraud_detection.datasets.mlflow_champion_dataset import MlflowChampionDataset
from fraud_detection.datasets.mlflow_model_dataset import TRAINING_WINDOW_TAG

THRESHOLD = 0.5


class AmountModel(mlflow.pyfunc.PythonModel):
    """Scores ``amount / 200`` blended with seeded noise: ``noise=0`` ranks the frauds
    of ``labelled_rows`` perfectly, ``noise=0.9`` barely at all."""

    def __init__(self, noise: float):
        self.noise = noise

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        amount = model_input["amount"].to_numpy(float)
        noise = np.random.default_rng(0).uniform(size=len(amount))
        score = (1 - self.noise) * np.clip(amount / 200, 0, 1) + self.noise * noise
        return pd.DataFrame({"score": score, "decision": (score >= THRESHOLD).astype("int64")})


def labelled_rows(n: int = 600, days: int = 6, seed: int = 0) -> pd.DataFrame:
    """Rows whose frauds (about 10%) have amounts of 100-200, genuine ones 0-100."""
    rng = np.random.default_rng(seed)
    labels = (rng.uniform(size=n) < 0.1).astype("int64")
    timestamps = pd.Timestamp("2025-03-01") + pd.to_timedelta(
        np.sort(rng.uniform(0, days * 86400, n)).round(), unit="s"
    )
    return pd.DataFrame(
        {
            "transaction_id": [f"T{i:05d}" for i in range(n)],
            "timestamp": timestamps.astype("datetime64[ns]"),
            "amount": labels * 100 + rng.uniform(0, 100, n),
            "is_fraud": labels,
        }
    )


@dataclass(frozen=True)
class Registry:
    """The model name and its versions: ``weak`` (the champion) and ``strong``."""

    name: str
    weak: str
    strong: str

    def dataset(self, alias: str) -> MlflowChampionDataset:
        return MlflowChampionDataset(model_name=self.name, alias=alias)

    def alias(self, alias: str) -> str | None:
        """The version behind ``alias``, or None."""
        version = MlflowClient().get_registered_model(self.name).aliases.get(alias)
        return None if version is None else str(version)


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory) -> Iterator[str]:
    """One SQLite tracking database for the module: creating one takes seconds."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('registry') / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("alias-moves")
    yield uri
    mlflow.set_tracking_uri(previous)
    mp.undo()


@pytest.fixture
def registry(tracking_uri) -> Registry:
    """Version 1 (noisy) is ``champion``, trained on February; version 2 (good) is
    registered, without an alias, as the promotion pipeline finds a new model."""
    name = f"fraud-detection-{uuid.uuid4().hex[:8]}"
    versions = []
    for noise in (0.9, 0.0):
        with mlflow.start_run():
            mlflow.set_tags(
                {
                    f"{TRAINING_WINDOW_TAG}.start": "2025-02-01 00:00:00",
                    f"{TRAINING_WINDOW_TAG}.end": "2025-02-22 00:00:00",
                }
            )
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=AmountModel(noise),
                registered_model_name=name,
                pip_requirements=["pandas"],
            )
        versions.append(str(info.registered_model_version))
    MlflowClient().set_registered_model_alias(name, "champion", versions[0])
    return Registry(name=name, weak=versions[0], strong=versions[1])
