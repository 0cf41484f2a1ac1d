"""`kedro run --env prod` against a real S3 server and a real MLflow server: every
catalog entry in the bucket, the MLflow run, plots and model in the mlflow bucket, the
champion scoring like the pipeline, and an object store that dies mid-run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from kedro.framework.hooks import hook_impl
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import DatasetError
from mlflow.tracking import MlflowClient

from tests.e2e.test_default_run import SMALL_RUN, make_project
from tests.integration.object_store.conftest import BUCKET, MLFLOW_BUCKET, Services

pytestmark = pytest.mark.integration

MODEL = "fraud-detection"
EXPERIMENT = "prod-integration"


def run(
    project: Path,
    runtime_params: dict,
    pipeline: str | None = None,
    hooks: tuple = (),
    nodes: list[str] | None = None,
) -> None:
    """`kedro run --env prod [--pipelines P] [--nodes N]`, in this process so hooks can be added."""
    bootstrap_project(project)
    with KedroSession.create(
        project_path=project, env="prod", runtime_params=runtime_params
    ) as session:
        for hook in hooks:
            session._hook_manager.register(hook)
        session.run(pipeline_names=[pipeline] if pipeline else None, node_names=nodes)


def catalog_config(project: Path) -> dict[str, dict[str, Any]]:
    """The resolved prod catalog entries of every dataset of ``__default__``."""
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="prod") as session:
        catalog = session.load_context().catalog
        names = sorted(
            n for n in pipelines["__default__"].datasets() if not n.startswith("params:")
        )
        for name in names:
            catalog.get(name)  # materialise dataset factory entries ({name}_plot)
        config = catalog.to_config()[0]
    return {name: config.get(name, {}) for name in names}


def s3_key(entry: dict[str, Any]) -> str | None:
    """Bucket/key of a file entry (wrapped or not), None for MLflow-only datasets."""
    filepath = entry.get("filepath") or entry.get("dataset", {}).get("filepath")
    return filepath.removeprefix("s3://") if filepath else None


def data_objects(services: Services) -> set[str]:
    """Objects in the catalog's bucket, without the short-lived probe objects that the
    start-up check and scripts/s3.sh write and delete at its root (a listing right
    after the delete may still show one)."""
    return {p for p in services.fs().find(BUCKET) if not p.split("/", 1)[1].startswith(".")}


def load(project: Path, *names: str) -> list[Any]:
    """Loads catalog entries (latest versions) of the prod environment."""
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="prod") as session:
        catalog = session.load_context().catalog
        return [catalog.load(name) for name in names]


@pytest.fixture(scope="module")
def project(services: Services, tmp_path_factory):
    path = make_project(tmp_path_factory.mktemp("prod"))
    mp = pytest.MonkeyPatch()
    mp.chdir(path)
    for name, value in services.client_env.items():
        mp.setenv(name, value)
    mp.setenv("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
    yield path
    mlflow.set_tracking_uri(None)  # the runs set it for the whole process
    mp.undo()


@pytest.fixture(scope="module")
def first_run(project: Path, services: Services) -> dict[str, Any]:
    started = time.monotonic()
    run(project, SMALL_RUN)
    return {"seconds": time.monotonic() - started, "objects": set(services.fs().find(BUCKET))}


def test_every_catalog_entry_is_written_to_the_bucket(project, first_run):
    # Where each dataset lives in prod is checked for every pipeline by
    # tests/test_prod_catalog.py; here: the run really wrote each file output.
    config = catalog_config(project)
    outputs = {n for n in pipelines["__default__"].all_outputs() if s3_key(config[n])}
    assert {
        "raw_transactions",
        "transaction_features",
        "trained_candidates",
        "test_predictions",
        "evaluation_report",
        "pr_curve_plot",
        "promotion_report",
    } <= outputs
    objects = first_run["objects"]
    assert not [
        o for o in objects if o.rsplit("/", 1)[-1].startswith(".fraud-detection-write-probe")
    ]
    for name in sorted(outputs):
        key = s3_key(config[name])
        assert key.startswith(f"{BUCKET}/"), key
        if config[name].get("versioned"):  # <filepath>/<run timestamp>/<file name>
            written = [o for o in objects if o.startswith(f"{key}/")]
            assert len(written) == 1 and written[0].endswith("/" + key.rsplit("/", 1)[-1]), (
                name,
                written,
            )
        else:
            assert key in objects, name


def test_mlflow_run_metrics_plots_and_model_are_in_the_mlflow_bucket(first_run, services):
    client = MlflowClient(services.tracking_uri)
    champion = client.get_model_version_by_alias(MODEL, "champion")
    run_info = client.get_run(champion.run_id)
    assert run_info.info.status == "FINISHED"
    assert run_info.data.tags["promotion.decision"] == "promoted"
    for metric in (
        "test_average_precision",
        "test_roc_auc",
        "test_card_precision_at_100",
        "decision_threshold",
    ):
        assert metric in run_info.data.metrics, metric
    assert run_info.info.artifact_uri.startswith("mlflow-artifacts:/")  # proxied by the server

    fs = services.fs()
    experiment_id = run_info.info.experiment_id
    run_prefix = f"{MLFLOW_BUCKET}/{experiment_id}/{champion.run_id}/artifacts"
    run_files = {p.rsplit("/", 1)[-1] for p in fs.find(run_prefix)}
    assert {
        "pr_curve.png",
        "roc_curve.png",
        "confusion_matrix.png",
        "feature_importance.png",
        "score_distribution.png",
        "evaluation_report.json",
        "promotion_report.json",
        "model_selection.json",
        "selected_features.json",
    } <= run_files

    model_uri = client.get_model_version_download_uri(MODEL, champion.version)
    assert model_uri.startswith("mlflow-artifacts:/"), model_uri
    model_prefix = model_uri.replace("mlflow-artifacts:/", f"{MLFLOW_BUCKET}/")
    model_files = {p.rsplit("/", 1)[-1] for p in fs.find(model_prefix)}
    assert {"MLmodel", "python_model.pkl", "requirements.txt", "input_example.json"} <= model_files
    # Same bytes in MLflow as in the catalog's copy on S3.
    catalog_copy = [p for p in first_run["objects"] if p.endswith("/evaluation_report.json")]
    assert fs.cat(catalog_copy[0]) == fs.cat(f"{run_prefix}/evaluation_report.json")


def test_champion_from_registry_scores_like_the_pipeline(project, first_run, services):
    test_set, predictions, selection = load(
        project, "test_set", "test_predictions", "model_selection"
    )
    mlflow.set_tracking_uri(services.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    scored = model.predict(test_set)
    assert len(scored) == len(predictions) > 100
    pd.testing.assert_series_equal(
        scored["score"].reset_index(drop=True),
        predictions[f"score_{selection['selected']}"].reset_index(drop=True),
        check_names=False,
        rtol=1e-12,
    )


class StopObjectStoreBeforeSaving:
    """Stops the S3 server just before the run saves one dataset."""

    def __init__(self, dataset_name: str, services: Services):
        self.dataset_name = dataset_name
        self.services = services
        self.stopped_at: float | None = None

    @hook_impl
    def before_dataset_saved(self, dataset_name: str) -> None:
        if dataset_name == self.dataset_name and self.stopped_at is None:
            self.services.stop_s3()
            self.stopped_at = time.monotonic()


def test_object_store_stopped_mid_run_fails_clearly_and_keeps_previous_versions(
    project, first_run, services
):
    fs = services.fs()
    before = {path: fs.cat(path) for path in data_objects(services)}
    client = MlflowClient(services.tracking_uri)
    champion = client.get_model_version_by_alias(MODEL, "champion").version
    stopper = StopObjectStoreBeforeSaving("trained_candidates", services)
    # The split saves new versions of the model inputs, then the store goes away
    # while the refitted candidates are being saved.
    try:
        with pytest.raises(DatasetError) as failure:
            run(
                project,
                SMALL_RUN,
                hooks=(stopper,),
                nodes=[
                    "data_split.split_out_of_time_node",
                    "training.tune_candidates_node",
                    "training.fit_candidates_node",
                    "training.train_spark_candidates_node",
                    "training.merge_candidates_node",
                ],
            )
        failed_after = time.monotonic() - stopper.stopped_at
    finally:
        services.start_s3()
    message = str(failure.value)
    assert message.startswith("trained_candidates: Failed while saving data")
    assert (
        "Could not connect to the endpoint URL: "
        f'"{services.endpoint}/{BUCKET}/06_models/trained_candidates.pkl/' in message
    )
    assert failed_after < 60, f"the run took {failed_after:.0f}s to give up on the stopped store"

    # Every object of the good run is still there, byte for byte; the failed run added
    # only new versions of what it saved before the store went away.
    fs = services.fs()
    after = data_objects(services)
    assert set(before) <= after
    assert all(fs.cat(path) == content for path, content in before.items())
    added = after - set(before)
    # (merge_candidates_node saves the search results and the validation predictions
    # before the candidates, in the order of its outputs.)
    assert {p.split("/")[2] for p in added} == {
        "development_set.parquet",
        "test_set.parquet",
        "split_plan.json",
        "search_results.json",
        "validation_predictions.parquet",
    }, sorted(added)
    # The latest candidates and reports are still the good run's, and load as usual.
    candidates, report = load(project, "trained_candidates", "evaluation_report")
    assert set(candidates) == {*SMALL_RUN["training"]["families"], "baseline"}
    assert report
    failed = client.search_runs(
        [client.get_experiment_by_name(EXPERIMENT).experiment_id],
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )[0]
    assert failed.info.status == "FAILED"
    assert client.get_model_version_by_alias(MODEL, "champion").version == champion
