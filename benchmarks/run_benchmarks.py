"""Benchmarks of the main job, run with ``make bench`` (never as timed tests).

Measures, each in its own process so that peak memory is that step's alone:

1. ``create_features`` seconds and peak RSS on the Handbook table (1.75M rows) and on
   2M simulated rows;
2. wall time of the default ``kedro run`` (simulation to promotion) in a temporary
   copy of the project;
3. model quality per family on the Handbook chapter-3 protocol
   (``kedro run --env handbook --pipelines train_and_promote``): ROC-AUC, AP, CP@100;
4. the rolling backtest on the Handbook data (``kedro run --env handbook --pipelines
   backtest`` after the features): per family mean, std and bootstrap intervals of AP
   and CP@100 over the test weeks of ``conf/handbook/parameters.yml``.

Usage::

    python benchmarks/run_benchmarks.py [--only features|training|handbook|handbook-backtest]

The Handbook steps need HANDBOOK_DATA_DIR (the folder of transactions.parquet).
Results are printed as a table and written to benchmarks/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import kedro_env

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
HANDBOOK_MAPPING = {
    "transaction_id": "TRANSACTION_ID",
    "timestamp": "TX_DATETIME",
    "customer_id": "CUSTOMER_ID",
    "terminal_id": "TERMINAL_ID",
    "amount": "TX_AMOUNT",
    "is_fraud": "TX_FRAUD",
}


def features_step(source: str) -> dict:
    """Runs in a child process: loads a source, then times create_features alone."""
    import pandas as pd
    import yaml

    from fraud_detection.features import create_features
    from fraud_detection.quality import (
        standardise_columns,
        validate_transactions,
    )

    ingestion = yaml.safe_load((ROOT / "conf/base/parameters_ingestion.yml").read_text())[
        "ingestion"
    ]
    if source == "handbook":
        raw = pd.read_parquet(Path(os.environ["HANDBOOK_DATA_DIR"]) / "transactions.parquet")
        params = {**ingestion, "column_mapping": HANDBOOK_MAPPING}
    else:
        from fraud_detection.simulator import simulate_transactions

        sim = yaml.safe_load((ROOT / "conf/base/parameters_simulation.yml").read_text())[
            "simulation"
        ]
        sim.update(n_customers=10_500, n_terminals=21_000)
        raw = simulate_transactions(sim)
        params = {**ingestion, "column_mapping": {}}
    valid, _, _ = validate_transactions(standardise_columns(raw, params), params)
    del raw
    feature_params = yaml.safe_load(
        (ROOT / "conf/base/parameters_feature_engineering.yml").read_text()
    )["features"]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    features = create_features(valid, feature_params)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "rows": len(valid),
        "features": features.shape[1],
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak / 1024, 1),
        "peak_rss_mb_before_create_features": round(before / 1024, 1),
    }


def _child(step: str, source: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", step, source],
        capture_output=True,
        text=True,
        env=kedro_env(),
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _project_copy(where: Path) -> Path:
    project = where / "project"
    project.mkdir()
    for name in ("conf", "data", "logs"):
        shutil.copytree(
            ROOT / name,
            project / name,
            ignore=shutil.ignore_patterns("*.parquet", "*.json", "*.pkl", "*.png", "*.log"),
        )
    (project / "src").mkdir()
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(ROOT / name, project / name)
    return project


def _kedro_run(project: Path, *args: str) -> float:
    env = kedro_env()
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{project / 'mlflow.db'}"
    kedro = Path(sys.executable).with_name("kedro")
    start = time.perf_counter()
    done = subprocess.run(
        [str(kedro), "run", *args],
        cwd=project,
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if done.returncode:
        _keep_log(project, "failed_run")
        raise RuntimeError(
            f"kedro run {' '.join(args)} failed (exit {done.returncode}); its log: "
            f"{RESULTS / 'failed_run.log'}"
        )
    return time.perf_counter() - start


def _keep_log(project: Path, name: str) -> None:
    """The run's own log (node times, validation AP per candidate) next to the results."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(project / "logs" / "fraud_detection.log", RESULTS / f"{name}.log")


def training_step() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        project = _project_copy(Path(tmp))
        seconds = _kedro_run(project)
        report = json.loads((project / "data/08_reporting/evaluation_report.json").read_text())
        plan = json.loads((project / "data/05_model_input/split_plan.json").read_text())
    return {
        "default_kedro_run_seconds": round(seconds, 1),
        "rows": plan["counts"],
        "selected": report["selected"],
        "test_metrics": {
            k: {m: round(v, 4) for m, v in d.items()} for k, d in report["metrics"].items()
        },
    }


def handbook_step() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        project = _project_copy(Path(tmp))
        os.environ["HANDBOOK_TRANSACTIONS_PATH"] = str(
            Path(os.environ["HANDBOOK_DATA_DIR"]) / "transactions.parquet"
        )
        seconds = _kedro_run(project, "--env", "handbook", "--pipelines", "train_and_promote")
        _keep_log(project, "handbook_chapter3")
        report = json.loads((project / "data/08_reporting/evaluation_report.json").read_text())
        search = json.loads((project / "data/06_models/search_results.json").read_text())
    return {
        "wall_seconds": round(seconds, 1),
        "test_rows": report["test_rows"],
        "test_frauds": report["test_frauds"],
        "selected": report["selected"],
        "per_family": {
            name: {
                "roc_auc": round(m["roc_auc"], 3),
                "average_precision": round(m["average_precision"], 3),
                "card_precision_at_100": round(m["card_precision_at_100"], 3),
                "validation_ap": round(search[name]["validation_average_precision"], 3),
                "best_params": search[name].get("best_params"),
            }
            for name, m in report["metrics"].items()
        },
    }


def handbook_backtest_step() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        project = _project_copy(Path(tmp))
        os.environ["HANDBOOK_TRANSACTIONS_PATH"] = str(
            Path(os.environ["HANDBOOK_DATA_DIR"]) / "transactions.parquet"
        )
        features = _kedro_run(
            project, "--env", "handbook", "--pipelines", "ingestion,feature_engineering"
        )
        seconds = _kedro_run(project, "--env", "handbook", "--pipelines", "backtest")
        _keep_log(project, "handbook_backtest")
        table = json.loads((project / "data/08_reporting/backtest_results.json").read_text())
    cp = f"card_precision_at_{table['card_precision_k']}"
    return {
        "features_wall_seconds": round(features, 1),
        "backtest_wall_seconds": round(seconds, 1),
        "windows": [
            {k: w[k] for k in ("test_start", "test_end", "selected", "counts")}
            for w in table["windows"]
        ],
        "bootstrap": table["bootstrap"],
        "per_family": {
            name: {
                metric: {
                    "per_window": [round(v, 3) for v in m["per_window"][metric]],
                    "mean": round(m["mean"][metric], 3),
                    "std": round(m["std"][metric], 3),
                    **(
                        {
                            "ci": [
                                round(m["intervals"][metric]["low"], 3),
                                round(m["intervals"][metric]["high"], 3),
                            ]
                        }
                        if metric in m["intervals"]
                        else {}
                    ),
                }
                for metric in ("average_precision", cp, "roc_auc")
            }
            for name, m in table["models"].items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=["features", "training", "handbook", "handbook-backtest"])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(features_step(args.child[1])))  # noqa: T201 (child protocol)
        return
    have_handbook = bool(os.environ.get("HANDBOOK_DATA_DIR"))
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    if args.only in (None, "features"):
        if have_handbook:
            results["create_features_handbook"] = _child("features", "handbook")
        results["create_features_simulated_2m"] = _child("features", "simulated")
    if args.only in (None, "training"):
        results["default_run"] = training_step()
    if args.only in (None, "handbook") and have_handbook:
        results["handbook_chapter3"] = handbook_step()
    if args.only in (None, "handbook-backtest") and have_handbook:
        results["handbook_backtest"] = handbook_backtest_step()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))  # noqa: T201 (the benchmark's report)


if __name__ == "__main__":
    main()
