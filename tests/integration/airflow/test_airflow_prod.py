"""The DAG in real Airflow 3 with the prod environment: every dataset on a real S3
server (scripts/s3.sh) and MLflow on a real tracking server (scripts/mlflow_server.sh).
Each task is its own Kedro session, so each writes its own dataset versions; the next
task reads the latest ones. One MLflow run on the server holds the whole DAG run."""

from __future__ import annotations

import json

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

from tests.e2e.test_default_run import SMALL_RUN, make_project
from tests.integration.airflow.conftest import DAG_ID, DAG_PARAMS, start_airflow
from tests.integration.object_store.conftest import BUCKET, Services, services  # noqa: F401 (the servers fixture)

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

EXPERIMENT = "airflow-prod"


@pytest.fixture(scope="module")
def seeded(services: Services, tmp_path_factory):
    """A project copy whose raw transactions the simulation wrote to the bucket."""
    project = make_project(tmp_path_factory.mktemp("airflow-prod"))
    mp = pytest.MonkeyPatch()
    mp.chdir(project)
    for name, value in services.client_env.items():
        mp.setenv(name, value)
    mp.setenv("MLFLOW_EXPERIMENT_NAME", "airflow-prod-seed")
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="prod", runtime_params=SMALL_RUN) as session:
        session.run(pipeline_names=["simulation"])
    mp.undo()
    return project


def test_dag_trains_and_promotes_on_object_storage_and_mlflow_server(
    generated_dags, services, seeded, tmp_path_factory
):
    airflow = start_airflow(
        tmp_path_factory.mktemp("airflow-prod-home"),
        generated_dags,
        seeded,
        kedro_env="prod",
        extra_env={**services.client_env, "MLFLOW_EXPERIMENT_NAME": EXPERIMENT},
    )
    result = airflow(
        "dags", "test", DAG_ID, "2026-01-01", "--conf", json.dumps({"kedro_params": DAG_PARAMS})
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    (dag_run,) = airflow.json("dags", "list-runs", DAG_ID)
    assert dag_run["state"] == "success"
    assert airflow.task_states(dag_run["run_id"])["champion_promoted"] == "success"

    client = MlflowClient(services.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    assert len(runs) == 1, [r.info.run_id for r in runs]
    run = runs[0]
    assert (
        run.data.tags["kedro.env"] == "prod" and run.data.tags["promotion.decision"] == "promoted"
    )
    assert {"pr_curve.png", "promotion_report.json"} <= {
        a.path for a in client.list_artifacts(run.info.run_id)
    }
    assert (
        client.get_model_version_by_alias("fraud-detection", "champion").run_id == run.info.run_id
    )
    # Nothing of the DAG run was written locally: the datasets are in the bucket.
    fs = services.fs()
    assert fs.ls(f"{BUCKET}/08_reporting/promotion_report.json")
    assert not list((seeded / "data").rglob("*.parquet"))
