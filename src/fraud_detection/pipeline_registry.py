"""Project pipelines."""

from __future__ import annotations

import importlib

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# From raw data to a promoted model; every environment runs this one, with raw
# transactions from the simulator, a file, Kafka or the object store.
TRAINING_FLOW = ("ingestion", "feature_engineering", "data_split", "training", "evaluation", "promotion")


def _folder_pipeline(found: dict[str, Pipeline], name: str) -> Pipeline:
    # `kedro run --pipelines X` makes find_pipelines load only X, so composites
    # build their parts from the folders directly.
    if name in found:
        return found[name]
    return importlib.import_module(f"fraud_detection.pipelines.{name}").create_pipeline()


def register_pipelines() -> dict[str, Pipeline]:
    """Registers one pipeline per folder, ``train_and_promote`` (ingestion to
    promotion) and ``__default__`` (simulated data, then ``train_and_promote``)."""
    pipelines = find_pipelines(raise_errors=True)
    flow = sum((_folder_pipeline(pipelines, name) for name in TRAINING_FLOW), Pipeline([]))
    pipelines["train_and_promote"] = flow
    pipelines["__default__"] = _folder_pipeline(pipelines, "simulation") + flow
    return pipelines
