"""The ingestion's label nodes: the labels of a run, and the training data as every
validated transaction with the labels known so far."""

from __future__ import annotations

import pandas as pd
import pytest

from fraud_detection import schema
from fraud_detection.pipelines.ingestion.nodes import attach_labels, collect_labels
from fraud_detection.pipelines.monitoring.nodes import attach_current_labels
from fraud_detection.streaming.labels import parse_delay, schedule_labels
from tests.conftest import base_parameters, make_transactions


def _labels(frame: pd.DataFrame) -> pd.DataFrame:
    return schedule_labels(
        frame, parse_delay({"distribution": "uniform", "min": "1D", "max": "60D"}), 0
    )


def test_without_a_label_source_a_run_has_no_new_labels():
    labels = collect_labels(None)
    assert labels.empty and list(labels.columns) == list(schema.LABEL_COLUMNS)


def test_a_repeated_label_keeps_the_first():
    labels = _labels(make_transactions(n=5))
    repeat = labels.iloc[[2]].assign(**{schema.LABEL: 1 - int(labels[schema.LABEL].iloc[2])})
    collected = collect_labels(pd.concat([labels, repeat], ignore_index=True))
    pd.testing.assert_frame_equal(collected, labels)
    with pytest.raises(ValueError, match=r"raw_labels lacks \['is_fraud'\]"):
        collect_labels(labels.drop(columns=schema.LABEL))


@pytest.mark.parametrize("attach", [attach_labels, attach_current_labels])
def test_labels_from_the_topic_replace_the_rows_own(attach):
    frame = make_transactions(n=50)
    labels = _labels(frame).iloc[:30]
    params = base_parameters("labels", source="topic")
    # Rows that claim to be fraud: with labels from the topic, only the topic counts.
    out = attach(frame.assign(**{schema.LABEL: 1}), labels, params)
    label_of = labels.set_index(schema.TRANSACTION_ID)[schema.LABEL]
    assert out[schema.LABEL].notna().sum() == 30
    known = out[out[schema.LABEL].notna()].set_index(schema.TRANSACTION_ID)[schema.LABEL]
    assert (known.to_numpy() == label_of.loc[known.index].to_numpy()).all()
    # A file source keeps its own labels.
    own = attach(frame, labels.iloc[:0], base_parameters("labels"))
    assert own[schema.LABEL].tolist() == frame[schema.LABEL].tolist()
    with pytest.raises(ValueError, match="params:labels.source"):
        attach(frame, labels, base_parameters("labels", source="kafka"))
