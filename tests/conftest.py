"""Shared fixtures: small, hand-checkable transaction tables."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
# conf/logging.yml uses the JSON formatter, which Kedro loads only when allow-listed.
os.environ.setdefault("KEDRO_LOGGING_MODULE_ALLOWLIST", "pythonjsonlogger")

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def make_transactions(
    n: int = 400, days: int = 40, seed: int = 0, fraud_rate: float = 0.05
) -> pd.DataFrame:
    """Random canonical transactions over ``days`` days, in time order."""
    rng = np.random.default_rng(seed)
    ts = pd.Timestamp("2025-01-01") + pd.to_timedelta(
        np.sort(rng.uniform(0, days * 86400, n)).round(), unit="s"
    )
    return pd.DataFrame(
        {
            "transaction_id": [f"T{i:06d}" for i in range(n)],
            "timestamp": ts.astype("datetime64[ns]"),
            "customer_id": rng.choice([f"C{i}" for i in range(12)], n),
            "terminal_id": rng.choice([f"M{i}" for i in range(8)], n),
            "merchant_category": rng.choice(["grocery", "travel", "online_retail"], n),
            "amount": rng.gamma(2.0, 30.0, n).round(2),
            "currency": "EUR",
            "country": rng.choice(["FR", "BE", "DE"], n),
            "channel": rng.choice(["pos", "ecommerce"], n),
            "is_fraud": (rng.uniform(size=n) < fraud_rate).astype("int64"),
        }
    )


@pytest.fixture
def transactions() -> pd.DataFrame:
    return make_transactions()


def handbook_dir() -> Path:
    """The public Fraud Detection Handbook data that HANDBOOK_DATA_DIR points to.

    Without it the oracle tests skip on a contributor's machine, but fail in CI (``CI``
    set), so the oracle checks can never pass there by skipping.
    """
    raw = os.environ.get("HANDBOOK_DATA_DIR")
    if not raw:
        message = (
            "HANDBOOK_DATA_DIR is not set: point it at the Fraud Detection Handbook data "
            "(a folder with transactions.parquet; .ci/run looks next to the checkout)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    folder = Path(raw)
    if not (folder / "transactions.parquet").is_file():
        pytest.fail(f"HANDBOOK_DATA_DIR={raw!r} holds no transactions.parquet")
    return folder


HANDBOOK_MAPPING = {
    "transaction_id": "TRANSACTION_ID",
    "timestamp": "TX_DATETIME",
    "customer_id": "CUSTOMER_ID",
    "terminal_id": "TERMINAL_ID",
    "amount": "TX_AMOUNT",
    "is_fraud": "TX_FRAUD",
}


def assert_columns_equal(
    actual: pd.DataFrame, expected: pd.DataFrame, numeric: list[str], categorical: list[str]
) -> None:
    """Feature rows from two engines, aligned by row: numeric columns within 1e-9,
    categorical ones equal as text (what the engines' parity tests compare)."""
    for column in numeric:
        np.testing.assert_allclose(
            actual[column].to_numpy(float),
            expected[column].to_numpy(float),
            rtol=1e-9,
            atol=1e-9,
            err_msg=column,
        )
    for column in categorical:
        assert actual[column].astype(str).tolist() == expected[column].astype(str).tolist(), column


def base_parameters(group: str, **overrides) -> dict:
    """``params:<group>`` as ``conf/base`` defines it, with top-level keys overridden.

    The YAML files are the only source of parameter defaults; tests start from them.
    """
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="base")
    return {**loader["parameters"][group], **overrides}


@pytest.fixture(scope="session")
def spark():
    """One local SparkSession for the whole test session (about 15 s to start), with
    the settings of conf/spark/spark.yml that matter for results (UTC)."""
    pytest.importorskip("pyspark", reason="pyspark comes with the spark extra")
    from fraud_detection.spark.session import spark_session

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = spark_session(
        {
            "spark.master": "local[2]",
            "spark.driver.memory": "2g",
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": "4",
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
        },
        app_name="fraud_detection_tests",
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """A throwaway Redis server (Debian's redis-server, started by scripts/redis.sh on a
    free port) for the online-store tests; its URL."""
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "REDIS_DATA_DIR": str(tmp_path_factory.mktemp("redis")),
        "REDIS_PORT": str(port),
    }
    script = str(PROJECT_ROOT / "scripts" / "redis.sh")

    def run(command: str) -> str:
        done = subprocess.run(
            [script, command], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            pytest.fail(f"scripts/redis.sh {command} failed:\n{done.stderr[-3000:]}")
        return done.stdout.strip()

    run("start")
    try:
        yield run("url")
    finally:
        run("stop")
