"""KafkaLabelsDataset (the label topic as a table) and KafkaDataset.save sending the
labels apart, against stand-in clients; the real broker is in tests/integration/kafka."""

from __future__ import annotations

import orjson
import pandas as pd
import pytest
from kedro.io import DatasetError

from fraud_detection import schema
from fraud_detection.datasets import kafka_dataset
from fraud_detection.datasets.kafka_labels_dataset import KafkaLabelsDataset
from fraud_detection.streaming.labels import parse_delay, schedule_labels
from fraud_detection.streaming.messages import encode_labels
from tests.conftest import make_transactions
from tests.datasets import test_kafka_dataset
from tests.datasets.test_kafka_dataset import TOPIC, StubConsumer, StubProducer, _dataset

clients = test_kafka_dataset.clients  # the stand-in clients fixture

DELAY = {"distribution": "uniform", "min": "1D", "max": "60D"}


def _labels(n: int = 40) -> pd.DataFrame:
    return schedule_labels(make_transactions(n=n), parse_delay(DELAY), 3)


def _labels_dataset() -> KafkaLabelsDataset:
    return KafkaLabelsDataset(
        topic=TOPIC,
        bootstrap_servers="broker:9092",
        group_id="ingestion",
        dead_letter_topic="labels.dlq",
    )


def test_labels_load_as_typed_rows_and_bad_or_repeated_ones_are_dead_lettered(clients):
    labels = _labels()
    values = encode_labels(labels)
    repeat = orjson.dumps(
        {**orjson.loads(values[0]), schema.LABEL: 1 - int(labels[schema.LABEL][0])}
    )
    stub = StubConsumer({0: [*values, b"not json", repeat]}, end={0: 42}, committed={})
    made = clients(stub)
    ds = _labels_dataset()
    frame = ds.load()
    assert list(frame.columns) == list(schema.LABEL_COLUMNS)
    assert frame[schema.TRANSACTION_ID].tolist() == labels[schema.TRANSACTION_ID].tolist()
    assert frame[schema.LABEL].tolist() == labels[schema.LABEL].tolist()  # the first one counts
    assert (frame[schema.LABEL_TIMESTAMP] == labels[schema.LABEL_TIMESTAMP]).all()
    reasons = sorted(h["dlq.reason"].decode() for _, _, _, h in made["producer"].sent)
    assert reasons[0].startswith("bad_json")
    assert reasons[1].startswith("duplicate_transaction_id: other content than partition 0")
    assert ds.pending_offsets  # committed by the hook once stored


def test_a_label_topic_not_created_yet_is_an_empty_batch(clients):
    clients(StubConsumer({}, end={}, committed={}))
    ds = _labels_dataset()
    frame = ds.load()
    assert frame.empty and list(frame.columns) == list(schema.LABEL_COLUMNS)
    assert frame[schema.LABEL_TIMESTAMP].dtype == "datetime64[ns]"
    assert ds.pending_offsets == {}


class _Acked:
    def add_callback(self, fn):
        fn("metadata")

    def add_errback(self, fn):
        return None


def test_save_with_a_label_topic_sends_rows_without_labels_and_each_label_late(monkeypatch):
    stub = StubProducer()
    stub.send = lambda topic, value, key=None, headers=None: (
        stub.sent.append((topic, value, key)) or _Acked()
    )
    monkeypatch.setattr(kafka_dataset, "connect", lambda *a, **k: stub)
    frame = make_transactions(n=200).assign(fraud_scenario="none")
    _dataset(save_args={"labels_topic": "labels", "label_delay": DELAY, "label_seed": 3}).save(
        frame
    )
    rows = [orjson.loads(v) for topic, v, _ in stub.sent if topic == TOPIC]
    labels = [orjson.loads(v) for topic, v, _ in stub.sent if topic == "labels"]
    assert len(rows) == len(labels) == 200
    assert not any(schema.LABEL in r or "fraud_scenario" in r for r in rows)
    expected = schedule_labels(frame, parse_delay(DELAY), 3)
    assert [m[schema.TRANSACTION_ID] for m in labels] == expected[schema.TRANSACTION_ID].tolist()


def test_a_label_topic_without_a_delay_is_refused(monkeypatch):
    monkeypatch.setattr(kafka_dataset, "connect", lambda *a, **k: StubProducer())
    with pytest.raises(DatasetError, match="labels_topic is set but label_delay is not"):
        _dataset(save_args={"labels_topic": "labels"}).save(make_transactions(n=3))
    with pytest.raises(DatasetError, match="Invalid label delay"):
        _dataset(
            save_args={"labels_topic": "labels", "label_delay": {"distribution": "uniform"}}
        ).save(make_transactions(n=3))
