"""The committed Airflow DAG: regenerated from the pipelines it must be identical, and
every dataset that crosses one of its task boundaries must be persisted."""

from __future__ import annotations

import ast
import os
import subprocess
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project
from kedro.io import DataCatalog, MemoryDataset
from kedro_mlflow.io.models import MlflowModelTrackingDataset

from fraud_detection import settings
from fraud_detection.datasets.mlflow_model_dataset import MlflowFraudModelDataset
from tests.conftest import PROJECT_ROOT

DAG_FILE = PROJECT_ROOT / "airflow_dags" / "fraud_detection_airflow_train_and_promote_dag.py"
PIPELINE = "train_and_promote"
# Environments the DAG runs with (KEDRO_ENV); those not in this checkout are skipped.
DAG_ENVIRONMENTS = ["airflow", "kafka", "prod"]


def dag_literal(name: str) -> dict:
    """A module-level literal of the DAG file (read without importing Airflow)."""
    tree = ast.parse(DAG_FILE.read_text())
    for statement in tree.body:
        if isinstance(statement, ast.AnnAssign | ast.Assign):
            targets = (
                [statement.target] if isinstance(statement, ast.AnnAssign) else statement.targets
            )
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return ast.literal_eval(statement.value)
    raise AssertionError(f"{name} not found in {DAG_FILE}")


def test_committed_dag_is_what_make_dag_generates(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    result = subprocess.run(
        ["make", "--no-print-directory", "-s", "dag", f"DAG_TARGET_DIR={tmp_path}"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    generated = tmp_path / DAG_FILE.name
    assert generated.read_text() == DAG_FILE.read_text(), (
        f"{DAG_FILE.relative_to(PROJECT_ROOT)} is out of date with the pipelines, the template or "
        "conf/base/airflow.yml: run `make dag` and commit the result"
    )


def test_dag_id_and_settings_come_from_airflow_yml():
    source = DAG_FILE.read_text()
    assert 'dag_id="fraud_detection_training_dag"' in source
    assert '"project_path": "/opt/fraud-detection"' in source and '"env": "airflow"' in source
    assert '"pipeline_name": "train_and_promote"' in source


def _task_of_nodes(pipeline) -> dict[str, str]:
    """Node name -> the DAG task that runs it (tasks name nodes or namespaces)."""
    task_of: dict[str, str] = {}
    for task_id, group in dag_literal("NODE_GROUPS").items():
        names = set(group.get("node_names", []))
        spaces = set(group.get("namespaces", []))
        for node in pipeline.nodes:
            if node.name in names or node.namespace in spaces:
                assert node.name not in task_of, (
                    f"{node.name} runs in {task_of[node.name]} and {task_id}"
                )
                task_of[node.name] = task_id
    return task_of


def test_every_node_of_the_pipeline_runs_in_exactly_one_task():
    bootstrap_project(PROJECT_ROOT)
    groups = dag_literal("NODE_GROUPS")
    in_tasks = sorted(_task_of_nodes(pipelines[PIPELINE]))
    assert in_tasks == sorted(node.name for node in pipelines[PIPELINE].nodes)
    assert set(dag_literal("UPSTREAM")) == set(groups)


def catalog_of(env: str, monkeypatch: pytest.MonkeyPatch) -> DataCatalog:
    """The environment's catalog, built without the project's hooks (which would
    contact the environment's services)."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT_URL_S3",
        "MLFLOW_TRACKING_URI",
    ):
        monkeypatch.setenv(name, os.environ.get(name) or "unused-by-this-test")
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"), env=env, **settings.CONFIG_LOADER_ARGS
    )
    return DataCatalog.from_config(loader["catalog"], loader["credentials"])


@pytest.mark.parametrize("env", DAG_ENVIRONMENTS)
def test_datasets_crossing_task_boundaries_are_persisted(env, monkeypatch):
    if not (PROJECT_ROOT / "conf" / env).is_dir():
        pytest.skip(f"no conf/{env} in this checkout")
    bootstrap_project(PROJECT_ROOT)
    pipeline = pipelines[PIPELINE]
    task_of = _task_of_nodes(pipeline)
    producer = {output: node.name for node in pipeline.nodes for output in node.outputs}
    crossing = {
        name
        for node in pipeline.nodes
        for name in node.inputs
        if name in producer and task_of[producer[name]] != task_of[node.name]
    }
    assert {"labelled_transactions", "fraud_model", "promotion_report"} <= crossing
    catalog = catalog_of(env, monkeypatch)
    in_memory = sorted(
        name
        for name in crossing
        if name not in catalog or isinstance(catalog.get(name), MemoryDataset)
    )
    assert not in_memory, f"conf/{env}: {in_memory} cross a task boundary but are not persisted"
    # kedro-mlflow's model dataset forgets the model between processes; ours finds it in the run.
    models = [
        name for name in crossing if isinstance(catalog.get(name), MlflowModelTrackingDataset)
    ]
    assert all(isinstance(catalog.get(name), MlflowFraudModelDataset) for name in models)


def test_template_and_config_are_where_the_makefile_says():
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "DAG_TEMPLATE := airflow_dags/templates/fraud_detection_dag.py.j2" in makefile
    assert Path(PROJECT_ROOT / "airflow_dags/templates/fraud_detection_dag.py.j2").is_file()
    assert (PROJECT_ROOT / "conf/base/airflow.yml").is_file()
