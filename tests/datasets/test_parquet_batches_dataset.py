"""ParquetBatchesDataset: batches accumulate, a batch read twice never doubles a row."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.io import DatasetError

from fraud_detection.datasets.parquet_batches_dataset import ParquetBatchesDataset
from tests.conftest import make_transactions


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
