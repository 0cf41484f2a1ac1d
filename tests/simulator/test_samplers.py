"""Vectorised draws shared by the stages, checked on hand-sized inputs."""

from __future__ import annotations

import numpy as np

from fraud_detection.simulator.samplers import (
    Neighbourhood,
    active_windows,
    burst_offsets,
    daily_events,
    expand_bursts,
    pick_weighted,
    stream,
)


def test_streams_depend_on_the_seed_and_the_stage_name():
    first = stream(7, "genuine").random(5)
    np.testing.assert_array_equal(first, stream(7, "genuine").random(5))
    assert not np.array_equal(first, stream(7, "travel").random(5))
    assert not np.array_equal(first, stream(8, "genuine").random(5))


def test_expand_bursts_gives_event_and_rank_of_every_row():
    event, rank = expand_bursts(np.array([2, 0, 3]))
    np.testing.assert_array_equal(event, [0, 0, 2, 2, 2])
    np.testing.assert_array_equal(rank, [0, 1, 0, 1, 2])


def test_burst_offsets_start_at_zero_and_increase_within_a_burst():
    sizes = np.array([3, 1, 4])
    offsets = burst_offsets(sizes, 60e9, np.random.default_rng(0))
    event, rank = expand_bursts(sizes)
    assert (offsets[rank == 0] == 0).all()
    for burst in range(len(sizes)):
        assert (np.diff(offsets[event == burst]) >= 0).all()


def test_active_windows_cover_duration_days_from_the_start_and_stop_at_the_end():
    window = active_windows(2, 6, (np.array([0, 1]), np.array([1, 4])), duration=3)
    np.testing.assert_array_equal(window[0], [False, True, True, True, False, False])
    np.testing.assert_array_equal(window[1], [False, False, False, False, True, True])


def test_daily_events_are_ordered_by_day_and_in_range():
    entity, day = daily_events(50, 30, 0.05, np.random.default_rng(1))
    assert len(entity) == len(day) > 0
    assert (np.diff(day) >= 0).all()
    assert entity.min() >= 0 and entity.max() < 50


def test_pick_weighted_stays_in_the_owners_neighbourhood_and_follows_the_weights():
    hood = Neighbourhood(ptr=np.array([0, 2, 3]), idx=np.array([4, 7, 1]))
    weight = np.zeros(8)
    weight[[4, 7, 1]] = [1.0, 3.0, 1.0]
    owners = np.repeat([0, 1], 4000)
    picked = pick_weighted(hood, weight, owners, np.random.default_rng(2).random(len(owners)))
    assert set(picked[owners == 0]) == {4, 7}
    assert set(picked[owners == 1]) == {1}
    share_of_7 = (picked[owners == 0] == 7).mean()
    assert 0.7 < share_of_7 < 0.8
