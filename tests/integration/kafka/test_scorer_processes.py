"""Two ``fraud-detection-score`` processes in one consumer group on a real broker, with
the terminal and category windows in a real Redis (``--online-store``): together they
serve the features of ``create_features`` and the batch model's scores, each owning a
partition (customers) of the transactions and of the labels; when one is killed the
other takes its partition over and nothing is lost (at least once)."""

from __future__ import annotations

import signal
import threading
import time

import mlflow
import numpy as np
import orjson
import pandas as pd
import pytest
from kafka import KafkaProducer
from xgboost import XGBClassifier

from fraud_detection import schema
from fraud_detection.features import create_features, feature_columns
from fraud_detection.simulator import simulate_transactions
from fraud_detection.streaming.labels import (
    LabelParams,
    attach_labels,
    labels_known_at,
    schedule_labels,
    strip_labels,
)
from fraud_detection.streaming.publish import produce_frame
from tests.conftest import assert_columns_equal, base_parameters
from tests.integration.kafka.test_scorer import FEATURES, MODEL, Scorer, register

pytestmark = pytest.mark.integration

TX, LABELS, PREDICTIONS, FEATURES_TOPIC = "multi-tx", "multi-labels", "multi-pred", "multi-features"
GROUP = "multi-scorer"


def scorer(broker, tracking_uri, log, redis_url):
    return Scorer(
        broker,
        tracking_uri,
        log,
        "--transactions-topic",
        TX,
        "--labels-topic",
        LABELS,
        "--predictions-topic",
        PREDICTIONS,
        "--features-topic",
        FEATURES_TOPIC,
        "--dead-letter-topic",
        f"{TX}.dlq",
        "--group-id",
        GROUP,
        "--start-from",
        "latest",
        "--online-store",
        redis_url,
        "--align-timeout-ms",
        "5000",
    )


def messages(broker, topic: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for record in broker.read_all(topic):
        message = orjson.loads(record.value)
        out.setdefault(message["transaction_id"], []).append(message)
    return out


def wait_for_ids(broker, topic: str, ids: set[str], timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = messages(broker, topic)
        if ids <= set(found):
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{len(ids - set(found))} of {len(ids)} transactions never reached {topic}")
        time.sleep(0.5)


def send(broker, topic: str, frame: pd.DataFrame, rate: float | None = None) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    try:
        report = produce_frame(producer, topic, frame, key_column=schema.CUSTOMER_ID, rate=rate)
        assert report.ok, report
    finally:
        producer.close()


@pytest.fixture(scope="module")
def two_processes(kafka_broker, redis_url, tmp_path_factory):
    root = tmp_path_factory.mktemp("scorer-processes")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    transactions = simulate_transactions(
        base_parameters("simulation", n_days=40, n_customers=250, n_terminals=300, seed=9)
    )
    day_start = transactions[schema.TIMESTAMP].min().normalize() + pd.Timedelta("38D")
    history = transactions[transactions[schema.TIMESTAMP] < day_start]
    days = transactions[transactions[schema.TIMESTAMP] >= day_start]
    label_params = LabelParams.from_dict(base_parameters("labels"))
    known = labels_known_at(
        schedule_labels(history, label_params.delay, label_params.seed), day_start
    )
    batch = create_features(attach_labels(transactions, known, "topic"), FEATURES)
    training = create_features(transactions, FEATURES)
    version = register(
        training[training[schema.TIMESTAMP] < day_start],
        XGBClassifier(n_estimators=30, max_depth=3, n_jobs=1),
        tracking_uri,
    )
    for topic in (TX, LABELS):
        kafka_broker.create_topic(topic, partitions=2)  # keyed by customer, co-partitioned
    send(kafka_broker, TX, strip_labels(history))
    send(kafka_broker, LABELS, known[list(schema.LABEL_COLUMNS)])

    first_log, second_log = root / "a.log", root / "b.log"
    a = scorer(kafka_broker, tracking_uri, first_log, redis_url)
    b = scorer(kafka_broker, tracking_uri, second_log, redis_url)
    a.wait_for("went to another scorer process", timeout=120)  # one partition each now

    aligned, rest = days.iloc[: len(days) // 2], days.iloc[len(days) // 2 :]
    send(kafka_broker, TX, strip_labels(aligned))
    served = wait_for_ids(kafka_broker, PREDICTIONS, set(aligned[schema.TRANSACTION_ID]))

    # Mid-stream: one process is killed while the rest of the days arrives.
    sender = threading.Thread(
        target=send, args=(kafka_broker, TX, strip_labels(rest)), kwargs={"rate": 100.0}
    )
    sender.start()
    time.sleep(len(rest) / 100.0 / 3)
    crash_code = b.stop(signal.SIGKILL)
    sender.join()
    after = wait_for_ids(kafka_broker, PREDICTIONS, set(days[schema.TRANSACTION_ID]))
    exit_code = a.stop(signal.SIGTERM)
    return {
        "aligned": aligned,
        "days": days,
        "batch": batch,
        "served": served,
        "after": after,
        "version": version,
        "tracking_uri": tracking_uri,
        "crash_code": crash_code,
        "exit_code": exit_code,
        "a_log": a.text(),
        "b_log": second_log.read_text(),
        "committed": kafka_broker.committed(GROUP, TX),
        "end": kafka_broker.end_offsets(TX),
    }


def test_two_processes_serve_the_batch_features_and_scores(two_processes, kafka_broker):
    ids = list(two_processes["aligned"][schema.TRANSACTION_ID])
    streamed = messages(kafka_broker, FEATURES_TOPIC)
    served = pd.DataFrame([streamed[tid][0] for tid in ids]).set_index(schema.TRANSACTION_ID)
    batch = two_processes["batch"].set_index(schema.TRANSACTION_ID).loc[ids]
    numeric, categorical = feature_columns(two_processes["batch"])
    shared = [c for c in numeric if c.startswith(("terminal", "category"))]
    assert shared and served[shared].to_numpy(float).sum() > 0
    assert_columns_equal(served, batch, numeric, categorical)
    mlflow.set_tracking_uri(two_processes["tracking_uri"])
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/{two_processes['version']}")
    expected = model.predict(batch.reset_index())
    scores = [two_processes["served"][tid][0]["score"] for tid in ids]
    np.testing.assert_allclose(scores, expected["score"].to_numpy(), rtol=1e-9, atol=1e-9)


def test_each_process_owned_one_partition_with_its_labels(two_processes):
    for log in (two_processes["a_log"], two_processes["b_log"]):
        assert "Joined group multi-scorer as one of its scorer processes" in log
        assert "'terminal_activity', 'terminal', 'category'" in log
    # Each had one partition of the transactions and the same one of the labels: the
    # labels are read by the owner of their customers' partition.
    for log in (two_processes["a_log"], two_processes["b_log"]):
        owned = log.split("Scoring from offsets", 1)[1].split("\n", 1)[0]
        if "went to another scorer process" in log:  # the first: it had both at first
            owned = log.split("went to another scorer process", 1)[1]
            owned = owned.split("Scoring from offsets", 1)[1].split("\n", 1)[0]
        assert owned.count("multi-tx[") == 1 and owned.count("multi-labels[") == 1, owned


def test_a_killed_process_hands_its_partition_over_with_nothing_lost(two_processes):
    assert two_processes["crash_code"] == -signal.SIGKILL
    assert two_processes["exit_code"] == 0
    days = set(two_processes["days"][schema.TRANSACTION_ID])
    after = two_processes["after"]
    assert days <= set(after)
    duplicates = sum(len(v) - 1 for tid, v in after.items() if tid in days)
    # At least once: what the killed process scored but had not committed is scored
    # again by the survivor; it is counted, and bounded by one batch per partition.
    print(f"{duplicates} transactions predicted twice across the kill")  # noqa: T201
    assert 0 <= duplicates <= 500, duplicates
    # The survivor took the partition over and committed everything.
    assert "went to another scorer process" in two_processes["a_log"]
    assert two_processes["committed"] == two_processes["end"]
