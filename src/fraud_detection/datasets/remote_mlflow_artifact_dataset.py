"""``RemoteMlflowArtifactDataset``: a file dataset anywhere fsspec reaches (``s3://``),
whose every save is also logged as an artifact of the active MLflow run."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import mlflow
from kedro.io import AbstractDataset, DatasetError, Version
from kedro.io.core import parse_dataset_definition

logger = logging.getLogger(__name__)

# Settings that only make sense for the remote copy.
_REMOTE_ONLY_KEYS = ("credentials", "fs_args", "versioned")


class RemoteMlflowArtifactDataset(AbstractDataset[Any, Any]):
    """Saves through the wrapped dataset (e.g. JSON or a plot on ``s3://``), then logs
    the same content as an MLflow artifact of the active run.

    kedro-mlflow's ``MlflowArtifactDataset`` passes the wrapped dataset's path to
    ``mlflow.log_artifact``, which reads local files only, so it cannot wrap a dataset
    on object storage. This one also writes the data with a local twin of the wrapped
    dataset (same type and save arguments) into a temporary folder and logs that
    file; the remote copy is the catalog's, the artifact is MLflow's.

    ``versioned: true`` on this entry versions the wrapped dataset with the run's save
    version, like any other versioned dataset. ``load`` reads the wrapped dataset.
    Without an active MLflow run (tracking disabled) nothing is logged.

    Example catalog entry::

        evaluation_report:
          type: fraud_detection.datasets.remote_mlflow_artifact_dataset.RemoteMlflowArtifactDataset
          versioned: true
          dataset:
            type: json.JSONDataset
            filepath: s3://fraud-detection/08_reporting/evaluation_report.json
            credentials: s3
    """

    def __init__(
        self,
        *,
        dataset: dict[str, Any],
        artifact_path: str | None = None,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        """Creates the wrapped dataset.

        Args:
            dataset: Catalog definition of the wrapped file dataset (with ``filepath``).
            artifact_path: Folder of the artifact in the MLflow run (default: the root).
            version: Set by the catalog when the entry says ``versioned: true``.
            metadata: Free-form metadata, ignored by Kedro.

        Raises:
            DatasetError: The wrapped definition has no ``type`` or no ``filepath``.
        """
        if "type" not in dataset or "filepath" not in dataset:
            raise DatasetError(
                "RemoteMlflowArtifactDataset wraps a file dataset: its 'dataset' needs "
                f"'type' and 'filepath', got {sorted(dataset)}"
            )
        config = dict(dataset)
        if version is not None:
            config["versioned"] = True
        dataset_class, dataset_args = parse_dataset_definition(
            config,
            load_version=version.load if version else None,
            save_version=version.save if version else None,
        )
        self._dataset: AbstractDataset = dataset_class(**dataset_args)
        self._local_config = {
            key: value for key, value in dataset.items() if key not in _REMOTE_ONLY_KEYS
        }
        self._filename = PurePosixPath(str(dataset["filepath"])).name
        self._artifact_path = artifact_path
        self.metadata = metadata

    def load(self) -> Any:
        return self._dataset.load()

    def save(self, data: Any) -> None:
        with tempfile.TemporaryDirectory(prefix="mlflow-artifact-") as folder:
            local_file = Path(folder) / self._filename
            # The artifact is logged only once the catalog's copy is saved.
            local_class, local_args = parse_dataset_definition(
                {**self._local_config, "filepath": str(local_file)}
            )
            local_class(**local_args).save(data)
            self._dataset.save(data)
            if mlflow.active_run() is None:
                logger.warning(
                    "No active MLflow run: %s is saved but not logged to MLflow", self._filename
                )
                return
            mlflow.log_artifact(str(local_file), self._artifact_path)

    def _exists(self) -> bool:
        return self._dataset.exists()

    def _describe(self) -> dict[str, Any]:
        return {"dataset": self._dataset._describe(), "artifact_path": self._artifact_path}
