"""Kafka throughput, run with ``make bench-kafka`` (never as a timed test).

On a broker started with scripts/kafka.sh (temporary data dir, free ports) unless
``--bootstrap-servers`` names one:

1. producer: N simulated transactions as JSON (``produce_frame``, acks=all), msgs/s;
2. ``KafkaDataset.load`` of the whole topic plus saving the frame to parquet
   (``pandas.ParquetDataset``) and committing the offsets, msgs/s;
3. a bare kafka-python loop over the same topic that only decodes each message with
   orjson (the client's own limit), msgs/s, with the same fetch settings;

and the ratio of 2 to 3 (target: >= 0.8). Steps 2 and 3 alternate ``--repeat`` times
and the medians are reported. Each step also records the CPU seconds of this process
(all its threads): on a shared machine the wall clock mostly measures the other work,
while the CPU time per message is what the code costs.

Usage::

    python benchmarks/kafka_throughput.py [--messages 1000000] [--repeat 3]

Results are printed and written to benchmarks/results/kafka_throughput.local.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TOPIC = "transactions-bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _broker(command: str, data_dir: Path, port: int, controller_port: int) -> None:
    env = {
        **os.environ,
        "KAFKA_DATA_DIR": str(data_dir),
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(controller_port),
        "PYTHON": sys.executable,
    }
    subprocess.run(["bash", str(ROOT / "scripts" / "kafka.sh"), command], env=env, check=True)


def _transactions(n: int):
    """At least ``n`` simulated transactions (the default mix, ~3.7x the customers)."""
    import yaml

    from fraud_detection.simulator import simulate_transactions

    params = yaml.safe_load((ROOT / "conf/base/parameters_simulation.yml").read_text())[
        "simulation"
    ]
    scale = max(1.0, n / 280_000)
    params.update(n_customers=int(1500 * scale) + 100, n_terminals=int(3000 * scale) + 200, seed=1)
    frame = simulate_transactions(params)
    if len(frame) < n:
        raise RuntimeError(f"the simulator gave {len(frame)} transactions, fewer than {n}")
    return frame.head(n)


def produce(servers: str, n: int) -> dict:
    from kafka import KafkaAdminClient, KafkaProducer

    from fraud_detection.streaming.publish import PRODUCER_DEFAULTS, produce_frame

    frame = _transactions(n)
    admin = KafkaAdminClient(bootstrap_servers=servers)
    admin.create_topics({TOPIC: {"num_partitions": 3, "replication_factor": 1}})
    admin.close()
    producer = KafkaProducer(bootstrap_servers=servers, **PRODUCER_DEFAULTS)
    report = produce_frame(producer, TOPIC, frame, progress_every_s=30)
    producer.close()
    if not report.ok:
        raise RuntimeError(report.summary())
    return {
        "messages": report.acknowledged,
        "seconds": round(report.elapsed_s, 2),
        "msgs_per_s": round(report.rate),
    }


def through_dataset(servers: str, n: int, workdir: Path) -> dict:
    from kedro_datasets.pandas import ParquetDataset

    from fraud_detection.datasets.kafka_dataset import KafkaDataset

    dataset = KafkaDataset(
        topic=TOPIC,
        bootstrap_servers=servers,
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        dead_letter_topic=f"{TOPIC}.dlq",
    )
    target = ParquetDataset(filepath=str(workdir / "batch.parquet"))
    started, cpu = time.perf_counter(), time.process_time()
    frame = dataset.load()
    target.save(frame)
    dataset.commit()
    if len(frame) != n:
        raise RuntimeError(f"KafkaDataset returned {len(frame)} rows, expected {n}")
    return _timing(n, started, cpu)


def _timing(n: int, started: float, cpu: float) -> dict:
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    return {
        "messages": n,
        "seconds": round(seconds, 2),
        "msgs_per_s": round(n / seconds),
        "cpu_seconds": round(cpu_seconds, 2),
        "msgs_per_cpu_s": round(n / cpu_seconds),
    }


def bare_loop(servers: str, n: int) -> dict:
    import orjson
    from kafka import KafkaConsumer, TopicPartition

    from fraud_detection.datasets.kafka_dataset import KafkaDataset

    consumer_args = {
        k: v
        for k, v in KafkaDataset.DEFAULT_LOAD_ARGS.items()
        if k
        not in {
            "max_messages",
            "max_seconds",
            "stall_timeout_s",
            "poll_timeout_ms",
            "decode_chunk_size",
            "progress_every_s",
        }
    }
    started, cpu = time.perf_counter(), time.process_time()
    consumer = KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False, **consumer_args)
    tps = [TopicPartition(TOPIC, p) for p in sorted(consumer.partitions_for_topic(TOPIC))]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    end = consumer.end_offsets(tps)
    decoded = 0
    while decoded < n:
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                orjson.loads(record.value)
            decoded += len(records)
    consumer.close(autocommit=False)
    assert sum(end.values()) == decoded == n
    return _timing(n, started, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bootstrap-servers", help="use this broker instead of starting one")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="kafka-bench-") as tmp:
        workdir = Path(tmp)
        broker = None
        servers = args.bootstrap_servers
        if servers is None:
            broker = (workdir / "kafka", _free_port(), _free_port())
            _broker("start", *broker)
            servers = f"127.0.0.1:{broker[1]}"
        try:
            result = {"producer": produce(servers, args.messages), "dataset": [], "bare": []}
            for _ in range(args.repeat):
                result["dataset"].append(through_dataset(servers, args.messages, workdir))
                result["bare"].append(bare_loop(servers, args.messages))
        finally:
            if broker is not None:
                _broker("stop", *broker)

    def median(step: str, key: str) -> float:
        return statistics.median(r[key] for r in result[step])

    dataset, bare = median("dataset", "msgs_per_s"), median("bare", "msgs_per_s")
    dataset_cpu, bare_cpu = median("dataset", "msgs_per_cpu_s"), median("bare", "msgs_per_cpu_s")
    from importlib.metadata import version

    summary = {
        "messages": args.messages,
        "producer_msgs_per_s": result["producer"]["msgs_per_s"],
        "dataset_to_parquet_msgs_per_s": round(dataset),
        "bare_poll_json_msgs_per_s": round(bare),
        "ratio": round(dataset / bare, 3),
        "dataset_to_parquet_msgs_per_cpu_s": round(dataset_cpu),
        "bare_poll_json_msgs_per_cpu_s": round(bare_cpu),
        "cpu_ratio": round(dataset_cpu / bare_cpu, 3),
        "runs": result,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "kafka-python": version("kafka-python"),
            "load_average": os.getloadavg(),
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "kafka_throughput.local.json").write_text(json.dumps(summary, indent=2))
    lines = [
        f"messages                        {args.messages:>12,}",
        f"producer (acks=all)             {summary['producer_msgs_per_s']:>12,} msgs/s",
        f"KafkaDataset -> parquet         {summary['dataset_to_parquet_msgs_per_s']:>12,} msgs/s "
        f"(median of {args.repeat})",
        f"bare poll + orjson              {summary['bare_poll_json_msgs_per_s']:>12,} msgs/s "
        f"(median of {args.repeat})",
        f"ratio (wall clock)              {summary['ratio']:>12}",
        f"KafkaDataset -> parquet         {summary['dataset_to_parquet_msgs_per_cpu_s']:>12,} "
        "msgs per CPU-second",
        f"bare poll + orjson              {summary['bare_poll_json_msgs_per_cpu_s']:>12,} "
        "msgs per CPU-second",
        f"ratio (CPU time)                {summary['cpu_ratio']:>12}",
        f"load average during the run     {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
