"""The real-time scorer: ``transactions`` in, ``fraud_predictions`` out, at least once.

One process reads every partition of the transactions topic and of the label topic
(terminal and category features need every customer's transactions, so the state
cannot be split by customer partition) and loops over micro-batches:

1. labels come only from the label topic (``transaction_labels``: transaction id,
   customer, terminal, the transaction's time, ``is_fraud``, the label's time), days or
   weeks after their transaction; an ``is_fraud`` inside a transaction message is
   ignored. A label is joined to its transaction by id: a transaction already seen gets
   it at once (``OnlineFeatures.apply_labels``), one older than the state's horizon
   cannot change any feature any more and is only counted, and one not seen yet waits
   in a ``LabelBuffer`` (bounded in number and in age on the transactions' clock; what
   it drops is counted and logged) until its transaction arrives. The features use a
   label only for rows at least ``label_delay`` after its transaction, however early
   it arrives;
2. transactions are decoded with the ingestion decoder and checked against the
   ingestion bounds (``MessageBounds``: the accepted window of timestamps and amounts,
   so a message from 2099 cannot move the state's watermark and an amount of 1e308
   never reaches the model); rejected messages go to the dead-letter topic unchanged
   (cut when too large), with the reason and source position in headers. A transaction
   id already scored is not scored again: the same content is a redelivery (counted
   as a duplicate), other content is dead-lettered (``duplicate_transaction_id``);
3. ``OnlineFeatures`` turns the batch into ``create_features`` rows, the champion
   model scores them, and one prediction per transaction is produced (keyed by
   customer): transaction id, score, decision at the model's threshold, model name
   and version, and the processing latency (message received to prediction sent).
   A row the model cannot score (an exception, a non-finite score) is dead-lettered
   (``scoring_failed``) instead of stopping the scorer;
4. the batch's offsets are committed only once every prediction and dead letter of
   the batch is acknowledged by the cluster (``acks=all``). A crash in between
   re-scores the batch after the restart: predictions are at least once, keyed by
   transaction id for consumers that deduplicate.

On start, the state is rebuilt from the topics themselves: from the committed offsets
back over the state's horizon (by message timestamp; the topics' retention must cover
the horizon), the transactions and labels are replayed into the state without being
scored. SIGTERM/SIGINT finish the current batch, wait for the acknowledgements, commit
and exit 0.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from fraud_detection import schema
from fraud_detection.scoring.champion import ChampionWatcher
from fraud_detection.scoring.features import (
    FeatureBatch,
    OnlineFeatures,
    TransactionRecords,
)
from fraud_detection.scoring.gc_pauses import GcPauses, Refreezer, freeze_state
from fraud_detection.scoring.messages import decode_records, iso_now
from fraud_detection.scoring.online_store import RedisWindows
from fraud_detection.scoring.slow_loops import SlowLoops
from fraud_detection.streaming.clients import connect, servers_text
from fraud_detection.streaming.labels import Label, LabelBuffer
from fraud_detection.streaming.messages import MessageBounds, dead_letter, decode_label_rows

if TYPE_CHECKING:  # the shadow's child process imports this module
    from fraud_detection.scoring.shadow import ShadowProcess, ShadowScorer

logger = logging.getLogger(__name__)

START_FROM = ("earliest", "latest")
PRODUCER_CLIENTS = ("kafka-python", "confluent-kafka")
REASON_CODES = ("all", "alerts", "off")
WARM_UP_ROWS = 256  # replayed rows a newly served model is scored on before live ones
SCORING_FAILED = "scoring_failed"
DUPLICATE_TRANSACTION_ID = "duplicate_transaction_id"


class ScorerError(RuntimeError):
    """The scorer cannot go on without losing or misrouting messages."""


@dataclass
class ScorerConfig:
    """Where the scorer reads and writes, and how it batches.

    Attributes:
        bootstrap_servers: ``host:port[,host:port]``.
        transactions_topic: Transactions to score (JSON, canonical schema).
        labels_topic: Late labels (``schema.LABEL_COLUMNS``); ``None`` for none.
        predictions_topic: Where predictions go.
        dead_letter_topic: Where malformed messages go; ``None`` fails on them.
        features_topic: Optional audit copy of every scored feature row.
        group_id: Consumer group whose committed offsets mark what is scored.
        start_from: With no committed offset: ``earliest`` scores the whole topic;
            ``latest`` replays what is there into the state and scores only new messages.
        max_batch: Most messages per micro-batch.
        poll_timeout_ms: Longest wait for messages in one poll.
        commit_interval_s: Least time between two offset commits.
        status_every_s: Interval of the status log line.
        credentials: kafka-python security settings for every client.
        bounds: The accepted window of timestamps and amounts (``params:ingestion``);
            ``None`` accepts whatever decodes.
        recent_ids: How many scored transaction ids are remembered to score each once.
        max_pending_labels: Most labels waiting for their transaction at once.
        max_pending_label_age_s: Longest wait of a label for its transaction, in event
            time on the transactions' clock (``params:labels.pending.max_age``).
        freeze_after_replay: ``gc.freeze`` the rebuilt state before scoring (the
            process is the scorer's alone: the CLI sets it; an embedding process may not
            want its own objects frozen). Survivors of the young collections are then
            frozen every ``refreeze_every_s`` seconds (0: only once), so that no full
            collection walks the growing state while scoring.
        producer_client: ``kafka-python`` or ``confluent-kafka`` (librdkafka, see
            ``fraud_detection.streaming.rdkafka``) for predictions and dead letters.
        slow_loop_ms: An iteration of the scoring loop slower than this is logged with
            the time of each of its phases (0: never).
        reason_codes: ``alerts`` (predictions with decision 1 carry their top three
            reasons), ``all`` (every prediction: XGBoost's TreeSHAP costs about 0.8 ms a
            row, a core at 1,000 tx/s) or ``off``.
        shadow_topic: Where the shadow model's predictions go (with a shadow watcher):
            each carries the champion's score and decision on the same transaction.
        align_timeout_ms: With a shared online store (several processes): the longest
            wait, per batch, for the other processes' partitions to be written up to the
            batch's time (``RedisWindows.wait_for``); a batch that waited this long is
            scored with what is there and counted (``unaligned_batches``).
    """

    bootstrap_servers: str
    transactions_topic: str = "transactions"
    labels_topic: str | None = "transaction_labels"
    predictions_topic: str = "fraud_predictions"
    dead_letter_topic: str | None = "transactions.dlq"
    features_topic: str | None = None
    group_id: str = "fraud-detection-scorer"
    start_from: str = "earliest"
    max_batch: int = 500
    poll_timeout_ms: int = 100
    commit_interval_s: float = 0.2
    status_every_s: float = 30.0
    credentials: dict[str, Any] = field(default_factory=dict)
    bounds: MessageBounds | None = None
    recent_ids: int = 1_000_000
    max_pending_labels: int = 100_000
    max_pending_label_age_s: float = 86_400.0
    freeze_after_replay: bool = False
    refreeze_every_s: float = 5.0
    producer_client: str = "kafka-python"
    slow_loop_ms: float = 100.0
    reason_codes: str = "alerts"
    shadow_topic: str = "fraud_predictions_shadow"
    align_timeout_ms: float = 200.0

    def __post_init__(self) -> None:
        if self.reason_codes not in REASON_CODES:
            raise ValueError(
                f"reason_codes must be one of {REASON_CODES}, got {self.reason_codes!r}"
            )
        if self.producer_client not in PRODUCER_CLIENTS:
            raise ValueError(
                f"producer_client must be one of {PRODUCER_CLIENTS}, got {self.producer_client!r}"
            )
        if self.start_from not in START_FROM:
            raise ValueError(f"start_from must be one of {START_FROM}, got {self.start_from!r}")
        if self.max_batch < 1:
            raise ValueError("max_batch must be at least 1")


@dataclass
class ScorerCounters:
    """What the scorer did since it started."""

    consumed: int = 0
    scored: int = 0
    dead_lettered: int = 0
    duplicates: int = 0
    labels: int = 0
    labels_applied: int = 0
    labels_past_horizon: int = 0
    inline_labels_ignored: int = 0
    reason_code_failures: int = 0
    shadow_scored: int = 0
    shadow_failed: int = 0
    shadow_skipped: int = 0
    replayed: int = 0
    batches: int = 0
    committed_batches: int = 0
    rebalances: int = 0
    unaligned_batches: int = 0
    processing_ms: deque = field(default_factory=lambda: deque(maxlen=20_000))

    def summary(self) -> dict[str, Any]:
        latencies = np.asarray(self.processing_ms, dtype=float)
        out: dict[str, Any] = {
            k: getattr(self, k)
            for k in (
                "consumed",
                "scored",
                "dead_lettered",
                "duplicates",
                "labels",
                "labels_applied",
                "labels_past_horizon",
                "inline_labels_ignored",
                "shadow_scored",
                "shadow_failed",
                "shadow_skipped",
                "replayed",
                "batches",
                "rebalances",
                "unaligned_batches",
            )
        }
        if len(latencies):
            out["processing_ms_p50"] = round(float(np.percentile(latencies, 50)), 2)
            out["processing_ms_p99"] = round(float(np.percentile(latencies, 99)), 2)
        return out


@dataclass
class _Pending:
    """A processed batch waiting for its acknowledgements before its offsets commit."""

    offsets: dict[TopicPartition, int]
    futures: list[Any]


def decode_labels(values: list[bytes | None]) -> tuple[list[Label], dict[int, str]]:
    """Label messages -> (labels, {position: reason} of the rejected), without pandas."""
    rows, _, rejected = decode_label_rows(values)
    labels = [
        Label(
            r.transaction_id,
            r.is_fraud,
            r.timestamp_ns // 1_000_000,
            r.label_timestamp_ns // 1_000_000,
        )
        for r in rows
    ]
    return labels, rejected


def _producer_factory(config: ScorerConfig) -> Callable[..., Any]:
    if config.producer_client == "confluent-kafka":
        from fraud_detection.streaming.rdkafka import connect_rdkafka_producer  # noqa: PLC0415

        return lambda **kw: connect_rdkafka_producer(
            config.bootstrap_servers, config.credentials, **kw
        )
    return lambda **kw: connect(KafkaProducer, config.bootstrap_servers, config.credentials, **kw)


class RealTimeScorer:
    """Consumes transactions and labels, produces predictions; see the module docstring.

    Args:
        config: Topics, group and batching.
        features: The feature state (``OnlineFeatures`` with ``params:features``).
        model: The champion watcher (already loaded).
        shadow: Optional second model (``models:/<name>@challenger``) scored in shadow
            on the rows the champion scored, after its predictions are sent, to
            ``config.shadow_topic``; nothing acts on its predictions
            (``scoring.shadow``: ``ShadowProcess`` off the champion's path in a child
            process, ``ShadowScorer`` in this thread).
        store: The online store shared with the other scorer processes (``features``
            must be built on it). With one, the scorer joins its consumer group as one of
            N processes (see "Past one process" in the module docstring); without, it
            reads every partition alone.
        consumer_factory / producer_factory: For tests; default kafka-python clients.
    """

    CONSUMER_DEFAULTS: dict[str, Any] = {
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": 100,
        "max_partition_fetch_bytes": 4_194_304,
        "request_timeout_ms": 30_000,
        "bootstrap_timeout_ms": 10_000,
    }
    # One of N processes: the range assignor gives a member the same partition numbers
    # of the transactions and of the label topic (both keyed by customer), and a
    # rebalance may rebuild a partition's state for minutes (replay in the callback).
    GROUP_DEFAULTS: dict[str, Any] = {
        "partition_assignment_strategy": (RangePartitionAssignor,),
        "max_poll_interval_ms": 900_000,
    }
    PRODUCER_DEFAULTS: dict[str, Any] = {
        "acks": "all",
        "linger_ms": 0,  # latency first: a micro-batch is already a batch
        "batch_size": 262_144,
        "max_block_ms": 30_000,
        "bootstrap_timeout_ms": 10_000,
    }

    def __init__(
        self,
        config: ScorerConfig,
        features: OnlineFeatures,
        model: ChampionWatcher,
        *,
        shadow: ShadowScorer | ShadowProcess | None = None,
        store: RedisWindows | None = None,
        consumer_factory: Callable[..., Any] | None = None,
        producer_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.config = config
        self.features = features
        self.model = model
        self.shadow = shadow
        self.store = store
        self.counters = ScorerCounters()
        self._consumer_factory = consumer_factory or (
            lambda **kw: connect(KafkaConsumer, config.bootstrap_servers, config.credentials, **kw)
        )
        self._producer_factory = producer_factory or _producer_factory(config)
        self._consumer: Any = None
        self._producer: Any = None
        self._pending: deque[_Pending] = deque()
        self._acked: dict[TopicPartition, int] = {}  # next offset to read, acknowledged
        self._dirty = False
        self._last_commit = 0.0
        self._stop = threading.Event()
        self._labels_tps: set[TopicPartition] = set()
        # With a shared store: the transaction partitions of the topic and the owned ones.
        self._tx_partitions: list[int] = []
        self._owned: set[int] = set()
        self._replayer: Any = None
        self._rebalance_lock = threading.Lock()
        self._assignment: set[TopicPartition] | None = None  # to apply after the poll
        self._held: set[TopicPartition] = set()  # revoked: not committed meanwhile
        self._newest: int | None = None  # the live batch's newest time (ms), to mark
        # Transaction id -> content of the scored ones, oldest first (bounded): the
        # feature state forgets ids past its horizon, a redelivery must still not be
        # scored twice.
        self._recent: OrderedDict[str, tuple] = OrderedDict()
        self.label_buffer = LabelBuffer(
            config.max_pending_labels, int(config.max_pending_label_age_s * 1000)
        )
        self.gc_pauses = GcPauses()
        self.slow_loops = SlowLoops(self.config.slow_loop_ms, self.gc_pauses)
        self._warm_batch: FeatureBatch | None = None
        self._warmed: Any = None

    # -------------------------------------------------------------- lifecycle --

    def stop(self) -> None:
        """Asks the loop to finish the current batch, commit and return."""
        self._stop.set()

    def run(self) -> ScorerCounters:
        """Connects, rebuilds the state, scores until :meth:`stop`; returns the counters."""
        cfg = self.config
        self._consumer = self._consumer_factory(
            group_id=cfg.group_id,
            client_id=f"fraud-detection-scorer-{cfg.group_id}",
            **self.CONSUMER_DEFAULTS,
            **(self.GROUP_DEFAULTS if self.store is not None else {}),
        )
        self._producer = self._producer_factory(
            client_id="fraud-detection-scorer", **self.PRODUCER_DEFAULTS
        )
        if self.shadow is not None:
            self.shadow.bind(self._producer)
        self.gc_pauses.install()
        try:
            if self.store is None:
                self._restore()
            else:
                self._join_group()
            self._warm_up()
            if cfg.freeze_after_replay:
                # The replayed state is long-lived: out of the collector's walks from now on.
                freeze_state()
            logger.info(
                "Scoring '%s' into '%s' with %s version %s (group %s, labels from %s, "
                "dead letters to %s)",
                cfg.transactions_topic,
                cfg.predictions_topic,
                self.model.name,
                self.model.current.version,
                cfg.group_id,
                cfg.labels_topic if self._labels_tps else "the transactions only",
                cfg.dead_letter_topic,
            )
            next_status = time.monotonic() + cfg.status_every_s
            refreezer = Refreezer(cfg.refreeze_every_s if cfg.freeze_after_replay else 0)
            loops = self.slow_loops
            while not self._stop.is_set():
                loops.start()
                polled = self._consumer.poll(
                    timeout_ms=cfg.poll_timeout_ms, max_records=cfg.max_batch
                )
                if self._assignment is not None:
                    polled = self._apply_assignment(polled)
                    loops.lap("rebalance")
                if polled:
                    loops.lap("poll", sum(len(r) for r in polled.values()))
                    self._process(polled, time.time())
                else:
                    loops.lap("poll")
                    loops.idle("poll")
                self._settle(block=False)
                loops.lap("settle")
                if refreezer.maybe_freeze():
                    loops.lap("freeze")
                if time.monotonic() >= next_status:
                    self._log_status()
                    next_status = time.monotonic() + cfg.status_every_s
                    loops.lap("status")
                loops.end()
            self._settle(block=True)
            self._log_status()
        finally:
            self._refresh_shadow_counters()
            self._close()
            self.gc_pauses.remove()
        return self.counters

    def _close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=10)
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
        if self._replayer is not None:
            self._replayer.close(autocommit=False)

    def _refresh_shadow_counters(self) -> None:
        if self.shadow is not None:
            shadow = self.shadow.refresh()
            self.counters.shadow_scored = shadow.scored
            self.counters.shadow_failed = shadow.failed
            self.counters.shadow_skipped = shadow.skipped

    def _log_status(self) -> None:
        self._refresh_shadow_counters()
        stats = self.features.stats
        logger.info(
            "Scorer: %s; model %s v%s; state %d rows, %d customers, %d terminals, "
            "%d labels waiting for their transaction (%s); gc pauses %s; slow iterations %s",
            self.counters.summary(),
            self.model.name,
            self.model.current.version,
            stats.rows,
            stats.customers,
            stats.terminals,
            len(self.label_buffer),
            self.label_buffer.counters,
            self.gc_pauses.summary(),
            self.slow_loops.summary(),
        )
        if self.store is not None:
            logger.info(
                "Online store: partitions %s of %d owned; %d alignment waits (%.1f ms in all), "
                "%d timed out",
                sorted(self._owned),
                len(self._tx_partitions),
                self.store.waits,
                self.store.wait_ms,
                self.store.timeouts,
            )

    # ---------------------------------------------------------------- restore --

    def _partitions(self, topic: str, required: bool) -> list[TopicPartition]:
        partitions = self._consumer.partitions_for_topic(topic)
        if not partitions:
            if required:
                raise ScorerError(
                    f"Topic '{topic}' does not exist on "
                    f"{servers_text(self.config.bootstrap_servers)}: "
                    "create it or produce to it first"
                )
            logger.warning(
                "Topic '%s' does not exist: no label reaches the features until the scorer "
                "restarts",
                topic,
            )
            return []
        return [TopicPartition(topic, p) for p in sorted(partitions)]

    def _restore(self) -> None:
        """Assigns every partition, replays the horizon before the committed offsets into
        the state, and positions the consumer at the committed offsets."""
        cfg = self.config
        tx_tps = self._partitions(cfg.transactions_topic, required=True)
        label_tps = self._partitions(cfg.labels_topic, required=False) if cfg.labels_topic else []
        self._labels_tps = set(label_tps)
        tps = tx_tps + label_tps
        self._consumer.assign(tps)
        live_from = self._rebuild(self._consumer, tps)
        for tp in tps:
            self._consumer.seek(tp, live_from[tp])
        # Everything before these offsets is in the state now: a group without offsets
        # (first start) gets them, so a restart replays rather than re-reads it live.
        self._acked = dict(live_from)
        self._dirty = True
        self._commit(force=True)
        logger.info(
            "Scoring from offsets %s",
            {f"{tp.topic}[{tp.partition}]": o for tp, o in live_from.items()},
        )

    def _rebuild(self, consumer: Any, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Replays, with ``consumer``, the horizon before each partition's committed
        offset into the state; returns the offsets to score from."""
        cfg = self.config
        consumer.assign(tps)
        timeout = self.CONSUMER_DEFAULTS["request_timeout_ms"]
        beginning = consumer.beginning_offsets(tps, timeout_ms=timeout)
        end = consumer.end_offsets(tps, timeout_ms=timeout)
        live_from: dict[TopicPartition, int] = {}
        for tp in tps:
            committed = consumer.committed(tp, timeout_ms=timeout)
            if committed is None:
                committed = beginning[tp] if cfg.start_from == "earliest" else end[tp]
            live_from[tp] = min(max(committed, beginning[tp]), end[tp])
        replay_from = {
            tp: self._replay_start(consumer, tp, live_from[tp], beginning[tp]) for tp in tps
        }
        self._replay(consumer, replay_from, live_from)
        return live_from

    def _replay_start(
        self, consumer: Any, tp: TopicPartition, live_from: int, beginning: int
    ) -> int:
        """First offset whose message is younger than the state's horizon before the
        last message already processed (by message timestamp)."""
        if live_from <= beginning:
            return live_from
        consumer.assign([tp])
        consumer.seek(tp, live_from - 1)
        last = None
        deadline = time.monotonic() + 30
        while last is None and time.monotonic() < deadline:
            for record in consumer.poll(timeout_ms=500, max_records=1).get(tp, []):
                last = record
        if last is None or last.timestamp is None or last.timestamp < 0:
            return beginning
        target = last.timestamp - self.features.horizon_ms
        found = consumer.offsets_for_times(
            {tp: max(target, 0)}, timeout_ms=self.CONSUMER_DEFAULTS["request_timeout_ms"]
        )
        offset = found.get(tp)
        return max(beginning, offset.offset if offset is not None else beginning)

    def _replay(
        self,
        consumer: Any,
        replay_from: dict[TopicPartition, int],
        live_from: dict[TopicPartition, int],
    ) -> None:
        todo = {tp for tp in replay_from if replay_from[tp] < live_from[tp]}
        consumer.assign(list(replay_from))
        if not todo:
            return
        # No pause/resume: a partition paused with a fetch in flight was, once in a
        # drain benchmark, never fetched again after the resume (kafka-python 3.0.12).
        # A partition done replaying may fetch live records meanwhile: they are dropped
        # here and read again after the final seek.
        for tp, offset in replay_from.items():
            consumer.seek(tp, offset)
        total = sum(live_from[tp] - replay_from[tp] for tp in todo)
        logger.info(
            "Rebuilding the feature state from %d messages before the committed offsets", total
        )
        started = time.monotonic()
        stalled_since = time.monotonic()
        merge = TimeMerge(tp for tp in todo if tp not in self._labels_tps)
        newest: dict[int, int] = {}
        while todo:
            polled = consumer.poll(timeout_ms=500, max_records=20_000)
            for tp, batch in polled.items():
                records = [r for r in batch if r.offset < live_from[tp]]
                if not records:
                    continue
                stalled_since = time.monotonic()
                if tp in self._labels_tps:
                    self._join_labels(decode_labels([r.value for r in records])[0])
                else:
                    decoded = self._without_labels(
                        decode_records([r.value for r in records], self.config.bounds)[0]
                    )
                    if decoded.timestamp_ns:
                        newest[tp.partition] = max(
                            newest.get(tp.partition, 0), max(decoded.timestamp_ns) // 1_000_000
                        )
                    # The rows just before the live offsets also get their features
                    # built: the model is warmed up on them (see _warm_up).
                    merge.add(tp, decoded, records[-1].offset >= live_from[tp] - WARM_UP_ROWS)
                self.counters.replayed += len(records)
            for tp in list(todo):
                if consumer.position(tp) >= live_from[tp]:
                    todo.discard(tp)
                    merge.done(tp)
            while (released := merge.release()) is not None:
                self._replay_rows(*released)
            if todo and time.monotonic() - stalled_since > 60:
                raise ScorerError(
                    f"Replaying {sorted(str(tp) for tp in todo)} stalled for 60 s: "
                    "is the broker up?"
                )
        if self.store is not None:  # what the other processes wait for is written
            self.store.mark(self.config.transactions_topic, newest)
        logger.info(
            "Feature state rebuilt from %d messages in %.1fs: %d rows, %d customers",
            self.counters.replayed,
            time.monotonic() - started,
            self.features.stats.rows,
            self.features.stats.customers,
        )

    # ------------------------------------------------------ one of N processes --

    def _join_group(self) -> None:
        """Subscribes as one member of the consumer group: partitions are assigned in
        the polls from now on, and each gained one is rebuilt before it is scored."""
        cfg = self.config
        tx_tps = self._partitions(cfg.transactions_topic, required=True)
        label_tps = self._partitions(cfg.labels_topic, required=False) if cfg.labels_topic else []
        if label_tps and len(label_tps) != len(tx_tps):
            raise ScorerError(
                f"'{cfg.labels_topic}' has {len(label_tps)} partitions and "
                f"'{cfg.transactions_topic}' {len(tx_tps)}: scorer processes that share the "
                "work need both topics keyed by customer with the same number of partitions, "
                "so that a transaction's label reaches the process that owns it"
            )
        self._tx_partitions = [tp.partition for tp in tx_tps]
        self._replayer = self._consumer_factory(
            group_id=cfg.group_id,
            client_id=f"fraud-detection-scorer-{cfg.group_id}-replay",
            **self.CONSUMER_DEFAULTS,
        )
        topics = [cfg.transactions_topic] + ([cfg.labels_topic] if label_tps else [])
        self.store.before_read = self._before_read
        self._consumer.subscribe(topics, listener=_Rebalance(self))
        logger.info(
            "Joined group %s as one of its scorer processes (shared aggregations %s in the "
            "online store): partitions come with the first polls",
            cfg.group_id,
            self.features.shared_aggregations,
        )

    def _on_revoked(self, revoked: set[TopicPartition], commit: bool) -> None:
        """A rebalance begins (the consumer's IO thread): what is acknowledged of these
        partitions is committed now, without blocking, so the next owner starts there;
        nothing of them is committed again until the new assignment is applied."""
        with self._rebalance_lock:
            self._held |= revoked
        acked = self._acked.copy()
        offsets = {tp: OffsetAndMetadata(o, "", -1) for tp, o in acked.items() if tp in revoked}
        if commit and offsets:
            self._consumer.commit_async(offsets, callback=self._on_commit)

    def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        """The new assignment (the IO thread): applied by the loop after the poll."""
        with self._rebalance_lock:
            self._assignment = set(assigned)

    def _apply_assignment(
        self, polled: dict[TopicPartition, list[ConsumerRecord]]
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Drops the partitions gone to other processes (their records too: the new
        owner scores them); rebuilds the state of the gained ones from the topics, as
        the single process does at start, and scores them from their committed offsets.
        Kept partitions go on where they were. Returns the polled records still ours."""
        with self._rebalance_lock:
            assigned, self._assignment = self._assignment, None
            self._held.clear()
        if assigned is None:
            return polled
        self.counters.rebalances += 1
        cfg = self.config
        lost = set(self._acked) - assigned
        for tp in lost:
            self._acked.pop(tp, None)
        for batch in self._pending:
            for tp in lost:
                batch.offsets.pop(tp, None)
        self._labels_tps -= lost
        self._owned -= {tp.partition for tp in lost if tp.topic == cfg.transactions_topic}
        if lost:
            logger.info("Partitions %s went to another scorer process", sorted(map(str, lost)))
        gained = sorted(assigned - set(self._acked), key=str)
        polled = {tp: records for tp, records in polled.items() if tp in assigned}
        if not gained:
            return polled
        self._labels_tps |= {tp for tp in gained if tp.topic == cfg.labels_topic}
        self._owned |= {tp.partition for tp in gained if tp.topic == cfg.transactions_topic}
        live_from = self._rebuild(self._replayer, gained)
        self._replayer.unsubscribe()
        for tp in gained:
            # Records fetched before the rebuild: those before the live offset are in
            # the state now; the consumer goes on after the last one kept.
            records = [r for r in polled.pop(tp, []) if r.offset >= live_from[tp]]
            if records:
                polled[tp] = records
            self._consumer.seek(tp, records[-1].offset + 1 if records else live_from[tp])
        self._acked.update(live_from)
        self._dirty = True
        self._commit(force=True)
        if cfg.freeze_after_replay:
            freeze_state()
        logger.info(
            "Scoring from offsets %s",
            {f"{tp.topic}[{tp.partition}]": o for tp, o in live_from.items()},
        )
        return polled

    def _before_read(self) -> None:
        """Between the store's write and read of a live batch: marks this batch's
        partitions as written, then waits for the other processes' partitions to be
        written as far as the batch (see ``fraud_detection.scoring.online_store``)."""
        newest, self._newest = self._newest, None
        if newest is None:
            return  # a replay: nothing waits for it, it waits for nothing
        # Every owned partition is marked at the batch's newest time, not each at its
        # own: a partition of this process whose newer rows are not fetched yet would
        # otherwise hold the others back while this process waits for them (two
        # processes waiting on each other until the timeout). What a mark then promises
        # is what the single process gives: the rows that arrived before, per process.
        self._mark_owned(newest)
        others = [p for p in self._tx_partitions if p not in self._owned]
        timeout_s = self.config.align_timeout_ms / 1000
        if not self.store.wait_for(self.config.transactions_topic, others, newest, timeout_s):
            self.counters.unaligned_batches += 1

    def _mark_owned(self, newest: int) -> None:
        self.store.mark(self.config.transactions_topic, dict.fromkeys(self._owned, newest))

    def _replay_rows(self, records: TransactionRecords, build: bool) -> None:
        built = self.features.update_records(records, build=build)
        if built is not None and len(built):
            self._warm_batch = built
        self._remember(records, range(len(records)))
        self._apply_waiting(records)

    # ---------------------------------------------------------------- scoring --

    def _process(self, polled: dict[TopicPartition, list[ConsumerRecord]], received: float) -> None:
        futures: list[Any] = []
        offsets = {tp: records[-1].offset + 1 for tp, records in polled.items() if records}
        tx_records: list[ConsumerRecord] = []
        for tp, records in polled.items():
            if tp in self._labels_tps:
                labels, rejected = decode_labels([r.value for r in records])
                self.slow_loops.lap("decode labels", len(records))
                self._join_labels(labels)
                self.counters.labels += len(labels)
                futures += self._dead_letter(records, rejected)
                self.slow_loops.lap("join labels", len(labels))
            else:
                tx_records.extend(records)
        self.counters.consumed += sum(len(r) for r in polled.values())
        if tx_records:
            values = [r.value for r in tx_records]
            records, positions, rejected = decode_records(values, self.config.bounds)
            records = self._without_labels(records)
            records, positions = self._unscored(records, positions, rejected)
            self.slow_loops.lap("decode transactions", len(values))
            if len(records) and self.store is not None:
                self._newest = max(records.timestamp_ns) // 1_000_000
            if len(records):
                futures += self._score(records, positions, received, rejected)
            if self._newest is not None:  # nothing of it reached the store (all repeats)
                self._mark_owned(self._newest)
                self._newest = None
            futures += self._dead_letter(tx_records, dict(sorted(rejected.items())))
            self.slow_loops.lap("dead letters", len(rejected))
        self.counters.batches += 1
        self._pending.append(_Pending(offsets, futures))

    def _unscored(
        self, records: TransactionRecords, positions: list[int], rejected: dict[int, str]
    ) -> tuple[TransactionRecords, list[int]]:
        """The records whose transaction id is not scored yet (first of a batch kept).

        A repeat with the same content is a redelivery: counted, not scored again. A
        repeat with other content is rejected (``duplicate_transaction_id``).
        """
        keep: list[int] = []
        seen: dict[str, tuple] = {}
        for i, tid in enumerate(records.transaction_id):
            content = _content(records, i)
            known = self._recent.get(tid, seen.get(tid))
            if known is None:
                seen[tid] = content
                keep.append(i)
            elif known == content:
                self.counters.duplicates += 1
            else:
                reason = f"{DUPLICATE_TRANSACTION_ID}: other content than an earlier message"
                rejected[positions[i]] = reason
        if len(keep) == len(positions):
            return records, positions
        return _take(records, keep), [positions[i] for i in keep]

    # ----------------------------------------------------------------- labels --

    def _without_labels(self, records: TransactionRecords) -> TransactionRecords:
        """The records with ``is_fraud`` unknown: labels come only from their topic."""
        inline = sum(1 for v in records.is_fraud if v == v)  # noqa: PLR0124 - NaN test
        if inline:
            if not self.counters.inline_labels_ignored:
                logger.warning(
                    "Transaction messages carry '%s': ignored, labels are taken only from "
                    "the label topic '%s'",
                    schema.LABEL,
                    self.config.labels_topic,
                )
            self.counters.inline_labels_ignored += inline
            records.is_fraud = [float("nan")] * len(records.is_fraud)
        return records

    def _join_labels(self, labels: list[Label]) -> None:
        """Applies the labels of transactions already seen; the others wait (bounded).

        A label whose transaction is older than the state's horizon is only counted: no
        feature the scorer will serve can count it any more.
        """
        watermark = self.features.watermark
        oldest = None if watermark is None else watermark - self.features.horizon_ms
        ready_ids: list[str] = []
        ready: list[int] = []
        for label in labels:
            if oldest is not None and label.transaction_ms <= oldest:
                self.counters.labels_past_horizon += 1
            elif label.transaction_id in self._recent:
                ready_ids.append(label.transaction_id)
                ready.append(label.is_fraud)
            else:
                self.label_buffer.add(label)
        if ready_ids:
            self.counters.labels_applied += self.features.apply_labels(ready_ids, ready)

    def _apply_waiting(self, records: TransactionRecords) -> None:
        """The waiting labels of transactions that just arrived go into the state."""
        found = self.label_buffer.take(records.transaction_id)
        self.label_buffer.expire(self.features.watermark)
        if found:
            self.counters.labels_applied += self.features.apply_labels(
                [label.transaction_id for label in found], [label.is_fraud for label in found]
            )

    def _remember(self, records: TransactionRecords, rows: Any) -> None:
        recent = self._recent
        for i in rows:
            recent[records.transaction_id[i]] = _content(records, i)
        while len(recent) > self.config.recent_ids:
            recent.popitem(last=False)

    def _score(
        self,
        records: TransactionRecords,
        positions: list[int],
        received: float,
        rejected: dict[int, str],
    ) -> list[Any]:
        before = self.features.stats.duplicates
        batch = self.features.update_records(records)
        self.counters.duplicates += self.features.stats.duplicates - before
        self.slow_loops.lap("features", len(records))
        self._remember(records, range(len(records)))
        self._apply_waiting(records)
        self.slow_loops.lap("remember ids")
        if not len(batch):
            return []
        self._warm_up()
        model = self.model.current
        scores, decisions, failed = _predict(model, batch)
        self.slow_loops.lap("predict", len(batch))
        if failed:
            position_of = dict(zip(records.transaction_id, positions, strict=True))
            for row, reason in failed.items():
                rejected[position_of[batch.transaction_id[row]]] = reason
            batch = _slice(batch, [i for i in range(len(batch)) if i not in failed])
            ok = np.ones(len(scores), dtype=bool)
            ok[list(failed)] = False
            scores, decisions = scores[ok], decisions[ok]
            if not len(batch):
                return []
        reasons = self._reasons(model, batch, decisions)
        self.slow_loops.lap("reason codes")
        sent_at = time.time()
        latency_ms = round((sent_at - received) * 1000.0, 3)
        scored_at = iso_now()
        cfg = self.config
        send = self._producer.send
        futures = []
        threshold = model.threshold
        for tid, customer, score, decision, why in zip(
            batch.transaction_id,
            batch.customer_id,
            scores.tolist(),
            decisions.tolist(),
            reasons,
            strict=True,
        ):
            message = {
                "transaction_id": tid,
                "customer_id": customer,
                "score": score,
                "decision": decision,
                "threshold": threshold,
                "model_name": model.name,
                "model_version": model.version,
                "processing_latency_ms": latency_ms,
                "scored_at": scored_at,
                "reasons": why,
            }
            futures.append(
                send(cfg.predictions_topic, value=orjson.dumps(message), key=customer.encode())
            )
        self.slow_loops.lap("send", len(futures))
        if self.shadow is not None:
            futures.append(self.shadow.submit(batch, scores, decisions, model.name, model.version))
            self.slow_loops.lap("shadow", len(batch))
        if cfg.features_topic:
            futures += self._send_features(batch)
            self.slow_loops.lap("send features")
        self.counters.scored += len(batch)
        self.counters.processing_ms.extend([latency_ms] * len(batch))
        return futures

    def _reasons(
        self, model: Any, batch: FeatureBatch, decisions: np.ndarray
    ) -> list[list[dict[str, Any]] | None]:
        """Each row's reason codes (``None`` where not computed: ``reason_codes`` is
        ``off``, or ``alerts`` and the row is not one, or the model has no explainer)."""
        out: list[list[dict[str, Any]] | None] = [None] * len(batch)
        mode = self.config.reason_codes
        if mode == "off" or getattr(model, "explainer", None) is None:
            return out
        rows = np.flatnonzero(decisions == 1).tolist() if mode == "alerts" else None
        if rows == []:
            return out
        try:
            explained = model.explain_batch(batch if rows is None else _slice(batch, rows))
        except Exception as exc:  # noqa: BLE001 - a prediction goes out without its reasons
            if not self.counters.reason_code_failures:
                logger.warning(
                    "Reason codes of %s v%s failed (%r): predictions go out without them",
                    model.name,
                    model.version,
                    exc,
                )
            self.counters.reason_code_failures += 1
            return out
        for i, why in zip(range(len(batch)) if rows is None else rows, explained, strict=True):
            out[i] = why
        return out

    def _warm_up(self) -> None:
        """Scores the last replayed rows once with a newly served model, off the stream.

        A model's first predictions pay for its lazy set-up and for checking the compiled
        path against the pipeline (``LoadedModel.VERIFY_ROWS``): on live rows that cost
        the first seconds of a start or a model switch hundreds of milliseconds each.
        """
        model = self.model.current
        if model is not self._warmed and self._warm_batch is not None:
            self._warmed = model
            self._warm(model, explain=self.config.reason_codes != "off")

    def _warm(self, model: Any, *, explain: bool) -> None:
        assert self._warm_batch is not None
        rows = list(range(min(len(self._warm_batch), WARM_UP_ROWS)))
        started = time.monotonic()
        try:
            warm = _slice(self._warm_batch, rows)
            model.predict_batch(warm)
            if explain and getattr(model, "explainer", None):
                model.explain_batch(warm)  # e.g. shap's explainer is built on first use
        except Exception as exc:  # noqa: BLE001 - warming is an optimisation only
            logger.warning(
                "Warming %s v%s up on %d replayed rows failed (%r): live rows verify it",
                model.name,
                model.version,
                len(rows),
                exc,
            )
            return
        logger.info(
            "Warmed %s v%s up on %d replayed rows in %.0f ms",
            model.name,
            model.version,
            len(rows),
            (time.monotonic() - started) * 1000,
        )

    def _send_features(self, batch: FeatureBatch) -> list[Any]:
        frame = batch.frame()
        frame[schema.TIMESTAMP] = frame[schema.TIMESTAMP].dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
        futures = []
        for row in frame.to_dict("records"):
            value = orjson.dumps(row, default=lambda v: None if v is pd.NA else str(v))
            futures.append(
                self._producer.send(
                    self.config.features_topic,
                    value=value,
                    key=str(row[schema.CUSTOMER_ID]).encode(),
                )
            )
        return futures

    def _dead_letter(self, records: list[ConsumerRecord], rejected: dict[int, str]) -> list[Any]:
        if not rejected:
            return []
        first = records[next(iter(rejected))]
        if not self.config.dead_letter_topic:
            raise ScorerError(
                f"{len(rejected)} malformed message(s) (first: {first.topic}[{first.partition}] "
                f"offset {first.offset}: {rejected[next(iter(rejected))]}) and no dead-letter "
                "topic is configured"
            )
        futures = []
        for position, reason in rejected.items():
            record = records[position]
            value, headers = dead_letter(
                record.value,
                reason,
                {
                    "source.topic": record.topic,
                    "source.partition": record.partition,
                    "source.offset": record.offset,
                    "source.timestamp": record.timestamp,
                    "service": "fraud-detection-score",
                },
            )
            futures.append(
                self._producer.send(
                    self.config.dead_letter_topic, value=value, key=record.key, headers=headers
                )
            )
        self.counters.dead_lettered += len(rejected)
        logger.warning(
            "Dead-lettered %d malformed message(s) to '%s' (first: %s[%d] offset %d: %s)",
            len(rejected),
            self.config.dead_letter_topic,
            first.topic,
            first.partition,
            first.offset,
            rejected[next(iter(rejected))],
        )
        return futures

    # ---------------------------------------------------------------- commits --

    def _settle(self, block: bool) -> None:
        """Commits the offsets of the oldest batches whose messages are all acknowledged.

        Raises:
            ScorerError: A prediction or dead letter was not acknowledged; nothing from
                that batch on is committed, so a restart scores it again.
        """
        if block and self._pending:
            try:
                self._producer.flush(timeout=60)
            except Exception as exc:  # noqa: BLE001 - either client's error: futures tell
                logger.error("Not every prediction was acknowledged before stopping: %r", exc)
            if self.shadow is not None:
                self.shadow.wait(timeout_s=60)
        while self._pending and all(f.is_done for f in self._pending[0].futures):
            batch = self._pending[0]
            failed = next((f for f in batch.futures if f.failed()), None)
            if failed is not None:
                self._commit(force=True)  # what is acknowledged so far
                raise ScorerError(
                    f"A message of a scored batch was not acknowledged ({failed.exception!r}); "
                    f"its offsets { {str(tp): o for tp, o in batch.offsets.items()} } are not "
                    "committed and will be scored again"
                )
            self._pending.popleft()
            self._acked.update(batch.offsets)
            self._dirty = True
            self.counters.committed_batches += 1
        self._commit(force=block)

    def _commit(self, force: bool) -> None:
        """Commits every acknowledged offset (all partitions, so a failed asynchronous
        commit is covered by the next one); at most every ``commit_interval_s``."""
        now = time.monotonic()
        if not self._dirty or (
            not force and now - self._last_commit < self.config.commit_interval_s
        ):
            return
        offsets = {
            tp: OffsetAndMetadata(offset, "", -1)
            for tp, offset in self._acked.items()
            if tp not in self._held
        }
        try:
            if force:
                self._consumer.commit(
                    offsets, timeout_ms=self.CONSUMER_DEFAULTS["request_timeout_ms"]
                )
            else:
                self._consumer.commit_async(offsets, callback=self._on_commit)
        except KafkaError as exc:
            logger.warning("Committing offsets failed, retrying with the next batch: %r", exc)
            return
        self._dirty = False
        self._last_commit = now

    def _on_commit(self, offsets: Any, response: Any) -> None:
        if isinstance(response, Exception):
            self._dirty = True
            logger.warning(
                "An asynchronous offset commit failed (%r); the next commit covers it", response
            )


def _content(records: TransactionRecords, i: int) -> tuple:
    """What identifies a transaction's content, to tell a redelivery from a reused id."""
    return (
        records.timestamp_ns[i],
        records.customer_id[i],
        records.terminal_id[i],
        records.amount[i],
    )


class TimeMerge:
    """Replayed transactions of several partitions, released in event-time order.

    kafka-python hands the replay up to 20,000 records of one partition at a time: days
    of event time. Fed as they come, a partition's old rows reach the state after
    another's newer ones: late for every key they share with it (terminals, categories),
    past the horizon if the gap is longer than it (then they are left out of the state),
    and held behind the newer rows for eviction. Here each partition's rows wait until
    every partition still replaying has rows as new: what is released is every
    buffered row up to the oldest of the open partitions' newest times; a partition
    done replaying holds nothing back.
    """

    def __init__(self, partitions: Any) -> None:
        self._open = set(partitions)
        self._buffered: dict[Any, list[TransactionRecords]] = {tp: [] for tp in self._open}
        self._newest: dict[Any, int] = {}
        self._build = False

    def add(self, tp: Any, records: TransactionRecords, build: bool = False) -> None:
        """Buffers a partition's decoded rows; ``build``: release them with features."""
        if len(records):
            self._buffered.setdefault(tp, []).append(records)
            self._newest[tp] = max(
                self._newest.get(tp, records.timestamp_ns[0]), *records.timestamp_ns
            )
            self._build |= build

    def done(self, tp: Any) -> None:
        """The partition has no more rows to replay."""
        self._open.discard(tp)

    def release(self) -> tuple[TransactionRecords, bool] | None:
        """The buffered rows that no open partition can precede any more (and whether
        to build their features), or ``None``."""
        if any(tp not in self._newest for tp in self._open):
            if self._open:
                return None  # an open partition has given nothing yet: it may be older
        bound = min((self._newest[tp] for tp in self._open), default=None)
        out: list[TransactionRecords] = []
        for tp, parts in self._buffered.items():
            keep: list[TransactionRecords] = []
            for part in parts:
                times = part.timestamp_ns
                rows = [i for i, t in enumerate(times) if bound is None or t <= bound]
                if len(rows) == len(times):
                    out.append(part)
                elif rows:
                    out.append(_take(part, rows))
                    keep.append(_take(part, [i for i, t in enumerate(times) if t > bound]))
                else:
                    keep.append(part)
            self._buffered[tp] = keep
            if not keep and tp in self._open:
                self._newest.pop(tp, None)  # wait for its next rows before releasing more
        if not out:
            return None
        build, self._build = self._build, False
        return _concat(out), build


def _concat(parts: list[TransactionRecords]) -> TransactionRecords:
    if len(parts) == 1:
        return parts[0]
    return TransactionRecords(
        **{
            f.name: [v for p in parts for v in getattr(p, f.name)]
            for f in fields(TransactionRecords)
        }
    )


def _take(records: TransactionRecords, rows: list[int]) -> TransactionRecords:
    return TransactionRecords(
        **{f.name: [getattr(records, f.name)[i] for i in rows] for f in fields(TransactionRecords)}
    )


def _slice(batch: FeatureBatch, rows: list[int]) -> FeatureBatch:
    index = np.asarray(rows, dtype=np.int64)
    return FeatureBatch(
        transaction_id=[batch.transaction_id[i] for i in rows],
        timestamp_ns=batch.timestamp_ns[index],
        customer_id=[batch.customer_id[i] for i in rows],
        terminal_id=[batch.terminal_id[i] for i in rows],
        amount=batch.amount[index],
        categorical={name: [values[i] for i in rows] for name, values in batch.categorical.items()},
        is_fraud=batch.is_fraud[index],
        numeric={name: values[index] for name, values in batch.numeric.items()},
    )


def _predict(model: Any, batch: FeatureBatch) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """(scores, decisions, {row: reason} of the rows that could not be scored).

    When the batch fails as a whole, each row is scored alone, so one row the model
    cannot handle costs only its own prediction.
    """
    try:
        scores, decisions = model.predict_batch(batch)
    except Exception as exc:  # noqa: BLE001 - any model error is about rows, not the stream
        logger.warning(
            "Scoring a batch of %d rows failed (%r): scoring them one by one", len(batch), exc
        )
        scores = np.full(len(batch), np.nan)
        decisions = np.zeros(len(batch), dtype=np.int64)
        failed: dict[int, str] = {}
        for i in range(len(batch)):
            try:
                one, decision = model.predict_batch(_slice(batch, [i]))
                scores[i], decisions[i] = one[0], decision[0]
            except Exception as row_exc:  # noqa: BLE001
                failed[i] = f"{SCORING_FAILED}: {type(row_exc).__name__}: {str(row_exc)[:200]}"
    else:
        scores = np.asarray(scores, dtype=np.float64)
        failed = {}
    for i in np.flatnonzero(~np.isfinite(scores)).tolist():
        failed.setdefault(i, f"{SCORING_FAILED}: non-finite score")
    return scores, np.asarray(decisions, dtype=np.int64), failed


class _Rebalance(ConsumerRebalanceListener):
    """The group's partition moves, handed to the scorer. kafka-python calls these on
    its IO thread, where nothing may block: they only record what changed."""

    def __init__(self, scorer: RealTimeScorer) -> None:
        self.scorer = scorer

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.scorer._on_revoked(set(revoked), commit=True)  # noqa: SLF001

    def on_partitions_lost(self, lost: Any) -> None:  # evicted: a commit would fail
        self.scorer._on_revoked(set(lost), commit=False)  # noqa: SLF001

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.scorer._on_assigned(set(assigned))  # noqa: SLF001
