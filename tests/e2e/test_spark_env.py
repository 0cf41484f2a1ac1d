"""End to end: ``kedro run --env spark`` (as a KedroSession) from simulated data to a
promoted model, with ingestion, features and the split in Spark; and the default
environment never imports Spark."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

from tests.conftest import PROJECT_ROOT
from tests.e2e.test_default_run import MODEL, SMALL_RUN, make_project


@pytest.mark.slow
@pytest.mark.spark
def test_spark_env_reaches_a_promoted_model_with_xgboost_trained_in_spark(
    tmp_path, monkeypatch, spark
):
    """One run (two would double the suite's slowest Spark minute): ingestion, features
    and the split in Spark, the reduced development set on the driver, and
    ``training.engine=spark``: XGBoost trained in Spark joins the driver's candidates, is
    evaluated on the test window and compared like them."""
    project = make_project(tmp_path)
    monkeypatch.chdir(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "e2e-spark")
    params = {
        **SMALL_RUN,
        "split": {"n_folds": 2, "legit_sample_ratio": 0.5},
        "training": {
            **SMALL_RUN["training"],
            "families": ["logistic_regression"],
            "engine": "spark",
            "spark": {"params": {"n_estimators": 60, "max_depth": 4}},
        },
    }
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="spark", runtime_params=params) as s:
        s.run()
    champion = MlflowClient().get_model_version_by_alias(MODEL, "champion")
    run_data = MlflowClient().get_run(champion.run_id).data
    assert run_data.tags["promotion.decision"] == "promoted"
    # The Spark tables are Spark's parquet folders; the driver got the reduced rows.
    assert (project / "data/04_feature/spark/transaction_features.parquet/_SUCCESS").exists()
    development = pd.read_parquet(project / "data/05_model_input/development_set.parquet")
    assert set(development["sample_weight"]) == {1.0, 2.0}
    plan = json.loads((project / "data/05_model_input/split_plan.json").read_text())
    assert plan["counts"]["development_rows_kept"] == len(development)
    assert plan["counts"]["development_frauds"] == int(development["is_fraud"].sum())
    dq = json.loads((project / "data/08_reporting/data_quality_report.json").read_text())
    assert dq["rows_in"] == dq["rows_valid"] + dq["rows_quarantined"] > 10_000
    # The Spark-trained candidate, next to the driver's search.
    results = json.loads((project / "data/06_models/search_results.json").read_text())
    assert results["xgboost_spark"]["engine"] == "spark"
    assert set(results) == {"logistic_regression", "xgboost_spark", "baseline"}
    report = json.loads((project / "data/08_reporting/evaluation_report.json").read_text())
    assert "xgboost_spark" in json.dumps(report)
    selection = json.loads((project / "data/06_models/model_selection.json").read_text())
    assert set(selection["validation_average_precision"]) == {
        "logistic_regression",
        "xgboost_spark",
    }


def test_default_environment_never_starts_spark():
    """Our modules import pyspark only inside Spark functions, and the default
    environment's hooks start no session (MLflow itself imports pyspark when it is
    installed, so the JVM, not the module, is what is checked after the session)."""
    code = (
        "import sys\n"
        "import fraud_detection.features, fraud_detection.features.spark_engine\n"
        "import fraud_detection.spark.quality, fraud_detection.spark.splits\n"
        "import fraud_detection.spark.session, fraud_detection.spark.summary\n"
        "import fraud_detection.spark.xgboost_training\n"
        "assert 'pyspark' not in sys.modules, 'pyspark imported by our modules'\n"
        "from kedro.framework.session import KedroSession\n"
        "from kedro.framework.startup import bootstrap_project\n"
        f"bootstrap_project({str(PROJECT_ROOT)!r})\n"
        f"with KedroSession.create(project_path={str(PROJECT_ROOT)!r}) as s:\n"
        "    s.load_context()\n"
        "from fraud_detection.pipeline_registry import register_pipelines\n"
        "register_pipelines()\n"
        "from pyspark import SparkContext\n"
        "assert SparkContext._active_spark_context is None, 'a SparkContext was started'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT_ROOT)
