"""``MlflowFraudModelDataset``: logs and registers the pyfunc model with a signature."""

from __future__ import annotations

from typing import Any

from kedro_mlflow.io.models import MlflowModelTrackingDataset


class MlflowFraudModelDataset(MlflowModelTrackingDataset):
    """``MlflowModelTrackingDataset`` for ``mlflow.pyfunc`` models that carry their
    own input example: MLflow infers the signature from it at save time.

    Example catalog entry::

        fraud_model:
          type: fraud_detection.datasets.mlflow_model_dataset.MlflowFraudModelDataset
          save_args:
            name: fraud_model
            registered_model_name: fraud-detection
    """

    def __init__(self, *, save_args: dict[str, Any] | None = None, load_args: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None):
        super().__init__(flavor="mlflow.pyfunc", pyfunc_workflow="python_model", save_args=save_args, load_args=load_args, metadata=metadata)

    def _save(self, model: Any) -> None:
        example = getattr(model, "input_example", None)
        if example is not None:
            self._save_args["input_example"] = example
        super()._save(model)

    @property
    def registered_version(self) -> str | None:
        info = self.model_info
        return None if info is None else getattr(info, "registered_model_version", None)
