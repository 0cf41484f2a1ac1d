"""Cost of reason codes per micro-batch, per model family, next to the score itself.

Run with ``make bench-reason-codes`` (never as a timed test). It simulates the default
population (``conf/base``), fits each family with the default settings of
``conf/base/parameters_training.yml`` (the larger value of each searched setting:
random forest 100 trees of depth 16, XGBoost 200 trees of depth 6, logistic
regression), wraps it as the real-time scorer does (``LoadedModel``, compiled path
verified), and times on real feature batches of 1, 10 and 100 rows:

- ``score``: ``predict_batch`` (what every prediction costs today);
- ``reasons``: ``explain_batch`` (the top three reasons of every row).

Prints a table of medians (ms per batch and per row); writes
``benchmarks/results/reason_codes.json`` (kept local).

Usage::

    python benchmarks/reason_codes.py [--days 60] [--repeats 200]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


class _Pyfunc:
    def __init__(self, model):
        self.model = model

    def unwrap_python_model(self):
        return self.model


def _families(training: dict) -> dict:
    from fraud_detection.model import import_class

    out = {}
    for name, spec in training["candidates"].items():
        init = dict(spec.get("init") or {})
        for key, values in (spec.get("search_space") or {}).items():
            init[key.removeprefix("classifier__")] = max(values)
        init["n_jobs" if "n_jobs" in init else "_"] = 1
        init.pop("_", None)
        out[name] = import_class(spec["classifier"])(**init)
    return out


def say(*parts: object) -> None:
    """The benchmark's report goes to stdout."""
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000.0)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100])
    args = parser.parse_args()
    load_before = os.getloadavg()

    from fraud_detection import schema
    from fraud_detection.features import create_features, feature_columns
    from fraud_detection.model import FraudModel, build_model_pipeline
    from fraud_detection.scoring.champion import LoadedModel
    from fraud_detection.scoring.features import OnlineFeatures, TransactionRecords
    from fraud_detection.scoring.service import _slice
    from fraud_detection.simulator import simulate_transactions

    conf = ROOT / "conf" / "base"
    simulation = yaml.safe_load((conf / "parameters_simulation.yml").read_text())["simulation"]
    features_p = yaml.safe_load((conf / "parameters_feature_engineering.yml").read_text())[
        "features"
    ]
    training = yaml.safe_load((conf / "parameters_training.yml").read_text())["training"]
    transactions = simulate_transactions({**simulation, "n_days": args.days})
    cut = int(len(transactions) * 0.8)
    history, live = transactions.iloc[:cut], transactions.iloc[cut:]
    features = create_features(history, features_p)
    numeric, categorical = feature_columns(features)
    online = OnlineFeatures(features_p)
    online.update_records(TransactionRecords.from_frame(history), build=False)
    batch = online.update_records(TransactionRecords.from_frame(live.iloc[:2000]))

    rows = []
    for name, classifier in _families(training).items():
        pipeline = build_model_pipeline(
            classifier, numeric, categorical, training["selection"], training["random_state"]
        )
        started = time.perf_counter()
        pipeline.fit(features[numeric + categorical], features[schema.LABEL].astype(int))
        fit_s = time.perf_counter() - started
        model = LoadedModel(
            name, "1", None, _Pyfunc(FraudModel(pipeline, 0.5, numeric + categorical, name))
        )
        model.predict_batch(_slice(batch, list(range(300))))  # verifies the compiled path
        model.explain_batch(_slice(batch, list(range(10))))  # builds shap's explainer once
        for size in args.sizes:
            parts = [_slice(batch, list(range(i, i + size))) for i in range(0, 1000, size)][:50]
            k = iter(range(10**9))
            score = _median_ms(
                lambda: model.predict_batch(parts[next(k) % len(parts)]), args.repeats
            )
            k = iter(range(10**9))
            reasons = _median_ms(
                lambda: model.explain_batch(parts[next(k) % len(parts)]), args.repeats
            )
            rows.append(
                {
                    "model": name,
                    "classifier": type(classifier).__name__,
                    "explainer": None if model.explainer is None else model.explainer.kind,
                    "rows": size,
                    "score_ms": round(score, 3),
                    "reasons_ms": round(reasons, 3),
                    "reasons_ms_per_row": round(reasons / size, 4),
                    "fit_s": round(fit_s, 1),
                }
            )
            say(json.dumps(rows[-1]))
    result = {"load_avg_before": load_before, "rows": rows, "days": args.days}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "reason_codes.json").write_text(json.dumps(result, indent=2))
    say("\n| model | rows per batch | score ms | reasons ms | reasons ms per row |")
    say("|---|---|---|---|---|")
    for r in rows:
        say(
            f"| {r['model']} | {r['rows']} | {r['score_ms']:.3f} | {r['reasons_ms']:.3f} | "
            f"{r['reasons_ms_per_row']:.4f} |"
        )


if __name__ == "__main__":
    main()
