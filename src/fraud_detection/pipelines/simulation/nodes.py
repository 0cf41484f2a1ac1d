"""Seeded, vectorised simulator of card transactions with labelled fraud scenarios.

The genuine traffic follows the simulator of the Fraud Detection Handbook
(customers on a 100x100 grid who shop at terminals within a radius of home), extended
with merchant categories, channels, countries, daily/weekly/hourly seasonality and
travel. Seven fraud scenarios are injected on top; each is kept learnable from
history-based features (per-customer amount windows, per-terminal fraud risk with
delayed labels, time since the previous transaction, hour and channel).

Everything is vectorised over transactions and customers; the only Python loops run
over chunks of customers, hour profiles or collusion rings. Every stage draws from
its own random stream derived from the seed, so the output is a pure function of the
parameters.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import logging
import typing
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from fraud_detection import schema

logger = logging.getLogger(__name__)

DAY_NS = 86_400 * 10**9
HOUR_NS = 3_600 * 10**9
MINUTE_NS = 60 * 10**9
SECOND_NS = 10**9
DAYS_PER_WEEK = 7
HOURS_PER_DAY = 24
CURRENCY_CODE_LENGTH = 3
MIN_POS_TERMINALS = 10
SATURDAY = 5
PAYDAY_LAST_DAY = 5
MIN_AMOUNT = 0.01
ATM_NOTE = 10.0
ABROAD_ATM_NOTE = 20.0
ABROAD_ATM_NOTES = (5, 20)
FOREIGN_ATM_SHARE = 0.15
ONLINE_HOME_SHARE = 0.8
GEO_ATM_SHARE = 0.4
TAKEOVER_MIN_BASE = 25.0
GEO_MIN_BASE = 30.0
MIN_CASHOUT_DELAY_NS = 2 * 60 * 10**9

SCENARIO_COLUMN = "fraud_scenario"
OUTPUT_COLUMNS: tuple[str, ...] = (*schema.COLUMN_NAMES, SCENARIO_COLUMN)

CHANNELS: tuple[str, ...] = ("pos", "ecommerce", "atm")
POS, ECOMMERCE, ATM = 0, 1, 2

SCENARIOS: tuple[str, ...] = (
    "genuine",
    "high_amount",
    "compromised_terminal",
    "compromised_customer",
    "account_takeover",
    "card_testing",
    "merchant_collusion",
    "geo_anomaly",
)
(
    GENUINE,
    HIGH_AMOUNT,
    COMPROMISED_TERMINAL,
    COMPROMISED_CUSTOMER,
    ACCOUNT_TAKEOVER,
    CARD_TESTING,
    MERCHANT_COLLUSION,
    GEO_ANOMALY,
) = range(len(SCENARIOS))

# Merchant category -> amount scale relative to the customer's mean spend.
CATEGORY_AMOUNT_SCALE: dict[str, float] = {
    "grocery": 1.0,
    "restaurants": 0.8,
    "fuel": 1.0,
    "clothing": 1.1,
    "pharmacy": 0.5,
    "entertainment": 0.7,
    "electronics": 1.25,
    "jewelry": 1.3,
    "travel": 1.25,
    "online_retail": 1.0,
    "atm": 1.1,
}
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_AMOUNT_SCALE)
_CATEGORY_CODE = {name: code for code, name in enumerate(CATEGORIES)}
# Share of each category among physical point-of-sale and online terminals.
POS_CATEGORY_MIX: dict[str, float] = {
    "grocery": 0.30,
    "restaurants": 0.22,
    "fuel": 0.12,
    "clothing": 0.10,
    "pharmacy": 0.07,
    "entertainment": 0.08,
    "electronics": 0.05,
    "jewelry": 0.02,
    "travel": 0.04,
}
ONLINE_CATEGORY_MIX: dict[str, float] = {
    "online_retail": 0.55,
    "electronics": 0.15,
    "travel": 0.12,
    "entertainment": 0.18,
}
HIGH_VALUE_ONLINE: tuple[str, ...] = ("online_retail", "electronics", "travel")

# Relative activity per hour of day (index 0 = 00:00-00:59).
HOUR_PROFILES: dict[str, tuple[float, ...]] = {
    "weekday": (
        0.3, 0.2, 0.15, 0.1, 0.1, 0.2, 0.6, 1.5, 2.5, 3.0, 3.2, 3.8,
        4.5, 4.0, 3.4, 3.3, 3.8, 4.6, 5.0, 4.2, 3.0, 2.0, 1.2, 0.6,
    ),
    "weekend": (
        0.6, 0.4, 0.3, 0.2, 0.1, 0.1, 0.3, 0.7, 1.5, 2.8, 4.0, 4.6,
        4.8, 4.6, 4.4, 4.2, 4.2, 4.3, 4.3, 4.0, 3.2, 2.4, 1.6, 1.0,
    ),
    "ecommerce": (
        0.8, 0.5, 0.3, 0.2, 0.2, 0.3, 0.6, 1.2, 1.8, 2.2, 2.5, 2.7,
        3.0, 2.8, 2.6, 2.6, 2.8, 3.2, 3.8, 4.4, 4.8, 4.6, 3.4, 1.8,
    ),
    "takeover": (
        6.0, 7.0, 7.0, 6.5, 5.5, 4.0, 1.5, 0.5, 0.3, 0.3, 0.3, 0.3,
        0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.5, 0.8, 1.5, 3.0, 4.5,
    ),
}  # fmt: skip
_PROFILE_CODE = {name: code for code, name in enumerate(HOUR_PROFILES)}


# --------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------


class SimulationParameterError(ValueError):
    """A simulation parameter is unknown or has a bad value.

    Attributes:
        key: Dotted name of the offending parameter, e.g. ``simulation.n_days``.
        reason: What is wrong with it.
    """

    def __init__(self, key: str, reason: str) -> None:
        """Build the error.

        Args:
            key: Dotted name of the offending parameter.
            reason: What is wrong with it.
        """
        super().__init__(f"Invalid simulation parameter '{key}': {reason}")
        self.key = key
        self.reason = reason


def _require(condition: bool, key: str, reason: str) -> None:
    """Raise ``SimulationParameterError`` for ``key`` unless ``condition`` holds."""
    if not condition:
        raise SimulationParameterError(key, reason)


def _check_rate(key: str, value: float) -> None:
    """Check that ``value`` is a probability."""
    _require(0.0 <= value <= 1.0, key, f"must be in [0, 1], got {value}")


def _check_positive(key: str, value: float) -> None:
    """Check that ``value`` is strictly positive."""
    _require(value > 0, key, f"must be > 0, got {value}")


def _check_range(key: str, value: tuple[float, float], minimum: float) -> None:
    """Check that ``value`` is an ordered ``[low, high]`` pair above ``minimum``."""
    low, high = value
    _require(
        minimum <= low <= high, key, f"needs {minimum} <= low <= high, got {value}"
    )


class _ParameterModel:
    """Mixin that builds a frozen dataclass from a plain mapping, strictly."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str = "simulation") -> Any:
        """Build the model from a mapping (e.g. a Kedro ``params:`` entry).

        Args:
            data: Parameter mapping; missing keys take the documented defaults.
            path: Dotted name of ``data`` used in error messages.

        Returns:
            The validated, immutable parameter model.

        Raises:
            SimulationParameterError: (a ``ValueError``) naming the unknown or bad key.
        """
        _require(isinstance(data, Mapping), path, "expected a mapping")
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        for key in data:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise SimulationParameterError(
                    f"{path}.{key}", f"unknown parameter{hint} (allowed: {names})"
                )
        hints = typing.get_type_hints(cls)
        values = {
            key: _coerce(value, hints[key], f"{path}.{key}")
            for key, value in data.items()
        }
        try:
            return cls(**values)
        except SimulationParameterError as err:
            raise SimulationParameterError(f"{path}.{err.key}", err.reason) from None


def _coerce(value: Any, hint: Any, key: str) -> Any:  # noqa: PLR0911
    """Convert a YAML value to the annotated field type, or raise naming ``key``."""
    if isinstance(hint, type) and issubclass(hint, _ParameterModel):
        return hint.from_dict(value, key)
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        _require(
            isinstance(value, list | tuple), key, f"expected a list, got {value!r}"
        )
        if args[-1] is Ellipsis:
            return tuple(_coerce(item, args[0], key) for item in value)
        _require(len(value) == len(args), key, f"expected {len(args)} values")
        return tuple(_coerce(item, arg, key) for item, arg in zip(value, args))
    if hint is bool:
        _require(isinstance(value, bool), key, f"expected true/false, got {value!r}")
        return value
    if hint is int:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        _require(ok and float(value).is_integer(), key, f"expected int, got {value!r}")
        return int(value)
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        _require(ok, key, f"expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if isinstance(value, dt.date):
            return value.isoformat()
        _require(isinstance(value, str), key, f"expected a string, got {value!r}")
        return value
    raise TypeError(f"Unsupported parameter type {hint!r} for '{key}'")


@dataclass(frozen=True)
class HighAmountParams(_ParameterModel):
    """Scenario 1 (Handbook): every genuine amount above ``threshold`` is fraud."""

    threshold: float = 220.0

    def __post_init__(self) -> None:
        """Validate the values."""
        _check_positive("threshold", self.threshold)


@dataclass(frozen=True)
class CompromisedTerminalParams(_ParameterModel):
    """Scenario 2 (Handbook): compromised terminals.

    Attributes:
        daily_rate: Probability that a domestic physical terminal gets compromised on
            a given day.
        duration_days: All its transactions in the next ``duration_days`` are fraud.
    """

    daily_rate: float = 7.0e-5
    duration_days: int = 28

    def __post_init__(self) -> None:
        """Validate the values."""
        _check_rate("daily_rate", self.daily_rate)
        _check_positive("duration_days", self.duration_days)


@dataclass(frozen=True)
class CompromisedCustomerParams(_ParameterModel):
    """Scenario 3 (Handbook): compromised customers.

    Attributes:
        daily_rate: Probability that a customer gets compromised on a given day.
        duration_days: Length of the fraudulent period.
        fraud_share: Share of the customer's transactions in the period that are
            fraud.
        amount_factor: Multiplier applied to the fraudulent amounts.
    """

    daily_rate: float = 3.5e-4
    duration_days: int = 14
    fraud_share: float = 1.0 / 3.0
    amount_factor: float = 5.0

    def __post_init__(self) -> None:
        """Validate the values."""
        _check_rate("daily_rate", self.daily_rate)
        _check_positive("duration_days", self.duration_days)
        _check_rate("fraud_share", self.fraud_share)
        _check_positive("amount_factor", self.amount_factor)


@dataclass(frozen=True)
class AccountTakeoverParams(_ParameterModel):
    """Scenario 4: account takeover, a night-time e-commerce burst of large amounts.

    Attributes:
        daily_rate: Probability that a customer's account is taken over on a day.
        burst_size: ``[min, max]`` number of transactions in the burst.
        gap_minutes: Mean gap between transactions of the burst.
        amount_factor: ``[min, max]`` multiplier of the customer's mean amount.
    """

    daily_rate: float = 2.5e-4
    burst_size: tuple[int, int] = (3, 8)
    gap_minutes: float = 8.0
    amount_factor: tuple[float, float] = (3.0, 8.0)

    def __post_init__(self) -> None:
        """Validate the values."""
        _check_rate("daily_rate", self.daily_rate)
        _check_range("burst_size", self.burst_size, 1)
        _check_positive("gap_minutes", self.gap_minutes)
        _check_range("amount_factor", self.amount_factor, 0.0)


@dataclass(frozen=True)
class CardTestingParams(_ParameterModel):
    """Scenario 5: card testing, many tiny amounts at one merchant, then a cash-out.

    Attributes:
        daily_rate: Probability that a card is tested on a given day.
        n_merchants: Number of weakly protected online merchants used for testing.
        burst_size: ``[min, max]`` number of tiny test transactions.
        gap_seconds: Mean gap between test transactions.
        tiny_amount: ``[min, max]`` amount of a test transaction.
        cashout_delay_minutes: Mean delay of the large transaction after the burst.
        cashout_amount: ``[min, max]`` amount of the large transaction.
    """

    daily_rate: float = 1.5e-4
    n_merchants: int = 5
    burst_size: tuple[int, int] = (5, 15)
    gap_seconds: float = 25.0
    tiny_amount: tuple[float, float] = (0.5, 2.0)
    cashout_delay_minutes: float = 30.0
    cashout_amount: tuple[float, float] = (150.0, 600.0)

    def __post_init__(self) -> None:
        """Validate the values."""
        _check_rate("daily_rate", self.daily_rate)
        _check_positive("n_merchants", self.n_merchants)
        _check_range("burst_size", self.burst_size, 1)
        _check_positive("gap_seconds", self.gap_seconds)
        _check_range("tiny_amount", self.tiny_amount, MIN_AMOUNT)
        _check_positive("cashout_delay_minutes", self.cashout_delay_minutes)
        _check_range("cashout_amount", self.cashout_amount, MIN_AMOUNT)


@dataclass(frozen=True)
class MerchantCollusionParams(_ParameterModel):
    """Scenario 6: rings of colluding merchants charging many stolen cards.

    Attributes:
        rings_per_1000_terminals: Number of rings per 1,000 terminals (rounded; at
            least one when positive).
        ring_size: Merchants (neighbouring point-of-sale terminals) per ring.
        duration_days: ``[min, max]`` active period of a ring.
        tx_per_merchant_day: Mean fraudulent transactions per merchant and day.
        amount: ``[min, max]`` amount of a fraudulent transaction.
    """

    rings_per_1000_terminals: float = 0.5
    ring_size: int = 4
    duration_days: tuple[int, int] = (21, 42)
    tx_per_merchant_day: float = 1.5
    amount: tuple[float, float] = (40.0, 300.0)

    def __post_init__(self) -> None:
        """Validate the values."""
        _require(
            self.rings_per_1000_terminals >= 0,
            "rings_per_1000_terminals",
            f"must be >= 0, got {self.rings_per_1000_terminals}",
        )
        _check_positive("ring_size", self.ring_size)
        _check_range("duration_days", self.duration_days, 1)
        _check_positive("tx_per_merchant_day", self.tx_per_merchant_day)
        _check_range("amount", self.amount, MIN_AMOUNT)


@dataclass(frozen=True)
class GeoAnomalyParams(_ParameterModel):
    """Scenario 7: cloned card used in a far country hours after a home transaction.

    Attributes:
        daily_rate: Probability that a card is cloned on a given day.
        burst_size: ``[min, max]`` number of foreign transactions.
        delay_hours: ``[min, max]`` delay after the home transaction.
        gap_minutes: Mean gap between the foreign transactions.
        amount_factor: ``[min, max]`` multiplier of the customer's mean amount.
    """

    daily_rate: float = 6.0e-4
    burst_size: tuple[int, int] = (1, 3)
    delay_hours: tuple[float, float] = (0.5, 6.0)
    gap_minutes: float = 20.0
    amount_factor: tuple[float, float] = (2.0, 5.0)

    def __post_init__(self) -> None:
        """Validate the values."""
        _check_rate("daily_rate", self.daily_rate)
        _check_range("burst_size", self.burst_size, 1)
        _check_range("delay_hours", self.delay_hours, 0.0)
        _check_positive("gap_minutes", self.gap_minutes)
        _check_range("amount_factor", self.amount_factor, 0.0)


@dataclass(frozen=True)
class ScenarioParams(_ParameterModel):
    """Parameters of the seven fraud scenarios."""

    high_amount: HighAmountParams = field(default_factory=HighAmountParams)
    compromised_terminals: CompromisedTerminalParams = field(
        default_factory=CompromisedTerminalParams
    )
    compromised_customers: CompromisedCustomerParams = field(
        default_factory=CompromisedCustomerParams
    )
    account_takeover: AccountTakeoverParams = field(
        default_factory=AccountTakeoverParams
    )
    card_testing: CardTestingParams = field(default_factory=CardTestingParams)
    merchant_collusion: MerchantCollusionParams = field(
        default_factory=MerchantCollusionParams
    )
    geo_anomaly: GeoAnomalyParams = field(default_factory=GeoAnomalyParams)


@dataclass(frozen=True)
class SimulationParams(_ParameterModel):
    """All parameters of the simulator; see ``conf/base/parameters_simulation.yml``.

    Attributes:
        start_date: First simulated day (ISO date).
        n_days: Number of simulated days.
        n_customers: Number of customers (cards).
        n_terminals: Total number of terminals (point of sale, ATM, online, abroad).
        seed: Seed of every random stream.
        grid_size: Side of the square map holding customers and domestic terminals.
        radius: Customers use the physical terminals within this distance of home.
        home_countries: Countries tiling the map in vertical strips.
        far_countries: Countries abroad (travel and geographic anomalies).
        currency: Settlement currency of every amount.
        online_terminal_share: Share of terminals that are online merchants.
        atm_terminal_share: Share of terminals that are domestic ATMs.
        foreign_terminal_share: Share of terminals located abroad.
        online_favourites: Number of favourite online merchants per customer.
        favourite_online_share: Share of e-commerce spending at the favourites.
        tx_per_day: ``[min, max]`` of the customers' mean transactions per day.
        mean_amount: ``[min, max]`` of the customers' mean amount (std = mean / 2).
        day_of_week_factors: Activity multiplier for Monday .. Sunday.
        payday_boost: Extra activity on days 1-5 of a month.
        travel_daily_rate: Probability that a customer starts a trip on a day.
        travel_days: ``[min, max]`` trip length.
        scenarios: Fraud scenario parameters.
    """

    start_date: str = "2024-01-01"
    n_days: int = 90
    n_customers: int = 1500
    n_terminals: int = 3000
    seed: int = 42
    grid_size: float = 100.0
    radius: float = 5.0
    home_countries: tuple[str, ...] = ("FR", "BE", "DE", "AT")
    far_countries: tuple[str, ...] = ("US", "BR", "TH", "NG", "CN", "MX")
    currency: str = "EUR"
    online_terminal_share: float = 0.08
    atm_terminal_share: float = 0.05
    foreign_terminal_share: float = 0.05
    online_favourites: int = 5
    favourite_online_share: float = 0.85
    tx_per_day: tuple[float, float] = (0.2, 4.0)
    mean_amount: tuple[float, float] = (5.0, 100.0)
    day_of_week_factors: tuple[float, ...] = (0.95, 0.95, 1.0, 1.0, 1.1, 1.2, 0.8)
    payday_boost: float = 0.1
    travel_daily_rate: float = 1.0e-3
    travel_days: tuple[int, int] = (3, 10)
    scenarios: ScenarioParams = field(default_factory=ScenarioParams)

    _SHARES: ClassVar[tuple[str, ...]] = (
        "online_terminal_share",
        "atm_terminal_share",
        "foreign_terminal_share",
        "favourite_online_share",
        "travel_daily_rate",
    )

    def __post_init__(self) -> None:
        """Validate the values and their combinations."""
        try:
            pd.Timestamp(self.start_date)
        except ValueError:
            raise SimulationParameterError(
                "start_date", f"not a date: {self.start_date!r}"
            ) from None
        for key in ("n_days", "n_customers", "n_terminals", "grid_size", "radius"):
            _check_positive(key, getattr(self, key))
        _require(self.seed >= 0, "seed", f"must be >= 0, got {self.seed}")
        for key in self._SHARES:
            _check_rate(key, getattr(self, key))
        _check_positive("online_favourites", self.online_favourites)
        self._check_countries()
        _check_range("tx_per_day", self.tx_per_day, 0.0)
        _check_range("mean_amount", self.mean_amount, MIN_AMOUNT)
        _require(
            len(self.day_of_week_factors) == DAYS_PER_WEEK
            and min(self.day_of_week_factors) > 0,
            "day_of_week_factors",
            "needs 7 positive factors (Monday .. Sunday)",
        )
        _require(self.payday_boost >= 0, "payday_boost", "must be >= 0")
        _check_range("travel_days", self.travel_days, 1)
        _require(
            self.terminal_counts()["pos"] >= MIN_POS_TERMINALS,
            "n_terminals",
            f"too small for the terminal shares: {self.terminal_counts()}",
        )

    def _check_countries(self) -> None:
        """Validate the country lists and the currency."""
        for key in ("home_countries", "far_countries"):
            _require(len(getattr(self, key)) > 0, key, "needs at least one country")
        overlap = set(self.home_countries) & set(self.far_countries)
        _require(not overlap, "far_countries", f"overlaps home_countries: {overlap}")
        _require(
            len(self.currency) == CURRENCY_CODE_LENGTH,
            "currency",
            f"not an ISO 4217 code: {self.currency!r}",
        )

    @property
    def countries(self) -> tuple[str, ...]:
        """Home countries followed by far countries (index = country code)."""
        return self.home_countries + self.far_countries

    def terminal_counts(self) -> dict[str, int]:
        """Number of terminals of each kind.

        Returns:
            Counts of ``online``, ``atm``, ``foreign`` and ``pos`` terminals; each
            far country gets at least one ATM and one point of sale abroad.
        """
        n = self.n_terminals
        online = max(1, round(self.online_terminal_share * n))
        atm = max(1, round(self.atm_terminal_share * n))
        foreign = max(
            2 * len(self.far_countries), round(self.foreign_terminal_share * n)
        )
        return {
            "online": online,
            "atm": atm,
            "foreign": foreign,
            "pos": n - online - atm - foreign,
        }


# --------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------


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
class Neighbourhood:
    """Terminals of one channel near each customer, in CSR layout.

    Attributes:
        ptr: Customer ``c`` uses ``idx[ptr[c]:ptr[c + 1]]``.
        idx: Terminal indices.
    """

    ptr: np.ndarray
    idx: np.ndarray


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


def stream(seed: int, name: str) -> np.random.Generator:
    """Independent random stream for one stage, so stages do not disturb each other.

    Args:
        seed: Simulation seed.
        name: Name of the stage.

    Returns:
        A generator seeded by ``seed`` and the stage name.
    """
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _draw_categories(
    mix: Mapping[str, float], size: int, rng: np.random.Generator
) -> np.ndarray:
    """Draw category codes from a ``{category: share}`` mix."""
    codes = np.array([_CATEGORY_CODE[name] for name in mix], dtype=np.int8)
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
    category = np.full(n, _CATEGORY_CODE["atm"], dtype=np.int8)
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
        by_channel[channel] = terminals_within_radius(
            home, sites[ids], ids, params.radius
        )
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


# --------------------------------------------------------------------------------------
# Vectorised helpers
# --------------------------------------------------------------------------------------


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


def burst_offsets(
    sizes: np.ndarray, mean_gap_ns: float, rng: np.random.Generator
) -> np.ndarray:
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
    atm = category == _CATEGORY_CODE["atm"]
    amount[atm] = np.maximum(np.round(amount[atm] / ATM_NOTE), 2.0) * ATM_NOTE
    return np.maximum(np.round(amount, 2), MIN_AMOUNT)


def _frame(
    customer: np.ndarray,
    terminal: np.ndarray,
    ts: np.ndarray,
    amount: np.ndarray,
    scenario: int,
) -> pd.DataFrame:
    """Internal transaction frame (integer codes, nanosecond offsets)."""
    return pd.DataFrame(
        {
            "customer": customer.astype(np.int32),
            "terminal": terminal.astype(np.int32),
            "ts": ts.astype(np.int64),
            "amount": amount.astype(np.float64),
            "scenario": np.full(len(ts), scenario, dtype=np.int8),
        }
    )


def _pick_online(
    terminals: TerminalProfiles,
    size: int,
    rng: np.random.Generator,
    categories: tuple[str, ...] | None = None,
) -> np.ndarray:
    """Online merchants drawn by popularity, optionally within some categories."""
    online = terminals.online
    if categories is not None:
        codes = [_CATEGORY_CODE[name] for name in categories]
        subset = online[np.isin(terminals.category[online], codes)]
        online = subset if len(subset) else online
    weight = terminals.weight[online]
    return rng.choice(online, size=size, p=weight / weight.sum())


def _abroad_hood(terminals: TerminalProfiles, n_countries: int) -> Neighbourhood:
    """Terminals abroad grouped by ``country * 2 + is_atm`` (CSR layout)."""
    ids = np.flatnonzero(terminals.foreign)
    group = terminals.country[ids].astype(np.int64) * 2 + (
        terminals.channel[ids] == ATM
    )
    order = np.argsort(group, kind="stable")
    sizes = np.bincount(group, minlength=2 * n_countries)
    return Neighbourhood(ptr=np.concatenate(([0], np.cumsum(sizes))), idx=ids[order])


def _pick_abroad(
    terminals: TerminalProfiles,
    country: np.ndarray,
    atm: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Terminal abroad in ``country``, an ATM where ``atm`` is true."""
    hood = _abroad_hood(terminals, int(terminals.country.max()) + 1)
    return pick_weighted(
        hood, terminals.weight, country * 2 + atm.astype(np.int64), rng.random(len(atm))
    )


# --------------------------------------------------------------------------------------
# Genuine traffic
# --------------------------------------------------------------------------------------


def travel_destinations(params: SimulationParams) -> np.ndarray:
    """Country each customer is travelling in, per day (-1 at home).

    Args:
        params: Simulation parameters.

    Returns:
        ``(n_customers, n_days)`` matrix of country indices.
    """
    rng = stream(params.seed, "travel")
    n_days = params.n_days
    customer, start = daily_events(
        params.n_customers, n_days, params.travel_daily_rate, rng
    )
    length = rng.integers(params.travel_days[0], params.travel_days[1] + 1, len(start))
    country = len(params.home_countries) + rng.integers(
        0, len(params.far_countries), len(start)
    )
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
    terminal[travelling] = _pick_abroad(
        terminals, abroad[travelling].astype(np.int64), channel[travelling] == ATM, rng
    )
    online = channel == ECOMMERCE
    favourite = customers.favourites[
        customer[online], rng.integers(0, params.online_favourites, int(online.sum()))
    ]
    other = _pick_online(terminals, int(online.sum()), rng)
    keep = rng.random(int(online.sum())) < params.favourite_online_share
    terminal[online] = np.where(keep, favourite, other)
    profile = np.where(
        online,
        _PROFILE_CODE["ecommerce"],
        np.where(weekend[day], _PROFILE_CODE["weekend"], _PROFILE_CODE["weekday"]),
    )
    hour = sample_hours(profile, rng.random(n))
    ts = day * DAY_NS + hour * HOUR_NS + rng.integers(0, HOUR_NS, n)
    amount = draw_amounts(
        customers.mean_amount[customer],
        customers.std_amount[customer],
        terminals.category[terminal],
        rng,
    )
    return _frame(customer, terminal, ts, amount, GENUINE)


# --------------------------------------------------------------------------------------
# Fraud scenarios
# --------------------------------------------------------------------------------------


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
    window = active_windows(
        len(terminals.x), params.n_days, (pool[index], day), cfg.duration_days
    )
    out = tx.copy()
    day_of = out["ts"].to_numpy() // DAY_NS
    hit = window[out["terminal"].to_numpy(), day_of] & (
        out["scenario"].to_numpy() == GENUINE
    )
    out.loc[hit, "scenario"] = COMPROMISED_TERMINAL
    return out


def apply_compromised_customers(
    tx: pd.DataFrame, params: SimulationParams
) -> pd.DataFrame:
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
    window = active_windows(
        params.n_customers, params.n_days, events, cfg.duration_days
    )
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
    hour = sample_hours(
        np.full(len(day), _PROFILE_CODE["takeover"]), rng.random(len(day))
    )
    start = day * DAY_NS + hour * HOUR_NS + rng.integers(0, HOUR_NS, len(day))
    sizes = rng.integers(cfg.burst_size[0], cfg.burst_size[1] + 1, len(day))
    event, _ = expand_bursts(sizes)
    ts = start[event] + burst_offsets(sizes, cfg.gap_minutes * MINUTE_NS, rng)
    base = np.maximum(customers.mean_amount[victim[event]], TAKEOVER_MIN_BASE)
    amount = np.round(base * rng.uniform(*cfg.amount_factor, len(event)), 2)
    terminal = _pick_online(terminals, len(event), rng, HIGH_VALUE_ONLINE)
    return _frame(victim[event], terminal, ts, amount, ACCOUNT_TAKEOVER)


def inject_card_testing(
    params: SimulationParams, terminals: TerminalProfiles
) -> pd.DataFrame:
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
            _frame(card[event], merchant[event], ts, amount, CARD_TESTING),
            _frame(
                card,
                _pick_online(terminals, len(day), rng, HIGH_VALUE_ONLINE),
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
    frames = [_frame(empty, empty, empty, empty, MERCHANT_COLLUSION)]
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
        hour = sample_hours(
            np.full(len(day), _PROFILE_CODE["weekday"]), rng.random(len(day))
        )
        ts = day * DAY_NS + hour * HOUR_NS + rng.integers(0, HOUR_NS, len(day))
        card = rng.integers(0, params.n_customers, len(day))
        amount = np.round(rng.uniform(*cfg.amount, len(day)), 2)
        frames.append(_frame(card, merchant, ts, amount, MERCHANT_COLLUSION))
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
    home = np.flatnonzero(
        ~terminals.foreign[terminal] & (terminals.channel[terminal] != ECOMMERCE)
    )
    anchor = rng.choice(home, len(day)) if len(home) else np.zeros(0, dtype=np.int64)
    card = tx["customer"].to_numpy()[anchor]
    delay = rng.uniform(*cfg.delay_hours, len(anchor)) * HOUR_NS
    start = tx["ts"].to_numpy()[anchor] + delay.astype(np.int64)
    sizes = rng.integers(cfg.burst_size[0], cfg.burst_size[1] + 1, len(anchor))
    event, _ = expand_bursts(sizes)
    ts = start[event] + burst_offsets(sizes, cfg.gap_minutes * MINUTE_NS, rng)
    country = len(params.home_countries) + rng.integers(
        0, len(params.far_countries), len(anchor)
    )
    atm = rng.random(len(event)) < GEO_ATM_SHARE
    merchant = _pick_abroad(terminals, country[event], atm, rng)
    base = np.maximum(customers.mean_amount[card[event]], GEO_MIN_BASE)
    amount = base * rng.uniform(*cfg.amount_factor, len(event))
    notes = np.round(amount[atm] / ABROAD_ATM_NOTE).clip(*ABROAD_ATM_NOTES)
    amount[atm] = notes * ABROAD_ATM_NOTE
    return _frame(card[event], merchant, ts, np.round(amount, 2), GEO_ANOMALY)


# --------------------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------------------


def _format_ids(prefix: str, n: int, width: int) -> pd.Series:
    """Zero-padded string ids ``prefix + 000..0`` .. ``n - 1``, in order."""
    width = max(width, len(str(max(n - 1, 0))))
    number = pd.Series(np.arange(n, dtype=np.int64) + 10**width).astype("str")
    return prefix + number.str.slice(1)


def _lookup(names: tuple[str, ...], codes: np.ndarray) -> pd.Series:
    """String column from integer codes into ``names``."""
    vocabulary = pd.Series(list(names), dtype="str")
    return pd.Series(vocabulary.array.take(codes))


def to_canonical(
    tx: pd.DataFrame, params: SimulationParams, terminals: TerminalProfiles
) -> pd.DataFrame:
    """Sort by time and map the internal codes to the canonical schema.

    Args:
        tx: Internal transaction frame.
        params: Simulation parameters.
        terminals: Terminal profiles.

    Returns:
        Canonical transactions plus ``fraud_scenario``, sorted by timestamp, with
        transaction ids increasing in time order.
    """
    seconds = tx["ts"].to_numpy() // SECOND_NS
    order = np.argsort(seconds, kind="stable")
    tx = tx.iloc[order]
    terminal = tx["terminal"].to_numpy()
    customer_ids = _format_ids("C", params.n_customers, 6)
    terminal_ids = _format_ids("M", params.n_terminals, 6)
    scenario = tx["scenario"].to_numpy()
    start = pd.Timestamp(params.start_date).as_unit("ns").to_datetime64()
    frame = pd.DataFrame(
        {
            schema.TRANSACTION_ID: _format_ids("T", len(tx), 9),
            schema.TIMESTAMP: start
            + (seconds[order] * SECOND_NS).astype("timedelta64[ns]"),
            schema.CUSTOMER_ID: pd.Series(
                customer_ids.array.take(tx["customer"].to_numpy())
            ),
            schema.TERMINAL_ID: pd.Series(terminal_ids.array.take(terminal)),
            schema.MERCHANT_CATEGORY: _lookup(CATEGORIES, terminals.category[terminal]),
            schema.AMOUNT: tx["amount"].to_numpy(dtype=np.float64),
            schema.CURRENCY: pd.Series(
                params.currency, index=range(len(tx)), dtype="str"
            ),
            schema.COUNTRY: _lookup(params.countries, terminals.country[terminal]),
            schema.CHANNEL: _lookup(CHANNELS, terminals.channel[terminal]),
            schema.LABEL: (scenario != GENUINE).astype(np.int64),
            SCENARIO_COLUMN: _lookup(SCENARIOS, scenario),
        }
    )
    return frame[list(OUTPUT_COLUMNS)]


def simulate(params: SimulationParams) -> pd.DataFrame:
    """Run the whole simulation for validated parameters.

    Args:
        params: Simulation parameters.

    Returns:
        Canonical transactions plus ``fraud_scenario``, sorted by timestamp.
    """
    terminals = build_terminal_profiles(params)
    customers = build_customer_profiles(params, terminals)
    genuine = generate_genuine_transactions(params, customers, terminals)
    tx = pd.concat(
        [
            genuine,
            inject_account_takeover(params, customers, terminals),
            inject_card_testing(params, terminals),
            inject_merchant_collusion(params, terminals),
            inject_geo_anomaly(genuine, params, customers, terminals),
        ],
        ignore_index=True,
    )
    tx = tx[tx["ts"] < params.n_days * DAY_NS].reset_index(drop=True)
    tx = apply_compromised_terminals(tx, terminals, params)
    tx = apply_compromised_customers(tx, params)
    tx = apply_high_amount(tx, params)
    return to_canonical(tx, params, terminals)


def simulate_transactions(params: dict) -> pd.DataFrame:
    """Kedro node: simulate labelled card transactions from ``params:simulation``.

    Args:
        params: The ``simulation`` parameter mapping.

    Returns:
        Canonical transactions plus ``fraud_scenario`` (the scenario name or
        ``genuine``), sorted by timestamp with time-ordered transaction ids.

    Raises:
        ValueError: If a parameter is unknown or invalid; the message names it.
    """
    config = SimulationParams.from_dict(params)
    frame = simulate(config)
    rates = frame.groupby(SCENARIO_COLUMN)[schema.LABEL].size() / max(len(frame), 1)
    logger.info(
        "Simulated %d transactions over %d days for %d customers and %d terminals; "
        "fraud rate %.3f%%",
        len(frame),
        config.n_days,
        config.n_customers,
        config.n_terminals,
        100 * frame[schema.LABEL].mean() if len(frame) else 0.0,
    )
    logger.info("Share of transactions per scenario: %s", rates.round(5).to_dict())
    return frame
