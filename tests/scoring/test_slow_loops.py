"""The scoring loop's slow-iteration log: phases timed, idle polls left out, the slowest
phase counted, garbage collection inside the iteration reported."""

from __future__ import annotations

import gc
import logging
import time

from fraud_detection.scoring.gc_pauses import GcPauses
from fraud_detection.scoring.slow_loops import SlowLoops


def _iteration(loops: SlowLoops, poll_s: float, work_s: float, polled: int) -> float:
    loops.start()
    time.sleep(poll_s)
    if polled:
        loops.lap("poll", polled)
    else:
        loops.lap("poll")
        loops.idle("poll")
    time.sleep(work_s)
    loops.lap("features", polled)
    return loops.end()


def test_a_slow_iteration_is_logged_with_its_phases_and_counted(caplog):
    loops = SlowLoops(threshold_ms=20)
    with caplog.at_level(logging.WARNING, logger="fraud_detection.scoring.slow_loops"):
        fast = _iteration(loops, 0.0, 0.001, polled=3)
        slow = _iteration(loops, 0.001, 0.03, polled=40)
    assert fast < 20 <= slow
    assert loops.count == 1 and loops.worst_ms >= 30
    assert loops.summary()["slowest_phase"] == {"features": 1}
    [record] = caplog.records
    message = record.getMessage()
    assert message.startswith("Slow scoring iteration: ")
    assert "features " in message and "[40]" in message and "poll " in message


def test_an_idle_poll_is_waiting_not_a_slow_iteration(caplog):
    loops = SlowLoops(threshold_ms=20)
    with caplog.at_level(logging.WARNING, logger="fraud_detection.scoring.slow_loops"):
        total = _iteration(loops, 0.05, 0.0, polled=0)
    assert total < 20 and loops.count == 0 and not caplog.records


def test_a_threshold_of_zero_logs_nothing(caplog):
    loops = SlowLoops(threshold_ms=0)
    with caplog.at_level(logging.WARNING, logger="fraud_detection.scoring.slow_loops"):
        _iteration(loops, 0.0, 0.01, polled=1)
    assert loops.count == 0 and not caplog.records


def test_garbage_collection_inside_the_iteration_is_reported(caplog):
    pauses = GcPauses().install()
    garbage = [[i] for i in range(200_000)]
    try:
        loops = SlowLoops(threshold_ms=0.001, gc_pauses=pauses)
        with caplog.at_level(logging.WARNING, logger="fraud_detection.scoring.slow_loops"):
            loops.start()
            gc.collect(2)
            loops.lap("freeze")
            loops.end()
    finally:
        pauses.remove()
        del garbage
    gc_ms = float(caplog.records[0].getMessage().split(", ")[1].split(" ms of it")[0])
    assert "CPU " in caplog.records[0].getMessage()
    assert gc_ms > 0
