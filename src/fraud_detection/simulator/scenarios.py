"""The seven fraud scenarios.

Three relabel genuine rows (Handbook scenarios 1-3: high amount, compromised terminal,
compromised customer); four inject new rows (account takeover, card testing, merchant
collusion, geographic anomaly). Each scenario draws from its own random stream, so
changing one leaves the others unchanged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .codes import (
    ACCOUNT_TAKEOVER,
    CARD_TESTING,
    COMPROMISED_CUSTOMER,
    COMPROMISED_TERMINAL,
    DAY_NS,
    ECOMMERCE,
    GENUINE,
    GEO_ANOMALY,
    HIGH_AMOUNT,
    HIGH_VALUE_ONLINE,
    HOUR_NS,
    MERCHANT_COLLUSION,
    MINUTE_NS,
    POS,
    PROFILE_CODE,
    SECOND_NS,
    transaction_frame,
)
from .params import SimulationParams
from .profiles import CustomerProfiles, TerminalProfiles, pick_abroad, pick_online
from .samplers import (
    active_windows,
    burst_offsets,
    daily_events,
    expand_bursts,
    sample_hours,
    stream,
)

ABROAD_ATM_NOTE = 20.0
ABROAD_ATM_NOTES = (5, 20)
GEO_ATM_SHARE = 0.4
TAKEOVER_MIN_BASE = 25.0
GEO_MIN_BASE = 30.0
MIN_CASHOUT_DELAY_NS = 2 * 60 * 10**9


def apply_compromised_terminals(
    tx: pd.DataFrame, terminals: TerminalProfiles, params: SimulationParams
) -> pd.DataFrame:
    """Scenario 2: genuine transactions at a compromised terminal become fraud.

    Args:
        tx: Internal transaction frame.
        terminals: Terminal profiles.
        params: Simulation parameters.

    Returns:
        A copy of ``tx`` with the affected rows relabelled.
    """
    cfg = params.scenarios.compromised_terminals
    rng = stream(params.seed, "compromised_terminals")
    pool = terminals.domestic_physical
    index, day = daily_events(len(pool), params.n_days, cfg.daily_rate, rng)
    window = active_windows(len(terminals.x), params.n_days, (pool[index], day), cfg.duration_days)
    out = tx.copy()
    day_of = out["ts"].to_numpy() // DAY_NS
    hit = window[out["terminal"].to_numpy(), day_of] & (out["scenario"].to_numpy() == GENUINE)
    out.loc[hit, "scenario"] = COMPROMISED_TERMINAL
    return out


def apply_compromised_customers(tx: pd.DataFrame, params: SimulationParams) -> pd.DataFrame:
    """Scenario 3: a share of a compromised customer's amounts are inflated, fraud.

    Args:
        tx: Internal transaction frame.
        params: Simulation parameters.

    Returns:
        A copy of ``tx`` with the affected rows relabelled and their amounts scaled.
    """
    cfg = params.scenarios.compromised_customers
    rng = stream(params.seed, "compromised_customers")
    events = daily_events(params.n_customers, params.n_days, cfg.daily_rate, rng)
    window = active_windows(params.n_customers, params.n_days, events, cfg.duration_days)
    out = tx.copy()
    in_window = window[out["customer"].to_numpy(), out["ts"].to_numpy() // DAY_NS]
    hit = (
        in_window
        & (out["scenario"].to_numpy() == GENUINE)
        & (rng.random(len(out)) < cfg.fraud_share)
    )
    out.loc[hit, "amount"] = np.round(out.loc[hit, "amount"] * cfg.amount_factor, 2)
    out.loc[hit, "scenario"] = COMPROMISED_CUSTOMER
    return out


def apply_high_amount(tx: pd.DataFrame, params: SimulationParams) -> pd.DataFrame:
    """Scenario 1: every genuine amount above the threshold is fraud.

    Args:
        tx: Internal transaction frame.
        params: Simulation parameters.

    Returns:
        A copy of ``tx`` with the affected rows relabelled.
    """
    out = tx.copy()
    threshold = params.scenarios.high_amount.threshold
    hit = (out["amount"] > threshold) & (out["scenario"] == GENUINE)
    out.loc[hit, "scenario"] = HIGH_AMOUNT
    return out


def inject_account_takeover(
    params: SimulationParams, customers: CustomerProfiles, terminals: TerminalProfiles
) -> pd.DataFrame:
    """Scenario 4: a taken-over account makes a night-time online burst.

    Victims are customers who rarely shop online, so the channel is new for them;
    the amounts are several times their usual spend.

    Args:
        params: Simulation parameters.
        customers: Customer profiles.
        terminals: Terminal profiles.

    Returns:
        New internal transaction rows.
    """
    cfg = params.scenarios.account_takeover
    rng = stream(params.seed, "account_takeover")
    _, day = daily_events(params.n_customers, params.n_days, cfg.daily_rate, rng)
    share = customers.ecommerce_share
    victims = np.flatnonzero(share <= np.median(share))
    victim = rng.choice(victims, len(day))
    hour = sample_hours(np.full(len(day), PROFILE_CODE["takeover"]), rng.random(len(day)))
    start = day * DAY_NS + hour * HOUR_NS + rng.integers(0, HOUR_NS, len(day))
    sizes = rng.integers(cfg.burst_size[0], cfg.burst_size[1] + 1, len(day))
    event, _ = expand_bursts(sizes)
    ts = start[event] + burst_offsets(sizes, cfg.gap_minutes * MINUTE_NS, rng)
    base = np.maximum(customers.mean_amount[victim[event]], TAKEOVER_MIN_BASE)
    amount = np.round(base * rng.uniform(*cfg.amount_factor, len(event)), 2)
    terminal = pick_online(terminals, len(event), rng, HIGH_VALUE_ONLINE)
    return transaction_frame(victim[event], terminal, ts, amount, ACCOUNT_TAKEOVER)


def inject_card_testing(params: SimulationParams, terminals: TerminalProfiles) -> pd.DataFrame:
    """Scenario 5: tiny test payments at one weak merchant, then a large cash-out.

    Args:
        params: Simulation parameters.
        terminals: Terminal profiles.

    Returns:
        New internal transaction rows.
    """
    cfg = params.scenarios.card_testing
    rng = stream(params.seed, "card_testing")
    card, day = daily_events(params.n_customers, params.n_days, cfg.daily_rate, rng)
    online = terminals.online
    weak = rng.choice(online, min(cfg.n_merchants, len(online)), replace=False)
    start = day * DAY_NS + rng.integers(0, DAY_NS, len(day))
    sizes = rng.integers(cfg.burst_size[0], cfg.burst_size[1] + 1, len(day))
    event, rank = expand_bursts(sizes)
    ts = start[event] + burst_offsets(sizes, cfg.gap_seconds * SECOND_NS, rng)
    amount = np.round(rng.uniform(*cfg.tiny_amount, len(event)), 2)
    merchant = rng.choice(weak, len(day))
    last = rank == sizes[event] - 1
    delay = rng.exponential(cfg.cashout_delay_minutes * MINUTE_NS, len(day))
    cashout_ts = ts[last] + np.maximum(delay, MIN_CASHOUT_DELAY_NS).astype(np.int64)
    cashout = np.round(rng.uniform(*cfg.cashout_amount, len(day)), 2)
    return pd.concat(
        [
            transaction_frame(card[event], merchant[event], ts, amount, CARD_TESTING),
            transaction_frame(
                card,
                pick_online(terminals, len(day), rng, HIGH_VALUE_ONLINE),
                cashout_ts,
                cashout,
                CARD_TESTING,
            ),
        ],
        ignore_index=True,
    )


def inject_merchant_collusion(
    params: SimulationParams, terminals: TerminalProfiles
) -> pd.DataFrame:
    """Scenario 6: rings of neighbouring merchants charge many stolen cards for weeks.

    Args:
        params: Simulation parameters.
        terminals: Terminal profiles.

    Returns:
        New internal transaction rows.
    """
    cfg = params.scenarios.merchant_collusion
    rng = stream(params.seed, "merchant_collusion")
    n_rings = round(cfg.rings_per_1000_terminals * params.n_terminals / 1000)
    n_rings = max(n_rings, 1) if cfg.rings_per_1000_terminals > 0 else 0
    pool = np.flatnonzero(~terminals.foreign & (terminals.channel == POS))
    empty = np.zeros(0, dtype=np.int64)
    frames = [transaction_frame(empty, empty, empty, empty, MERCHANT_COLLUSION)]
    for _ in range(n_rings):  # one iteration per ring
        centre = rng.choice(pool)
        distance = np.hypot(
            terminals.x[pool] - terminals.x[centre],
            terminals.y[pool] - terminals.y[centre],
        )
        ring = pool[np.argsort(distance, kind="stable")[: cfg.ring_size]]
        duration = min(
            int(rng.integers(cfg.duration_days[0], cfg.duration_days[1] + 1)),
            params.n_days,
        )
        first = int(rng.integers(0, params.n_days - duration + 1))
        counts = rng.poisson(cfg.tx_per_merchant_day, (len(ring), duration))
        merchant = np.repeat(np.repeat(ring, duration), counts.ravel())
        day = first + np.repeat(np.tile(np.arange(duration), len(ring)), counts.ravel())
        hour = sample_hours(np.full(len(day), PROFILE_CODE["weekday"]), rng.random(len(day)))
        ts = day * DAY_NS + hour * HOUR_NS + rng.integers(0, HOUR_NS, len(day))
        card = rng.integers(0, params.n_customers, len(day))
        amount = np.round(rng.uniform(*cfg.amount, len(day)), 2)
        frames.append(transaction_frame(card, merchant, ts, amount, MERCHANT_COLLUSION))
    return pd.concat(frames, ignore_index=True)


def inject_geo_anomaly(
    tx: pd.DataFrame,
    params: SimulationParams,
    customers: CustomerProfiles,
    terminals: TerminalProfiles,
) -> pd.DataFrame:
    """Scenario 7: a cloned card is used in a far country hours after a home purchase.

    Args:
        tx: Genuine internal transactions (anchors are taken from them).
        params: Simulation parameters.
        customers: Customer profiles.
        terminals: Terminal profiles.

    Returns:
        New internal transaction rows.
    """
    cfg = params.scenarios.geo_anomaly
    rng = stream(params.seed, "geo_anomaly")
    _, day = daily_events(params.n_customers, params.n_days, cfg.daily_rate, rng)
    terminal = tx["terminal"].to_numpy()
    home = np.flatnonzero(~terminals.foreign[terminal] & (terminals.channel[terminal] != ECOMMERCE))
    anchor = rng.choice(home, len(day)) if len(home) else np.zeros(0, dtype=np.int64)
    card = tx["customer"].to_numpy()[anchor]
    delay = rng.uniform(*cfg.delay_hours, len(anchor)) * HOUR_NS
    start = tx["ts"].to_numpy()[anchor] + delay.astype(np.int64)
    sizes = rng.integers(cfg.burst_size[0], cfg.burst_size[1] + 1, len(anchor))
    event, _ = expand_bursts(sizes)
    ts = start[event] + burst_offsets(sizes, cfg.gap_minutes * MINUTE_NS, rng)
    country = len(params.home_countries) + rng.integers(0, len(params.far_countries), len(anchor))
    atm = rng.random(len(event)) < GEO_ATM_SHARE
    merchant = pick_abroad(terminals, country[event], atm, rng)
    base = np.maximum(customers.mean_amount[card[event]], GEO_MIN_BASE)
    amount = base * rng.uniform(*cfg.amount_factor, len(event))
    notes = np.round(amount[atm] / ABROAD_ATM_NOTE).clip(*ABROAD_ATM_NOTES)
    amount[atm] = notes * ABROAD_ATM_NOTE
    return transaction_frame(card[event], merchant, ts, np.round(amount, 2), GEO_ANOMALY)
