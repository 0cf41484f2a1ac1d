"""A real S3-compatible object store (SeaweedFS) and a real MLflow tracking server for
the integration tests, started with the project's own scripts (scripts/s3.sh,
scripts/mlflow_server.sh) in temporary data dirs on free ports, and stopped at the end."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import s3fs

from tests.conftest import PROJECT_ROOT

S3_SCRIPT = PROJECT_ROOT / "scripts" / "s3.sh"
MLFLOW_SCRIPT = PROJECT_ROOT / "scripts" / "mlflow_server.sh"
BUCKET = "fraud-detection"
MLFLOW_BUCKET = "mlflow"
# Keys of the test store only; not the scripts' defaults, so nothing passes by accident.
ACCESS_KEY = "integration-access-key"
SECRET_KEY = "integration-secret-key-0123456789"
# A cold `scripts/s3.sh start` builds the weed binary first (about 10 minutes).
START_TIMEOUT_S = 1800


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_s3_port() -> int:
    """A port P such that P..P+3 (S3, master, volume, filer) and the same +10000 (gRPC)
    are all free, as scripts/s3.sh needs."""
    for _ in range(200):
        port = random.randrange(20000, 29990)
        if all(_port_free(p) for base in (port, port + 10000) for p in range(base, base + 4)):
            return port
    raise RuntimeError("no free block of ports for the S3 server")


def _script(
    script: Path, command: str, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(script), command],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Services:
    """The object store and the MLflow server, and how clients reach them."""

    root: Path
    s3_port: int
    mlflow_port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def script_env(self) -> dict[str, str]:
        return {
            "S3_DATA_DIR": str(self.root / "s3"),
            "S3_PORT": str(self.s3_port),
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "S3_BUCKETS": f"{BUCKET} {MLFLOW_BUCKET}",
            "PYTHON": sys.executable,
            "MLFLOW_DATA_DIR": str(self.root / "mlflow"),
            "MLFLOW_PORT": str(self.mlflow_port),
            "MLFLOW_WORKERS": "1",
            "MLFLOW_BIN": str(Path(sys.executable).with_name("mlflow")),
        }

    @property
    def client_env(self) -> dict[str, str]:
        """What `kedro run --env prod` needs (.env in production)."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            "S3_BUCKET": BUCKET,
            "MLFLOW_TRACKING_URI": self.tracking_uri,
        }

    def _run(self, script: Path, command: str, timeout: float = 120) -> None:
        result = _script(script, command, self.script_env, timeout)
        if result.returncode != 0:
            pytest.fail(
                f"{script.name} {command} failed (exit {result.returncode}); "
                f"see docs/object-store.md:\n{result.stderr[-4000:]}"
            )

    def start_s3(self) -> None:
        self._run(S3_SCRIPT, "start", timeout=START_TIMEOUT_S)

    def stop_s3(self) -> None:
        self._run(S3_SCRIPT, "stop")

    def start_mlflow(self) -> None:
        self._run(MLFLOW_SCRIPT, "start", timeout=300)

    def stop_mlflow(self) -> None:
        self._run(MLFLOW_SCRIPT, "stop")

    def fs(self) -> s3fs.S3FileSystem:
        """A fresh client (no listing cache shared with the run under test)."""
        return s3fs.S3FileSystem(
            key=ACCESS_KEY, secret=SECRET_KEY, endpoint_url=self.endpoint, skip_instance_cache=True
        )


@pytest.fixture(scope="session")
def services(tmp_path_factory) -> Iterator[Services]:
    if shutil.which("bash") is None or shutil.which("curl") is None:
        pytest.fail("bash and curl are needed to run scripts/s3.sh and scripts/mlflow_server.sh")
    started = Services(
        root=tmp_path_factory.mktemp("object-store"),
        s3_port=free_s3_port(),
        mlflow_port=free_port(),
    )
    try:
        started.start_s3()
        started.start_mlflow()
        yield started
    finally:
        # Throwaway data: no need to wait for the filer to flush its metadata log.
        env = {**started.script_env, "S3_STOP_TIMEOUT": "3", "MLFLOW_STOP_TIMEOUT": "10"}
        for script in (MLFLOW_SCRIPT, S3_SCRIPT):
            _script(script, "stop", env, timeout=120)
