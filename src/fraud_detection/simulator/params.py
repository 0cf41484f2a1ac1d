"""Parameters of the simulator, validated strictly.

The models declare types and bounds only. Every value, defaults included, comes from
``conf/base/parameters_simulation.yml`` (or the environment overriding it), so a key
missing from the configuration fails at start-up with its dotted name instead of
silently taking a second default written in code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
)

from fraud_detection.params import ParameterError, StrictParams, UnknownParameterError

DAYS_PER_WEEK = 7
CURRENCY_CODE_LENGTH = 3
MIN_POS_TERMINALS = 10
MIN_AMOUNT = 0.01


class SimulationParameterError(ParameterError):
    """A simulation parameter is unknown, missing or has a bad value.

    Attributes:
        key: Dotted name of the offending parameter, e.g. ``params:simulation.n_days``.
        reason: What is wrong with it.
        unknown: For unknown keys, all unknown keys of the same level (else empty).
    """

    def __init__(self, key: str, reason: str, unknown: list[str] | None = None) -> None:
        """Build the error.

        Args:
            key: Dotted name of the offending parameter.
            reason: What is wrong with it.
            unknown: For unknown keys, all unknown keys of the same level.
        """
        super().__init__(key, reason)
        self.unknown = unknown or []

    @classmethod
    def from_parameter_error(cls, error: ParameterError) -> SimulationParameterError:
        """The same error as a ``SimulationParameterError``, with the same message.

        Args:
            error: The error raised by the shared parameter base.

        Returns:
            An error naming the same dotted key; for unknown keys the reason keeps the
            close-name hint and the allowed keys.
        """
        if isinstance(error, UnknownParameterError):
            # The shared message lists the allowed keys and close matches; lead with the
            # dotted key, as every other simulation parameter error does.
            return cls(error.key, str(error), error.unknown)
        return cls(error.key, error.reason)


def _number(value: Any) -> Any:
    """Reject booleans and strings, which pydantic's lax mode would turn into numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    return value


_NUMBER = BeforeValidator(_number)
# Integral floats such as ``1.0e4`` are accepted as ints; ``2.5`` is not.
Int = Annotated[int, _NUMBER]
Float = Annotated[float, _NUMBER]
PositiveInt = Annotated[int, _NUMBER, Field(gt=0)]
PositiveFloat = Annotated[float, _NUMBER, Field(gt=0)]
NonNegativeFloat = Annotated[float, _NUMBER, Field(ge=0)]
Rate = Annotated[float, _NUMBER, Field(ge=0, le=1)]


def _ordered(minimum: float) -> AfterValidator:
    """Validator of a ``[low, high]`` pair with ``minimum <= low <= high``."""

    def check(pair: tuple[float, float]) -> tuple[float, float]:
        low, high = pair
        if not minimum <= low <= high:
            raise ValueError(f"needs {minimum} <= low <= high, got {list(pair)}")
        return pair

    return AfterValidator(check)


IntPair = tuple[Int, Int]
FloatPair = tuple[Float, Float]


def _iso_date(value: Any) -> str:
    """A YAML date or an ISO date string, normalised to ``YYYY-MM-DD``."""
    # A date-time is a date too; the simulator starts at midnight, so refuse a time.
    if isinstance(value, dt.datetime):
        raise ValueError(f"expected a date without a time, got {value!r}")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            raise ValueError(f"not an ISO date (YYYY-MM-DD): {value!r}") from None
    raise ValueError(f"expected a date, got {value!r}")


def _week(factors: tuple[float, ...]) -> tuple[float, ...]:
    """Check that there is one positive factor per weekday."""
    if len(factors) != DAYS_PER_WEEK or min(factors, default=0.0) <= 0:
        raise ValueError(f"needs 7 positive factors (Monday .. Sunday), got {list(factors)}")
    return factors


IsoDate = Annotated[str, BeforeValidator(_iso_date)]
Countries = Annotated[tuple[str, ...], Field(min_length=1)]
Currency = Annotated[str, Field(min_length=CURRENCY_CODE_LENGTH, max_length=CURRENCY_CODE_LENGTH)]
WeekFactors = Annotated[tuple[Float, ...], AfterValidator(_week)]


class _SimulatorParams(StrictParams):
    """Base of the simulator's models: errors are ``SimulationParameterError``."""

    group: ClassVar[str] = "simulation"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str | None = None) -> Self:
        """Validate a plain mapping (a Kedro ``params:`` entry).

        Args:
            data: The parameters as loaded from YAML.
            path: Dotted name used in errors; default ``params:simulation``.

        Returns:
            The validated, immutable model.

        Raises:
            SimulationParameterError: (a ``ValueError``) naming the unknown, missing or
                bad key.
        """
        try:
            return super().from_dict(data, path)
        except ParameterError as err:
            raise SimulationParameterError.from_parameter_error(err) from None


class HighAmountParams(_SimulatorParams):
    """Scenario 1 (Handbook): every genuine amount above ``threshold`` is fraud."""

    threshold: PositiveFloat


class CompromisedTerminalParams(_SimulatorParams):
    """Scenario 2 (Handbook): compromised terminals.

    Attributes:
        daily_rate: Probability that a domestic physical terminal gets compromised on
            a given day.
        duration_days: All its transactions in the next ``duration_days`` are fraud.
    """

    daily_rate: Rate
    duration_days: PositiveInt


class CompromisedCustomerParams(_SimulatorParams):
    """Scenario 3 (Handbook): compromised customers.

    Attributes:
        daily_rate: Probability that a customer gets compromised on a given day.
        duration_days: Length of the fraudulent period.
        fraud_share: Share of the customer's transactions in the period that are
            fraud.
        amount_factor: Multiplier applied to the fraudulent amounts.
    """

    daily_rate: Rate
    duration_days: PositiveInt
    fraud_share: Rate
    amount_factor: PositiveFloat


class AccountTakeoverParams(_SimulatorParams):
    """Scenario 4: account takeover, a night-time e-commerce burst of large amounts.

    Attributes:
        daily_rate: Probability that a customer's account is taken over on a day.
        burst_size: ``[min, max]`` number of transactions in the burst.
        gap_minutes: Mean gap between transactions of the burst.
        amount_factor: ``[min, max]`` multiplier of the customer's mean amount.
    """

    daily_rate: Rate
    burst_size: Annotated[IntPair, _ordered(1)]
    gap_minutes: PositiveFloat
    amount_factor: Annotated[FloatPair, _ordered(0.0)]


class CardTestingParams(_SimulatorParams):
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

    daily_rate: Rate
    n_merchants: PositiveInt
    burst_size: Annotated[IntPair, _ordered(1)]
    gap_seconds: PositiveFloat
    tiny_amount: Annotated[FloatPair, _ordered(MIN_AMOUNT)]
    cashout_delay_minutes: PositiveFloat
    cashout_amount: Annotated[FloatPair, _ordered(MIN_AMOUNT)]


class MerchantCollusionParams(_SimulatorParams):
    """Scenario 6: rings of colluding merchants charging many stolen cards.

    Attributes:
        rings_per_1000_terminals: Number of rings per 1,000 terminals (rounded; at
            least one when positive).
        ring_size: Merchants (neighbouring point-of-sale terminals) per ring.
        duration_days: ``[min, max]`` active period of a ring.
        tx_per_merchant_day: Mean fraudulent transactions per merchant and day.
        amount: ``[min, max]`` amount of a fraudulent transaction.
    """

    rings_per_1000_terminals: NonNegativeFloat
    ring_size: PositiveInt
    duration_days: Annotated[IntPair, _ordered(1)]
    tx_per_merchant_day: PositiveFloat
    amount: Annotated[FloatPair, _ordered(MIN_AMOUNT)]


class GeoAnomalyParams(_SimulatorParams):
    """Scenario 7: cloned card used in a far country hours after a home transaction.

    Attributes:
        daily_rate: Probability that a card is cloned on a given day.
        burst_size: ``[min, max]`` number of foreign transactions.
        delay_hours: ``[min, max]`` delay after the home transaction.
        gap_minutes: Mean gap between the foreign transactions.
        amount_factor: ``[min, max]`` multiplier of the customer's mean amount.
    """

    daily_rate: Rate
    burst_size: Annotated[IntPair, _ordered(1)]
    delay_hours: Annotated[FloatPair, _ordered(0.0)]
    gap_minutes: PositiveFloat
    amount_factor: Annotated[FloatPair, _ordered(0.0)]


class ScenarioParams(_SimulatorParams):
    """Parameters of the seven fraud scenarios."""

    high_amount: HighAmountParams
    compromised_terminals: CompromisedTerminalParams
    compromised_customers: CompromisedCustomerParams
    account_takeover: AccountTakeoverParams
    card_testing: CardTestingParams
    merchant_collusion: MerchantCollusionParams
    geo_anomaly: GeoAnomalyParams


class SimulationParams(_SimulatorParams):
    """All parameters of the simulator; see ``conf/base/parameters_simulation.yml``.

    Attributes:
        start_date: First simulated day, as an ISO date string (a YAML date or a
            string such as ``"2024-01-01"``).
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

    start_date: IsoDate
    n_days: PositiveInt
    n_customers: PositiveInt
    n_terminals: PositiveInt
    seed: Annotated[int, _NUMBER, Field(ge=0)]
    grid_size: PositiveFloat
    radius: PositiveFloat
    home_countries: Countries
    far_countries: Countries
    currency: Currency
    online_terminal_share: Rate
    atm_terminal_share: Rate
    foreign_terminal_share: Rate
    online_favourites: PositiveInt
    favourite_online_share: Rate
    tx_per_day: Annotated[FloatPair, _ordered(0.0)]
    mean_amount: Annotated[FloatPair, _ordered(MIN_AMOUNT)]
    day_of_week_factors: WeekFactors
    payday_boost: NonNegativeFloat
    travel_daily_rate: Rate
    travel_days: Annotated[IntPair, _ordered(1)]
    scenarios: ScenarioParams

    @field_validator("far_countries")
    @classmethod
    def _far_from_home(cls, far: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        """Check that no far country is also a home country."""
        overlap = set(far) & set(info.data.get("home_countries", ()))
        if overlap:
            raise ValueError(f"overlaps home_countries: {sorted(overlap)}")
        return far

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str | None = None) -> Self:
        """Validate the ``simulation`` parameter mapping.

        Args:
            data: The parameters as loaded from YAML.
            path: Dotted name used in errors; default ``params:simulation``.

        Returns:
            The validated, immutable parameters.

        Raises:
            SimulationParameterError: (a ``ValueError``) naming the unknown, missing or
                bad key.
        """
        params = super().from_dict(data, path)
        # Checked once every share is valid; the population size is what to raise.
        counts = params.terminal_counts()
        if counts["pos"] < MIN_POS_TERMINALS:
            raise SimulationParameterError(
                f"{path or f'params:{cls.group}'}.n_terminals",
                f"too small for the terminal shares: {counts}",
            )
        return params

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
        foreign = max(2 * len(self.far_countries), round(self.foreign_terminal_share * n))
        return {"online": online, "atm": atm, "foreign": foreign, "pos": n - online - atm - foreign}
