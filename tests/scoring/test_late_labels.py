"""Labels reach the scorer only through their own topic, days or weeks late.

The scorer is driven as its loop drives it (``_process`` on polled records, stand-in
Kafka clients, a real fitted model) with transactions and label messages interleaved
in event time, as ``fraud-detection-produce`` sends them. What it serves is read from
its audit copy of every scored feature row (``features_topic``).
"""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from fraud_detection import schema
from fraud_detection.features import create_features
from fraud_detection.scoring.features import OnlineFeatures
from fraud_detection.scoring.service import RealTimeScorer, ScorerConfig
from fraud_detection.streaming.labels import (
    LabelParams,
    attach_labels,
    labels_known_at,
    schedule_labels,
    strip_labels,
)
from fraud_detection.streaming.messages import encode_labels, encode_transactions
from tests.conftest import base_parameters, make_transactions
from tests.features.test_online import PARAMS, assert_features_equal
from tests.scoring.test_service import _Consumer, _Producer, _Watcher

TX = TopicPartition("transactions", 0)
LABELS = TopicPartition("transaction_labels", 0)
FEATURES_TOPIC = "fraud_features"
LABEL_DELAY = pd.Timedelta(PARAMS["label_delay"])


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    # 70 days, a few customers and terminals: dense label windows, rows past the horizon.
    return make_transactions(n=1200, days=70, seed=5, fraud_rate=0.15)


def delay_params(**delay) -> tuple:
    """The delay distribution and seed of ``params:labels``, with uniform bounds given."""
    params = base_parameters("labels")
    if delay:
        params["delay"] = {"distribution": "uniform", **delay}
    parsed = LabelParams.from_dict(params)
    return parsed.delay, parsed.seed


def _scorer(model) -> RealTimeScorer:
    config = ScorerConfig(
        bootstrap_servers="unused:9092",
        labels_topic=LABELS.topic,
        features_topic=FEATURES_TOPIC,
        bounds=None,
    )
    scorer = RealTimeScorer(config, OnlineFeatures(PARAMS), _Watcher(model))
    scorer._producer, scorer._consumer = _Producer(), _Consumer()
    scorer._labels_tps = {LABELS}
    return scorer


def _records(tp: TopicPartition, values: list[bytes], offset: int) -> list[ConsumerRecord]:
    return [
        ConsumerRecord(tp.topic, 0, -1, offset + i, 0, 0, b"k", v, [], None, 1, len(v), 0)
        for i, v in enumerate(values)
    ]


def replay(
    model, transactions: pd.DataFrame, labels: pd.DataFrame, *, inline_labels: bool = False
) -> tuple[pd.DataFrame, list[int], RealTimeScorer]:
    """Feeds the transactions and the labels in event time (a label at time ``a`` before
    every transaction at or after ``a``); the transactions between two label times go
    in one poll. Returns the served feature rows, the group (poll) of each transaction,
    and the scorer."""
    scorer = _scorer(model)
    sent = transactions if inline_labels else strip_labels(transactions)
    tx_values = encode_transactions(sent)
    label_values = encode_labels(labels)
    tx_times = transactions[schema.TIMESTAMP].to_numpy()
    label_times = labels[schema.LABEL_TIMESTAMP].to_numpy()
    # For each transaction, how many labels are known when it arrives.
    known = np.searchsorted(label_times, tx_times, side="right")
    groups: list[int] = []
    tx_offset = label_offset = 0
    for group, start in enumerate(np.flatnonzero(np.r_[True, np.diff(known) > 0])):
        end = int(np.searchsorted(known, known[start], side="right"))
        if known[start] > label_offset:
            new = label_values[label_offset : known[start]]
            scorer._process({LABELS: _records(LABELS, new, label_offset)}, 0.0)
            label_offset = int(known[start])
        scorer._process({TX: _records(TX, tx_values[start:end], tx_offset)}, 0.0)
        scorer._settle(block=False)
        tx_offset = end
        groups += [group] * (end - start)
    served = pd.DataFrame(
        [orjson.loads(value) for value, _ in scorer._producer.by_topic(FEATURES_TOPIC)]
    )
    served[schema.TIMESTAMP] = pd.to_datetime(served[schema.TIMESTAMP])
    assert len(served) == len(transactions)
    return served, groups, scorer


RISK = [f"terminal_risk_{w.lower()}" for w in PARAMS["terminal_windows"]] + [
    f"category_risk_{w.lower()}" for w in PARAMS["category_risk_windows"]
]


def test_no_label_reaches_a_served_feature_before_the_label_delay(model, transactions):
    """Labels that arrive a minute after their transaction serve exactly the features
    of labels that arrive only at the label delay: however early a label comes, no
    feature served before its transaction is ``label_delay`` old counts it."""
    early, _, scorer = replay(
        model, transactions, schedule_labels(transactions, *delay_params(min="1min", max="1min"))
    )
    at_delay, _, _ = replay(
        model,
        transactions,
        schedule_labels(transactions, *delay_params(min=PARAMS["label_delay"], max="7D")),
    )
    assert scorer.counters.labels_applied > 1000
    # Not vacuous: the labels do move the served risk features.
    assert (early[RISK].to_numpy(float) > 0).sum() > 500
    pd.testing.assert_frame_equal(early, at_delay)
    # And a label later than the delay does change what is served: the check can fail.
    late, _, _ = replay(
        model, transactions, schedule_labels(transactions, *delay_params(min="9D", max="9D"))
    )
    assert not np.allclose(early[RISK].to_numpy(float), late[RISK].to_numpy(float))


def test_served_features_equal_batch_features_from_the_labels_known_at_that_time(
    model, transactions
):
    """For rows scored at time ``t``, ``create_features`` on the transactions with the
    labels known at ``t`` (label time <= t) gives the features the scorer served."""
    labels = schedule_labels(transactions, *delay_params())  # uniform 1-60 days
    served, groups, scorer = replay(model, transactions, labels)
    served = served.assign(group=groups)
    feature_columns = [c for c in served.columns if c not in (schema.LABEL, "group")]
    everything = create_features(transactions, PARAMS)
    compared = differs_from_full_labels = 0
    for group in np.unique(groups)[:: max(1, len(np.unique(groups)) // 25)]:
        rows = served[served["group"] == group].reset_index(drop=True)
        moment = rows[schema.TIMESTAMP].iloc[0]
        known = attach_labels(transactions, labels_known_at(labels, moment), "topic")
        batch = create_features(known, PARAMS)
        batch = batch[batch[schema.TRANSACTION_ID].isin(rows[schema.TRANSACTION_ID])]
        online = rows[feature_columns]
        # The label column is the transaction message's own: none, on the scorer.
        assert rows[schema.LABEL].isna().all()
        columns = list(batch.columns)
        assert_features_equal(
            rows[columns].astype(batch.dtypes.to_dict()),
            batch.assign(**{schema.LABEL: pd.NA}).astype(batch.dtypes.to_dict()),
        )
        full = everything.set_index(schema.TRANSACTION_ID).loc[rows[schema.TRANSACTION_ID]]
        differs_from_full_labels += int(
            not np.allclose(full[RISK].to_numpy(float), online[RISK].to_numpy(float))
        )
        compared += len(rows)
    assert compared >= 25
    # The labels known at the time are fewer than all labels: the comparison is not
    # the one with every label in the data.
    assert differs_from_full_labels > 0
    # Labels of transactions past the horizon are counted, not kept.
    assert scorer.counters.labels_past_horizon > 0


def test_labels_inside_transaction_messages_are_ignored(model, transactions):
    labels = schedule_labels(transactions, *delay_params())
    plain, _, _ = replay(model, transactions, labels)
    inline, _, scorer = replay(model, transactions, labels, inline_labels=True)
    assert scorer.counters.inline_labels_ignored == len(transactions)
    pd.testing.assert_frame_equal(plain, inline)


def test_a_label_before_its_transaction_waits_then_counts(model, transactions):
    head = transactions.iloc[:400].reset_index(drop=True)
    labels = schedule_labels(head, *delay_params(min="1D", max="1D"))
    scorer = _scorer(model)
    # Every label first, then the transactions: each label waits for its transaction.
    scorer._process({LABELS: _records(LABELS, encode_labels(labels), 0)}, 0.0)
    assert len(scorer.label_buffer) == len(labels)
    scorer._process({TX: _records(TX, encode_transactions(strip_labels(head)), 0)}, 0.0)
    assert len(scorer.label_buffer) == 0
    assert scorer.label_buffer.counters.matched == len(labels)
    assert scorer.counters.labels_applied == len(labels)


def test_waiting_labels_are_bounded_in_number_and_age(model, transactions):
    scorer = _scorer(model)
    scorer.label_buffer.max_labels = 10
    head = transactions.iloc[:300].reset_index(drop=True)
    labels = schedule_labels(head, *delay_params(min="1D", max="1D"))
    scorer._process({LABELS: _records(LABELS, encode_labels(labels), 0)}, 0.0)
    assert len(scorer.label_buffer) == 10
    assert scorer.label_buffer.counters.overflowed == len(labels) - 10
    # Transactions a day past the waiting labels' transactions (the max_age): expired.
    later = transactions.iloc[600:620]
    scorer._process({TX: _records(TX, encode_transactions(strip_labels(later)), 0)}, 0.0)
    assert len(scorer.label_buffer) == 0
    assert scorer.label_buffer.counters.expired == 10
