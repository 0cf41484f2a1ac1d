"""KafkaDataset's batch logic against a stand-in consumer; the real broker is in
tests/integration/kafka."""

from __future__ import annotations

import hashlib
import socket
import time

import orjson
import pandas as pd
import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kedro.io import DatasetError

from fraud_detection import schema
from fraud_detection.datasets import kafka_dataset
from fraud_detection.datasets.kafka_dataset import KafkaDataset
from fraud_detection.streaming import clients as clients_module
from fraud_detection.streaming.messages import encode_transactions
from tests.conftest import make_transactions

TOPIC = "transactions"


def _record(partition: int, offset: int, value: bytes | None) -> ConsumerRecord:
    return ConsumerRecord(
        TOPIC, partition, -1, offset, 0, 0, b"k", value, [], None, 1, len(value or b""), 0
    )


class StubConsumer:
    """Partitions of records; polls hand out a few records per partition at a time."""

    def __init__(
        self,
        partitions: dict[int, list[bytes | None]],
        end: dict[int, int],
        committed: dict[int, int],
        per_fetch: int = 7,
        stall_after: int | None = None,
    ):
        self.records = {
            p: [_record(p, i, v) for i, v in enumerate(values)] for p, values in partitions.items()
        }
        self._end, self._committed = end, committed
        self.per_fetch, self.stall_after = per_fetch, stall_after
        self.positions: dict[TopicPartition, int] = {}
        self.paused: set[TopicPartition] = set()
        self.config = {"request_timeout_ms": 1000}
        self.polled = 0
        self.closed = False

    def partitions_for_topic(self, topic):
        return set(self.records) if topic == TOPIC else None

    def assign(self, tps):
        self.assigned = list(tps)

    def beginning_offsets(self, tps, timeout_ms=None):
        return {tp: 0 for tp in tps}

    def end_offsets(self, tps, timeout_ms=None):
        return {tp: self._end[tp.partition] for tp in tps}

    def committed(self, tp, timeout_ms=None):
        return self._committed.get(tp.partition)

    def seek(self, tp, offset):
        self.positions[tp] = offset

    def pause(self, *tps):
        self.paused.update(tps)

    def position(self, tp, timeout_ms=None):
        return self.positions[tp]

    def poll(self, timeout_ms=0, max_records=None):
        out = {}
        budget = max_records or 10**9
        for tp in self.assigned:
            if (
                tp in self.paused
                or budget <= 0
                or (self.stall_after is not None and self.polled >= self.stall_after)
            ):
                continue
            start = self.positions[tp]
            batch = self.records[tp.partition][start : start + min(self.per_fetch, budget)]
            if batch:
                out[tp] = batch
                self.positions[tp] = batch[-1].offset + 1
                budget -= len(batch)
                self.polled += len(batch)
        if not out:
            time.sleep(timeout_ms / 1000)
        return out

    def close(self, autocommit=True):
        self.closed = True


class StubProducer:
    def __init__(self):
        self.sent = []

    def send(self, topic, value, key=None, headers=None):
        self.sent.append((topic, value, key, dict(headers or [])))

        class _Done:
            def add_errback(self, fn):
                return None

        return _Done()

    def flush(self, timeout=None):
        return None

    def close(self, timeout=None):
        return None


@pytest.fixture
def clients(monkeypatch):
    """Routes the dataset's consumer and producer to stand-ins."""
    made: dict[str, object] = {}

    def install(consumer: StubConsumer) -> dict[str, object]:
        made["consumer"], made["producer"] = consumer, StubProducer()

        def fake_connect(client_class, servers, credentials=None, **config):
            made.setdefault("configs", []).append((client_class.__name__, config))
            return (
                made["consumer"] if client_class.__name__ == "KafkaConsumer" else made["producer"]
            )

        monkeypatch.setattr(kafka_dataset, "connect", fake_connect)
        return made

    return install


def _dataset(**kwargs) -> KafkaDataset:
    return KafkaDataset(
        topic=TOPIC,
        bootstrap_servers="broker:9092",
        group_id="ingestion",
        dead_letter_topic="transactions.dlq",
        **kwargs,
    )


def test_load_reads_from_committed_offsets_up_to_the_end_seen_at_start(clients):
    values = encode_transactions(make_transactions(n=60))
    # Partition 1 already has 10 messages committed, and 5 arrive after the load started.
    stub = StubConsumer({0: values[:30], 1: values[30:]}, end={0: 30, 1: 25}, committed={1: 10})
    clients(stub)
    ds = _dataset()
    frame = ds.load()
    expected = make_transactions(n=60)["transaction_id"].iloc[list(range(30)) + list(range(40, 55))]
    assert sorted(frame["transaction_id"]) == sorted(expected)
    assert ds.pending_offsets == {TopicPartition(TOPIC, 0): 30, TopicPartition(TOPIC, 1): 25}
    assert ds.last_load_report["consumed"] == 45 and stub.closed


def test_load_commits_nothing_by_itself(clients):
    # The stand-in consumer has no commit method: a commit during load would raise.
    clients(
        StubConsumer({0: encode_transactions(make_transactions(n=5))}, end={0: 5}, committed={})
    )
    ds = _dataset()
    ds.load()
    assert ds.pending_offsets == {TopicPartition(TOPIC, 0): 5}


def test_consumer_is_created_without_auto_commit(clients):
    made = clients(StubConsumer({0: []}, end={0: 0}, committed={}))
    _dataset().load()
    name, config = made["configs"][0]
    assert (
        name == "KafkaConsumer"
        and config["enable_auto_commit"] is False
        and config["group_id"] == "ingestion"
    )


def test_max_messages_bounds_the_batch_and_the_offsets(clients):
    values = encode_transactions(make_transactions(n=40))
    clients(StubConsumer({0: values[:20], 1: values[20:]}, end={0: 20, 1: 20}, committed={}))
    ds = _dataset(load_args={"max_messages": 16})
    assert len(ds.load()) == 16
    assert sum(ds.pending_offsets.values()) == 16


def test_malformed_messages_go_to_the_dead_letter_topic_with_reason_and_source(clients):
    values = encode_transactions(make_transactions(n=6))
    values[2] = b"{oops"
    made = clients(StubConsumer({0: values}, end={0: 6}, committed={}))
    ds = _dataset()
    frame = ds.load()
    assert len(frame) == 5
    ((topic, value, key, headers),) = made["producer"].sent
    assert (topic, value, key) == ("transactions.dlq", b"{oops", b"k")
    assert headers["dlq.reason"].startswith(b"bad_json: ")
    assert (
        headers["dlq.source.topic"],
        headers["dlq.source.partition"],
        headers["dlq.source.offset"],
    ) == (b"transactions", b"0", b"2")
    assert ds.last_load_report["dead_lettered"] == 1
    # Dead-lettered messages are part of the batch: the offsets move past them.
    assert ds.pending_offsets == {TopicPartition(TOPIC, 0): 6}


def test_without_a_dead_letter_topic_a_malformed_message_fails_the_load(clients):
    clients(StubConsumer({0: [b"[]"]}, end={0: 1}, committed={}))
    ds = KafkaDataset(topic=TOPIC, bootstrap_servers="broker:9092", group_id="g")
    with pytest.raises(DatasetError, match="1 malformed message.*no dead_letter_topic"):
        ds.load()
    assert ds.pending_offsets == {}


def test_duplicate_transaction_ids_are_dead_lettered_with_a_reason_keeping_the_first(clients):
    frame = make_transactions(n=5)
    other = frame.iloc[[1]].assign(amount=999.0)  # the id reused for another transaction
    same = frame.iloc[[3]]  # a redelivery
    values = encode_transactions(pd.concat([frame, other, same]))
    made = clients(StubConsumer({0: values[:4], 1: values[4:]}, end={0: 4, 1: 3}, committed={}))
    ds = _dataset()
    out = ds.load()
    assert len(out) == 5 and out["transaction_id"].is_unique
    assert 999.0 not in out["amount"].tolist()
    assert ds.last_load_report["duplicates_removed"] == 2
    assert ds.last_load_report["dead_lettered_by_reason"] == {
        "duplicate_transaction_id": 1,
        "duplicate_message": 1,
    }
    sent = made["producer"].sent
    letters = {orjson.loads(value)["transaction_id"]: headers for _, value, _, headers in sent}
    assert letters[frame.iloc[1]["transaction_id"]]["dlq.reason"] == (
        b"duplicate_transaction_id: other content than partition 0 offset 1"
    )
    assert letters[frame.iloc[3]["transaction_id"]]["dlq.reason"] == (
        b"duplicate_message: same content as partition 0 offset 3"
    )
    assert letters[frame.iloc[1]["transaction_id"]]["dlq.source.partition"] == b"1"
    assert letters[frame.iloc[1]["transaction_id"]]["dlq.value"] == b"re-encoded"
    assert len(out) + len(made["producer"].sent) == len(values)


def test_a_dead_letter_too_large_for_a_request_is_cut_with_its_size_and_hash(clients):
    huge = b'{"transaction_id": "' + b"x" * 1_100_000  # ~1 MB of bad JSON
    values = encode_transactions(make_transactions(n=4))
    made = clients(StubConsumer({0: [*values[:2], huge, *values[2:]]}, end={0: 5}, committed={}))
    ds = _dataset()
    assert len(ds.load()) == 4
    ((_, value, _, headers),) = made["producer"].sent
    assert len(value) == ds._load_args["dead_letter_max_bytes"] < 1_048_576 // 2
    assert huge.startswith(value)
    assert headers["dlq.reason"].startswith(b"bad_json: ")
    assert headers["dlq.truncated"] == b"true"
    assert headers["dlq.original.size"] == str(len(huge)).encode()
    assert headers["dlq.original.sha256"] == hashlib.sha256(huge).hexdigest().encode()


def test_one_hostile_message_of_each_kind_is_dead_lettered_and_the_rest_loads(clients):
    good = encode_transactions(make_transactions(n=30))
    row = orjson.loads(good[0])

    def hostile_row(**changes) -> bytes:
        return orjson.dumps({**row, **changes})

    hostile = {
        "timestamp_out_of_range": hostile_row(transaction_id="H1", timestamp="0001-01-01T00:00:00"),
        "invalid_utf8": hostile_row(transaction_id="H2", customer_id="C\u00e9").replace(
            "\u00e9".encode(), b"\xe9"
        ),
        "amount_not_finite": hostile_row(transaction_id="H3", amount="Infinity"),
        "missing_transaction_id": hostile_row(transaction_id="  "),
    }
    wide = orjson.dumps({**row, "transaction_id": "H5", **{f"k{i}": i for i in range(300)}})
    values = [*good[:10], *hostile.values(), wide, *good[10:]]
    made = clients(StubConsumer({0: values}, end={0: len(values)}, committed={}))
    ds = _dataset()
    out = ds.load()
    assert list(out.columns) == list(schema.COLUMN_NAMES)
    assert len(out) == 31 and "H5" in out["transaction_id"].tolist()
    reasons = {headers["dlq.reason"].decode() for _, _, _, headers in made["producer"].sent}
    assert reasons == set(hostile)
    assert ds.pending_offsets == {TopicPartition(TOPIC, 0): len(values)}


def test_a_silent_broker_fails_the_load_within_the_stall_timeout(clients):
    values = encode_transactions(make_transactions(n=30))
    clients(StubConsumer({0: values}, end={0: 30}, committed={}, stall_after=10))
    ds = _dataset(load_args={"stall_timeout_s": 0.3, "poll_timeout_ms": 50})
    started = time.monotonic()
    with pytest.raises(
        DatasetError, match=r"No message from Kafka at broker:9092 for 0.3s.*Nothing was committed"
    ):
        ds.load()
    assert time.monotonic() - started < 3
    assert ds.pending_offsets == {}


def test_missing_topic_is_a_clear_error(clients):
    clients(StubConsumer({}, end={}, committed={}))
    with pytest.raises(DatasetError, match="Topic 'transactions' does not exist on broker:9092"):
        _dataset().load()


def test_an_up_to_date_group_gets_an_empty_typed_frame(clients):
    clients(
        StubConsumer({0: encode_transactions(make_transactions(n=3))}, end={0: 3}, committed={0: 3})
    )
    ds = _dataset()
    frame = ds.load()
    assert frame.empty and frame["timestamp"].dtype == "datetime64[ns]"
    assert ds.pending_offsets == {}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_servers_fail_in_bounded_time_naming_them():
    servers = f"127.0.0.1:{_closed_port()}"
    ds = KafkaDataset(
        topic=TOPIC,
        bootstrap_servers=servers,
        group_id="g",
        load_args={"bootstrap_timeout_ms": 1000},
    )
    started = time.monotonic()
    with pytest.raises(DatasetError, match=f"No Kafka broker answered at {servers} within 1s"):
        ds.load()
    assert time.monotonic() - started < 5


def test_settings_are_merged_and_secrets_stay_out_of_the_description():
    ds = KafkaDataset(
        topic=TOPIC,
        group_id="g",
        load_args={"max_messages": 10},
        credentials={"sasl_plain_password": "s3cret", "security_protocol": "SASL_SSL"},
    )
    described = ds._describe()
    assert described["load_args"]["max_messages"] == 10
    assert described["load_args"]["auto_offset_reset"] == "earliest"
    assert described["save_args"]["acks"] == "all"
    assert "s3cret" not in repr(described) and "s3cret" not in str(ds)


def test_auto_commit_and_loading_without_group_are_refused():
    with pytest.raises(DatasetError, match="enable_auto_commit must stay off"):
        KafkaDataset(topic=TOPIC, load_args={"enable_auto_commit": True})
    with pytest.raises(DatasetError, match="needs a group_id"):
        KafkaDataset(topic=TOPIC).load()


def test_commit_without_a_loaded_batch_does_nothing():
    KafkaDataset(topic=TOPIC, bootstrap_servers="127.0.0.1:1", group_id="g").commit()


def test_save_fails_when_a_message_is_not_acknowledged(monkeypatch):
    class Failing(StubProducer):
        def send(self, topic, value, key=None, headers=None):
            class _Failed:
                def add_callback(self, fn):
                    return None

                def add_errback(self, fn):
                    fn(RuntimeError("NotEnoughReplicas"))

            return _Failed()

    monkeypatch.setattr(kafka_dataset, "connect", lambda *a, **k: Failing())
    with pytest.raises(DatasetError, match=r"0 of 3 messages acknowledged.*NotEnoughReplicas"):
        _dataset().save(make_transactions(n=3))


def test_save_sends_json_keyed_by_customer(monkeypatch):
    stub = StubProducer()

    class _Acked:
        def add_callback(self, fn):
            fn("metadata")

        def add_errback(self, fn):
            return None

    stub.send = lambda topic, value, key=None, headers=None: (
        stub.sent.append((topic, value, key)) or _Acked()
    )
    monkeypatch.setattr(kafka_dataset, "connect", lambda *a, **k: stub)
    frame = make_transactions(n=4)
    _dataset().save(frame)
    assert [k.decode() for _, _, k in stub.sent] == frame["customer_id"].tolist()
    assert orjson.loads(stub.sent[0][1])["transaction_id"] == frame["transaction_id"].iloc[0]


def test_a_failed_load_leaves_nothing_to_commit(clients):
    ds = _dataset()
    clients(
        StubConsumer({0: encode_transactions(make_transactions(n=3))}, end={0: 3}, committed={})
    )
    ds.load()
    assert ds.pending_offsets
    clients(StubConsumer({}, end={}, committed={}))
    with pytest.raises(DatasetError, match="does not exist"):
        ds.load()
    assert ds.pending_offsets == {}


def test_a_broker_gone_between_load_and_commit_fails_saying_nothing_was_committed(
    clients, monkeypatch
):
    ds = _dataset()
    clients(
        StubConsumer({0: encode_transactions(make_transactions(n=3))}, end={0: 3}, committed={})
    )
    ds.load()
    ds._bootstrap_servers = f"127.0.0.1:{_closed_port()}"  # the broker stops after the load
    ds._load_args["bootstrap_timeout_ms"] = 1000
    monkeypatch.setattr(kafka_dataset, "connect", clients_module.connect)  # a real client
    with pytest.raises(DatasetError, match=r"Committing offsets \{0: 3\}.*Nothing was committed"):
        ds.commit()
    assert ds.pending_offsets  # kept: a later commit may still succeed
