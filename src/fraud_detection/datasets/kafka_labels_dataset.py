"""``KafkaLabelsDataset``: the label topic (``transaction_labels``) as a table.

Labels arrive days or weeks after their transaction, on their own topic
(``fraud_detection.streaming.labels``). This dataset reads them exactly as
``KafkaDataset`` reads transactions (a bounded batch from the group's committed
offsets, malformed messages and repeated transaction ids to the dead-letter topic,
offsets committed by ``KafkaOffsetCommitHook`` once the batch is persisted), with the
label message's columns (``schema.LABEL_COLUMNS``). A label topic that does not exist
yet is an empty batch, not an error: no label may have come yet.
"""

from __future__ import annotations

from typing import ClassVar

from fraud_detection.datasets.kafka_dataset import KafkaDataset
from fraud_detection.streaming.messages import decode_labels, empty_labels, encode_labels


class KafkaLabelsDataset(KafkaDataset):
    """Label messages in a Kafka topic, one row per label.

    Example catalog entry (``conf/kafka/catalog.yml``)::

        raw_labels:
          type: fraud_detection.datasets.kafka_labels_dataset.KafkaLabelsDataset
          topic: transaction_labels
          bootstrap_servers: ${oc.env:KAFKA_BOOTSTRAP_SERVERS,127.0.0.1:9092}
          group_id: fraud-detection-ingestion
          dead_letter_topic: transaction_labels.dlq
          credentials: kafka

    Arguments, load and save arguments: those of ``KafkaDataset``.
    """

    missing_topic_is_empty: ClassVar[bool] = True
    decode_messages = staticmethod(decode_labels)
    empty_frame = staticmethod(empty_labels)
    encode_rows = staticmethod(encode_labels)
