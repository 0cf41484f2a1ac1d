"""The monitoring pipeline's live promotion against a real SQLite MLflow registry: the
challenger compared on the monitored window becomes champion, at its exact version,
only when params:promotion.live_evidence is required and met."""

from __future__ import annotations

import mlflow
import numpy as np
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from mlflow.tracking import MlflowClient

from fraud_detection.pipeline_registry import register_pipelines
from tests.conftest import base_parameters
from tests.pipelines.conftest import labelled_rows


class _KeptDataset(MemoryDataset):
    """A memory dataset the runner cannot release, so the test can read it after."""

    def _release(self) -> None:
        pass


def _scored_by_champion(registry):
    """The window as score_window_node leaves it: the champion's score and decision,
    the last sixth of the labels not arrived yet."""
    window = labelled_rows(n=600, seed=4)
    window["is_fraud"] = window["is_fraud"].astype(float)
    window.loc[500:, "is_fraud"] = np.nan
    champion = mlflow.pyfunc.load_model(f"models:/{registry.name}@champion")
    out = champion.predict(window)
    scored = window.assign(score=out["score"].to_numpy(), decision=out["decision"].to_numpy())
    scored["model_version"] = registry.weak
    scored.attrs["model_version"] = registry.weak
    return scored


def _run(registry, **live_evidence) -> dict:
    """compare_challenger_node and decide_live_promotion_node, the registry as the
    catalog's datasets; returns the live promotion report."""
    MlflowClient().set_registered_model_alias(registry.name, "challenger", registry.strong)
    params = base_parameters("promotion")
    params["live_evidence"] = {**params["live_evidence"], **live_evidence}
    report = _KeptDataset()
    catalog = DataCatalog(
        datasets={
            "monitoring_window_scores": MemoryDataset(_scored_by_champion(registry)),
            "current_challenger": registry.dataset("challenger"),
            "challenger_comparison": MemoryDataset(),
            "live_promotion_report": report,
            "live_champion_alias": registry.dataset("champion"),
        }
    )
    catalog["params:promotion"] = params
    slice_ = register_pipelines()["monitoring"].from_nodes("monitoring.compare_challenger_node")
    assert {n.name for n in slice_.nodes} == {
        "monitoring.compare_challenger_node",
        "monitoring.decide_live_promotion_node",
    }
    SequentialRunner().run(slice_, catalog)
    return report.load()


LIVE = {"required": True, "min_labelled_rows": 300, "min_labelled_frauds": 20}


def test_the_challenger_becomes_champion_at_its_compared_version_on_enough_live_evidence(
    registry,
):
    report = _run(registry, **LIVE)
    assert report["outcome"] == "promoted", report["reason"]
    assert report["challenger_version"] == registry.strong
    assert registry.alias("champion") == registry.strong
    tags = MlflowClient().get_model_version(registry.name, registry.strong).tags
    assert tags["promotion.decision"] == "promoted"
    assert tags["promotion.reason"] == report["reason"]


def test_the_champion_stays_while_the_live_labels_are_too_few(registry):
    report = _run(registry, **{**LIVE, "min_labelled_rows": 10_000})
    assert report["outcome"] == "insufficient_labels"
    assert "of 10000 labelled rows" in report["reason"]
    assert registry.alias("champion") == registry.weak
    assert registry.alias("challenger") == registry.strong
    tags = MlflowClient().get_model_version(registry.name, registry.strong).tags
    assert tags["promotion.decision"] == "insufficient_labels"


def test_nothing_moves_when_live_evidence_is_not_required(registry):
    report = _run(registry, required=False)
    assert report["required"] is False and report["outcome"] == "not_required"
    assert registry.alias("champion") == registry.weak
    assert "promotion.decision" not in (
        MlflowClient().get_model_version(registry.name, registry.strong).tags
    )
