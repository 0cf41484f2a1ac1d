"""ParquetBatchesDataset: batches accumulate, a batch read twice never doubles a row."""

from __future__ import annotations

import signal
import subprocess
import sys

import pandas as pd
import pytest
from kedro.io import DatasetError

from fraud_detection.datasets.parquet_batches_dataset import ParquetBatchesDataset
from tests.conftest import PROJECT_ROOT, make_transactions


def test_each_save_adds_a_batch_and_load_returns_all_in_order(tmp_path):
    ds = ParquetBatchesDataset(path=str(tmp_path / "batches"), unique_key="transaction_id")
    frame = make_transactions(n=30)
    ds.save(frame.iloc[:10])
    ds.save(frame.iloc[10:])
    pd.testing.assert_frame_equal(ds.load(), frame)
    assert len(list((tmp_path / "batches").glob("batch-*.parquet"))) == 2


def test_a_batch_saved_again_does_not_double_rows(tmp_path):
    ds = ParquetBatchesDataset(path=str(tmp_path), unique_key="transaction_id")
    frame = make_transactions(n=20)
    ds.save(frame.iloc[:15])
    ds.save(frame)  # re-delivered batch: the same messages and five more
    pd.testing.assert_frame_equal(ds.load(), frame)


def test_first_occurrence_wins(tmp_path):
    ds = ParquetBatchesDataset(path=str(tmp_path), unique_key=["transaction_id"])
    frame = make_transactions(n=3)
    ds.save(frame)
    ds.save(frame.assign(amount=-1.0))
    assert (ds.load()["amount"] >= 0).all()


def test_empty_batches_are_not_written_once_there_is_one(tmp_path):
    ds = ParquetBatchesDataset(path=str(tmp_path))
    frame = make_transactions(n=3)
    ds.save(frame.iloc[:0])  # the first one keeps the columns
    ds.save(frame.iloc[:0])
    assert len(list(tmp_path.glob("batch-*.parquet"))) == 1
    assert list(ds.load().columns) == list(frame.columns)


def test_partial_files_are_ignored_and_no_batch_is_an_error(tmp_path):
    ds = ParquetBatchesDataset(path=str(tmp_path))
    (tmp_path / ".batch-1.parquet.partial").write_bytes(b"half")
    assert not ds.exists()
    with pytest.raises(DatasetError, match="No batch in .* yet"):
        ds.load()


def _rows_on_disk(folder) -> int:
    return sum(len(pd.read_parquet(file)) for file in folder.glob("batch-*.parquet"))


def test_a_rerun_after_a_kill_between_save_and_commit_leaves_one_copy_on_disk(tmp_path):
    ds = ParquetBatchesDataset(path=str(tmp_path), unique_key="transaction_id")
    frame = make_transactions(n=20)
    ds.save(frame.iloc[:15])  # persisted, then killed before the offsets were committed
    ds.save(frame)  # the rerun reads the 15 again and 5 new ones
    ds.save(frame)  # and once more, with nothing new
    assert _rows_on_disk(tmp_path) == 20
    assert len(list(tmp_path.glob("batch-*.parquet"))) == 2


def test_a_batch_without_key_saved_again_is_not_written_twice(tmp_path):
    ds = ParquetBatchesDataset(path=str(tmp_path))
    frame = make_transactions(n=8)
    ds.save(frame)
    ds.save(frame.copy())
    assert len(list(tmp_path.glob("batch-*.parquet"))) == 1
    ds.save(frame.iloc[:3])
    assert _rows_on_disk(tmp_path) == 11


@pytest.mark.parametrize("kill_at", ["os.fsync", "os.replace"])
def test_a_save_killed_midway_leaves_no_batch_and_no_partial_file_after_the_next_save(
    tmp_path, kill_at
):
    folder = tmp_path / "batches"
    killed_save = (
        "import os, signal, sys\n"
        "from fraud_detection.datasets.parquet_batches_dataset import ParquetBatchesDataset\n"
        "from tests.conftest import make_transactions\n"
        f"{kill_at} = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
        "ParquetBatchesDataset(path=sys.argv[1]).save(make_transactions(n=50))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", killed_save, str(folder)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert not list(folder.glob("batch-*.parquet"))  # never half a batch
    assert len(list(folder.glob(".batch-*.partial"))) == 1  # what the kill left
    ds = ParquetBatchesDataset(path=str(folder))
    ds.save(make_transactions(n=5))
    assert [p.name for p in folder.iterdir() if not p.name.startswith("batch-")] == []
    assert len(ds.load()) == 5
