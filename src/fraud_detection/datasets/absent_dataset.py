"""``AbsentDataset``: a catalog entry an environment does not have; it loads ``None``.

For an input that only some environments provide, such as the Spark feature table
XGBoost trains on with ``training.engine: spark``: the base catalog declares it absent
(nothing is read), the ``spark`` environment overrides it with the real table, and the
node that gets ``None`` while it needs the table raises with the entry's ``reason``.
"""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError


class AbsentDataset(AbstractDataset[None, None]):
    """Loads ``None``; refuses to save.

    Example catalog entry::

        spark_feature_table:
          type: fraud_detection.datasets.absent_dataset.AbsentDataset
          reason: "only the spark environment has it (kedro run --env spark)"
    """

    def __init__(self, *, reason: str, metadata: dict[str, Any] | None = None) -> None:
        """Args:
        reason: Why the environment has no such data, and where it exists.
        metadata: Free-form metadata, ignored by Kedro.
        """
        self.reason = reason
        self.metadata = metadata

    def load(self) -> None:
        return None

    def save(self, data: None) -> None:
        raise DatasetError(f"Cannot save to an absent dataset: {self.reason}")

    def _exists(self) -> bool:
        return False

    def _describe(self) -> dict[str, Any]:
        return {"reason": self.reason}
