"""The scorer's garbage-collector instrumentation: every collection is timed by
generation while installed, and nothing after it is removed."""

from __future__ import annotations

import gc

from fraud_detection.scoring.gc_pauses import GcPauses, freeze_state


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
