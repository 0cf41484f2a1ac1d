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

# The ``promotion.decision`` tag for the alias a decision moves.
_OUTCOMES = {"champion": "promoted", "challenger": "challenger"}


def _stage_of(decision: dict[str, Any]) -> str | None:
    """The alias a decision gives the challenger: its ``stage``, or for a decision
    without one, ``champion`` when ``promote`` is true."""
    if "stage" in decision:
        return decision["stage"]
    return "champion" if decision.get("promote") else None


class MlflowChampionDataset(AbstractDataset[dict[str, Any], dict[str, Any] | None]):
    """Reads the model version behind a registry alias; saving a promotion decision
    moves the alias to the challenger's version and records the decision as tags.

    ``load`` returns ``None`` when the registered model or the alias does not exist
    yet (the first run), else ``{"name", "version", "run_id", "model", "training_window"}``
    with the pyfunc model and the window recorded on its run (``None`` if none was).
    ``save`` takes a decision dict (from the promotion node, or the monitoring
    pipeline's live promotion): it always tags the active run and the challenger's
    model version with the outcome, and sets this dataset's alias on that version when
    the decision's ``stage`` names the alias (a decision without ``stage`` means
    ``champion`` when ``promote`` is true). The version is
    ``decision["challenger_version"]`` when given, else the version logged by
    ``decision["challenger_run_id"]``. So two entries, one per alias, can take the
    same decision and only the named alias moves.

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
        stage = _stage_of(decision)
        tags = {
            "promotion.decision": decision.get("outcome") or _OUTCOMES.get(stage, "rejected"),
            "promotion.reason": decision["reason"][:5000],
            "promotion.details": json.dumps(decision, default=str)[:5000],
        }
        if run is not None:
            for key, value in tags.items():
                client.set_tag(run.info.run_id, key, value)
        version = self._version_of(client, decision)
        if version is not None:
            for key, value in tags.items():
                client.set_model_version_tag(self._model_name, version, key, value)
        if stage != self._alias:
            logger.info("Alias '%s' not moved: %s", self._alias, decision["reason"])
            return
        if version is None:
            raise DatasetError(
                f"No version of model '{self._model_name}' was logged by run "
                f"{decision.get('challenger_run_id')}: cannot give it the '{self._alias}' alias"
            )
        client.set_registered_model_alias(self._model_name, self._alias, version)
        logger.info(
            "Moved '%s' of %s to version %s: %s",
            self._alias,
            self._model_name,
            version,
            decision["reason"],
        )

    def _version_of(self, client: MlflowClient, decision: dict[str, Any]) -> str | None:
        if decision.get("challenger_version") is not None:
            return str(decision["challenger_version"])
        return self._version_of_run(client, decision.get("challenger_run_id"))

    def _version_of_run(self, client: MlflowClient, run_id: str | None) -> str | None:
        if not run_id:
            return None
        versions = client.search_model_versions(f"name='{self._model_name}' and run_id='{run_id}'")
        return str(max(int(v.version) for v in versions)) if versions else None

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name, "alias": self._alias}
