"""Vectorised random draws shared by the genuine traffic and the fraud scenarios.

Each function draws for all rows (or events) at once; none loops over single
transactions or customers.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .codes import CATEGORY_AMOUNT_SCALE, CATEGORY_CODE, HOUR_PROFILES, HOURS_PER_DAY
from .params import MIN_AMOUNT, SimulationParams

SATURDAY = 5
PAYDAY_LAST_DAY = 5
ATM_NOTE = 10.0


@dataclass(frozen=True)
class Neighbourhood:
    """Groups of terminals (for example those near each customer), in CSR layout.

    Attributes:
        ptr: Group ``c`` holds ``idx[ptr[c]:ptr[c + 1]]``.
        idx: Terminal indices.
    """

    ptr: np.ndarray
    idx: np.ndarray


def stream(seed: int, name: str) -> np.random.Generator:
    """Independent random stream for one stage, so stages do not disturb each other.

    Args:
        seed: Simulation seed.
        name: Name of the stage.

    Returns:
        A generator seeded by ``seed`` and the stage name.
    """
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def pick_weighted(
    hood: Neighbourhood, weight: np.ndarray, owners: np.ndarray, u: np.ndarray
) -> np.ndarray:
    """For each row, pick a terminal of its owner's neighbourhood by popularity.

    Args:
        hood: Neighbourhoods in CSR layout (none empty).
        weight: Popularity of every terminal.
        owners: Neighbourhood index (customer or group) of each row.
        u: Uniform numbers in ``[0, 1)``, one per row.

    Returns:
        Terminal index of each row.
    """
    cum = np.cumsum(weight[hood.idx])
    base = np.concatenate(([0.0], cum))
    low, high = hood.ptr[owners], hood.ptr[owners + 1]
    target = base[low] + u * (base[high] - base[low])
    pos = np.clip(np.searchsorted(cum, target, side="right"), low, high - 1)
    return hood.idx[pos]


def expand_bursts(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Event index and rank within the event of every row of a set of bursts.

    Args:
        sizes: Number of rows of each event.

    Returns:
        ``(event, rank)`` arrays of length ``sizes.sum()``.
    """
    event = np.repeat(np.arange(len(sizes)), sizes)
    first = np.cumsum(sizes) - sizes
    return event, np.arange(len(event)) - first[event]


def burst_offsets(sizes: np.ndarray, mean_gap_ns: float, rng: np.random.Generator) -> np.ndarray:
    """Offsets from the first row of each burst, with exponential gaps.

    Args:
        sizes: Number of rows of each burst.
        mean_gap_ns: Mean gap between consecutive rows in nanoseconds.
        rng: Random generator.

    Returns:
        Offset in nanoseconds of every row (0 for the first row of a burst).
    """
    event, rank = expand_bursts(sizes)
    gaps = rng.exponential(mean_gap_ns, len(event))
    gaps[rank == 0] = 0.0
    total = np.cumsum(gaps)
    return (total - total[np.cumsum(sizes)[event] - sizes[event]]).astype(np.int64)


def daily_events(
    n_entities: int, n_days: int, rate: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Entity-days on which an event starts, each entity-day with probability ``rate``.

    Args:
        n_entities: Number of entities (customers or terminals).
        n_days: Number of days.
        rate: Daily probability per entity.
        rng: Random generator.

    Returns:
        ``(entity, day)`` arrays, ordered by day.
    """
    counts = rng.binomial(n_entities, rate, n_days)
    days = np.repeat(np.arange(n_days), counts)
    return rng.integers(0, n_entities, len(days)), days


def active_windows(
    n_entities: int, n_days: int, events: tuple[np.ndarray, np.ndarray], duration: int
) -> np.ndarray:
    """Entity x day matrix, true while an event started within ``duration`` days.

    Args:
        n_entities: Number of entities.
        n_days: Number of days.
        events: ``(entity, start_day)`` arrays.
        duration: Days an event lasts, its start day included.

    Returns:
        Boolean matrix of shape ``(n_entities, n_days)``.
    """
    entity, start = events
    diff = np.zeros((n_entities, n_days + 1), dtype=np.int32)
    np.add.at(diff, (entity, start), 1)
    np.add.at(diff, (entity, np.minimum(start + duration, n_days)), -1)
    return np.cumsum(diff, axis=1, dtype=np.int32)[:, :n_days] > 0


def sample_hours(profile: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Hour of day of each row from its hour profile.

    Args:
        profile: Code of the row's profile in ``HOUR_PROFILES``.
        u: Uniform numbers in ``[0, 1)``, one per row.

    Returns:
        Hour (0-23) of each row.
    """
    hours = np.zeros(len(u), dtype=np.int64)
    for code, weights in enumerate(HOUR_PROFILES.values()):
        rows = profile == code
        cdf = np.cumsum(weights) / np.sum(weights)
        hours[rows] = np.searchsorted(cdf, u[rows], side="right")
    return np.minimum(hours, HOURS_PER_DAY - 1)


def day_calendar(params: SimulationParams) -> tuple[np.ndarray, np.ndarray]:
    """Activity factor and weekend flag of every simulated day.

    Args:
        params: Simulation parameters.

    Returns:
        ``(factor, weekend)`` arrays of length ``n_days``.
    """
    days = pd.date_range(params.start_date, periods=params.n_days, freq="D")
    weekday = days.day_of_week.to_numpy()
    factor = np.asarray(params.day_of_week_factors)[weekday]
    payday = days.day.to_numpy() <= PAYDAY_LAST_DAY
    factor = factor * np.where(payday, 1.0 + params.payday_boost, 1.0)
    return factor, weekday >= SATURDAY


def draw_amounts(
    mean: np.ndarray,
    std: np.ndarray,
    category: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Genuine amounts: the Handbook's normal spend scaled by the merchant category.

    Negative draws are replaced by a uniform draw in ``[0, 2 * mean]``; ATM amounts
    are rounded to whole notes.

    Args:
        mean: Customer mean amount of each row.
        std: Customer standard deviation of each row.
        category: Merchant category code of each row.
        rng: Random generator.

    Returns:
        Amounts rounded to cents, at least ``MIN_AMOUNT``.
    """
    amount = rng.normal(mean, std)
    fallback = rng.uniform(0.0, 2.0 * mean)
    amount = np.where(amount > 0, amount, fallback)
    amount *= np.asarray(list(CATEGORY_AMOUNT_SCALE.values()))[category]
    atm = category == CATEGORY_CODE["atm"]
    amount[atm] = np.maximum(np.round(amount[atm] / ATM_NOTE), 2.0) * ATM_NOTE
    return np.maximum(np.round(amount, 2), MIN_AMOUNT)
