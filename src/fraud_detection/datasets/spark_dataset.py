"""``PandasToSparkDataset``: kedro-datasets' ``spark.SparkDataset`` that also saves a
pandas frame, for the one table a pandas node writes into the Spark flow."""

from __future__ import annotations

from typing import Any

import pandas as pd
from kedro.io import DatasetError
from kedro_datasets.spark import SparkDataset
from pyspark.sql import SparkSession


class PandasToSparkDataset(SparkDataset):
    """``spark.SparkDataset`` whose ``save`` also takes a pandas frame (the simulator's
    output in the ``spark`` environment), turned into a Spark table at this edge.

    Timestamps go over as microseconds, Spark's resolution; ``load`` returns a Spark
    table as ``SparkDataset`` does. Arguments are ``SparkDataset``'s.

    Example catalog entry::

        raw_transactions:
          type: fraud_detection.datasets.spark_dataset.PandasToSparkDataset
          filepath: data/01_raw/spark/transactions.parquet
          file_format: parquet
          save_args: {mode: overwrite}
    """

    def save(self, data: Any) -> None:
        if isinstance(data, pd.DataFrame):
            data = _to_spark(data)
        elif not hasattr(data, "write"):
            raise DatasetError(
                f"PandasToSparkDataset saves a pandas or Spark DataFrame, got {type(data).__name__}"
            )
        super().save(data)


def _to_spark(frame: pd.DataFrame) -> Any:
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].astype("datetime64[us]")
    return SparkSession.builder.getOrCreate().createDataFrame(out)
