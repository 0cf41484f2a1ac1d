"""Garbage-collector pauses of the scoring process, measured with ``gc.callbacks``.

The scorer's state is many small long-lived Python objects; a full collection walks all
of them while every batch waits. :class:`GcPauses` times each collection by generation,
so the status line shows whether the latency tail is the collector, and
:func:`freeze_state` moves what exists after the replay out of the collector's reach
(``gc.freeze``), as long-running Python services do after warm-up. The state keeps
growing after that (every live row is a few long-lived objects): :class:`Refreezer`
moves the survivors to the permanent generation every few seconds, so no full
collection ever walks the state (at 1,000 tx/s one did every ~25 s, ~160 ms each).
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

    def summary(self, frozen: bool = False) -> dict[str, Any]:
        """``{"gen0": {"count": .., "total_ms": .., "max_ms": ..}, .., "gen2": ..}``, and
        with ``frozen`` the objects frozen now (``"frozen": n``).

        ``gc.get_freeze_count()`` walks the whole permanent generation with the GIL held:
        about 70 ms at 700,000 frozen objects, a stall of every message in flight. The
        scorer's periodic status line leaves it out; its last one, at stop, has it.
        """
        out: dict[str, Any] = {
            **{
                f"gen{g}": {
                    "count": p.count,
                    "total_ms": round(p.total_ms, 1),
                    "max_ms": round(p.max_ms, 2),
                }
                for g, p in self.generations.items()
            },
        }
        if frozen:
            out["frozen"] = gc.get_freeze_count()
        return out


def freeze_state() -> int:
    """Collects once, then moves every object alive now to the permanent generation
    (``gc.freeze``), which later collections do not walk; returns how many."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info("Froze %d objects of the rebuilt state out of the garbage collector", frozen)
    return frozen


class Refreezer:
    """Freezes what survived the young collections every ``every_s`` seconds.

    ``gc.collect(1)`` first (gens 0 and 1 only: milliseconds) frees the cyclic garbage
    of recent batches, so that only live objects are frozen; the freeze itself is a list
    splice. The price: an object frozen here that later becomes cyclic garbage is never
    collected (refcounting still frees everything without cycles, as the evicted state
    rows are); the soak benchmark checks the scorer's memory stays flat.
    """

    def __init__(self, every_s: float = 5.0) -> None:
        self.every_s = every_s
        self.count = 0
        self._next = time.monotonic() + every_s

    def maybe_freeze(self, now: float | None = None) -> bool:
        """Freezes if ``every_s`` has passed since the last time; returns whether it did."""
        now = time.monotonic() if now is None else now
        if self.every_s <= 0 or now < self._next:
            return False
        gc.collect(1)
        gc.freeze()
        self.count += 1
        self._next = now + self.every_s
        return True
