"""Terminal and customer profiles: who shops where, how often and how much.

Customers and domestic terminals sit on a square map (Fraud Detection Handbook style);
a customer pays at the physical terminals within ``radius`` of home, online at its
favourite merchants, and abroad while travelling.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .codes import (
    ATM,
    CATEGORY_CODE,
    ECOMMERCE,
    ONLINE_CATEGORY_MIX,
    POS,
    POS_CATEGORY_MIX,
)
from .params import SimulationParams
from .samplers import Neighbourhood, expand_bursts, pick_weighted, stream

FOREIGN_ATM_SHARE = 0.15
ONLINE_HOME_SHARE = 0.8


@dataclass(frozen=True)
class TerminalProfiles:
    """Terminal attributes, one array entry per terminal.

    Attributes:
        x: Position on the map (NaN for online and foreign terminals).
        y: Position on the map (NaN for online and foreign terminals).
        country: Index into ``SimulationParams.countries``.
        category: Index into ``CATEGORIES``.
        channel: Index into ``CHANNELS``.
        weight: Relative popularity.
        foreign: Whether the terminal is abroad.
    """

    x: np.ndarray
    y: np.ndarray
    country: np.ndarray
    category: np.ndarray
    channel: np.ndarray
    weight: np.ndarray
    foreign: np.ndarray

    @property
    def domestic_physical(self) -> np.ndarray:
        """Indices of domestic point-of-sale terminals and ATMs."""
        return np.flatnonzero(~self.foreign & (self.channel != ECOMMERCE))

    @property
    def online(self) -> np.ndarray:
        """Indices of online merchants."""
        return np.flatnonzero(self.channel == ECOMMERCE)


@dataclass(frozen=True)
class CustomerProfiles:
    """Customer attributes, one array entry per customer.

    Attributes:
        x: Home position on the map.
        y: Home position on the map.
        country: Home country index into ``SimulationParams.countries``.
        mean_amount: Mean spend per transaction.
        std_amount: Standard deviation of the spend.
        tx_rate: Mean transactions per day.
        ecommerce_share: Probability that a transaction is online.
        atm_share: Probability that a transaction is a cash withdrawal.
        favourites: ``(n_customers, online_favourites)`` online merchant indices.
        pos: Point-of-sale terminals near home.
        atm: ATMs near home.
    """

    x: np.ndarray
    y: np.ndarray
    country: np.ndarray
    mean_amount: np.ndarray
    std_amount: np.ndarray
    tx_rate: np.ndarray
    ecommerce_share: np.ndarray
    atm_share: np.ndarray
    favourites: np.ndarray
    pos: Neighbourhood
    atm: Neighbourhood


def _draw_categories(mix: Mapping[str, float], size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw category codes from a ``{category: share}`` mix."""
    codes = np.array([CATEGORY_CODE[name] for name in mix], dtype=np.int8)
    shares = np.array(list(mix.values()))
    return rng.choice(codes, size=size, p=shares / shares.sum())


def _home_country(x: np.ndarray, params: SimulationParams) -> np.ndarray:
    """Country index of map positions: the home countries tile the map in strips."""
    n_home = len(params.home_countries)
    strip = np.floor(x / params.grid_size * n_home).astype(np.int16)
    return np.clip(strip, 0, n_home - 1)


def build_terminal_profiles(params: SimulationParams) -> TerminalProfiles:
    """Create domestic POS terminals, ATMs, online merchants and terminals abroad.

    Args:
        params: Simulation parameters.

    Returns:
        Terminal profiles in a shuffled order, so ids do not reveal the kind.
    """
    rng = stream(params.seed, "terminals")
    counts = params.terminal_counts()
    n, n_far = params.n_terminals, len(params.far_countries)
    n_dom = counts["pos"] + counts["atm"]
    channel = np.repeat(
        np.array([POS, ATM, ECOMMERCE, POS], dtype=np.int8),
        [counts["pos"], counts["atm"], counts["online"], counts["foreign"]],
    )
    foreign = np.arange(n) >= n - counts["foreign"]
    # Abroad: far countries in turn, the first terminal of each country an ATM.
    rank = np.arange(counts["foreign"])
    abroad_atm = (rank < n_far) | (rng.random(counts["foreign"]) < FOREIGN_ATM_SHARE)
    abroad_atm[n_far : 2 * n_far] = False
    channel[foreign] = np.where(abroad_atm, ATM, POS)
    category = np.full(n, CATEGORY_CODE["atm"], dtype=np.int8)
    is_pos = channel == POS
    category[is_pos] = _draw_categories(POS_CATEGORY_MIX, int(is_pos.sum()), rng)
    is_online = channel == ECOMMERCE
    category[is_online] = _draw_categories(ONLINE_CATEGORY_MIX, counts["online"], rng)
    x = np.full(n, np.nan)
    y = np.full(n, np.nan)
    x[:n_dom] = rng.uniform(0, params.grid_size, n_dom)
    y[:n_dom] = rng.uniform(0, params.grid_size, n_dom)
    country = np.zeros(n, dtype=np.int16)
    country[:n_dom] = _home_country(x[:n_dom], params)
    home_share = rng.random(counts["online"]) < ONLINE_HOME_SHARE
    country[is_online] = np.where(
        home_share,
        rng.integers(0, len(params.home_countries), counts["online"]),
        len(params.home_countries) + rng.integers(0, n_far, counts["online"]),
    )
    country[foreign] = len(params.home_countries) + rank % n_far
    weight = rng.lognormal(0.0, 0.5, n)
    weight[is_online] = rng.lognormal(0.0, 1.0, counts["online"])
    order = rng.permutation(n)
    return TerminalProfiles(
        x=x[order],
        y=y[order],
        country=country[order],
        category=category[order],
        channel=channel[order],
        weight=weight[order],
        foreign=foreign[order],
    )


def _nearest(home: np.ndarray, sites: np.ndarray) -> np.ndarray:
    """Index of the nearest site of every home (chunked to bound memory)."""
    chunk = max(1, 2_000_000 // max(1, len(sites)))
    nearest = np.zeros(len(home), dtype=np.int64)
    for start in range(0, len(home), chunk):  # one iteration per chunk of homes
        block = home[start : start + chunk]
        d2 = (block[:, None, 0] - sites[None, :, 0]) ** 2 + (
            block[:, None, 1] - sites[None, :, 1]
        ) ** 2
        nearest[start : start + len(block)] = d2.argmin(axis=1)
    return nearest


def terminals_within_radius(
    home: np.ndarray, sites: np.ndarray, site_ids: np.ndarray, radius: float
) -> Neighbourhood:
    """Terminals within ``radius`` of each home; the nearest one if none is.

    Sites are bucketed into square cells of side ``radius``, so only the 3x3 cells
    around a home are searched.

    Args:
        home: ``(n_customers, 2)`` home positions.
        sites: ``(n_sites, 2)`` terminal positions.
        site_ids: Terminal index of each site.
        radius: Neighbourhood radius.

    Returns:
        The neighbourhood of every customer in CSR layout, sorted by terminal index.
    """
    site_cell = np.floor(sites / radius).astype(np.int64) + 1
    home_cell = np.floor(home / radius).astype(np.int64) + 1
    width = int(max(site_cell.max(), home_cell.max())) + 2
    site_key = site_cell[:, 0] * width + site_cell[:, 1]
    order = np.argsort(site_key, kind="stable")
    sorted_key = site_key[order]
    owners, members = [], []
    for dx in (-1, 0, 1):  # the 3x3 neighbouring cells
        for dy in (-1, 0, 1):
            key = (home_cell[:, 0] + dx) * width + home_cell[:, 1] + dy
            low = np.searchsorted(sorted_key, key, side="left")
            count = np.searchsorted(sorted_key, key, side="right") - low
            owner, rank = expand_bursts(count)
            site = order[low[owner] + rank]
            d2 = ((home[owner] - sites[site]) ** 2).sum(axis=1)
            near = d2 <= radius**2
            owners.append(owner[near])
            members.append(site[near])
    owner = np.concatenate(owners)
    member = np.concatenate(members)
    lonely = np.setdiff1d(np.arange(len(home)), owner)
    owner = np.concatenate([owner, lonely])
    member = np.concatenate([member, _nearest(home[lonely], sites)])
    terminal = site_ids[member]
    pair = np.lexsort((terminal, owner))
    sizes = np.bincount(owner, minlength=len(home))
    return Neighbourhood(
        ptr=np.concatenate(([0], np.cumsum(sizes))), idx=terminal[pair].astype(np.int32)
    )


def build_customer_profiles(
    params: SimulationParams, terminals: TerminalProfiles
) -> CustomerProfiles:
    """Create customers with a home, spending habits, channels and nearby terminals.

    Args:
        params: Simulation parameters.
        terminals: Terminal profiles.

    Returns:
        Customer profiles.
    """
    rng = stream(params.seed, "customers")
    n = params.n_customers
    home = rng.uniform(0, params.grid_size, (n, 2))
    mean_amount = rng.uniform(*params.mean_amount, n)
    ecommerce_share = rng.beta(1.5, 5.0, n)
    atm_share = rng.beta(1.0, 12.0, n) * (1.0 - ecommerce_share)
    online = terminals.online
    popularity = terminals.weight[online] / terminals.weight[online].sum()
    favourites = rng.choice(online, size=(n, params.online_favourites), p=popularity)
    sites = np.column_stack([terminals.x, terminals.y])
    by_channel = {}
    for channel in (POS, ATM):
        ids = np.flatnonzero(~terminals.foreign & (terminals.channel == channel))
        by_channel[channel] = terminals_within_radius(home, sites[ids], ids, params.radius)
    return CustomerProfiles(
        x=home[:, 0],
        y=home[:, 1],
        country=_home_country(home[:, 0], params),
        mean_amount=mean_amount,
        std_amount=mean_amount / 2.0,
        tx_rate=rng.uniform(*params.tx_per_day, n),
        ecommerce_share=ecommerce_share,
        atm_share=atm_share,
        favourites=favourites.astype(np.int32),
        pos=by_channel[POS],
        atm=by_channel[ATM],
    )


def pick_online(
    terminals: TerminalProfiles,
    size: int,
    rng: np.random.Generator,
    categories: tuple[str, ...] | None = None,
) -> np.ndarray:
    """Online merchants drawn by popularity, optionally within some categories.

    Args:
        terminals: Terminal profiles.
        size: Number of draws.
        rng: Random generator.
        categories: Merchant categories to draw from; all online merchants when
            ``None`` or when none of them is in these categories.

    Returns:
        Terminal index of each draw.
    """
    online = terminals.online
    if categories is not None:
        codes = [CATEGORY_CODE[name] for name in categories]
        subset = online[np.isin(terminals.category[online], codes)]
        online = subset if len(subset) else online
    weight = terminals.weight[online]
    return rng.choice(online, size=size, p=weight / weight.sum())


def _abroad_hood(terminals: TerminalProfiles, n_countries: int) -> Neighbourhood:
    """Terminals abroad grouped by ``country * 2 + is_atm`` (CSR layout)."""
    ids = np.flatnonzero(terminals.foreign)
    group = terminals.country[ids].astype(np.int64) * 2 + (terminals.channel[ids] == ATM)
    order = np.argsort(group, kind="stable")
    sizes = np.bincount(group, minlength=2 * n_countries)
    return Neighbourhood(ptr=np.concatenate(([0], np.cumsum(sizes))), idx=ids[order])


def pick_abroad(
    terminals: TerminalProfiles,
    country: np.ndarray,
    atm: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Terminal abroad in ``country``, an ATM where ``atm`` is true, by popularity.

    Args:
        terminals: Terminal profiles.
        country: Country index of each row (a far country).
        atm: Whether each row is a cash withdrawal.
        rng: Random generator.

    Returns:
        Terminal index of each row.
    """
    hood = _abroad_hood(terminals, int(terminals.country.max()) + 1)
    return pick_weighted(
        hood, terminals.weight, country * 2 + atm.astype(np.int64), rng.random(len(atm))
    )
