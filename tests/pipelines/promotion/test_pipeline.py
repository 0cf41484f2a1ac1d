"""The promotion pipeline against a real SQLite MLflow registry: the decision moves the
alias its stage names (``champion``, or ``challenger`` when live evidence is required)."""

from __future__ import annotations

import mlflow
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from fraud_detection.pipeline_registry import register_pipelines
from tests.conftest import base_parameters
from tests.pipelines.conftest import labelled_rows


class _KeptDataset(MemoryDataset):
    """A memory dataset the runner cannot release, so the test can read it after."""

    def _release(self) -> None:
        pass


PLAN = {"test_start": "2025-03-01 00:00:00", "test_end": "2025-03-07 00:00:00"}


def _run(registry, **live_evidence) -> dict:
    params = base_parameters("promotion")
    params["live_evidence"] = {**params["live_evidence"], **live_evidence}
    report = _KeptDataset()
    catalog = DataCatalog(
        datasets={
            "fraud_model": MemoryDataset(
                mlflow.pyfunc.load_model(f"models:/{registry.name}/{registry.strong}"),
                copy_mode="assign",
            ),
            "current_champion": registry.dataset("champion"),
            "test_set": MemoryDataset(labelled_rows()),
            "split_plan": MemoryDataset(PLAN),
            "promotion_report": report,
            "champion_alias": registry.dataset("champion"),
            "challenger_alias": registry.dataset("challenger"),
        }
    )
    catalog["params:promotion"] = params
    SequentialRunner().run(register_pipelines()["promotion"], catalog)
    return report.load()


def test_winner_becomes_champion_when_live_evidence_is_not_required(registry):
    decision = _run(registry, required=False)
    assert decision["promote"] is True and decision["stage"] == "champion"
    assert registry.alias("champion") == registry.strong
    assert registry.alias("challenger") is None


def test_winner_is_made_challenger_and_the_champion_kept_when_live_evidence_is_required(
    registry,
):
    decision = _run(registry, required=True)
    assert decision["promote"] is False and decision["stage"] == "challenger"
    assert registry.alias("champion") == registry.weak
    assert registry.alias("challenger") == registry.strong
    tags = mlflow.MlflowClient().get_model_version(registry.name, registry.strong).tags
    assert tags["promotion.decision"] == "challenger"
    assert "live evidence is required" in tags["promotion.reason"]
