"""``AbsentDataset``: what an environment does not have loads as ``None``, never saves,
and the base catalog declares the Spark feature table that way (the spark environment
overrides it with the real table)."""

from __future__ import annotations

import pytest
import yaml
from kedro.io import DataCatalog, DatasetError

from fraud_detection.datasets.absent_dataset import AbsentDataset
from tests.conftest import PROJECT_ROOT


def test_loads_none_refuses_to_save_and_says_why():
    dataset = AbsentDataset(reason="only the spark environment has it")
    assert dataset.load() is None
    assert not dataset.exists()
    with pytest.raises(DatasetError, match="only the spark environment has it"):
        dataset.save({"rows": 1})


def test_base_catalog_has_no_spark_table_and_the_spark_env_has_it():
    base = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog.yml").read_text())
    catalog = DataCatalog.from_config({"spark_feature_table": base["spark_feature_table"]})
    assert catalog.load("spark_feature_table") is None
    spark = (PROJECT_ROOT / "conf/spark/catalog.yml").read_text()
    entry = yaml.safe_load(spark)["spark_feature_table"]
    assert entry["type"] == "spark.SparkDataset"
    assert entry["filepath"] == yaml.safe_load(spark)["transaction_features"]["filepath"]
