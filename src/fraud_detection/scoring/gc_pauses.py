"""Garbage-collector pauses of the scoring process, measured with ``gc.callbacks``.

The scorer's state is many small long-lived Python objects; a full collection walks all
of them while every batch waits. :class:`GcPauses` times each collection by generation,
so the status line shows whether the latency tail is the collector, and
:func:`freeze_state` moves what exists after the replay out of the collector's reach
(``gc.freeze``), as long-running Python services do after warm-up.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass
class GenerationPauses:
    """Collections of one generation: how many, their total and longest time."""

    count: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0

    def add(self, ms: float) -> None:
        self.count += 1
        self.total_ms += ms
        self.max_ms = max(self.max_ms, ms)


@dataclass
class GcPauses:
    """Times every collection of this process while installed (``install``/``remove``)."""

    generations: dict[int, GenerationPauses] = field(
        default_factory=lambda: {g: GenerationPauses() for g in range(3)}
    )
    _started: float | None = None

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            ms = (time.perf_counter() - self._started) * 1000.0
            self.generations[info["generation"]].add(ms)
            self._started = None

    def install(self) -> GcPauses:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)
        return self

    def remove(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def summary(self) -> dict[str, Any]:
        """``{"gen2": {"count": .., "total_ms": .., "max_ms": ..}, ...}``."""
        return {
            f"gen{g}": {
                "count": p.count,
                "total_ms": round(p.total_ms, 1),
                "max_ms": round(p.max_ms, 2),
            }
            for g, p in self.generations.items()
        }


def freeze_state() -> int:
    """Collects once, then moves every object alive now to the permanent generation
    (``gc.freeze``), which later collections do not walk; returns how many."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info("Froze %d objects of the rebuilt state out of the garbage collector", frozen)
    return frozen
