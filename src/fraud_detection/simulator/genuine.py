"""Genuine traffic: seasonal daily counts, channels, nearby terminals and travel."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .codes import (
    ATM,
    DAY_NS,
    ECOMMERCE,
    GENUINE,
    HOUR_NS,
    POS,
    PROFILE_CODE,
    transaction_frame,
)
from .params import SimulationParams
from .profiles import CustomerProfiles, TerminalProfiles, pick_abroad, pick_online
from .samplers import (
    daily_events,
    day_calendar,
    draw_amounts,
    expand_bursts,
    pick_weighted,
    sample_hours,
    stream,
)


def travel_destinations(params: SimulationParams) -> np.ndarray:
    """Country each customer is travelling in, per day (-1 at home).

    Args:
        params: Simulation parameters.

    Returns:
        ``(n_customers, n_days)`` matrix of country indices.
    """
    rng = stream(params.seed, "travel")
    n_days = params.n_days
    customer, start = daily_events(params.n_customers, n_days, params.travel_daily_rate, rng)
    length = rng.integers(params.travel_days[0], params.travel_days[1] + 1, len(start))
    country = len(params.home_countries) + rng.integers(0, len(params.far_countries), len(start))
    trip, rank = expand_bursts(length)
    day = start[trip] + rank
    inside = day < n_days
    destination = np.full((params.n_customers, n_days), -1, dtype=np.int16)
    destination[customer[trip][inside], day[inside]] = country[trip][inside]
    return destination


def generate_genuine_transactions(
    params: SimulationParams, customers: CustomerProfiles, terminals: TerminalProfiles
) -> pd.DataFrame:
    """Genuine transactions with seasonality, channels, nearby terminals and travel.

    Args:
        params: Simulation parameters.
        customers: Customer profiles.
        terminals: Terminal profiles.

    Returns:
        Internal transaction frame (``scenario`` = genuine).
    """
    rng = stream(params.seed, "genuine")
    n_customers, n_days = params.n_customers, params.n_days
    factor, weekend = day_calendar(params)
    counts = rng.poisson(customers.tx_rate[:, None] * factor[None, :])
    customer = np.repeat(np.arange(n_customers), counts.sum(axis=1))
    day = np.repeat(np.tile(np.arange(n_days), n_customers), counts.ravel())
    n = len(day)
    u = rng.random(n)
    ecommerce = customers.ecommerce_share[customer]
    channel = np.where(
        u < ecommerce,
        ECOMMERCE,
        np.where(u < ecommerce + customers.atm_share[customer], ATM, POS),
    )
    abroad = travel_destinations(params)[customer, day]
    travelling = (abroad >= 0) & (channel != ECOMMERCE)
    terminal = np.zeros(n, dtype=np.int64)
    for code, hood in ((POS, customers.pos), (ATM, customers.atm)):
        rows = (channel == code) & ~travelling
        terminal[rows] = pick_weighted(
            hood, terminals.weight, customer[rows], rng.random(int(rows.sum()))
        )
    terminal[travelling] = pick_abroad(
        terminals, abroad[travelling].astype(np.int64), channel[travelling] == ATM, rng
    )
    online = channel == ECOMMERCE
    favourite = customers.favourites[
        customer[online], rng.integers(0, params.online_favourites, int(online.sum()))
    ]
    other = pick_online(terminals, int(online.sum()), rng)
    keep = rng.random(int(online.sum())) < params.favourite_online_share
    terminal[online] = np.where(keep, favourite, other)
    profile = np.where(
        online,
        PROFILE_CODE["ecommerce"],
        np.where(weekend[day], PROFILE_CODE["weekend"], PROFILE_CODE["weekday"]),
    )
    hour = sample_hours(profile, rng.random(n))
    ts = day * DAY_NS + hour * HOUR_NS + rng.integers(0, HOUR_NS, n)
    amount = draw_amounts(
        customers.mean_amount[customer],
        customers.std_amount[customer],
        terminals.category[terminal],
        rng,
    )
    return transaction_frame(customer, terminal, ts, amount, GENUINE)
