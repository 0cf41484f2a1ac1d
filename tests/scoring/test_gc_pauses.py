"""The scorer's garbage-collector instrumentation: every collection is timed by
generation while installed, and nothing after it is removed."""

from __future__ import annotations

import gc
import weakref

from fraud_detection.scoring.gc_pauses import GcPauses, Refreezer, freeze_state


def test_each_collection_is_timed_by_generation_while_installed():
    pauses = GcPauses().install()
    try:
        gc.collect(0)
        gc.collect(2)
        gc.collect(2)
    finally:
        pauses.remove()
    summary = pauses.summary()
    assert summary["gen2"]["count"] >= 2 and summary["gen0"]["count"] >= 1
    assert summary["gen2"]["max_ms"] > 0
    assert summary["gen2"]["total_ms"] >= summary["gen2"]["max_ms"]
    before = summary["gen2"]["count"]
    gc.collect(2)
    assert pauses.summary()["gen2"]["count"] == before  # removed: no longer counted


def test_freeze_moves_the_live_objects_out_of_the_collector():
    state = [{"customer": i, "window": [float(i)] * 3} for i in range(10_000)]
    try:
        frozen = freeze_state()
        assert frozen >= len(state) and gc.get_freeze_count() >= len(state)
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0


class _Node:
    def __init__(self):
        self.me = self  # a reference cycle: only the collector frees it


def test_refreezing_moves_what_grew_since_the_freeze_and_collects_young_cycles_first():
    pauses = GcPauses().install()
    refreezer = Refreezer(every_s=5.0)
    try:
        freeze_state()
        first = gc.get_freeze_count()
        grown = [{"customer": i, "window": [float(i)] * 3} for i in range(10_000)]
        garbage = _Node()
        freed = weakref.ref(garbage)
        del garbage  # unreachable now, alive until a collection
        assert freed() is not None
        assert not refreezer.maybe_freeze(now=refreezer._next - 1)  # not yet
        assert refreezer.maybe_freeze(now=refreezer._next)
        assert gc.get_freeze_count() >= first + len(grown)
        assert freed() is None  # collected before the freeze, not frozen with the rest
        # Frozen objects freed by reference counting leave the frozen generation, and
        # nothing is frozen meanwhile: the count read inside summary() lies between the
        # counts read just before and just after it (equal when nothing was freed).
        before = gc.get_freeze_count()
        reported = pauses.summary(frozen=True)["frozen"]
        assert before >= reported >= gc.get_freeze_count()
        assert "frozen" not in pauses.summary()  # the status line's: no walk of the generation
        assert refreezer.count == 1
    finally:
        pauses.remove()
        gc.unfreeze()


def test_refreezing_every_zero_seconds_is_off():
    assert not Refreezer(every_s=0).maybe_freeze(now=1e12)
