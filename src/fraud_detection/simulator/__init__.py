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

Modules, in the order a simulation runs them:

- ``params``: the strict parameter models (values live in the YAML configuration);
- ``codes``: units, vocabularies and the internal frame every stage emits;
- ``samplers``: vectorised random draws shared by the stages;
- ``profiles``: terminals and customers;
- ``genuine``: genuine traffic;
- ``scenarios``: the seven fraud scenarios;
- ``assembly``: runs the stages and maps the result to the canonical schema.

This package is core code: it imports nothing from the pipelines, Kedro or the CLIs.
"""

from .assembly import log_summary, simulate, simulate_transactions
from .codes import OUTPUT_COLUMNS, SCENARIO_COLUMN, SCENARIOS
from .params import (
    AccountTakeoverParams,
    CardTestingParams,
    CompromisedCustomerParams,
    CompromisedTerminalParams,
    GeoAnomalyParams,
    HighAmountParams,
    MerchantCollusionParams,
    ScenarioParams,
    SimulationParameterError,
    SimulationParams,
)

__all__ = [
    "OUTPUT_COLUMNS",
    "SCENARIOS",
    "SCENARIO_COLUMN",
    "AccountTakeoverParams",
    "CardTestingParams",
    "CompromisedCustomerParams",
    "CompromisedTerminalParams",
    "GeoAnomalyParams",
    "HighAmountParams",
    "MerchantCollusionParams",
    "ScenarioParams",
    "SimulationParameterError",
    "SimulationParams",
    "log_summary",
    "simulate",
    "simulate_transactions",
]
