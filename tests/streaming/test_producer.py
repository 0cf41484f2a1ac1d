"""The producer's delivery accounting, pacing and sources, with a stand-in producer."""

from __future__ import annotations

import socket
import time

import orjson
import pandas as pd
import pytest
from kafka.errors import KafkaTimeoutError

from fraud_detection.streaming import producer as producer_module
from fraud_detection.streaming.producer import load_transactions, main
from fraud_detection.streaming.publish import produce_frame
from tests.conftest import PROJECT_ROOT, base_parameters, make_transactions


class _Future:
    def __init__(self, error: Exception | None, settle: bool) -> None:
        self._error, self._settle = error, settle

    def add_callback(self, fn):
        if self._settle and self._error is None:
            fn("metadata")

    def add_errback(self, fn):
        if self._settle and self._error is not None:
            fn(self._error)


class StubProducer:
    """Records what is sent; fails or never settles the messages it is told to."""

    def __init__(
        self,
        fail: set[int] = frozenset(),
        unsettled: set[int] = frozenset(),
        raise_at: int | None = None,
    ):
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.fail, self.unsettled, self.raise_at = fail, unsettled, raise_at

    def send(self, topic, value, key):
        n = len(self.sent)
        if n == self.raise_at:
            raise KafkaTimeoutError("Failed to update metadata after 30.0 secs.")
        self.sent.append((topic, key, value))
        return _Future(
            RuntimeError(f"boom {n}") if n in self.fail else None, settle=n not in self.unsettled
        )

    def flush(self, timeout):
        if self.unsettled:
            raise KafkaTimeoutError(f"Timeout after waiting for {timeout} secs.")


def test_every_row_is_sent_keyed_by_customer_and_acknowledged():
    frame = make_transactions(n=120)
    stub = StubProducer()
    report = produce_frame(stub, "transactions", frame, chunk_rows=50)
    assert report.ok and report.acknowledged == report.sent == 120 and report.unacknowledged == 0
    assert [key.decode() for _, key, _ in stub.sent] == frame["customer_id"].tolist()
    assert [orjson.loads(v)["transaction_id"] for _, _, v in stub.sent] == frame[
        "transaction_id"
    ].tolist()


def test_failed_and_unsettled_messages_count_as_not_acknowledged():
    report = produce_frame(StubProducer(fail={3, 7}, unsettled={9}), "t", make_transactions(n=20))
    assert not report.ok
    assert (report.acknowledged, report.failed, report.unacknowledged) == (17, 2, 3)
    assert "boom 3" in report.first_error
    assert "3 NOT acknowledged" in report.summary()


def test_a_send_that_times_out_stops_the_run_and_counts_the_rest():
    report = produce_frame(StubProducer(raise_at=5), "t", make_transactions(n=30))
    assert (report.sent, report.acknowledged, report.unacknowledged) == (5, 5, 25)
    assert "KafkaTimeoutError" in report.first_error


def test_rate_paces_the_messages():
    started = time.monotonic()
    report = produce_frame(StubProducer(), "t", make_transactions(n=60), rate=200)
    assert time.monotonic() - started >= 59 / 200 * 0.95
    assert report.ok


def test_missing_key_column_is_refused():
    with pytest.raises(ValueError, match="Key column 'card' is not a column"):
        produce_frame(StubProducer(), "t", make_transactions(n=3), key_column="card")


def test_a_file_is_mapped_onto_the_schema_and_sent_in_time_order(tmp_path):
    source = make_transactions(n=40).rename(
        columns={"transaction_id": "TX_ID", "amount": "TX_AMOUNT"}
    )
    source = source.sample(frac=1.0, random_state=1)
    path = tmp_path / "tx.csv"
    source.to_csv(path, index=False)
    params = {
        "ingestion": base_parameters(
            "ingestion", column_mapping={"transaction_id": "TX_ID", "amount": "TX_AMOUNT"}
        )
    }
    frame = load_transactions(path, params, limit=10)
    assert len(frame) == 10
    assert {"transaction_id", "amount"} <= set(frame.columns)
    assert pd.to_datetime(frame["timestamp"]).is_monotonic_increasing


def test_the_mapping_flag_wins_over_the_parameters(tmp_path):
    path = tmp_path / "tx.parquet"
    make_transactions(n=5).rename(columns={"amount": "AMT"}).to_parquet(path)
    frame = load_transactions(
        path,
        {"ingestion": base_parameters("ingestion", column_mapping={"amount": "WRONG"})},
        column_mapping={"amount": "AMT"},
    )
    assert frame["amount"].notna().all()


def test_mapping_flag_parsing():
    assert producer_module._parse_mapping("transaction_id=TX_ID, amount=TX_AMOUNT") == {
        "transaction_id": "TX_ID",
        "amount": "TX_AMOUNT",
    }
    with pytest.raises(Exception, match="canonical=source"):
        producer_module._parse_mapping("transaction_id")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_cluster_exits_2_before_simulating(caplog):
    started = time.monotonic()
    code = main(
        [
            "--bootstrap-servers",
            f"127.0.0.1:{_closed_port()}",
            "--connect-timeout",
            "1",
            "--project-path",
            str(PROJECT_ROOT),
            "--limit",
            "5",
        ]
    )
    assert code == 2
    assert time.monotonic() - started < 10
    assert "No Kafka broker answered at 127.0.0.1:" in caplog.text
    assert "Simulated" not in caplog.text
