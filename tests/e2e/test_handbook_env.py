"""Bring-your-own data: the public Handbook table loads through the column mapping of
``conf/handbook`` with no code change (read in place from HANDBOOK_DATA_DIR)."""

import json

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tests.conftest import handbook_dir
from tests.e2e.test_default_run import make_project

pytestmark = pytest.mark.slow


def test_handbook_table_ingests_through_the_column_mapping(tmp_path, monkeypatch):
    folder = handbook_dir()
    project = make_project(tmp_path)
    monkeypatch.chdir(project)
    monkeypatch.setenv("HANDBOOK_TRANSACTIONS_PATH", str(folder / "transactions.parquet"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="handbook") as session:
        session.run(pipeline_names=["ingestion"])
    report = json.loads((project / "data/08_reporting/data_quality_report.json").read_text())
    assert report["rows_in"] == 1_754_155 == report["rows_valid"]
    valid = pd.read_parquet(project / "data/02_intermediate/validated_transactions.parquet")
    assert valid["is_fraud"].mean() == pytest.approx(0.00837, abs=1e-4)
    # Absent optional columns get the schema's defaults; the source's extras are kept.
    assert set(valid["currency"]) == {"EUR"} and "TX_FRAUD_SCENARIO" in valid.columns
    assert not (folder / "data").exists()  # nothing was written next to the source


def test_failed_quality_gate_leaves_quarantine_and_report_on_disk(tmp_path, monkeypatch):
    from fraud_detection.errors import DataQualityError
    from tests.conftest import make_transactions

    project = make_project(tmp_path)
    monkeypatch.chdir(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
    raw = make_transactions(n=200, days=10, seed=1)
    raw.loc[:49, "amount"] = -1.0  # 25% bad, limit 5%
    raw.to_parquet(project / "data/01_raw/transactions.parquet")
    bootstrap_project(project)
    with pytest.raises(
        DataQualityError, match=r"50 of 200 transactions \(25.00%\) failed validation"
    ):
        with KedroSession.create(project_path=project) as session:
            session.run(pipeline_names=["ingestion"])
    quarantine = pd.read_parquet(project / "data/02_intermediate/quarantined_transactions.parquet")
    assert len(quarantine) == 50 and set(quarantine["quarantine_reason"]) == {"amount_out_of_range"}
    report = json.loads((project / "data/08_reporting/data_quality_report.json").read_text())
    assert report["rows_quarantined"] == 50 and report["rows_in"] == 200
    assert not (project / "data/02_intermediate/validated_transactions.parquet").exists()
