"""The replay's merge of partitions: rows reach the feature state in event-time order
however the client hands the partitions over, and nothing is lost or repeated."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraud_detection import schema
from fraud_detection.features.online import OnlineFeatures, TransactionRecords
from fraud_detection.scoring.service import TimeMerge
from tests.conftest import make_transactions
from tests.features.test_online import PARAMS


def _partitions(n: int = 3) -> tuple[pd.DataFrame, dict[int, list[TransactionRecords]]]:
    tx = make_transactions(600).sort_values(schema.TIMESTAMP, kind="stable").reset_index(drop=True)
    part = pd.util.hash_pandas_object(tx[schema.CUSTOMER_ID], index=False) % n
    chunks = {
        p: [TransactionRecords.from_frame(rows.iloc[i : i + 70]) for i in range(0, len(rows), 70)]
        for p, rows in tx.groupby(part)
    }
    return tx, chunks


def _replay(chunks: dict[int, list[TransactionRecords]]) -> list[TransactionRecords]:
    """Partition by partition, as a client handing over big batches of one at a time."""
    merge, out = TimeMerge(chunks), []
    for p, parts in chunks.items():
        for records in parts:
            merge.add(p, records)
            while (released := merge.release()) is not None:
                out.append(released[0])
        merge.done(p)
        while (released := merge.release()) is not None:
            out.append(released[0])
    return out


def test_partitions_handed_over_one_after_another_are_released_in_time_order():
    tx, chunks = _partitions()
    released = _replay(chunks)
    times = [t for records in released for t in sorted(records.timestamp_ns)]
    assert times == sorted(times)  # every release is newer than the one before
    ids = [i for records in released for i in records.transaction_id]
    assert sorted(ids) == sorted(tx[schema.TRANSACTION_ID])  # each row once


def test_the_state_after_a_merged_replay_equals_the_state_of_the_stream_in_order():
    tx, chunks = _partitions()
    merged, in_order = OnlineFeatures(PARAMS), OnlineFeatures(PARAMS)
    for records in _replay(chunks):
        merged.update_records(records, build=False)
    in_order.update_records(TransactionRecords.from_frame(tx), build=False)
    assert merged.stats.late_rows == 0 and merged.stats.rows_beyond_horizon == 0
    assert merged.stats == in_order.stats
    # The next live rows see the same windows either way.
    later = make_transactions(20, seed=99)
    later[schema.TIMESTAMP] += tx[schema.TIMESTAMP].max() - later[schema.TIMESTAMP].min()
    later[schema.TRANSACTION_ID] = "live-" + later[schema.TRANSACTION_ID].astype(str)
    later[schema.CUSTOMER_ID] = tx[schema.CUSTOMER_ID].iloc[:20].to_numpy()
    a = merged.update_records(TransactionRecords.from_frame(later))
    b = in_order.update_records(TransactionRecords.from_frame(later))
    for name, values in a.numeric.items():
        np.testing.assert_allclose(values, b.numeric[name], rtol=1e-12, err_msg=name)


def test_nothing_is_released_while_an_open_partition_has_given_nothing():
    _, chunks = _partitions(2)
    merge = TimeMerge([0, 1])
    merge.add(0, chunks[0][0])
    assert merge.release() is None
    merge.done(1)  # an empty partition: done at once
    records, _ = merge.release()
    assert records.transaction_id == chunks[0][0].transaction_id
