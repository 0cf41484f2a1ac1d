"""``create_features``: pandas vs Spark ``local[2]`` at growing sizes (``make bench-spark``).

For each size (default 2M, 10M and 30M rows):

1. a simulated table of that size, generated once and cached (``--cache``, default
   ``~/.cache/fraud-detection/bench``): one simulation with ``conf/base`` parameters
   (about 285k rows over 90 days), tiled with new customer, terminal and transaction
   ids, so each tile is another population over the same days (a parquet folder, one
   file per tile, written with pyarrow, microsecond timestamps);
2. ``create_features`` in pandas and ``create_features_spark`` on ``local[2]``, each in
   its own process: wall time of the features alone (the Spark job is forced with the
   ``noop`` sink) and the peak resident memory of the whole process tree (for Spark,
   the Python driver plus the JVM), sampled from /proc every 0.2 s. pandas is skipped
   where its estimated peak (the per-row peak of the previous size, else 3 kB a row)
   passes 80 % of the available memory;
3. ``kedro run --env spark --pipelines train_and_promote`` on the two smallest sizes,
   in a temporary copy of the project, with ``split.legit_sample_ratio`` set so the
   driver's search gets about 500k rows (:func:`legit_ratio`): wall time, peak RSS of
   the process tree, the promotion decision and the test AP.

Usage::

    python benchmarks/spark_features.py [--sizes 2000000 10000000 30000000] [--no-kedro]
    python benchmarks/spark_features.py --only-kedro   # keeps the feature rows measured before

Prints a markdown table and writes benchmarks/results/spark_features.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import kedro_env

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_CACHE = Path.home() / ".cache" / "fraud-detection" / "bench"
PANDAS_BYTES_PER_ROW = 3000  # prior for the first size; measured ones replace it


# --- data ---------------------------------------------------------------------------


def _base_table(cache: Path) -> Path:
    """The simulated base table (conf/base parameters), simulated once."""
    path = cache / "base.parquet"
    if path.exists():
        return path
    from kedro.config import OmegaConfigLoader

    from fraud_detection.simulator import simulate_transactions

    conf = OmegaConfigLoader(str(ROOT / "conf"), base_env="base", default_run_env="base")
    frame = simulate_transactions(conf["parameters"]["simulation"])
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    frame.to_parquet(tmp, coerce_timestamps="us", allow_truncated_timestamps=True, index=False)
    tmp.rename(path)
    return path


def table(rows: int, cache: Path) -> Path:
    """A parquet folder of about ``rows`` transactions: tiles of the base table, each
    with its own customers, terminals and transaction ids; the last tile keeps a share
    of the base table's customers (all their rows), so histories stay whole."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    folder = cache / f"transactions_{rows}"
    if (folder / "_DONE").exists():
        return folder
    base = pq.read_table(_base_table(cache))
    n = base.num_rows
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    # Customers with their row counts: a partial tile takes whole customers until it
    # has the rows it needs.
    per_customer = pc.value_counts(base["customer_id"])
    customers = per_customer.field("values")
    cumulative = np.cumsum(per_customer.field("counts").to_numpy())
    written, tile = 0, 0
    while written < rows:
        part = base
        if rows - written < n:
            keep = int(np.searchsorted(cumulative, rows - written)) + 1
            part = base.filter(pc.is_in(base["customer_id"], value_set=customers[:keep]))
        suffix = f"_{tile}"
        for col in ("transaction_id", "customer_id", "terminal_id"):
            index = part.schema.get_field_index(col)
            ids = part[col].cast(pa.string())
            tagged = pc.binary_join_element_wise(ids, pa.scalar(suffix, pa.string()), "")
            part = part.set_column(index, col, tagged)
        pq.write_table(part, folder / f"part-{tile:04d}.parquet")
        written += part.num_rows
        tile += 1
    (folder / "_DONE").write_text(json.dumps({"rows": written, "tiles": tile}))
    return folder


def _rows(folder: Path) -> int:
    return json.loads((folder / "_DONE").read_text())["rows"]


# --- measuring ----------------------------------------------------------------------


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (from /proc)."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack += [int(c) for c in fh.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


class PeakRss:
    """Samples the process tree's resident memory in a thread; ``peak`` in bytes."""

    def __init__(self, pid: int | None = None, every: float = 0.2) -> None:
        self.pid, self.every, self.peak = pid or os.getpid(), every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss(self.pid))
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _tree_rss(self.pid))


def _features_params() -> dict:
    from kedro.config import OmegaConfigLoader

    conf = OmegaConfigLoader(str(ROOT / "conf"), base_env="base", default_run_env="base")
    return conf["parameters"]["features"]


def pandas_child(folder: str) -> dict:
    import pandas as pd

    from fraud_detection.features import create_features

    params = _features_params()
    with PeakRss() as rss:
        frame = pd.read_parquet(folder)
        frame["timestamp"] = frame["timestamp"].astype("datetime64[ns]")
        start = time.perf_counter()
        out = create_features(frame, params)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_bytes": rss.peak, "rows": len(out)}


def spark_child(folder: str, master: str) -> dict:
    from fraud_detection.features.spark_engine import create_features_spark
    from fraud_detection.spark.session import spark_session

    params = _features_params()
    with PeakRss() as rss:
        spark = spark_session(
            {
                "spark.master": master,
                "spark.driver.memory": os.environ.get("SPARK_DRIVER_MEMORY", "4g"),
                "spark.sql.session.timeZone": "UTC",
                "spark.sql.shuffle.partitions": "8",
                "spark.sql.execution.arrow.pyspark.enabled": "true",
                "spark.ui.enabled": "false",
                "spark.ui.showConsoleProgress": "false",
            },
            app_name="bench_spark_features",
        )
        frame = spark.read.parquet(folder)
        rows = frame.count()
        start = time.perf_counter()
        create_features_spark(frame, params).write.format("noop").mode("overwrite").save()
        seconds = time.perf_counter() - start
    spark.stop()
    return {"seconds": seconds, "peak_rss_bytes": rss.peak, "rows": rows}


def _child(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        env=kedro_env(),
        check=False,
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _available_bytes() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


DRIVER_ROWS = 500_000  # the development rows the reduction hands the driver, about


def legit_ratio(rows: int) -> float:
    """``split.legit_sample_ratio`` for a table of ``rows``: ``conf/spark``'s 0.25, or
    less, so the driver's search gets about ``DRIVER_ROWS`` rows whatever the size
    (frauds are all kept; the weights keep metrics and thresholds unbiased)."""
    return round(min(0.25, DRIVER_ROWS / rows), 4)


def kedro_spark_run(folder: Path, master: str, ratio: float) -> dict:
    """Wall time of ``kedro run --env spark --pipelines train_and_promote`` on the
    table, in a temporary copy of the project (its own data folder and MLflow db),
    with ``split.legit_sample_ratio=ratio``: wall time, peak RSS of the process tree
    (driver + JVM) and the promotion decision. Its log: benchmarks/results/."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = (RESULTS / f"kedro_spark_{_rows(folder)}.log").open("w")
    with log, tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        for name in ("conf", "logs"):
            shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("*.log"))
        (project / "src").mkdir()
        for name in ("pyproject.toml", ".telemetry"):
            if (ROOT / name).exists():
                shutil.copy(ROOT / name, project / name)
        data = project / "data"
        (data / "01_raw" / "spark").mkdir(parents=True)
        (data / "01_raw" / "spark" / "transactions.parquet").symlink_to(folder)
        for sub in ("02_intermediate", "04_feature", "05_model_input", "06_models"):
            (data / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("07_model_output", "08_reporting"):
            (data / sub).mkdir(parents=True, exist_ok=True)
        env = kedro_env()
        env.update(
            MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlflow.db'}",
            SPARK_MASTER=master,
            SPARK_DATA_ROOT=str(data),
        )
        kedro = Path(sys.executable).with_name("kedro")
        start = time.perf_counter()
        process = subprocess.Popen(
            [
                str(kedro),
                "run",
                "--env",
                "spark",
                "--pipelines",
                "train_and_promote",
                "--params",
                f"split.legit_sample_ratio={ratio}",
            ],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        with PeakRss(process.pid) as rss:
            code = process.wait()
        seconds = time.perf_counter() - start
        if code != 0:
            raise SystemExit(f"kedro run --env spark failed ({code}): {log.name}")
        decision = json.loads((data / "08_reporting" / "promotion_report.json").read_text())
        metrics = decision["challenger"]["metrics"]
        return {
            "seconds": seconds,
            "peak_rss_bytes": rss.peak,
            "promoted": decision["promote"],
            "test_average_precision": metrics.get("average_precision"),
        }


def _gb(value: int | None) -> str:
    return f"{value / 2**30:.2f}" if value else "-"


def _s(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000_000, 10_000_000, 30_000_000])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--no-kedro", action="store_true", help="skip the kedro runs")
    parser.add_argument(
        "--only-kedro",
        action="store_true",
        help="only the kedro runs (the feature rows of an earlier run are kept)",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, folder, *rest = args.child
        result = pandas_child(folder) if kind == "pandas" else spark_child(folder, *rest)
        print(json.dumps(result))  # noqa: T201 (child protocol)
        return

    sizes = sorted(args.sizes)
    earlier = {}
    if args.only_kedro and (RESULTS / "spark_features.json").exists():
        saved = json.loads((RESULTS / "spark_features.json").read_text())
        earlier = {row["rows"]: row for row in saved["sizes"]}
    rows_out, bytes_per_row = [], PANDAS_BYTES_PER_ROW
    for i, size in enumerate(sizes):
        start = time.perf_counter()
        folder = table(size, args.cache)
        n = _rows(folder)
        ready = time.perf_counter() - start
        print(f"{n} rows ready in {ready:.1f} s: {folder}", flush=True)  # noqa: T201
        if args.only_kedro:
            row = earlier.get(n, {"rows": n, "pandas": {"skipped": "not run"}, "spark": {}})
        else:
            row = {"rows": n}
            estimate = bytes_per_row * n
            if estimate > 0.8 * _available_bytes():
                row["pandas"] = {"skipped": f"estimated peak {_gb(estimate)} GiB"}
            else:
                row["pandas"] = _child("pandas", str(folder))
                if "peak_rss_bytes" in row["pandas"]:
                    bytes_per_row = row["pandas"]["peak_rss_bytes"] / n
            row["spark"] = _child("spark", str(folder), args.master)
        if not args.no_kedro and i < 2:
            row["legit_sample_ratio"] = legit_ratio(n)
            row["kedro_run"] = kedro_spark_run(folder, args.master, row["legit_sample_ratio"])
        rows_out.append(row)
        print(json.dumps(row), flush=True)  # noqa: T201 (progress)

    # --only-kedro keeps the earlier rows of the sizes it did not run.
    measured = {row["rows"] for row in rows_out}
    rows_out += [row for n, row in sorted(earlier.items()) if n not in measured]
    rows_out.sort(key=lambda row: row["rows"])
    lines = [
        f"| rows | pandas s | pandas peak GiB | Spark {args.master} s | Spark peak GiB "
        "(driver + JVM) | `kedro run --env spark` s (legit ratio) | its peak GiB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows_out:
        pd_, sp = row["pandas"], row["spark"]
        pandas_s = _s(pd_.get("seconds")) if "skipped" not in pd_ else "skipped"
        ratio = f" ({row['legit_sample_ratio']})" if "legit_sample_ratio" in row else ""
        kedro = row.get("kedro_run", {})
        lines.append(
            f"| {row['rows']:,} | {pandas_s} | {_gb(pd_.get('peak_rss_bytes'))} | "
            f"{_s(sp.get('seconds'))} | {_gb(sp.get('peak_rss_bytes'))} | "
            f"{_s(kedro.get('seconds'))}{ratio} | {_gb(kedro.get('peak_rss_bytes'))} |"
        )
    table_md = "\n".join(lines)
    print(table_md)  # noqa: T201 (the benchmark's report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "spark_features.json").write_text(
        json.dumps({"master": args.master, "sizes": rows_out, "markdown": table_md}, indent=2)
    )


if __name__ == "__main__":
    main()
