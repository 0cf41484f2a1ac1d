"""``OptionalDataset``: a dataset that may not have been written yet; loading it then
gives ``None`` instead of failing the run."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError, Version
from kedro.io.core import parse_dataset_definition


class OptionalDataset(AbstractDataset[Any, Any]):
    """Wraps another dataset; ``load`` returns ``None`` while the wrapped one does not
    exist, ``save`` writes through it.

    For inputs that another pipeline produces when it has run at all, such as the
    monitoring pipeline's verdict read by the model report: the report says
    "monitoring has not run" instead of the run failing.

    Example catalog entry::

        monitoring_verdict:
          type: fraud_detection.datasets.optional_dataset.OptionalDataset
          dataset:
            type: json.JSONDataset
            filepath: data/08_reporting/monitoring_verdict.json
    """

    def __init__(
        self,
        *,
        dataset: dict[str, Any],
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Creates the wrapped dataset.

        Args:
            dataset: Catalog definition of the wrapped dataset (with its ``type``).
            version: Set by the catalog when the entry says ``versioned: true``.
            metadata: Free-form metadata, ignored by Kedro.

        Raises:
            DatasetError: The wrapped definition has no ``type``.
        """
        if "type" not in dataset:
            raise DatasetError(
                "OptionalDataset needs the wrapped dataset's 'type' in 'dataset', "
                f"got {sorted(dataset)}"
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
        self.metadata = metadata

    def load(self) -> Any:
        if not self._dataset.exists():
            return None
        return self._dataset.load()

    def save(self, data: Any) -> None:
        self._dataset.save(data)

    def _exists(self) -> bool:
        return self._dataset.exists()

    def _describe(self) -> dict[str, Any]:
        return {"dataset": self._dataset._describe()}
