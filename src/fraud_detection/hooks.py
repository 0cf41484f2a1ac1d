"""Kedro hooks: load `.env` and validate the environment before any node runs; commit
Kafka offsets only once the batch read from Kafka is persisted."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from fraud_detection.config import load_env_file
from fraud_detection.datasets.kafka_dataset import KafkaDataset
from fraud_detection.validation import StartupValidationError, validate_environment

logger = logging.getLogger(__name__)


class StartupValidationHook:
    """Fails a run at start-up, naming what is wrong, instead of deep inside a node.

    The checks to run come from the ``validation`` config of the environment
    (``conf/<env>/validation.yml``), so each environment checks the services it uses.
    """

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: Any) -> None:
        project_path = Path(context.project_path)
        if load_env_file(project_path):
            logger.info("Loaded environment variables from %s", project_path / ".env")
        try:
            config = context.config_loader["validation"]
        except KeyError:
            config = {}
        checks = _with_credentials(config.get("startup_validation", {}), context)
        problems = validate_environment(checks, project_path)
        if problems:
            raise StartupValidationError(context.env or "local", problems)
        logger.info("Start-up validation passed for environment '%s'", context.env or "local")


def _with_credentials(checks: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Service checks may name a credentials.yml entry (``credentials: kafka``); the
    check then gets that entry's values, so secrets stay in credentials.yml."""
    resolved = dict(checks)
    for name, section in checks.items():
        if isinstance(section, Mapping) and isinstance(section.get("credentials"), str):
            credentials = context.config_loader["credentials"]
            entry = credentials.get(section["credentials"])
            resolved[name] = {**section, "credentials": entry if entry is not None else section["credentials"]}
    return resolved


class KafkaOffsetCommitHook:
    """Commits the consumer offsets of a ``KafkaDataset`` only after the node that read
    it has persisted all of its outputs.

    ``KafkaDataset.load`` never commits. If the run dies before the consuming node's
    outputs are saved, the offsets stay where they were and the next run reads the
    same messages again; once every output is saved, the offsets move past the batch
    and the next run reads only new messages. When the consuming node writes to a
    memory dataset (nothing persisted), the commit waits for the end of a successful run.
    """

    def __init__(self) -> None:
        self._waiting: dict[str, tuple[set[str], list[KafkaDataset]]] = {}
        self._at_run_end: list[KafkaDataset] = []

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._waiting.clear()
        self._at_run_end.clear()

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any) -> None:
        kafka_inputs = [ds for name in node.inputs if isinstance(ds := catalog.get(name), KafkaDataset)]
        if not kafka_inputs:
            return
        in_memory = [name for name in node.outputs if getattr(catalog.get(name), "_EPHEMERAL", True)]
        if in_memory or not node.outputs:
            logger.warning(
                "Node %s reads Kafka but does not persist %s: its offsets are committed only "
                "when the whole run succeeds", node.name, in_memory or "any output",
            )
            self._at_run_end.extend(kafka_inputs)
        else:
            self._waiting[node.name] = (set(node.outputs), kafka_inputs)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, node: Any) -> None:
        entry = self._waiting.get(node.name)
        if entry is None:
            return
        unsaved, datasets = entry
        unsaved.discard(dataset_name)
        if not unsaved:
            del self._waiting[node.name]
            for dataset in datasets:
                dataset.commit()

    @hook_impl
    def after_pipeline_run(self) -> None:
        for dataset in self._at_run_end:
            dataset.commit()
        self._at_run_end.clear()

    @hook_impl
    def on_pipeline_error(self) -> None:
        # Nothing more is committed: what was not persisted is read again next run.
        self._waiting.clear()
        self._at_run_end.clear()
