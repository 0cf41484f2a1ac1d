"""Where a slow iteration of the scoring loop spent its time.

Every transaction in flight waits for the iteration in progress, so one slow iteration
is the latency tail of all of them. :class:`SlowLoops` times the phases of each
iteration (``lap``) and logs, for an iteration slower than ``threshold_ms``, each
phase's milliseconds and how many messages it handled; the status line counts them.
An idle poll (one that returned nothing) is waiting, not work: it is left out. The line
also gives the CPU time of the loop's thread and of the process's other threads (the
Kafka clients' I/O threads) in that iteration: wall time far above the loop's own CPU is
waiting for the CPU or the GIL, not work.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from fraud_detection.scoring.gc_pauses import GcPauses

logger = logging.getLogger(__name__)


class SlowLoops:
    """Phase timings of the current iteration; a count and a log line per slow one."""

    def __init__(self, threshold_ms: float = 100.0, gc_pauses: GcPauses | None = None) -> None:
        self.threshold_ms = threshold_ms
        self.gc_pauses = gc_pauses
        self.count = 0
        self.worst_ms = 0.0
        self.by_phase: Counter[str] = Counter()  # the slowest phase of each slow iteration
        self._phases: dict[str, float] = {}
        self._sizes: dict[str, int] = {}
        self._gc_at_start = 0.0
        self._cpu_at_start = (0.0, 0.0)
        self._last = time.perf_counter()

    def _gc_ms(self) -> float:
        if self.gc_pauses is None:
            return 0.0
        return sum(p.total_ms for p in self.gc_pauses.generations.values())

    def start(self) -> None:
        self._phases = {}
        self._sizes = {}
        self._gc_at_start = self._gc_ms()
        self._cpu_at_start = (time.thread_time(), time.process_time())
        self._last = time.perf_counter()

    def lap(self, phase: str, size: int = 0) -> None:
        """Adds the time since the previous lap (or ``start``) to ``phase``."""
        now = time.perf_counter()
        self._phases[phase] = self._phases.get(phase, 0.0) + (now - self._last) * 1000.0
        self._last = now
        if size:
            self._sizes[phase] = self._sizes.get(phase, 0) + size

    def idle(self, phase: str) -> None:
        """Drops ``phase`` (a wait that returned nothing) from this iteration."""
        self._phases.pop(phase, None)

    def end(self) -> float:
        """Closes the iteration; logs it if slow. Returns its milliseconds."""
        total = sum(self._phases.values())
        if total < self.threshold_ms or self.threshold_ms <= 0:
            return total
        thread_ms = (time.thread_time() - self._cpu_at_start[0]) * 1000.0
        process_ms = (time.process_time() - self._cpu_at_start[1]) * 1000.0
        self.count += 1
        self.worst_ms = max(self.worst_ms, total)
        self.by_phase[max(self._phases, key=self._phases.__getitem__)] += 1
        logger.warning(
            "Slow scoring iteration: %.0f ms, %.1f ms of it garbage collection; CPU %.0f ms "
            "in this thread, %.0f ms in the process's other threads (%s)",
            total,
            self._gc_ms() - self._gc_at_start,
            thread_ms,
            process_ms - thread_ms,
            ", ".join(
                f"{phase} {ms:.1f} ms" + (f" [{n}]" if (n := self._sizes.get(phase)) else "")
                for phase, ms in sorted(self._phases.items(), key=lambda kv: -kv[1])
                if ms >= 0.05
            ),
        )
        return total

    def summary(self) -> dict[str, Any]:
        """``{"count": .., "worst_ms": .., "slowest_phase": {phase: count}}``."""
        return {
            "count": self.count,
            "worst_ms": round(self.worst_ms, 1),
            "slowest_phase": dict(self.by_phase.most_common()),
        }
