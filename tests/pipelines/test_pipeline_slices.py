"""Pipeline slices run with a DataCatalog and the SequentialRunner (no session)."""

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from fraud_detection.errors import DataQualityError
from fraud_detection.pipeline_registry import register_pipelines
from fraud_detection.streaming.messages import empty_labels
from tests.conftest import PROJECT_ROOT, make_transactions


class _KeptDataset(MemoryDataset):
    """A memory dataset the runner cannot release, so the test can read it after."""

    def _release(self) -> None:
        pass


def _params(name: str) -> dict:
    return yaml.safe_load((PROJECT_ROOT / "conf" / "base" / f"parameters_{name}.yml").read_text())


def _catalog(raw: pd.DataFrame, **overrides) -> DataCatalog:
    params = {
        **_params("ingestion"),
        **_params("labels"),
        **_params("feature_engineering"),
        **_params("data_split"),
    }
    params["split"] = {**params["split"], "n_folds": 2, "remove_known_compromised": False}
    params.update(overrides)
    # A file source: the labels are in the rows, no label file.
    catalog = DataCatalog(
        datasets={
            "raw_transactions": MemoryDataset(raw),
            "raw_labels": MemoryDataset(empty_labels()),
        }
    )
    # Outputs the tests read after the run; the runner releases consumed ones.
    for name in ("data_quality_report", "quarantined_transactions", "development_set", "test_set"):
        catalog[name] = _KeptDataset()
    for key, value in params.items():
        catalog[f"params:{key}"] = value
    return catalog


def test_ingestion_to_split_slice_produces_disjoint_sets():
    pipes = register_pipelines()
    slice_ = pipes["ingestion"] + pipes["feature_engineering"] + pipes["data_split"]
    raw = make_transactions(n=3000, days=60, seed=5)
    raw.loc[0, "amount"] = -3.0
    catalog = _catalog(raw)
    SequentialRunner().run(slice_, catalog)
    dev, test = catalog.load("development_set"), catalog.load("test_set")
    dq = catalog.load("data_quality_report")
    assert dq["rows_in"] == 3000 and dq["rows_quarantined"] == 1
    assert set(dev["transaction_id"]).isdisjoint(test["transaction_id"])
    assert dev["timestamp"].max() < test["timestamp"].min()
    assert catalog.load("quarantined_transactions")["quarantine_reason"].tolist() == [
        "amount_out_of_range"
    ]


def test_slice_stops_at_ingestion_when_too_many_rows_are_bad():
    pipes = register_pipelines()
    raw = make_transactions(n=500, days=60, seed=6)
    raw.loc[:100, "customer_id"] = None
    with pytest.raises(DataQualityError, match="missing_customer_id"):
        SequentialRunner().run(pipes["ingestion"] + pipes["feature_engineering"], _catalog(raw))


def test_registry_composes_the_default_from_the_folders():
    pipes = register_pipelines()
    default_nodes = {n.name for n in pipes["__default__"].nodes}
    assert (
        "simulation.simulate_transactions_node" in default_nodes
        and "promotion.record_promotion_node" in default_nodes
    )
    assert "simulation.simulate_transactions_node" not in {
        n.name for n in pipes["train_and_promote"].nodes
    }
    assert all(n.name.endswith("_node") for n in pipes["__default__"].nodes)
