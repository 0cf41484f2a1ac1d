"""Parameters for simulator tests, always built from ``conf/base``.

The YAML file is the only source of simulation defaults, so tests start from it and
override only what they vary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.conftest import base_parameters

# Small population with boosted fraud rates: every scenario shows up in ~1 s.
SMALL_OVERRIDES: dict[str, Any] = {
    "start_date": "2024-03-01",
    "n_days": 28,
    "n_customers": 300,
    "n_terminals": 600,
    "seed": 7,
    "scenarios": {
        "compromised_terminals": {"daily_rate": 5.0e-4},
        "compromised_customers": {"daily_rate": 2.0e-3},
        "account_takeover": {"daily_rate": 2.0e-3},
        "card_testing": {"daily_rate": 2.0e-3},
        "merchant_collusion": {"rings_per_1000_terminals": 2.0, "duration_days": [7, 14]},
        "geo_anomaly": {"daily_rate": 3.0e-3},
    },
}


def merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied; nested mappings merge key by key."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def simulation_parameters(**overrides: Any) -> dict[str, Any]:
    """``params:simulation`` from ``conf/base`` with ``overrides`` merged in.

    Unlike ``base_parameters``, a nested override such as
    ``scenarios={"card_testing": {"daily_rate": 0.1}}`` changes that one key and keeps
    the rest of ``scenarios``.
    """
    return merged(base_parameters("simulation"), overrides)


SMALL: dict[str, Any] = simulation_parameters(**SMALL_OVERRIDES)
