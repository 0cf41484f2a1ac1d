"""A challenger scored in shadow, off the champion's path.

The scorer hands each batch it has scored (the feature rows, the champion's scores and
decisions) to a shadow. The shadow scores the same rows with the model behind
``models:/<name>@challenger`` and sends one message per transaction to
``fraud_predictions_shadow``, each with the champion's score and decision beside the
challenger's. Nothing acts on these predictions; monitoring compares the two models on
them.

Two forms, one protocol (``bind(producer)``, ``submit(...)`` -> an acknowledgement,
``refresh()`` -> counters, ``wait``):

- :class:`ShadowScorer` scores in the caller's thread, on the caller's producer. It is the
  shadow's logic, and what the child process below runs.
- :class:`ShadowProcess` runs a :class:`ShadowScorer` in a child process, at a lower CPU
  priority, with its own producer. The scorer's loop only queues the batch (a few
  microseconds), so the second model's prediction and its messages no longer lengthen
  the champion's iterations. When the child falls behind by ``max_queued_batches``, the
  scorer skips shadowing batches rather than wait (``shadow_skipped`` counts the rows):
  the champion's latency comes first, the shadow is evidence.

Either way a batch's offsets are committed only once its shadow messages are
acknowledged too (or it was skipped, or the shadow model failed on it: both counted),
so a restart does not lose shadow predictions. If the child process dies, the scorer
logs it once, stops shadowing and goes on scoring.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from fraud_detection.features.online import FeatureBatch
from fraud_detection.scoring.messages import iso_now

logger = logging.getLogger(__name__)

SHADOW_NICE = 10  # the child yields the CPU to the champion's process
SHADOW_LINGER_MS = 50  # the shadow's messages are evidence, not decisions: batch them


@dataclass
class ShadowCounters:
    scored: int = 0  # shadow messages sent
    failed: int = 0  # rows the shadow model could not score
    skipped: int = 0  # rows not shadowed because the shadow was behind or gone


class _Done:
    """An acknowledgement that is complete now (nothing was sent)."""

    is_done = True
    exception = None

    def failed(self) -> bool:
        return False


DONE = _Done()


class _AllOf:
    """Done when every one of ``futures`` is; failed when any failed."""

    def __init__(self, futures: list[Any]):
        self.futures = futures
        self.exception: Any = None

    @property
    def is_done(self) -> bool:
        return all(f.is_done for f in self.futures)

    def failed(self) -> bool:
        bad = next((f for f in self.futures if f.failed()), None)
        self.exception = bad.exception if bad is not None else None
        return bad is not None


class ShadowScorer:
    """Scores batches with the shadow model in the caller's thread.

    Args:
        watcher: Follows the shadow model (``ChampionWatcher(..., optional=True)``);
            while its alias points nowhere, nothing is shadowed.
        topic: Where the shadow's predictions go.
    """

    def __init__(self, watcher: Any, topic: str = "fraud_predictions_shadow"):
        self.watcher = watcher
        self.topic = topic
        self.counters = ShadowCounters()
        self._producer: Any = None
        self._warned = False

    def bind(self, producer: Any) -> None:
        """Sends on ``producer`` (the scorer's)."""
        self._producer = producer

    def submit(
        self,
        batch: FeatureBatch,
        scores: np.ndarray,
        decisions: np.ndarray,
        champion_name: str,
        champion_version: str,
    ) -> Any:
        """Scores ``batch`` and sends its shadow messages; returns their acknowledgement.

        A failure of the shadow model is counted and logged (once), never raised: the
        champion's stream must not depend on the challenger.
        """
        shadow = self.watcher.current_or_none
        if shadow is None or (shadow.name, shadow.version) == (champion_name, champion_version):
            return DONE
        try:
            s_scores, s_decisions = shadow.predict_batch(batch)
            s_scores = np.asarray(s_scores, dtype=np.float64)
        except Exception as exc:  # noqa: BLE001 - the shadow must never stop the champion
            if not self._warned:
                self._warned = True
                logger.warning(
                    "Shadow model %s v%s failed on a batch of %d rows (%r): not shadowed",
                    shadow.name,
                    shadow.version,
                    len(batch),
                    exc,
                )
            self.counters.failed += len(batch)
            return DONE
        scored_at = iso_now()
        send, topic = self._producer.send, self.topic
        finite = np.isfinite(s_scores)
        futures = []
        for i, (tid, customer) in enumerate(
            zip(batch.transaction_id, batch.customer_id, strict=True)
        ):
            if not finite[i]:
                continue
            message = {
                "transaction_id": tid,
                "customer_id": customer,
                "score": float(s_scores[i]),
                "decision": int(s_decisions[i]),
                "threshold": shadow.threshold,
                "model_name": shadow.name,
                "model_version": shadow.version,
                "champion_version": champion_version,
                "champion_score": float(scores[i]),
                "champion_decision": int(decisions[i]),
                "scored_at": scored_at,
            }
            futures.append(send(topic, value=orjson.dumps(message), key=customer.encode()))
        self.counters.scored += len(futures)
        self.counters.failed += int((~finite).sum())
        return _AllOf(futures)

    def refresh(self) -> ShadowCounters:
        return self.counters

    def wait(self, timeout_s: float) -> None:
        """Nothing queued: the caller's producer flush covers the messages."""


# ------------------------------------------------------------------ process --

# Shared with the child: the last batch number whose messages are acknowledged, the
# first that failed to send (0: none), and the child's counters.
_ACKED, _SEND_FAILED, _SCORED, _FAILED = range(4)


class _Acked:
    """Batch ``seq``'s shadow messages, sent by the child process."""

    def __init__(self, process: ShadowProcess, seq: int):
        self.process, self.seq = process, seq
        self.exception: Any = None

    @property
    def is_done(self) -> bool:
        return self.process.acknowledged(self.seq)

    def failed(self) -> bool:
        failed_from = self.process.state[_SEND_FAILED]
        if failed_from and failed_from <= self.seq:
            self.exception = RuntimeError(
                f"the shadow process could not send the predictions of batch {self.seq}"
            )
            return True
        return False


class ShadowProcess:
    """Runs a :class:`ShadowScorer` in a child process; see the module docstring.

    Args:
        model_uri: The shadow model, e.g. ``models:/<name>@challenger``.
        scorer_config: The scorer's ``ScorerConfig``: the child's producer connects
            the same way (servers, credentials, client) to ``shadow_topic``.
        tracking_uri: The MLflow registry to load the model from.
        required_columns: The scorer's feature columns (a model needing others is
            refused, as the champion is).
        check_interval_s: How often the child checks where the alias points.
        max_queued_batches: Batches queued for the child before the scorer skips.
        start_timeout_s: How long the child may take to load the model at start.
    """

    def __init__(
        self,
        model_uri: str,
        scorer_config: Any,
        *,
        tracking_uri: str,
        required_columns: list[str] | None = None,
        check_interval_s: float = 30.0,
        max_queued_batches: int = 256,
        start_timeout_s: float = 300.0,
        log_level: int = logging.INFO,
    ):
        self.model_uri = model_uri
        self.scorer_config = scorer_config
        self.tracking_uri = tracking_uri
        self.required_columns = required_columns
        self.check_interval_s = check_interval_s
        self.max_queued_batches = max_queued_batches
        self.start_timeout_s = start_timeout_s
        self.log_level = log_level
        self.counters = ShadowCounters()
        self._ctx = multiprocessing.get_context("spawn")  # no fork of the Kafka threads
        self.state: Any = self._ctx.RawArray("q", 4)
        self._queue: Any = None
        self._process: Any = None
        self._seq = 0
        self._gone = False
        self._next_alive_check = 0.0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def bind(self, producer: Any) -> None:
        """The scorer's producer is not used: the child has its own."""

    def start(self) -> None:
        """Starts the child and waits until it has loaded the model (or found the alias
        empty).

        Raises:
            RuntimeError: The child failed to start; its error, e.g. an unknown model or
                a model needing columns the scorer lacks.
        """
        self._queue = self._ctx.Queue(self.max_queued_batches)
        ready = self._ctx.Queue()
        self._process = self._ctx.Process(
            target=_child,
            name="fraud-detection-shadow",
            args=(self, self._queue, ready),
            daemon=True,
        )
        self._process.start()
        try:
            status = ready.get(timeout=self.start_timeout_s)
        except queue.Empty:
            self._process.kill()
            raise RuntimeError(
                f"The shadow process did not load {self.model_uri} within "
                f"{self.start_timeout_s:.0f} s"
            ) from None
        if status.startswith("error: "):
            self._process.join(timeout=10)
            raise RuntimeError(status.removeprefix("error: "))
        logger.info("Shadow process %d: %s", self._process.pid, status)

    def __getstate__(self) -> dict[str, Any]:  # what the child gets of it
        keep = ("model_uri", "scorer_config", "tracking_uri", "required_columns")
        return {
            **{k: self.__dict__[k] for k in keep},
            "check_interval_s": self.check_interval_s,
            "log_level": self.log_level,
            "state": self.state,
        }

    def acknowledged(self, seq: int) -> bool:
        return self._gone or self.state[_ACKED] >= seq or not self._alive()

    def _alive(self) -> bool:
        if self._gone:
            return False
        now = time.monotonic()
        if now < self._next_alive_check:
            return True
        self._next_alive_check = now + 1.0
        if self._process.is_alive():
            return True
        self._gone = True
        logger.error(
            "The shadow process %d exited (code %s): the champion goes on scoring, nothing "
            "more is shadowed until the scorer restarts",
            self._process.pid,
            self._process.exitcode,
        )
        return False

    def submit(
        self,
        batch: FeatureBatch,
        scores: np.ndarray,
        decisions: np.ndarray,
        champion_name: str,
        champion_version: str,
    ) -> Any:
        """Queues the batch for the child, without waiting; skips it when the queue is
        full or the child is gone."""
        if not self._alive():
            self.counters.skipped += len(batch)
            return DONE
        seq = self._seq + 1
        try:
            self._queue.put_nowait((seq, batch, scores, decisions, champion_name, champion_version))
        except queue.Full:
            self.counters.skipped += len(batch)
            # Committed once the batches queued before it are acknowledged (in order).
            return _Acked(self, self._seq)
        self._seq = seq
        return _Acked(self, seq)

    def refresh(self) -> ShadowCounters:
        """The child's counters, with the skips counted here."""
        self.counters.scored = self.state[_SCORED]
        self.counters.failed = self.state[_FAILED]
        return self.counters

    def wait(self, timeout_s: float) -> None:
        """Waits until the child has sent and had acknowledged everything queued."""
        deadline = time.monotonic() + timeout_s
        while not self.acknowledged(self._seq) and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self, timeout_s: float = 60.0) -> None:
        """Lets the child send what is queued, flush and exit."""
        if self._process is None:
            return
        if self._process.is_alive():
            try:
                self._queue.put(None, timeout=timeout_s)
            except queue.Full:
                pass
            self._process.join(timeout=timeout_s)
            if self._process.is_alive():
                self._process.kill()
        self.refresh()


def _child(spec: ShadowProcess, batches: Any, ready: Any) -> None:
    """The child process: loads and follows the model, scores what it is given."""
    import mlflow  # noqa: PLC0415 - the child's own imports

    from fraud_detection.scoring.champion import ChampionWatcher  # noqa: PLC0415
    from fraud_detection.scoring.service import RealTimeScorer, _producer_factory  # noqa: PLC0415

    logging.basicConfig(
        level=spec.log_level, format="%(asctime)s %(levelname)s shadow %(name)s: %(message)s"
    )
    try:
        os.nice(SHADOW_NICE)
    except OSError:  # pragma: no cover - not allowed here: same priority
        pass
    state = spec.state
    try:
        mlflow.set_tracking_uri(spec.tracking_uri)
        watcher = ChampionWatcher(
            spec.model_uri,
            check_interval_s=spec.check_interval_s,
            required_columns=spec.required_columns,
            optional=True,
        )
        if watcher.alias is None:
            watcher.load()  # a fixed version must exist; an alias may be set later
        else:
            watcher.check()
        producer = _producer_factory(spec.scorer_config)(
            client_id="fraud-detection-shadow",
            **{**RealTimeScorer.PRODUCER_DEFAULTS, "linger_ms": SHADOW_LINGER_MS},
        )
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails its start
        ready.put(f"error: Shadow model: {exc}")
        return
    current = watcher.current_or_none
    ready.put(
        f"serving {spec.model_uri}, version {current.version}"
        if current
        else f"{spec.model_uri} not set yet, picked up when its alias is"
    )
    watcher.start()
    scorer = ShadowScorer(watcher, spec.scorer_config.shadow_topic)
    scorer.bind(producer)
    in_flight: list[tuple[int, Any]] = []
    try:
        while True:
            try:
                item = batches.get(timeout=0.05)
            except queue.Empty:
                item = ()
            if item is None:
                break
            if item:
                seq, *args = item
                in_flight.append((seq, scorer.submit(*args)))
                state[_SCORED], state[_FAILED] = scorer.counters.scored, scorer.counters.failed
            while in_flight and in_flight[0][1].is_done:
                seq, ack = in_flight.pop(0)
                if ack.failed():
                    logger.error("Shadow predictions not acknowledged: %r", ack.exception)
                    state[_SEND_FAILED] = state[_SEND_FAILED] or seq
                state[_ACKED] = seq
        producer.flush(timeout=60)
        for seq, ack in in_flight:
            if not ack.is_done or ack.failed():
                state[_SEND_FAILED] = state[_SEND_FAILED] or seq
            state[_ACKED] = seq
    finally:
        watcher.stop()
        producer.close(timeout=10)
