"""Project pipelines."""

from __future__ import annotations

import importlib
import pkgutil

from kedro.pipeline import Pipeline

import fraud_detection.pipelines

# From raw data to a promoted model; every environment runs this one, with raw
# transactions from the simulator, a file, Kafka or the object store.
TRAINING_FLOW = (
    "ingestion",
    "feature_engineering",
    "data_split",
    "training",
    "evaluation",
    "promotion",
    "reporting",
)


def register_pipelines() -> dict[str, Pipeline]:
    """Registers one pipeline per folder of ``fraud_detection.pipelines``, plus
    ``train_and_promote`` (ingestion to promotion) and ``__default__`` (simulated data,
    then ``train_and_promote``).

    ``monitoring`` and ``batch_scoring`` are registered but left out of ``__default__``:
    both read the registry's champion, which the default run is there to produce.

    Folders are discovered here rather than with ``find_pipelines``: Kedro 1.7's
    selective loading (``--pipelines X`` loads only folder X) cannot build the
    composites, and importing every folder costs well under a second.
    """
    pipelines: dict[str, Pipeline] = {}
    for module in pkgutil.iter_modules(fraud_detection.pipelines.__path__):
        if module.ispkg:
            package = importlib.import_module(f"fraud_detection.pipelines.{module.name}")
            pipelines[module.name] = package.create_pipeline()
    pipelines["train_and_promote"] = sum((pipelines[name] for name in TRAINING_FLOW), Pipeline([]))
    pipelines["__default__"] = pipelines["simulation"] + pipelines["train_and_promote"]
    return pipelines
