"""Wiring of the simulation pipeline."""

from __future__ import annotations

from fraud_detection.pipelines.simulation import create_pipeline
from tests.simulator.helpers import simulation_parameters


def test_pipeline_wires_params_to_raw_transactions():
    pipeline = create_pipeline()
    (node,) = pipeline.nodes
    assert node.name == "simulation.simulate_transactions_node"
    assert node.inputs == ["params:simulation"]
    assert node.outputs == ["raw_transactions"]
    params = simulation_parameters(seed=7, n_days=7, n_customers=50, n_terminals=200)
    outputs = node.run({"params:simulation": params})
    assert len(outputs["raw_transactions"]) > 0
