"""``MlflowChampionDataset``: the registry's current champion, and promotions."""

from __future__ import annotations

import json
import logging
from typing import Any

import mlflow
from kedro.io import AbstractDataset, DatasetError
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from fraud_detection.datasets.mlflow_model_dataset import TRAINING_WINDOW_TAG
from fraud_detection.redaction import redact

logger = logging.getLogger(__name__)


class MlflowChampionDataset(AbstractDataset[dict[str, Any], dict[str, Any] | None]):
    """Reads the model version behind a registry alias; saving a promotion decision
    moves the alias to the challenger's version and records the decision as tags.

    ``load`` returns ``None`` when the registered model or the alias does not exist
    yet (the first run), else ``{"name", "version", "run_id", "model", "training_window"}``
    with the pyfunc model and the window recorded on its run (``None`` if none was).
    ``save`` takes the decision dict from the promotion node: it always tags the
    active run with the outcome, and when ``decision["promote"]`` is true sets the
    alias on the model version logged by ``decision["challenger_run_id"]``.

    Example catalog entry::

        current_champion:
          type: fraud_detection.datasets.mlflow_champion_dataset.MlflowChampionDataset
          model_name: fraud-detection
          alias: champion
    """

    def __init__(
        self, *, model_name: str, alias: str = "champion", metadata: dict[str, Any] | None = None
    ):
        self._model_name = model_name
        self._alias = alias
        self.metadata = metadata

    def load(self) -> dict[str, Any] | None:
        client = MlflowClient()
        try:
            version = client.get_model_version_by_alias(self._model_name, self._alias)
        except MlflowException as exc:
            if exc.error_code in {
                "RESOURCE_DOES_NOT_EXIST",
                "NOT_FOUND",
                "INVALID_PARAMETER_VALUE",
            }:
                logger.info(
                    "No '%s' alias on model '%s' yet: first champion", self._alias, self._model_name
                )
                return None
            raise DatasetError(
                f"Cannot read alias '{self._alias}' of model '{self._model_name}' from MLflow at "
                f"{redact(mlflow.get_tracking_uri())}: {exc}"
            ) from exc
        model = mlflow.pyfunc.load_model(f"models:/{self._model_name}@{self._alias}")
        return {
            "name": self._model_name,
            "version": str(version.version),
            "run_id": version.run_id,
            "model": model,
            "training_window": self._training_window(client, version.run_id),
        }

    @staticmethod
    def _training_window(client: MlflowClient, run_id: str | None) -> dict[str, str] | None:
        """The champion's training window from its run's tags; ``None`` when the run
        did not record one (a model logged before windows were recorded)."""
        if not run_id:
            return None
        tags = client.get_run(run_id).data.tags
        start = tags.get(f"{TRAINING_WINDOW_TAG}.start")
        end = tags.get(f"{TRAINING_WINDOW_TAG}.end")
        return {"start": start, "end": end} if end else None

    def save(self, decision: dict[str, Any]) -> None:
        client = MlflowClient()
        run = mlflow.active_run()
        tags = {
            "promotion.decision": "promoted" if decision["promote"] else "rejected",
            "promotion.reason": decision["reason"][:5000],
            "promotion.details": json.dumps(decision, default=str)[:5000],
        }
        if run is not None:
            for key, value in tags.items():
                client.set_tag(run.info.run_id, key, value)
        version = self._version_of_run(client, decision["challenger_run_id"])
        if version is not None:
            for key, value in tags.items():
                client.set_model_version_tag(self._model_name, version, key, value)
        if not decision["promote"]:
            logger.info("Challenger not promoted: %s", decision["reason"])
            return
        if version is None:
            raise DatasetError(
                f"No version of model '{self._model_name}' was logged by run "
                f"{decision['challenger_run_id']}: cannot promote it"
            )
        client.set_registered_model_alias(self._model_name, self._alias, version)
        logger.info(
            "Promoted %s version %s to '%s': %s",
            self._model_name,
            version,
            self._alias,
            decision["reason"],
        )

    def _version_of_run(self, client: MlflowClient, run_id: str | None) -> str | None:
        if not run_id:
            return None
        versions = client.search_model_versions(f"name='{self._model_name}' and run_id='{run_id}'")
        return str(max(int(v.version) for v in versions)) if versions else None

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name, "alias": self._alias}
