"""``MlflowChampionArtifactDataset``: a JSON artifact of the run behind a registry alias."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow
from kedro.io import AbstractDataset, DatasetError
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from fraud_detection.redaction import redact


class MlflowChampionArtifactDataset(AbstractDataset[None, dict[str, Any]]):
    """Loads a JSON artifact logged by the run that produced the model version an alias
    points to, e.g. the champion's reference profile for drift monitoring. Read-only.

    Example catalog entry::

        champion_reference_profile:
          type: fraud_detection.datasets.mlflow_champion_artifact_dataset.MlflowChampionArtifactDataset
          model_name: fraud-detection
          alias: champion
          artifact_path: reference_profile.json
    """  # noqa: E501 (the example's dotted class path is one YAML value)

    def __init__(
        self,
        *,
        model_name: str,
        artifact_path: str,
        alias: str = "champion",
        metadata: dict[str, Any] | None = None,
    ):
        self._model_name = model_name
        self._alias = alias
        self._artifact_path = artifact_path
        self.metadata = metadata

    def load(self) -> dict[str, Any]:
        client = MlflowClient()
        try:
            version = client.get_model_version_by_alias(self._model_name, self._alias)
        except MlflowException as exc:
            raise DatasetError(
                f"Model '{self._model_name}' has no '{self._alias}' alias in MLflow at "
                f"{redact(mlflow.get_tracking_uri())}: "
                "train and promote a model first (kedro run)"
            ) from exc
        with tempfile.TemporaryDirectory() as folder:
            try:
                path = mlflow.artifacts.download_artifacts(
                    run_id=version.run_id, artifact_path=self._artifact_path, dst_path=folder
                )
            except (MlflowException, OSError) as exc:
                raise DatasetError(
                    f"The run {version.run_id} of {self._model_name} version {version.version} "
                    f"('{self._alias}') has no artifact '{self._artifact_path}': it was trained "
                    f"before it was logged; retrain to monitor it ({exc})"
                ) from exc
            data = json.loads(Path(path).read_text())
        data.setdefault("model", {})["version"] = str(version.version)
        return data

    def save(self, data: None) -> None:
        raise DatasetError(
            f"{type(self).__name__} is read-only: the artifact is logged by the training run"
        )

    def _describe(self) -> dict[str, Any]:
        return {
            "model_name": self._model_name,
            "alias": self._alias,
            "artifact_path": self._artifact_path,
        }
