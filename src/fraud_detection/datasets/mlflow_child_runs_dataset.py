"""``MlflowChildRunsDataset``: one nested MLflow run per entry, under the active run."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import mlflow
from kedro.io import AbstractDataset, DatasetError
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

logger = logging.getLogger(__name__)


class MlflowChildRunsDataset(AbstractDataset[list[dict[str, Any]], None]):
    """Saves a list of runs as children of the active MLflow run (the one kedro-mlflow
    opened for the Kedro run), e.g. one per backtest window.

    Each entry is ``{"name": str, "params": {...}, "metrics": {name: float}, "tags":
    {...}}`` (``params``, ``metrics`` and ``tags`` optional). The child runs are created
    with ``MlflowClient`` and the ``mlflow.parentRunId`` tag, so the MLflow UI nests them
    under the parent, and are closed at once: no active-run state is left behind. The
    whole list is also logged on the parent as the JSON artifact ``artifact_file``.

    Example catalog entry::

        backtest_window_runs:
          type: fraud_detection.datasets.mlflow_child_runs_dataset.MlflowChildRunsDataset
          artifact_file: backtest_windows.json
    """

    def __init__(
        self, *, artifact_file: str | None = None, metadata: dict[str, Any] | None = None
    ) -> None:
        self._artifact_file = artifact_file
        self.metadata = metadata

    def load(self) -> list[dict[str, Any]]:
        raise DatasetError(
            "MlflowChildRunsDataset is write-only: read the child runs in MLflow "
            "(search_runs with tags.mlflow.parentRunId = '<run id>')"
        )

    def save(self, data: list[dict[str, Any]]) -> None:
        parent = mlflow.active_run()
        if parent is None:
            raise DatasetError(
                "Cannot log child runs: no MLflow run is active (kedro-mlflow opens one per "
                "Kedro run; is tracking disabled for this pipeline in mlflow.yml?)"
            )
        client = MlflowClient()
        for entry in data:
            if "name" not in entry:
                raise DatasetError(f"A child run needs a 'name'; got keys {sorted(entry)}")
            tags = {str(k): str(v) for k, v in (entry.get("tags") or {}).items()}
            child = client.create_run(
                parent.info.experiment_id,
                run_name=str(entry["name"]),
                tags={
                    **tags,
                    MLFLOW_PARENT_RUN_ID: parent.info.run_id,
                    MLFLOW_RUN_NAME: str(entry["name"]),
                },
            )
            run_id = child.info.run_id
            now = int(time.time() * 1000)
            client.log_batch(
                run_id,
                metrics=[
                    Metric(str(k), float(v), now, 0)
                    for k, v in (entry.get("metrics") or {}).items()
                    if v is not None
                ],
                params=[
                    Param(str(k), str(v)[:6000]) for k, v in (entry.get("params") or {}).items()
                ],
            )
            client.set_terminated(run_id)
        if self._artifact_file:
            mlflow.log_text(json.dumps(data, indent=2, default=str), self._artifact_file)
        logger.info("Logged %d child run(s) under MLflow run %s", len(data), parent.info.run_id)

    def _describe(self) -> dict[str, Any]:
        return {"artifact_file": self._artifact_file}
