"""``KafkaDataset``: transactions from and to a Kafka topic, without losing any.

``load`` consumes a bounded batch (from the consumer group's committed offsets up to
the end offsets seen when it starts, or fewer with ``max_messages`` / ``max_seconds``),
decodes the JSON messages into the canonical schema and sends every rejected one to
a dead-letter topic with its reason: malformed messages, and every repeat of a
transaction id already in the batch (``duplicate_message`` when the content is the
same, ``duplicate_transaction_id`` when it differs). Every consumed message is a row
or a dead letter; the load checks that the counts add up. It never commits: the
offsets it reached wait in the dataset until :meth:`KafkaDataset.commit` is called,
which ``KafkaOffsetCommitHook`` does once what the run makes of the batch is
persisted (in the ``kafka`` environment: after the quality gate has judged it). A run
that dies in between leaves the offsets where they were,
so the next run reads the same messages again; a run that succeeded moves them past
the batch, so nothing is read twice.

``save`` produces a DataFrame as JSON messages keyed by a column, with ``acks=all``,
and fails when any message is not acknowledged. With ``labels_topic`` in the save
arguments the rows go out as a payment network sends them, without label or fraud
scenario, and each label goes to the label topic once the rows have passed its time
(the row's time plus a delay drawn from ``label_delay``), as ``fraud-detection-produce``
does.
"""

from __future__ import annotations

import copy
import logging
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from kedro.io import AbstractDataset, DatasetError

from fraud_detection import schema
from fraud_detection.streaming.clients import (
    KafkaConnectionError,
    connect,
    servers_text,
)
from fraud_detection.streaming.labels import parse_delay, schedule_labels, strip_labels
from fraud_detection.streaming.messages import (
    DEAD_LETTER_MAX_VALUE_BYTES,
    DecodedMessages,
    dead_letter,
    decode_transactions,
    empty_transactions,
    encode_transactions,
)
from fraud_detection.streaming.publish import (
    PRODUCER_DEFAULTS,
    DeliveryReport,
    produce_frame,
    produce_with_labels,
)

logger = logging.getLogger(__name__)

# Keys of load_args / save_args read by the dataset itself; every other key is a
# kafka-python KafkaConsumer / KafkaProducer setting.
_LOAD_KEYS = (
    "max_messages",
    "max_seconds",
    "stall_timeout_s",
    "poll_timeout_ms",
    "decode_chunk_size",
    "progress_every_s",
    "dead_letter_max_bytes",
)
_SAVE_KEYS = ("key_column", "flush_timeout_s", "labels_topic", "label_delay", "label_seed")


@dataclass(frozen=True)
class _Rejected:
    """A message for the dead-letter topic: its value and key, why, and where from."""

    value: bytes | None
    key: bytes | None
    reason: str
    partition: int
    offset: int
    timestamp: int | None = None
    re_encoded: bool = False

    @classmethod
    def of(cls, record: ConsumerRecord, reason: str) -> _Rejected:
        return cls(
            record.value, record.key, reason, record.partition, record.offset, record.timestamp
        )


_Decoded = tuple[pd.DataFrame, np.ndarray, list[_Rejected]]


def _decode_chunk(
    records: list[ConsumerRecord],
    decode: Callable[[list[bytes | None]], DecodedMessages] = decode_transactions,
) -> _Decoded:
    """Decoded rows of a chunk, the (partition, offset) of each row, and the rejected
    messages with their reasons."""
    decoded = decode([r.value for r in records])
    source = np.array(
        [(records[i].partition, records[i].offset) for i in decoded.positions], dtype=np.int64
    )
    rejected = [_Rejected.of(records[i], reason) for i, reason in decoded.rejected.items()]
    return decoded.frame, source.reshape(-1, 2), rejected


@dataclass
class _Batch:
    """Messages consumed by one ``load``, decoded chunk by chunk as they arrive.

    Chunks are decoded on a worker thread while the consumer keeps fetching: pyarrow
    parses without holding the GIL, so decoding mostly overlaps with kafka-python's
    record unpacking. Only the decoded frames are kept, not the records (a million
    live record objects would make every garbage collection walk them).
    """

    chunk_size: int
    decoder: ThreadPoolExecutor
    decode: Callable[[list[bytes | None]], DecodedMessages] = decode_transactions
    chunks: list[Future[_Decoded]] = field(default_factory=list)
    pending: list[ConsumerRecord] = field(default_factory=list)
    consumed: int = 0

    def add(self, records: list[ConsumerRecord]) -> None:
        self.pending.extend(records)
        self.consumed += len(records)
        if len(self.pending) >= self.chunk_size:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            records, self.pending = self.pending, []
            self.chunks.append(self.decoder.submit(_decode_chunk, records, self.decode))

    def results(self) -> tuple[list[pd.DataFrame], list[np.ndarray], list[_Rejected]]:
        """Decoded frames in consumption order with the (partition, offset) of their
        rows, and the rejected messages with reasons."""
        self.flush()
        frames: list[pd.DataFrame] = []
        sources: list[np.ndarray] = []
        rejected: list[_Rejected] = []
        for future in self.chunks:
            frame, source, bad = future.result()
            if len(frame):
                frames.append(frame)
                sources.append(source)
            rejected.extend(bad)
        return frames, sources, rejected


class KafkaDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """Transactions in a Kafka topic, as JSON messages in the canonical schema.

    Example catalog entry (``conf/kafka/catalog.yml``)::

        raw_transactions:
          type: fraud_detection.datasets.kafka_dataset.KafkaDataset
          topic: transactions
          bootstrap_servers: ${oc.env:KAFKA_BOOTSTRAP_SERVERS,127.0.0.1:9092}
          group_id: fraud-detection-ingestion
          dead_letter_topic: transactions.dlq
          credentials: kafka
          load_args:
            max_messages: 5000000

    Example use::

        dataset = KafkaDataset(
            topic="transactions",
            bootstrap_servers="127.0.0.1:9092",
            group_id="ingestion",
            dead_letter_topic="transactions.dlq",
        )
        dataset.save(transactions)  # acks=all, fails if any message is not acknowledged
        batch = dataset.load()  # new messages since the last commit
        ...  # persist the batch
        dataset.commit()  # the next load starts after this batch

    Load arguments read by the dataset (the others go to ``KafkaConsumer``):
        max_messages: Stop after this many messages (``None``: up to the end offsets).
        max_seconds: Stop consuming after this many seconds (``None``: no budget).
        stall_timeout_s: Fail when no message arrives for this long before the end.
        poll_timeout_ms: Longest wait of one poll.
        decode_chunk_size: Messages decoded together.
        progress_every_s: Interval of the progress log lines on long loads.
        dead_letter_max_bytes: Longest value a dead letter keeps (a longer one is cut,
            with its size and SHA-256 in headers).

    Save arguments read by the dataset (the others go to ``KafkaProducer``):
        key_column: Column used as message key (``customer_id``; ``None`` for no key).
        flush_timeout_s: How long to wait for the acknowledgements.
        labels_topic: Send the rows without label and each label there, late (``None``:
            the rows as they are).
        label_delay: The delay distribution of the labels (as ``params:labels.delay``).
        label_seed: Seed of the delays.
    """

    # What a message is: subclasses for other message types replace these.
    decode_messages: ClassVar[Callable[[list[bytes | None]], DecodedMessages]] = staticmethod(
        decode_transactions
    )
    missing_topic_is_empty: ClassVar[bool] = False
    empty_frame: ClassVar[Callable[[], pd.DataFrame]] = staticmethod(empty_transactions)
    encode_rows: ClassVar[Callable[[pd.DataFrame], list[bytes]]] = staticmethod(encode_transactions)

    DEFAULT_LOAD_ARGS: dict[str, Any] = {
        "max_messages": None,
        "max_seconds": None,
        "stall_timeout_s": 30.0,
        "poll_timeout_ms": 500,
        "decode_chunk_size": 50_000,
        "progress_every_s": 10.0,
        "dead_letter_max_bytes": DEAD_LETTER_MAX_VALUE_BYTES,
        # KafkaConsumer settings: start from the oldest message when the group has no
        # committed offset yet; large fetches and polls for batch throughput.
        "auto_offset_reset": "earliest",
        "max_poll_records": 20_000,
        "max_partition_fetch_bytes": 8_388_608,
        "fetch_max_bytes": 52_428_800,
        "bootstrap_timeout_ms": 10_000,
        "request_timeout_ms": 30_000,
    }
    DEFAULT_SAVE_ARGS: dict[str, Any] = {
        "key_column": schema.CUSTOMER_ID,
        "flush_timeout_s": 120.0,
        "labels_topic": None,
        "label_delay": None,
        "label_seed": 0,
        **PRODUCER_DEFAULTS,
        "bootstrap_timeout_ms": 10_000,
    }

    def __init__(  # noqa: PLR0913
        self,
        *,
        topic: str,
        bootstrap_servers: str | list[str] = "127.0.0.1:9092",
        group_id: str | None = None,
        dead_letter_topic: str | None = None,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Creates a new instance of ``KafkaDataset``; nothing connects until load/save.

        Args:
            topic: Topic to consume from and produce to.
            bootstrap_servers: ``host:port`` (comma-separated) or a list.
            group_id: Consumer group whose committed offsets mark what was ingested;
                required to load.
            dead_letter_topic: Where malformed messages go, with the reason and source
                position in headers. Without it, a malformed message fails the load.
            load_args: Overrides of ``DEFAULT_LOAD_ARGS``.
            save_args: Overrides of ``DEFAULT_SAVE_ARGS``.
            credentials: kafka-python security settings (``security_protocol``,
                ``sasl_mechanism``, ``sasl_plain_username``, ``ssl_cafile``, ...),
                given to every client. ``None`` values are ignored.
            metadata: Free-form metadata, ignored by the dataset (Kedro-Viz shows it).
        """
        self._topic = topic
        self._bootstrap_servers = bootstrap_servers
        self._group_id = group_id
        self._dead_letter_topic = dead_letter_topic
        self._credentials = copy.deepcopy(credentials) or {}
        self.metadata = metadata
        self._load_args = {**self.DEFAULT_LOAD_ARGS, **(load_args or {})}
        self._save_args = {**self.DEFAULT_SAVE_ARGS, **(save_args or {})}
        if self._load_args.get("enable_auto_commit"):
            raise DatasetError(
                f"KafkaDataset '{topic}': enable_auto_commit must stay off; offsets are "
                "committed after the batch is persisted (KafkaOffsetCommitHook)"
            )
        self._pending_offsets: dict[TopicPartition, int] = {}
        self.last_load_report: dict[str, Any] = {}

    @property
    def servers(self) -> str:
        """Bootstrap servers, as one string."""
        return servers_text(self._bootstrap_servers)

    @property
    def pending_offsets(self) -> dict[TopicPartition, int]:
        """Offsets reached by the last load and not committed yet."""
        return dict(self._pending_offsets)

    # ------------------------------------------------------------------ load --

    def load(self) -> pd.DataFrame:
        if not self._group_id:
            raise DatasetError(
                f"KafkaDataset '{self._topic}' needs a group_id to load: its committed offsets "
                "mark what was ingested"
            )
        self._pending_offsets = {}  # a failed load leaves nothing to commit
        control = {k: self._load_args[k] for k in _LOAD_KEYS}
        consumer_args = {k: v for k, v in self._load_args.items() if k not in _LOAD_KEYS}
        started = time.monotonic()
        consumer = self._connect(
            KafkaConsumer,
            group_id=self._group_id,
            enable_auto_commit=False,
            allow_auto_create_topics=False,
            client_id=f"fraud-detection-{self._group_id}",
            **consumer_args,
        )
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-decode") as decoder:
            try:
                batch, start, reached = self._consume(consumer, control, decoder)
            except KafkaError as exc:
                raise DatasetError(
                    f"Consuming '{self._topic}' from Kafka at {self.servers} failed: {exc!r}. "
                    "Is the broker up? Nothing was committed; the next run reads these "
                    "messages again."
                ) from exc
            finally:
                consumer.close(autocommit=False)
            frames, sources, rejected = batch.results()
        frame, repeats = self._assemble(frames, sources, self.empty_frame, self.encode_rows)
        rejected += repeats
        duplicates = len(repeats)
        if len(frame) + len(rejected) != batch.consumed:
            raise DatasetError(
                f"KafkaDataset '{self._topic}': {batch.consumed} messages consumed but "
                f"{len(frame)} rows + {len(rejected)} rejected; nothing was committed"
            )
        dead_lettered = self._dead_letter(rejected, int(control["dead_letter_max_bytes"]))
        self._pending_offsets = {tp: offset for tp, offset in reached.items() if offset > start[tp]}
        reasons = Counter(r.reason.split(":", 1)[0] for r in rejected)
        self.last_load_report = {
            "topic": self._topic,
            "group_id": self._group_id,
            "consumed": batch.consumed,
            "rows": len(frame),
            "dead_lettered": dead_lettered,
            "duplicates_removed": duplicates,
            "dead_lettered_by_reason": dict(reasons),
            "start_offsets": {tp.partition: offset for tp, offset in start.items()},
            "end_offsets": {tp.partition: offset for tp, offset in reached.items()},
            "seconds": round(time.monotonic() - started, 3),
        }
        logger.info(
            "Consumed %d messages from '%s' (group %s, offsets %s -> %s) in %.1fs: %d rows, "
            "%d dead-lettered to '%s' %s (%d repeated transaction ids); offsets are "
            "committed once the batch is persisted",
            batch.consumed,
            self._topic,
            self._group_id,
            self.last_load_report["start_offsets"],
            self.last_load_report["end_offsets"],
            self.last_load_report["seconds"],
            len(frame),
            dead_lettered,
            self._dead_letter_topic,
            dict(reasons),
            duplicates,
        )
        return frame

    def _consume(
        self, consumer: KafkaConsumer, control: dict[str, Any], decoder: ThreadPoolExecutor
    ) -> tuple[_Batch, dict[TopicPartition, int], dict[TopicPartition, int]]:
        """Reads from the committed offsets to the end offsets seen now (or less)."""
        request_timeout = consumer.config["request_timeout_ms"]
        partitions = consumer.partitions_for_topic(self._topic)
        if not partitions and self.missing_topic_is_empty:
            logger.warning(
                "Topic '%s' does not exist on %s yet: nothing to read", self._topic, self.servers
            )
            batch = _Batch(chunk_size=1, decoder=decoder, decode=self.decode_messages)
            return batch, {}, {}
        if not partitions:
            raise DatasetError(
                f"Topic '{self._topic}' does not exist on {self.servers}: produce transactions "
                "first (fraud-detection-produce) or create the topic"
            )
        tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        beginning = consumer.beginning_offsets(tps, timeout_ms=request_timeout)
        end = consumer.end_offsets(tps, timeout_ms=request_timeout)
        start: dict[TopicPartition, int] = {}
        for tp in tps:
            committed = consumer.committed(tp, timeout_ms=request_timeout)
            if committed is None:
                offset = (
                    beginning[tp] if self._load_args["auto_offset_reset"] == "earliest" else end[tp]
                )
            elif committed < beginning[tp]:
                logger.warning(
                    "Messages %d..%d of %s were deleted by retention before group %s read them",
                    committed,
                    beginning[tp] - 1,
                    tp,
                    self._group_id,
                )
                offset = beginning[tp]
            elif committed > end[tp]:
                logger.warning(
                    "Committed offset %d of group %s is past the end %d of %s (topic recreated?): "
                    "reading it from the beginning",
                    committed,
                    self._group_id,
                    end[tp],
                    tp,
                )
                offset = beginning[tp]
            else:
                offset = committed
            start[tp] = offset
            consumer.seek(tp, offset)
        reached = dict(start)
        active = {tp for tp in tps if start[tp] < end[tp]}
        consumer.pause(*[tp for tp in tps if tp not in active])
        batch = _Batch(
            chunk_size=int(control["decode_chunk_size"]),
            decoder=decoder,
            decode=self.decode_messages,
        )
        max_messages = control["max_messages"]
        deadline = time.monotonic() + control["max_seconds"] if control["max_seconds"] else None
        stall_timeout = float(control["stall_timeout_s"])
        last_progress = time.monotonic()
        to_read = sum(end[tp] - start[tp] for tp in active)
        next_report = last_progress + float(control["progress_every_s"])
        while active:
            remaining = None if max_messages is None else max_messages - batch.consumed
            if remaining is not None and remaining <= 0:
                break
            if deadline is not None and time.monotonic() >= deadline:
                logger.info(
                    "Time budget of %ss reached while consuming '%s'",
                    control["max_seconds"],
                    self._topic,
                )
                break
            polled = consumer.poll(timeout_ms=control["poll_timeout_ms"], max_records=remaining)
            for tp, polled_records in polled.items():
                records = polled_records
                if records and records[-1].offset >= end[tp]:
                    records = [r for r in records if r.offset < end[tp]]
                if records:
                    batch.add(records)
                    reached[tp] = records[-1].offset + 1
                    last_progress = time.monotonic()
            for tp in list(active):
                # The position also moves past transaction markers, which are not records.
                if consumer.position(tp, timeout_ms=request_timeout) >= end[tp]:
                    reached[tp] = end[tp]
                    active.discard(tp)
                    consumer.pause(tp)
            now = time.monotonic()
            if now >= next_report:
                logger.info(
                    "Consumed %d of %d messages from '%s' so far",
                    batch.consumed,
                    to_read,
                    self._topic,
                )
                next_report = now + float(control["progress_every_s"])
            if active and now - last_progress > stall_timeout:
                behind = {tp.partition: (reached[tp], end[tp]) for tp in active}
                raise DatasetError(
                    f"No message from Kafka at {self.servers} for {stall_timeout:g}s while "
                    f"consuming '{self._topic}' (partition: (offset reached, end offset) "
                    f"{behind}). Is the broker up? Nothing was committed; the next run reads "
                    "these messages again."
                )
        return batch, start, reached

    @staticmethod
    def _assemble(
        frames: list[pd.DataFrame],
        sources: list[np.ndarray],
        empty: Callable[[], pd.DataFrame] = empty_transactions,
        encode: Callable[[pd.DataFrame], list[bytes]] = encode_transactions,
    ) -> tuple[pd.DataFrame, list[_Rejected]]:
        """One frame for the batch without repeated transaction ids (the first message
        is kept), and the repeats as dead letters with their reason.

        A repeat is ``duplicate_message`` when its content is that of the first one (a
        redelivery) and ``duplicate_transaction_id`` when it differs (the id reused for
        another transaction); both name the message that was kept. The dead letter
        carries the decoded row re-encoded (``dlq.value: re-encoded``): the original
        bytes are at the source offset.
        """
        if not frames:
            return empty(), []
        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        ids = frame[schema.TRANSACTION_ID]
        duplicated = ids.duplicated().to_numpy()
        if not duplicated.any():
            return frame, []
        source = np.concatenate(sources)
        involved = ids.duplicated(keep=False).to_numpy()
        sub = frame.loc[involved]
        content = pd.util.hash_pandas_object(sub, index=False)
        positions = pd.Series(np.flatnonzero(involved), index=sub.index)
        first_row = positions.groupby(sub[schema.TRANSACTION_ID].to_numpy()).transform("first")
        same = content.to_numpy() == content.loc[first_row.to_numpy()].to_numpy()
        repeat = duplicated[involved]
        rows = np.flatnonzero(involved)[repeat]
        values = encode(frame.iloc[rows])
        repeats = []
        firsts = first_row.to_numpy()[repeat].tolist()
        for row, value, first, is_same in zip(
            rows.tolist(), values, firsts, same[repeat].tolist(), strict=True
        ):
            kind = (
                "duplicate_message: same content as"
                if is_same
                else "duplicate_transaction_id: other content than"
            )
            partition, offset = source[row]
            kept_partition, kept_offset = source[first]
            repeats.append(
                _Rejected(
                    value,
                    str(frame.at[row, schema.CUSTOMER_ID]).encode(),
                    f"{kind} partition {kept_partition} offset {kept_offset}",
                    int(partition),
                    int(offset),
                    re_encoded=True,
                )
            )
        return frame.loc[~duplicated].reset_index(drop=True), repeats

    def _dead_letter(self, rejected: list[_Rejected], max_value_bytes: int) -> int:
        """Sends rejected messages to the dead-letter topic (unchanged, or cut to
        ``max_value_bytes`` with size and hash recorded); waits for the acks."""
        if not rejected:
            return 0
        first = rejected[0]
        if not self._dead_letter_topic:
            raise DatasetError(
                f"{len(rejected)} malformed message(s) in '{self._topic}' and no dead_letter_topic "
                f"is configured (first: partition {first.partition} offset {first.offset}: "
                f"{first.reason}). Set dead_letter_topic so they are kept aside instead of failing "
                "the load."
            )
        producer = self._connect(
            KafkaProducer, client_id="fraud-detection-dead-letters", acks="all"
        )
        failures: list[BaseException] = []
        try:
            for item in rejected:
                source: dict[str, object] = {
                    "source.topic": self._topic,
                    "source.partition": item.partition,
                    "source.offset": item.offset,
                }
                if item.timestamp is not None:
                    source["source.timestamp"] = item.timestamp
                if item.re_encoded:
                    source["value"] = "re-encoded"
                value, headers = dead_letter(
                    item.value, item.reason, source, max_value_bytes=max_value_bytes
                )
                future = producer.send(
                    self._dead_letter_topic, value=value, key=item.key, headers=headers
                )
                future.add_errback(failures.append)
            producer.flush(timeout=self._save_args["flush_timeout_s"])
        except KafkaError as exc:
            failures.append(exc)
        finally:
            producer.close(timeout=5)
        if failures:
            raise DatasetError(
                f"Could not dead-letter {len(rejected)} malformed message(s) to "
                f"'{self._dead_letter_topic}' on {self.servers}: {failures[0]!r}; "
                "nothing was committed"
            )
        return len(rejected)

    # ---------------------------------------------------------------- commit --

    def commit(self) -> None:
        """Commits the offsets reached by the last load for the consumer group.

        Call it only once the loaded batch is persisted; ``KafkaOffsetCommitHook``
        does so after the consuming node's outputs are saved.

        Raises:
            DatasetError: The commit did not succeed; the batch will be read again.
        """
        if not self._pending_offsets:
            return
        offsets = {
            tp: OffsetAndMetadata(offset, "", -1) for tp, offset in self._pending_offsets.items()
        }
        not_committed = (
            f"Committing offsets {self._describe_offsets()} of group '{self._group_id}' on "
            f"{self.servers} failed"
        )
        then = (
            "Nothing was committed: the batch is persisted, the next run reads it again "
            "and stores none of its ids twice."
        )
        try:
            consumer = self._connect(
                KafkaConsumer,
                group_id=self._group_id,
                enable_auto_commit=False,
                client_id=f"fraud-detection-{self._group_id}",
                request_timeout_ms=self._load_args["request_timeout_ms"],
                bootstrap_timeout_ms=self._load_args["bootstrap_timeout_ms"],
            )
        except DatasetError as exc:  # the broker went away after the load
            raise DatasetError(f"{not_committed}: {exc} {then}") from exc
        try:
            consumer.commit(offsets, timeout_ms=self._load_args["request_timeout_ms"])
        except KafkaError as exc:
            raise DatasetError(f"{not_committed}: {exc!r}. {then}") from exc
        finally:
            consumer.close(autocommit=False)
        logger.info(
            "Committed offsets %s of '%s' for group %s",
            self._describe_offsets(),
            self._topic,
            self._group_id,
        )
        self._pending_offsets = {}

    def _describe_offsets(self) -> dict[int, int]:
        return {tp.partition: offset for tp, offset in self._pending_offsets.items()}

    # ------------------------------------------------------------------ save --

    def save(self, data: pd.DataFrame) -> None:
        control = {k: self._save_args[k] for k in _SAVE_KEYS}
        producer_args = {k: v for k, v in self._save_args.items() if k not in _SAVE_KEYS}
        producer = self._connect(
            KafkaProducer, client_id="fraud-detection-kafka-dataset", **producer_args
        )
        try:
            reports = self._send(producer, data, control)
        except ValueError as exc:
            raise DatasetError(f"Cannot save to Kafka topic '{self._topic}': {exc}") from exc
        finally:
            producer.close(timeout=5)
        for report in reports:
            if not report.ok:
                raise DatasetError(f"Saving to Kafka at {self.servers} failed: {report.summary()}")
            logger.info("%s", report.summary())

    def _send(
        self, producer: KafkaProducer, data: pd.DataFrame, control: dict[str, Any]
    ) -> list[DeliveryReport]:
        options = {
            "key_column": control["key_column"],
            "flush_timeout_s": control["flush_timeout_s"],
        }
        if not control["labels_topic"] or schema.LABEL not in data:
            return [produce_frame(producer, self._topic, data, **options)]
        if not control["label_delay"]:
            raise ValueError("labels_topic is set but label_delay is not")
        labels = schedule_labels(
            data, parse_delay(control["label_delay"]), int(control["label_seed"])
        )
        return list(
            produce_with_labels(
                producer,
                self._topic,
                strip_labels(data),
                control["labels_topic"],
                labels,
                **options,
            )
        )

    # --------------------------------------------------------------- helpers --

    def _connect(self, client_class: type, **config: Any) -> Any:
        try:
            return connect(client_class, self._bootstrap_servers, self._credentials, **config)
        except KafkaConnectionError as exc:
            raise DatasetError(f"KafkaDataset '{self._topic}': {exc}") from exc

    def _describe(self) -> dict[str, Any]:
        return {
            "topic": self._topic,
            "bootstrap_servers": self.servers,
            "group_id": self._group_id,
            "dead_letter_topic": self._dead_letter_topic,
            "load_args": self._load_args,
            "save_args": self._save_args,
        }
