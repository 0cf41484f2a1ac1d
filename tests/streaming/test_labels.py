"""Labels apart from their transactions: the producer's schedule, the label codec, the
batch join and the bounded wait of a label for its transaction."""

from __future__ import annotations

import logging

import orjson
import pandas as pd
import pytest

from fraud_detection import schema
from fraud_detection.params import ParameterError
from fraud_detection.streaming.labels import (
    Label,
    LabelBuffer,
    LabelParams,
    attach_labels,
    labels_known_at,
    schedule_labels,
    send_positions,
    strip_labels,
)
from fraud_detection.streaming.messages import decode_labels, encode_labels
from fraud_detection.streaming.publish import produce_with_labels
from tests.conftest import base_parameters, make_transactions
from tests.streaming.test_producer import StubProducer


def label_params(**delay) -> LabelParams:
    params = base_parameters("labels")
    if delay:
        params["delay"] = delay
    return LabelParams.from_dict(params)


def delay_and_seed(**delay) -> tuple:
    params = label_params(**delay)
    return params.delay, params.seed


# ---------------------------------------------------------------- parameters --


def test_the_base_parameters_validate_and_describe_a_1_to_60_day_uniform_delay():
    params = label_params()
    assert params.delay.distribution == "uniform"
    assert (pd.Timedelta(params.delay.min), pd.Timedelta(params.delay.max)) == (
        pd.Timedelta("1D"),
        pd.Timedelta("60D"),
    )


@pytest.mark.parametrize(
    ("delay", "match"),
    [
        ({"distribution": "uniform", "min": "3D", "max": "1D"}, "shorter than min"),
        ({"distribution": "uniform", "min": "soon", "max": "1D"}, "delay.uniform.min"),
        ({"distribution": "uniform", "min": "1D", "max": "2D", "mean": "1D"}, "mean"),
        ({"distribution": "poisson", "min": "1D", "max": "2D"}, "delay"),
    ],
)
def test_bad_delay_parameters_fail_naming_the_key(delay, match):
    with pytest.raises(ParameterError, match=match):
        label_params(**delay)


# ------------------------------------------------------------------ schedule --


def test_each_labelled_transaction_gets_one_label_within_the_configured_delay():
    frame = make_transactions(n=300)
    frame.loc[5, schema.LABEL] = pd.NA
    labels = schedule_labels(frame, *delay_and_seed())
    assert list(labels.columns) == list(schema.LABEL_COLUMNS)
    assert len(labels) == 299 and "T000005" not in set(labels[schema.TRANSACTION_ID])
    joined = labels.merge(
        frame, on=schema.TRANSACTION_ID, suffixes=("", "_tx"), validate="one_to_one"
    )
    delay = joined[schema.LABEL_TIMESTAMP] - joined[schema.TIMESTAMP]
    assert delay.min() >= pd.Timedelta("1D") and delay.max() <= pd.Timedelta("60D")
    # The delays spread over the range, not one value.
    assert delay.max() - delay.min() > pd.Timedelta("40D")
    assert (joined[schema.TIMESTAMP] == joined[f"{schema.TIMESTAMP}_tx"]).all()
    assert (joined[schema.CUSTOMER_ID] == joined[f"{schema.CUSTOMER_ID}_tx"]).all()
    assert (joined[schema.LABEL] == joined[f"{schema.LABEL}_tx"]).all()
    assert labels[schema.LABEL_TIMESTAMP].is_monotonic_increasing
    # Same seed, same schedule.
    pd.testing.assert_frame_equal(labels, schedule_labels(frame, *delay_and_seed()))


def test_lognormal_delays_are_cut_to_their_bounds():
    frame = make_transactions(n=500)
    params = label_params(distribution="lognormal", median="10D", sigma=2.0, min="2D", max="30D")
    delay = (
        schedule_labels(frame, params.delay, params.seed)
        .merge(frame, on=schema.TRANSACTION_ID, suffixes=("", "_tx"))
        .pipe(lambda d: d[schema.LABEL_TIMESTAMP] - d[schema.TIMESTAMP])
    )
    assert delay.min() == pd.Timedelta("2D") and delay.max() == pd.Timedelta("30D")
    assert abs(delay.median() - pd.Timedelta("10D")) < pd.Timedelta("3D")


def test_transactions_are_sent_without_label_or_scenario():
    frame = make_transactions(n=5).assign(fraud_scenario="none")
    assert not {schema.LABEL, "fraud_scenario"} & set(strip_labels(frame).columns)
    assert schema.LABEL in frame  # the input is left alone


def test_a_label_is_sent_once_the_replay_passes_its_time_keyed_like_its_transaction():
    frame = make_transactions(n=400, days=40)
    labels = schedule_labels(frame, *delay_and_seed(distribution="uniform", min="1D", max="10D"))
    stub = StubProducer()
    tx_report, label_report = produce_with_labels(
        stub, "transactions", strip_labels(frame), "transaction_labels", labels, chunk_rows=64
    )
    assert tx_report.ok and label_report.ok
    assert (tx_report.acknowledged, label_report.acknowledged) == (400, len(labels))
    sent_tx = [orjson.loads(v) for topic, _, v in stub.sent if topic == "transactions"]
    assert not any(schema.LABEL in m or "fraud_scenario" in m for m in sent_tx)
    # Walk the send order: a label goes out after every transaction at or before its
    # time and before the first one after it.
    last_tx_time = pd.Timestamp.min
    keys = dict(zip(frame[schema.TRANSACTION_ID], frame[schema.CUSTOMER_ID], strict=True))
    n_labels = 0
    for topic, key, value in stub.sent:
        message = orjson.loads(value)
        if topic == "transactions":
            last_tx_time = pd.Timestamp(message[schema.TIMESTAMP])
            continue
        n_labels += 1
        label_time = pd.Timestamp(message[schema.LABEL_TIMESTAMP])
        assert last_tx_time <= label_time
        assert key.decode() == keys[message[schema.TRANSACTION_ID]]
        assert set(message) == set(schema.LABEL_COLUMNS)
    assert n_labels == len(labels)
    # Labels due after the last transaction come at the end.
    positions = send_positions(frame[schema.TIMESTAMP], labels[schema.LABEL_TIMESTAMP])
    assert (positions == len(frame)).sum() > 0
    assert stub.sent[-1][0] == "transaction_labels"


def test_the_labels_position_in_the_replay_does_not_depend_on_the_rate():
    frame = make_transactions(n=60, days=5)
    labels = schedule_labels(frame, *delay_and_seed(distribution="uniform", min="1D", max="2D"))
    orders = []
    for rate in (None, 2000.0):
        stub = StubProducer()
        produce_with_labels(stub, "t", strip_labels(frame), "l", labels, rate=rate)
        orders.append([(topic, value) for topic, _, value in stub.sent])
    assert orders[0] == orders[1]


# --------------------------------------------------------------------- codec --


def test_label_messages_round_trip_and_bad_ones_get_a_reason():
    labels = schedule_labels(make_transactions(n=20), *delay_and_seed())
    good = encode_labels(labels)
    bad = [
        None,
        b"[1]",
        b'{"transaction_id": "T1"}',
        orjson.dumps({**orjson.loads(good[0]), schema.LABEL: 2}),
        orjson.dumps({**orjson.loads(good[0]), schema.LABEL_TIMESTAMP: "yesterday"}),
        orjson.dumps({**orjson.loads(good[0]), schema.TRANSACTION_ID: "  "}),
    ]
    decoded = decode_labels([*good, *bad])
    pd.testing.assert_frame_equal(
        decoded.frame, labels.astype({schema.LABEL: "int8"}), check_dtype=False
    )
    assert decoded.frame[schema.LABEL].dtype == "int8"
    n = len(good)
    assert decoded.rejected[n] == "empty_message"
    assert decoded.rejected[n + 1].startswith("not_a_json_object")
    assert "missing_is_fraud" in decoded.rejected[n + 2]
    assert decoded.rejected[n + 3] == "bad_type_is_fraud"
    assert decoded.rejected[n + 4] == "bad_type_label_timestamp"
    assert decoded.rejected[n + 5] == "bad_type_transaction_id"


@pytest.mark.parametrize(
    "written",
    [
        "2018-04-01T00:00:31",
        "2018-04-01 00:00:31.5",
        "2018-04-01T00:00:31.123Z",
        "2018-04-01T02:00:31.123456+02:00",
        "2018-04-01T00:00:31.123456789",  # nanoseconds: read by pandas, not rounded
        "2018-04-01",
        "April 1, 2018 00:00:31",  # only pandas reads it
    ],
)
def test_label_times_are_read_as_pandas_reads_them(written):
    message = {
        schema.TRANSACTION_ID: "T1",
        schema.CUSTOMER_ID: "C1",
        schema.TERMINAL_ID: "M1",
        schema.LABEL: 1,
        schema.TIMESTAMP: written,
        schema.LABEL_TIMESTAMP: written,
    }
    decoded = decode_labels([orjson.dumps(message)])
    expected = pd.Timestamp(written)
    expected = expected.tz_convert("UTC").tz_localize(None) if expected.tzinfo else expected
    assert decoded.frame[schema.TIMESTAMP].iloc[0] == expected
    assert decoded.frame[schema.LABEL_TIMESTAMP].iloc[0] == expected


def test_label_times_outside_the_nanosecond_range_are_rejected():
    message = {
        schema.TRANSACTION_ID: "T1",
        schema.CUSTOMER_ID: "C1",
        schema.TERMINAL_ID: "M1",
        schema.LABEL: 0,
        schema.TIMESTAMP: "0001-01-01T00:00:00",
        schema.LABEL_TIMESTAMP: "9999-12-31T00:00:00",
    }
    decoded = decode_labels([orjson.dumps(message)])
    assert decoded.frame.empty
    assert decoded.rejected[0] == "bad_type_timestamp;bad_type_label_timestamp"


# ---------------------------------------------------------------------- join --


def test_with_labels_from_the_topic_the_rows_own_labels_are_ignored():
    frame = make_transactions(n=6).assign(**{schema.LABEL: 1})
    labels = pd.DataFrame(
        {
            schema.TRANSACTION_ID: ["T000001", "T000003", "T000003", "T999999"],
            schema.LABEL: [0, 1, 0, 1],
        }
    )
    joined = attach_labels(frame, labels, "topic")
    assert joined[schema.LABEL].tolist() == [pd.NA, 0, pd.NA, 1, pd.NA, pd.NA]
    assert str(joined[schema.LABEL].dtype) == "Int8"
    kept = attach_labels(frame.assign(**{schema.LABEL: pd.NA}), labels, "transactions")
    assert kept[schema.LABEL].tolist() == [pd.NA, 0, pd.NA, 1, pd.NA, pd.NA]
    own = attach_labels(frame, None, "transactions")
    assert own[schema.LABEL].tolist() == [1] * 6
    with pytest.raises(ValueError, match="source must be"):
        attach_labels(frame, labels, "file")


def test_labels_known_at_a_moment():
    labels = schedule_labels(make_transactions(n=50), *delay_and_seed())
    moment = labels[schema.LABEL_TIMESTAMP].iloc[20]
    known = labels_known_at(labels, moment)
    assert (known[schema.LABEL_TIMESTAMP] <= moment).all()
    assert len(known) == int((labels[schema.LABEL_TIMESTAMP] <= moment).sum())


# ---------------------------------------------------------------- the buffer --


def label(tid: str, tx_ms: int, is_fraud: int = 1) -> Label:
    return Label(tid, is_fraud, tx_ms, tx_ms + 86_400_000)


def test_a_waiting_label_is_taken_once_when_its_transaction_arrives():
    buffer = LabelBuffer(max_labels=10, max_age_ms=1_000)
    buffer.add(label("T1", 0))
    buffer.add(label("T1", 0, is_fraud=0))  # a second label for the same id: the first wins
    assert len(buffer) == 1 and "T1" in buffer
    assert buffer.take(["T0", "T1"]) == [label("T1", 0)]
    assert buffer.take(["T1"]) == []
    assert (buffer.counters.buffered, buffer.counters.matched) == (1, 1)


def test_overflow_drops_the_oldest_transactions_label_and_is_counted_and_logged(caplog):
    buffer = LabelBuffer(max_labels=3, max_age_ms=10**12)
    with caplog.at_level(logging.WARNING):
        for i, t in enumerate([50, 10, 40, 30, 20]):
            buffer.add(label(f"T{i}", t))
    assert len(buffer) == 3
    assert buffer.counters.overflowed == 2
    assert sorted(lb.transaction_id for lb in buffer.take([f"T{i}" for i in range(5)])) == [
        "T0",
        "T2",
        "T3",
    ]
    assert "the buffer holds at most 3" in caplog.text


def test_a_label_waits_at_most_max_age_of_the_transactions_clock(caplog):
    buffer = LabelBuffer(max_labels=100, max_age_ms=1_000)
    buffer.add(label("old", 0))
    buffer.add(label("young", 900))
    assert buffer.expire(None) == 0
    assert buffer.expire(1_000) == 0  # exactly max_age: still waiting
    with caplog.at_level(logging.WARNING):
        assert buffer.expire(1_500) == 1
    assert "old" not in buffer and "young" in buffer
    assert buffer.counters.expired == 1
    assert "did not arrive within" in caplog.text
    # A label taken before it expires is not counted as expired later.
    assert buffer.take(["young"])
    assert buffer.expire(10_000) == 0


def test_the_producer_sends_labels_only_with_a_topic_and_a_label_column(caplog):
    from fraud_detection.streaming.producer import _labels_to_send

    frame = make_transactions(n=10)
    params = label_params()
    assert _labels_to_send(frame, params, "") is None
    with caplog.at_level(logging.WARNING):
        assert _labels_to_send(frame.drop(columns=schema.LABEL), params, "labels") is None
    assert "no labels to send" in caplog.text
    assert len(_labels_to_send(frame, params, "labels")) == 10
