"""conf/prod: every dataset of every pipeline lives in the bucket, in MLflow or in
memory, never in a local file; run outputs are versioned. Checked on the resolved
configuration, without services (the real run is in tests/integration/object_store)."""

from __future__ import annotations

from typing import Any

import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.project import pipelines, settings
from kedro.framework.startup import bootstrap_project
from kedro.io import DataCatalog

from tests.conftest import PROJECT_ROOT

# Datasets whose home is the MLflow server (runs, registry), not a file.
MLFLOW_TYPES = (
    "MlflowFraudModelDataset",
    "MlflowChampionDataset",
    "MlflowChampionArtifactDataset",
    "MlflowMetricsHistoryDataset",
    "MlflowChildRunsDataset",
)
# Entries an environment does not have (they load None, nothing is read or written).
ABSENT_TYPES = ("AbsentDataset",)
# Landing files written by upstream systems: overwritten in place, not versioned.
LANDING = {"raw_transactions", "raw_labels", "current_transactions"}


def filepath_of(entry: dict[str, Any]) -> str | None:
    """The file of an entry, or of the dataset it wraps."""
    return entry.get("filepath") or (entry.get("dataset") or {}).get("filepath")


@pytest.fixture(scope="module")
def prod_catalog() -> dict[str, dict[str, Any] | None]:
    """Resolved prod entry of every dataset of every registered pipeline (None: memory)."""
    mp = pytest.MonkeyPatch()
    mp.delenv("S3_BUCKET", raising=False)
    bootstrap_project(PROJECT_ROOT)
    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"), env="prod", **settings.CONFIG_LOADER_ARGS
    )
    catalog = DataCatalog.from_config(loader["catalog"], loader["credentials"])
    names = sorted(set().union(*(p.datasets() for p in pipelines.values())))
    names = [n for n in names if not n.startswith("params:") and n != "parameters"]
    present = [n for n in names if catalog.get(n) is not None]  # materialises factory entries
    config = catalog.to_config()[0]
    mp.undo()
    return {n: (config[n] if n in present else None) for n in names}


def test_no_dataset_of_any_pipeline_is_a_local_file_in_prod(prod_catalog):
    local = {}
    for name, entry in prod_catalog.items():
        if entry is None or str(entry["type"]).endswith(MLFLOW_TYPES + ABSENT_TYPES):
            continue
        path = filepath_of(entry)
        if not (path or "").startswith("s3://fraud-detection/"):
            local[name] = path
    assert not local, f"add these to conf/prod/catalog.yml on s3://: {local}"


def test_every_run_output_is_versioned_and_landing_files_are_not(prod_catalog):
    files = {n: e for n, e in prod_catalog.items() if e is not None and filepath_of(e)}
    assert LANDING <= set(files)
    assert not [n for n in LANDING if files[n].get("versioned")]
    assert not [n for n, e in files.items() if n not in LANDING and not e.get("versioned")]


def test_reports_and_plots_on_s3_are_also_logged_to_mlflow(prod_catalog):
    wrapped = {
        n
        for n, e in prod_catalog.items()
        if e and str(e["type"]).endswith("RemoteMlflowArtifactDataset")
    }
    assert {
        "evaluation_report",
        "promotion_report",
        "model_selection",
        "pr_curve_plot",
        "roc_curve_plot",
    } <= wrapped
    # kedro-mlflow's own wrapper cannot read a remote file to log it.
    assert not [
        n
        for n, e in prod_catalog.items()
        if e and str(e["type"]).endswith(".MlflowArtifactDataset")
    ]
