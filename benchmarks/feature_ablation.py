"""Which optional features pay, decided on the validation folds only (``make
bench-features-ablation``).

For each variant of ``params:features`` (the Kedro environment's, default
``handbook``, plus the variant's overrides) the script builds the feature table of the
Handbook transactions, splits it as the environment does and searches one family with
one fixed setting on the prequential validation folds. It prints each variant's mean
validation AP (and per fold) and the seconds it took. The test window is never scored
here: choosing features on it would leak the test week into the model's design.

Usage::

    HANDBOOK_DATA_DIR=/path/to/handbook python benchmarks/feature_ablation.py \
        [--env handbook] [--variants base terminal_amount recency both]

Results are written to benchmarks/results/feature_ablation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from fraud_detection.config import load_project_config
from fraud_detection.features import create_features
from fraud_detection.model_search import tune_candidates
from fraud_detection.quality import standardise_columns, validate_transactions
from fraud_detection.splits import split_out_of_time

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

VARIANTS: dict[str, dict] = {
    "base": {},
    "terminal_amount": {"terminal_amount_windows": ["7D", "30D"]},
    "recency": {"customer_terminal_recency": True},
    "both": {"terminal_amount_windows": ["7D", "30D"], "customer_terminal_recency": True},
}

# One family, one setting: the variants differ by their features alone.
PROBE = {
    "xgboost": {
        "classifier": "xgboost.XGBClassifier",
        "init": {
            "max_depth": 6,
            "learning_rate": 0.05,
            "subsample": 0.8,
            "colsample_bytree": 0.6,
            "tree_method": "hist",
            "n_jobs": 2,
            "random_state": 42,
        },
        "resampling": ["none"],
        "search_space": {},
        "staged_trees": [100, 200, 400],
    }
}


def say(*parts: object) -> None:
    """The benchmark's report goes to stdout."""
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="handbook")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    os.environ.setdefault(
        "HANDBOOK_TRANSACTIONS_PATH",
        str(Path(os.environ["HANDBOOK_DATA_DIR"]) / "transactions.parquet"),
    )
    params = load_project_config(ROOT, env=args.env)["parameters"]
    raw = pd.read_parquet(os.environ["HANDBOOK_TRANSACTIONS_PATH"])
    valid, _, _ = validate_transactions(
        standardise_columns(raw, params["ingestion"]), params["ingestion"]
    )
    del raw
    training = {**params["training"], "candidates": PROBE, "families": None, "n_iter": 1}
    out = {"load_average_at_start": os.getloadavg()[0], "probe": PROBE, "variants": {}}
    for name in args.variants:
        start = time.perf_counter()
        features = create_features(valid, {**params["features"], **VARIANTS[name]})
        development, _, plan = split_out_of_time(features, params["split"])
        results, predictions = tune_candidates(development, plan, training)
        family = next(iter(PROBE))
        folds = [
            float(average_precision_score(g["label"], g["score"], sample_weight=g["weight"]))
            for _, g in predictions[predictions["candidate"] == family].groupby("fold")
        ]
        out["variants"][name] = {
            "overrides": VARIANTS[name],
            "features": int(features.shape[1]),
            "validation_ap": round(results[family]["validation_average_precision"], 4),
            "validation_ap_per_fold": [round(a, 4) for a in folds],
            "best_params": results[family]["best_params"],
            "seconds": round(time.perf_counter() - start, 1),
        }
        say(name, json.dumps(out["variants"][name]))
    base = out["variants"].get("base")
    if base:
        for name, v in out["variants"].items():
            diffs = np.subtract(v["validation_ap_per_fold"], base["validation_ap_per_fold"])
            v["gain_over_base"] = round(v["validation_ap"] - base["validation_ap"], 4)
            v["folds_better_than_base"] = int((diffs > 0).sum())
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "feature_ablation.json").write_text(json.dumps(out, indent=2))
    say(f"{'variant':16} {'val AP':>8} {'gain':>8} {'folds up':>8} {'s':>6}")
    for name, v in out["variants"].items():
        say(
            f"{name:16} {v['validation_ap']:8.4f} {v.get('gain_over_base', 0):8.4f} "
            f"{v.get('folds_better_than_base', '-'):>8} {v['seconds']:6.0f}"
        )


if __name__ == "__main__":
    main()
