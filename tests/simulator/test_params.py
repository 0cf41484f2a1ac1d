"""The simulator's parameters: every key from YAML, bad values named by their key."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from fraud_detection.params import ParameterError
from fraud_detection.simulator import (
    ScenarioParams,
    SimulationParameterError,
    SimulationParams,
    simulate_transactions,
)
from tests.simulator.helpers import SMALL, merged, simulation_parameters

PARAMETERS_FILE = (
    Path(__file__).resolve().parents[2] / "conf" / "base" / "parameters_simulation.yml"
)
THRESHOLD = 220.0


def _load_file() -> dict[str, Any]:
    """The ``simulation`` block of the project's parameter file, read as plain YAML."""
    with PARAMETERS_FILE.open() as handle:
        return yaml.safe_load(handle)["simulation"]


def test_parameter_file_is_valid():
    raw = _load_file()
    params = SimulationParams.from_dict(raw)
    assert params.scenarios.high_amount.threshold == THRESHOLD
    # The file spells out every parameter, so none hides behind a code default.
    assert set(raw) == set(SimulationParams.model_fields)
    assert set(raw["scenarios"]) == set(ScenarioParams.model_fields)
    for name, scenario in ScenarioParams.model_fields.items():
        assert set(raw["scenarios"][name]) == set(scenario.annotation.model_fields), name


def test_no_field_has_a_default_in_code():
    models = [SimulationParams, ScenarioParams]
    models += [field.annotation for field in ScenarioParams.model_fields.values()]
    for model in models:
        defaults = [name for name, field in model.model_fields.items() if not field.is_required()]
        assert defaults == [], model.__name__


def test_config_loader_and_plain_yaml_give_the_same_parameters():
    assert SimulationParams.from_dict(simulation_parameters()) == SimulationParams.from_dict(
        _load_file()
    )


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"n_custmers": 10}, "simulation.n_custmers"),
        ({"scenarios": {"card_testing": {"burst": [1, 2]}}}, "card_testing.burst"),
        ({"n_days": 0}, "simulation.n_days"),
        ({"n_days": "ninety"}, "simulation.n_days"),
        ({"n_days": 2.5}, "simulation.n_days"),
        ({"n_days": True}, "simulation.n_days"),
        ({"seed": -1}, "simulation.seed"),
        ({"start_date": "not-a-date"}, "simulation.start_date"),
        ({"start_date": dt.datetime(2024, 1, 1, 12)}, "simulation.start_date"),
        ({"day_of_week_factors": [1.0, 1.0]}, "simulation.day_of_week_factors"),
        ({"day_of_week_factors": [1.0] * 6 + [0.0]}, "simulation.day_of_week_factors"),
        ({"home_countries": []}, "simulation.home_countries"),
        ({"far_countries": ["US", "FR"]}, "simulation.far_countries"),
        ({"currency": "EURO"}, "simulation.currency"),
        ({"online_terminal_share": 1.5}, "simulation.online_terminal_share"),
        ({"tx_per_day": [4.0, 0.2]}, "simulation.tx_per_day"),
        ({"travel_days": [3]}, "simulation.travel_days"),
        ({"n_terminals": 20}, "simulation.n_terminals"),
        (
            {"scenarios": {"geo_anomaly": {"burst_size": [3, 1]}}},
            "simulation.scenarios.geo_anomaly.burst_size",
        ),
        (
            {"scenarios": {"account_takeover": {"daily_rate": 2.0}}},
            "simulation.scenarios.account_takeover.daily_rate",
        ),
        (
            {"scenarios": {"card_testing": {"tiny_amount": [0.0, 2.0]}}},
            "simulation.scenarios.card_testing.tiny_amount",
        ),
        (
            {"scenarios": {"merchant_collusion": {"rings_per_1000_terminals": -1.0}}},
            "simulation.scenarios.merchant_collusion.rings_per_1000_terminals",
        ),
    ],
)
def test_bad_parameter_raises_naming_the_key(overrides, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")) as info:
        simulate_transactions(merged(SMALL, overrides))
    assert isinstance(info.value, SimulationParameterError)
    assert isinstance(info.value, ParameterError)
    assert key in info.value.key


def test_missing_key_is_named_instead_of_taking_a_code_default():
    params = {key: value for key, value in SMALL.items() if key != "radius"}
    with pytest.raises(SimulationParameterError, match=r"simulation\.radius.*missing"):
        SimulationParams.from_dict(params)
    scenarios = copy.deepcopy(SMALL["scenarios"])
    del scenarios["card_testing"]["gap_seconds"]
    with pytest.raises(
        SimulationParameterError, match=r"simulation\.scenarios\.card_testing\.gap_seconds"
    ):
        SimulationParams.from_dict({**SMALL, "scenarios": scenarios})


def test_unknown_key_suggests_the_close_name():
    with pytest.raises(ValueError, match="did you mean 'n_custmers' -> 'n_customers'") as info:
        SimulationParams.from_dict({**SMALL, "n_custmers": 10})
    assert info.value.unknown == ["n_custmers"]


def test_not_a_mapping_is_refused():
    with pytest.raises(SimulationParameterError, match=r"simulation.*expected a mapping"):
        SimulationParams.from_dict([("n_days", 1)])  # type: ignore[arg-type]


@pytest.mark.parametrize("start", [dt.date(2024, 3, 1), "2024-03-01"])
def test_start_date_is_normalised_to_an_iso_string(start):
    params = SimulationParams.from_dict({**SMALL, "start_date": start})
    assert params.start_date == "2024-03-01"


def test_integral_floats_count_as_ints_and_pairs_become_tuples():
    params = SimulationParams.from_dict({**SMALL, "n_customers": 3.0e2, "travel_days": [3, 10]})
    assert params.n_customers == 300 and isinstance(params.n_customers, int)
    assert params.travel_days == (3, 10)
    assert params.tx_per_day == tuple(float(x) for x in SMALL["tx_per_day"])


def test_parameters_are_immutable():
    params = SimulationParams.from_dict(SMALL)
    with pytest.raises(ValueError, match="frozen"):
        params.n_days = 1  # type: ignore[misc]


def test_terminal_counts_add_up_and_give_each_far_country_two_terminals_abroad():
    params = SimulationParams.from_dict(SMALL)
    counts = params.terminal_counts()
    assert sum(counts.values()) == params.n_terminals
    assert counts["foreign"] >= 2 * len(params.far_countries)
    assert params.countries == params.home_countries + params.far_countries
