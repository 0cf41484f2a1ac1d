"""The generated DAG in real Airflow 3: it imports cleanly, and `airflow dags test`
runs every task to success on small simulated data, one MLflow run per DAG run, the
champion alias moving only when the challenger wins, and the branch showing it."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from tests.e2e.test_default_run import SMALL_RUN, make_project, run
from tests.integration.airflow.conftest import DAG_ID, DAG_PARAMS, start_airflow

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

MODEL = "fraud-detection"


def stage_tasks() -> int:
    """The DAG's Kedro tasks: one per stage (namespace) of train_and_promote."""
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    from tests.conftest import PROJECT_ROOT

    bootstrap_project(PROJECT_ROOT)
    return len({node.namespace for node in pipelines["train_and_promote"].nodes})


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project copy with small simulated raw transactions (the DAG's input)."""
    path = make_project(tmp_path_factory.mktemp("airflow-project"))
    mp = pytest.MonkeyPatch()
    mp.chdir(path)
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path / 'mlflow.db'}")
    mp.setenv("MLFLOW_EXPERIMENT_NAME", "seed-data")  # not the DAG's experiment
    mp.delenv("MLFLOW_RUN_ID", raising=False)
    run(path, SMALL_RUN, pipeline="simulation")
    yield path
    mp.undo()


@pytest.fixture(scope="module")
def airflow(generated_dags, project, tmp_path_factory):
    return start_airflow(tmp_path_factory.mktemp("airflow"), generated_dags, project)


def dags_test(airflow, logical_date: str):
    result = airflow(
        "dags", "test", DAG_ID, logical_date, "--conf", json.dumps({"kedro_params": DAG_PARAMS})
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    runs = [
        r
        for r in airflow.json("dags", "list-runs", DAG_ID)
        if r["logical_date"].startswith(logical_date)
    ]
    assert len(runs) == 1 and runs[0]["state"] == "success", runs
    return runs[0]["run_id"]


def dag_runs_in_mlflow(project):
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("airflow-dag")
    return client, client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time ASC"]
    )


def test_dag_imports_without_errors(airflow):
    assert airflow.json("dags", "list-import-errors") == []
    assert airflow("dags", "reserialize").returncode == 0
    assert DAG_ID in {d["dag_id"] for d in airflow.json("dags", "list")}


@pytest.fixture(scope="module")
def first_dag_run(airflow):
    return dags_test(airflow, "2026-01-01")


def test_first_dag_run_succeeds_in_one_mlflow_run_and_promotes(airflow, project, first_dag_run):
    states = airflow.task_states(first_dag_run)
    assert states.pop("challenger_rejected") == "skipped"
    assert len(states) == stage_tasks() + 4 and set(states.values()) == {"success"}, states
    client, runs = dag_runs_in_mlflow(project)
    assert len(runs) == 1, [r.info.run_id for r in runs]
    mlflow_run = runs[0]
    assert mlflow_run.data.tags["airflow.run_id"] == first_dag_run
    assert mlflow_run.data.tags["promotion.decision"] == "promoted"
    assert {"test_average_precision", "test_roc_auc"} <= set(mlflow_run.data.metrics)
    assert mlflow_run.data.params["split.n_folds"] == "2"  # the DAG run's kedro_params
    artifacts = {a.path for a in client.list_artifacts(mlflow_run.info.run_id)}
    assert {"pr_curve.png", "evaluation_report.json", "promotion_report.json"} <= artifacts
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert champion.run_id == mlflow_run.info.run_id


def test_second_dag_run_with_an_equal_model_keeps_the_champion(airflow, project, first_dag_run):
    client, _ = dag_runs_in_mlflow(project)
    champion = client.get_model_version_by_alias(MODEL, "champion").version
    second = dags_test(airflow, "2026-01-02")
    states = airflow.task_states(second)
    assert states["champion_promoted"] == "skipped" and states["challenger_rejected"] == "success"
    client, runs = dag_runs_in_mlflow(project)
    assert len(runs) == 2 and runs[1].data.tags["airflow.run_id"] == second
    assert runs[1].data.tags["promotion.decision"] == "rejected"
    assert client.get_model_version_by_alias(MODEL, "champion").version == champion
