"""Kedro hooks: load `.env` and validate the environment before any node runs; start
the SparkSession of an environment that configures one; commit Kafka offsets only once
the batch read from Kafka is persisted."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl

from fraud_detection.config import load_env_file
from fraud_detection.datasets.kafka_dataset import KafkaDataset
from fraud_detection.datasets.parquet_batches_dataset import ParquetBatchesDataset
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
            resolved[name] = {
                **section,
                "credentials": entry if entry is not None else section["credentials"],
            }
    return resolved


class SparkHook:
    """Creates the SparkSession from the environment's ``spark`` config
    (``conf/spark/spark.yml``), Kedro's documented pattern, before the catalog's
    ``SparkDataset`` entries need it.

    Environments without that config never start, nor import, Spark.
    """

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        try:
            settings = context.config_loader["spark"]
        except (KeyError, MissingConfigException):
            return
        if not settings:
            return
        from fraud_detection.spark.session import spark_session

        spark_session(settings, app_name=Path(context.project_path).name)


class KafkaOffsetCommitHook:
    """Commits the consumer offsets of a ``KafkaDataset`` only once everything made from
    the batch is persisted.

    ``KafkaDataset.load`` never commits. When the batch's way through the run ends in
    datasets that accumulate batches (``ParquetBatchesDataset``: the validated rows and
    the quarantine in the ``kafka`` environment), the commit waits until every node on
    the way there (standardise, validate, the quality gate) has saved its persisted
    outputs: the offsets move only once the gate has passed. Otherwise it waits for the
    persisted datasets the consuming node feeds, directly or through in-memory ones (a
    run of the consuming node alone, one task per node, commits once its outputs are
    saved; an in-memory dataset that no node of the run reads defers the commit to the
    end of a successful run). If the run dies (or the gate stops it) before that, the
    offsets stay where they were and the next run reads the same messages again.
    """

    def __init__(self) -> None:
        self._waiting: dict[str, tuple[set[str], list[KafkaDataset]]] = {}
        self._at_run_end: list[KafkaDataset] = []
        self._pipeline: Any = None

    @hook_impl
    def before_pipeline_run(self, pipeline: Any) -> None:
        self._waiting.clear()
        self._at_run_end.clear()
        self._pipeline = pipeline

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any) -> None:
        kafka_inputs = [
            ds for name in node.inputs if isinstance(ds := catalog.get(name), KafkaDataset)
        ]
        if not kafka_inputs:
            return
        persisted = self._persisted_downstream(node, catalog)
        if not persisted:
            logger.warning(
                "Node %s reads Kafka but what it makes is not all persisted in this run: its "
                "offsets are committed only when the whole run succeeds",
                node.name,
            )
            self._at_run_end.extend(kafka_inputs)
        else:
            self._waiting[node.name] = (persisted, kafka_inputs)

    def _persisted_downstream(self, node: Any, catalog: Any) -> set[str] | None:
        """The persisted datasets to be saved before the commit; ``None``: wait for the
        end of the run."""
        nodes = list(self._pipeline.nodes) if self._pipeline is not None else [node]
        readers = {
            name: [n for n in nodes if name in n.inputs] for n in nodes for name in n.outputs
        }
        reached = {node.name: node}
        todo = [node]
        while todo:
            for name in todo.pop().outputs:
                for reader in readers.get(name, []):
                    if reader.name not in reached:
                        reached[reader.name] = reader
                        todo.append(reader)
        # Where the batch is accumulated (validated rows, quarantine), its path ends:
        # every node on the way there must have saved what it makes.
        ends = {
            name
            for n in reached.values()
            for name in n.outputs
            if isinstance(catalog.get(name), ParquetBatchesDataset)
        }
        if ends:
            on_path = [n for n in reached.values() if self._leads_to(n, ends, readers)]
            return {
                name
                for n in on_path
                for name in n.outputs
                if not getattr(catalog.get(name), "_EPHEMERAL", True)
            }
        return self._persisted_through_memory(node, catalog, readers)

    @staticmethod
    def _leads_to(node: Any, ends: set[str], readers: dict[str, list[Any]]) -> bool:
        seen: set[str] = set()
        todo = [node]
        while todo:
            current = todo.pop()
            if ends & set(current.outputs):
                return True
            for name in current.outputs:
                for reader in readers.get(name, []):
                    if reader.name not in seen:
                        seen.add(reader.name)
                        todo.append(reader)
        return False

    @staticmethod
    def _persisted_through_memory(
        node: Any, catalog: Any, readers: dict[str, list[Any]]
    ) -> set[str] | None:
        """The persisted datasets made from ``node``'s outputs through in-memory ones;
        ``None`` when an in-memory dataset on the way is not read by the run."""
        persisted: set[str] = set()
        seen: set[str] = set()
        todo = list(node.outputs)
        if not todo:
            return None
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            if not getattr(catalog.get(name), "_EPHEMERAL", True):
                persisted.add(name)
                continue
            found = readers.get(name, [])
            if not found or any(not n.outputs for n in found):
                return None
            for reader in found:
                todo.extend(reader.outputs)
        return persisted

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        for name, (unsaved, datasets) in list(self._waiting.items()):
            unsaved.discard(dataset_name)
            if not unsaved:
                del self._waiting[name]
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
