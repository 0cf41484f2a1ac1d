"""KafkaOffsetCommitHook commits only after the consuming node's outputs are saved."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import node, pipeline
from kedro.runner import SequentialRunner
from kedro_datasets.pandas import ParquetDataset

from fraud_detection.datasets.kafka_dataset import KafkaDataset
from fraud_detection.datasets.parquet_batches_dataset import ParquetBatchesDataset
from fraud_detection.hooks import KafkaOffsetCommitHook
from tests.conftest import make_transactions


class RecordingKafkaDataset(KafkaDataset):
    """A KafkaDataset whose batch is a fixed frame; records when it commits and
    which files existed at that moment."""

    def __init__(self, frame: pd.DataFrame, watch: list) -> None:
        super().__init__(topic="transactions", group_id="g")
        self._frame, self._watch = frame, watch
        self.commits: list[list[bool]] = []

    def load(self) -> pd.DataFrame:
        self._pending_offsets = {"tp": len(self._frame)}
        return self._frame

    def commit(self) -> None:
        if self._pending_offsets:
            self.commits.append([path.exists() for path in self._watch])
            self._pending_offsets = {}


def _run(nodes, catalog) -> None:
    """Runs like a KedroSession does: pipeline hooks around the runner's node hooks."""
    hooks = _create_hook_manager()
    hooks.register(KafkaOffsetCommitHook())
    pipe = pipeline(nodes)
    context = {"run_params": {}, "pipeline": pipe, "catalog": catalog}
    hooks.hook.before_pipeline_run(**context)
    try:
        result = SequentialRunner().run(pipe, catalog, hook_manager=hooks)
    except Exception as exc:
        hooks.hook.on_pipeline_error(error=exc, **context)
        raise
    hooks.hook.after_pipeline_run(run_result=result, **context)


def _split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return frame.iloc[:5], frame.iloc[5:]


def test_offsets_are_committed_once_every_output_of_the_consuming_node_is_saved(tmp_path):
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    kafka = RecordingKafkaDataset(make_transactions(n=10), watch=[first, second])
    catalog = DataCatalog(
        datasets={
            "raw": kafka,
            "a": ParquetDataset(filepath=str(first)),
            "b": ParquetDataset(filepath=str(second)),
        }
    )
    _run([node(_split, "raw", ["a", "b"], name="split_node")], catalog)
    assert kafka.commits == [[True, True]]


def test_no_commit_when_the_run_fails_before_the_outputs_are_saved(tmp_path):
    kafka = RecordingKafkaDataset(make_transactions(n=10), watch=[])

    def crash(frame: pd.DataFrame) -> pd.DataFrame:
        raise RuntimeError("killed between consume and persist")

    catalog = DataCatalog(
        datasets={"raw": kafka, "out": ParquetDataset(filepath=str(tmp_path / "o.parquet"))}
    )
    with pytest.raises(RuntimeError, match="killed between consume and persist"):
        _run([node(crash, "raw", "out", name="crash_node")], catalog)
    assert kafka.commits == []


def test_memory_outputs_wait_for_the_end_of_a_successful_run(tmp_path):
    final = tmp_path / "final.parquet"
    kafka = RecordingKafkaDataset(make_transactions(n=10), watch=[final])
    catalog = DataCatalog(
        datasets={
            "raw": kafka,
            "mid": MemoryDataset(),
            "final": ParquetDataset(filepath=str(final)),
        }
    )
    _run(
        [
            node(lambda f: f, "raw", "mid", name="copy_node"),
            node(lambda f: f, "mid", "final", name="persist_node"),
        ],
        catalog,
    )
    assert kafka.commits == [[True]]


def test_memory_outputs_and_a_failing_later_node_commit_nothing():
    kafka = RecordingKafkaDataset(make_transactions(n=10), watch=[])

    def crash(frame: pd.DataFrame) -> pd.DataFrame:
        raise RuntimeError("later node failed")

    catalog = DataCatalog(datasets={"raw": kafka, "mid": MemoryDataset(), "final": MemoryDataset()})
    with pytest.raises(RuntimeError):
        _run(
            [
                node(lambda f: f, "raw", "mid", name="copy_node"),
                node(crash, "mid", "final", name="crash_node"),
            ],
            catalog,
        )
    assert kafka.commits == []


def _gated(tmp_path, gate, later=None, standardised=None):
    """raw -> standardise -> validate (screened + quarantine) -> gate -> validated (the
    accumulated batches, read by later nodes), as in conf/kafka."""
    quarantine, validated = tmp_path / "quarantine.parquet", tmp_path / "validated"
    kafka = RecordingKafkaDataset(make_transactions(n=10), watch=[quarantine, validated])
    catalog = DataCatalog(
        datasets={
            "raw": kafka,
            "standardised": standardised or MemoryDataset(),
            "screened": ParquetDataset(filepath=str(tmp_path / "screened.parquet")),
            "quarantined": ParquetDataset(filepath=str(quarantine)),
            "validated": ParquetBatchesDataset(path=str(validated), unique_key="transaction_id"),
        }
    )
    nodes = [
        node(lambda f: f, "raw", "standardised", name="standardise_node"),
        node(_split, "standardised", ["quarantined", "screened"], name="validate_node"),
        node(gate, "screened", "validated", name="gate_node"),
    ]
    if later is not None:
        nodes.append(node(later, "validated", "trained", name="later_node"))
    return kafka, nodes, catalog


@pytest.mark.parametrize("persisted_batch", [False, True])
def test_offsets_wait_for_the_quality_gate(tmp_path, persisted_batch):
    def gate(frame: pd.DataFrame) -> pd.DataFrame:
        raise RuntimeError("too many invalid rows")

    batch = ParquetDataset(filepath=str(tmp_path / "batch.parquet")) if persisted_batch else None
    kafka, nodes, catalog = _gated(tmp_path, gate, standardised=batch)
    with pytest.raises(RuntimeError, match="too many invalid rows"):
        _run(nodes, catalog)
    assert kafka.commits == []  # the quarantine is saved, the batch will be read again


def test_the_consuming_node_run_alone_commits_once_its_outputs_are_saved(tmp_path):
    batch = tmp_path / "batch.parquet"
    standardised = ParquetDataset(filepath=str(batch))
    kafka, nodes, catalog = _gated(tmp_path, lambda f: f, standardised=standardised)
    kafka._watch = [batch]
    _run(nodes[:1], catalog)  # one task per node, as an orchestrator may run them
    assert kafka.commits == [[True]]


def test_offsets_commit_once_the_gate_passed_even_if_a_later_node_fails(tmp_path):
    def later(frame: pd.DataFrame) -> pd.DataFrame:
        raise RuntimeError("training failed")

    kafka, nodes, catalog = _gated(tmp_path, lambda f: f, later)
    with pytest.raises(RuntimeError, match="training failed"):
        _run(nodes, catalog)
    assert kafka.commits == [[True, True]]
