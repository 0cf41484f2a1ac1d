"""One small training run (ingestion to evaluation, then reporting) shared by the
report tests: a DataCatalog + SequentialRunner slice, no MLflow; the promotion
decision is given."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from fraud_detection.datasets.absent_dataset import AbsentDataset
from fraud_detection.datasets.optional_dataset import OptionalDataset
from fraud_detection.pipeline_registry import register_pipelines
from fraud_detection.streaming.messages import empty_labels
from tests.conftest import PROJECT_ROOT, make_transactions

PROMOTION_REPORT = {
    "promote": False,
    "reason": (
        "challenger average_precision 0.4000 does not beat champion 0.4500 "
        "by the margin 0.005 (gain -0.0500)"
    ),
    "rule": {
        "metric": "average_precision",
        "min_improvement": 0.005,
        "min_average_precision": 0.1,
        "min_roc_auc": 0.7,
    },
    "challenger": {
        "metrics": {"average_precision": 0.40, "roc_auc": 0.88},
        "run_id": "challenger-run",
    },
    "champion": {
        "version": "4",
        "run_id": "champion-run",
        "metrics": {"average_precision": 0.45, "roc_auc": 0.90},
    },
    "challenger_run_id": "challenger-run",
    "test_rows": 1234,
}


class KeptDataset(MemoryDataset):
    """A memory dataset the runner does not empty after its last use."""

    def _release(self) -> None:
        pass


KEPT = (
    "data_summary",
    "feature_effects",
    "evaluation_report",
    "model_selection",
    "decision_thresholds",
    "search_results",
    "test_predictions",
    "trained_candidates",
    "test_set",
    "model_report",
    "selected_features",
    "fraud_model",
)


def params() -> dict:
    out = {}
    for path in sorted((PROJECT_ROOT / "conf" / "base").glob("parameters_*.yml")):
        out.update(yaml.safe_load(path.read_text()))
    out["split"] = {**out["split"], "n_folds": 2, "remove_known_compromised": False}
    training = copy.deepcopy(out["training"])
    training.update(families=["logistic_regression", "xgboost"], n_iter=2)
    training["candidates"]["xgboost"]["init"]["n_estimators"] = 40
    training["candidates"]["xgboost"]["resampling"] = ["none"]
    out["training"] = training
    out["reporting"] = {**out["reporting"], "effect_sample_size": 500, "top_features": 10}
    return out


def fraud_by_amount(n: int = 6000, seed: int = 11):
    """Transactions whose fraud label follows the amount: large amounts are fraud."""
    raw = make_transactions(n=n, days=60, seed=seed)
    rng = np.random.default_rng(seed)
    raw["is_fraud"] = ((raw["amount"] > 170) | (rng.uniform(size=n) < 0.003)).astype("int64")
    raw.loc[:4, "amount"] = -1.0  # a few rows for the quarantine
    return raw


@pytest.fixture(scope="session")
def report_run(tmp_path_factory):
    """The catalog after ingestion -> evaluation -> reporting on small data."""
    pipes = register_pipelines()
    flow = (
        pipes["ingestion"]
        + pipes["feature_engineering"]
        + pipes["data_split"]
        + pipes["training"]
        + pipes["evaluation"]
        + pipes["reporting"]
    )
    catalog = DataCatalog(
        datasets={
            "raw_transactions": MemoryDataset(fraud_by_amount()),
            "raw_labels": MemoryDataset(empty_labels()),  # labels in the rows
            "promotion_report": MemoryDataset(PROMOTION_REPORT),
            "spark_feature_table": AbsentDataset(reason="not the spark environment"),
            "monitoring_verdict": OptionalDataset(
                dataset={
                    "type": "json.JSONDataset",
                    "filepath": str(
                        tmp_path_factory.mktemp("monitoring") / "monitoring_verdict.json"
                    ),
                }
            ),
            "challenger_comparison": OptionalDataset(
                dataset={
                    "type": "json.JSONDataset",
                    "filepath": str(
                        tmp_path_factory.mktemp("shadow") / "challenger_comparison.json"
                    ),
                }
            ),
            "backtest_results": OptionalDataset(
                dataset={
                    "type": "json.JSONDataset",
                    "filepath": str(tmp_path_factory.mktemp("backtest") / "backtest_results.json"),
                }
            ),
            **{name: KeptDataset() for name in KEPT},
        }
    )
    for key, value in params().items():
        catalog[f"params:{key}"] = value
    SequentialRunner().run(flow, catalog)
    return catalog
