"""``MlflowFraudModelDataset``: logs and registers the pyfunc model with a signature,
and loads it back in any process that joins the run that logged it."""

from __future__ import annotations

from typing import Any

import mlflow
from kedro.io import DatasetError
from kedro_mlflow.io.models import MlflowModelTrackingDataset
from mlflow.tracking import MlflowClient

# Run tags ``training_window.start`` / ``training_window.end`` (end exclusive): the
# labelled days the logged model was fitted on.
TRAINING_WINDOW_TAG = "training_window"


class MlflowFraudModelDataset(MlflowModelTrackingDataset):
    """``MlflowModelTrackingDataset`` for ``mlflow.pyfunc`` models that carry their
    own input example: MLflow infers the signature from it at save time. A model with a
    ``training_window`` (``{"start", "end"}``) has it recorded as the run's tags
    ``training_window.start`` and ``training_window.end``.

    kedro-mlflow's dataset loads only the model it saved itself (the uri is kept in
    memory). Here, when this instance has saved nothing, ``load`` returns the latest
    model logged under ``save_args["name"]`` by the active MLflow run, so a node in
    another process (an Airflow task joining the DAG run's MLflow run through
    ``MLFLOW_RUN_ID``) reads the model that an earlier task logged.

    Example catalog entry::

        fraud_model:
          type: fraud_detection.datasets.mlflow_model_dataset.MlflowFraudModelDataset
          save_args:
            name: fraud_model
            registered_model_name: fraud-detection
    """

    def __init__(
        self,
        *,
        save_args: dict[str, Any] | None = None,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        super().__init__(
            flavor="mlflow.pyfunc",
            pyfunc_workflow="python_model",
            save_args=save_args,
            load_args=load_args,
            metadata=metadata,
        )

    def _save(self, model: Any) -> None:
        example = getattr(model, "input_example", None)
        if example is not None:
            self._save_args["input_example"] = example
        super()._save(model)
        window = getattr(model, "training_window", None)
        run = mlflow.active_run()
        if window and run is not None:
            # Promotion reads these to check a champion never saw the test window.
            client = MlflowClient()
            for key in ("start", "end"):
                client.set_tag(run.info.run_id, f"{TRAINING_WINDOW_TAG}.{key}", str(window[key]))

    def _load(self) -> Any:
        if self._user_defined_model_uri is None and self._last_saved_model_uri is None:
            return self._mlflow_model_module.load_model(
                model_uri=self.logged_model_uri_of_active_run(), **self._load_args
            )
        return super()._load()

    def logged_model_uri_of_active_run(self) -> str:
        """The ``models:/<model_id>`` uri of the latest model that the active run
        logged under this dataset's name.

        Raises:
            DatasetError: When no run is active or the run logged no such model.
        """
        run = mlflow.active_run()
        if run is None:
            raise DatasetError(
                "Cannot load the fraud model: this dataset saved no model in this process and no "
                "MLflow run is active (set MLFLOW_RUN_ID to the run that logged it)."
            )
        name = self._save_args.get("name")
        filters = [f"source_run_id = '{run.info.run_id}'"]
        if name:
            filters.append(f"name = '{name}'")
        models = MlflowClient().search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=" AND ".join(filters),
            order_by=[{"field_name": "creation_time", "ascending": False}],
            max_results=1,
        )
        if not models:
            raise DatasetError(
                f"MLflow run {run.info.run_id} has logged no model named {name!r}: "
                "run the node that saves it (package_model_node) in this run first."
            )
        return f"models:/{models[0].model_id}"

    @property
    def registered_version(self) -> str | None:
        """Registry version of the model saved by this instance, if any."""
        info = self.model_info
        return None if info is None else getattr(info, "registered_model_version", None)
