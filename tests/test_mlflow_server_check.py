"""The MLflow-server start-up check against an in-process HTTP stand-in; the real
server is exercised in tests/integration/object_store."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fraud_detection.mlflow_server import ARTIFACTS_ENDPOINT, check_mlflow_server


class FakeServer(ThreadingHTTPServer):
    """Answers each path with a configured (status, body)."""

    def __init__(self, routes: dict[str, tuple[int, str]]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes = routes
        self.seen: list[dict[str, str]] = []

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def do_GET(self) -> None:
        self.server.seen.append(dict(self.headers))
        status, body = self.server.routes.get(self.path.split("?")[0], (404, "not found"))
        payload = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture
def server(request) -> Iterator[FakeServer]:
    fake = FakeServer(request.param)
    thread = threading.Thread(target=fake.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.shutdown()
    fake.server_close()


HEALTHY = {"/health": (200, "OK"), ARTIFACTS_ENDPOINT: (200, "{}")}
NO_BUCKET = {
    "/health": (200, "OK"),
    ARTIFACTS_ENDPOINT: (
        404,
        json.dumps(
            {
                "error_code": "RESOURCE_DOES_NOT_EXIST",
                "message": (
                    "Failed to list artifacts in s3://mlflow/: The specified bucket does not exist"
                ),
            }
        ),
    ),
}


@pytest.mark.parametrize("server", [HEALTHY], indirect=True)
def test_healthy_server_passes_and_gets_the_clients_token(server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "t0k3n")
    assert check_mlflow_server({"tracking_uri": server.uri + "/"}) == []
    assert all(headers.get("Authorization") == "Bearer t0k3n" for headers in server.seen)


@pytest.mark.parametrize("server", [NO_BUCKET], indirect=True)
def test_server_that_cannot_reach_its_bucket_is_reported_with_its_own_message(server):
    (problem,) = check_mlflow_server({"tracking_uri": server.uri})
    assert problem.startswith(
        f"MLflow server {server.uri} cannot use its artifact store (HTTP 404: Failed to list "
        "artifacts in s3://mlflow/: The specified bucket does not exist)"
    )
    assert "--artifacts-destination" in problem
    assert check_mlflow_server({"tracking_uri": server.uri, "artifacts": False}) == []


@pytest.mark.parametrize("server", [{"/health": (503, "starting")}], indirect=True)
def test_unhealthy_server_is_reported(server):
    (problem,) = check_mlflow_server({"tracking_uri": server.uri})
    assert "answered /health with HTTP 503 (starting)" in problem


def test_unreachable_server_names_the_fix():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{s.getsockname()[1]}"
    assert check_mlflow_server({"tracking_uri": uri, "timeout_s": 2}) == [
        f"MLflow server {uri} is not reachable (ConnectionError): "
        "start it (`scripts/mlflow_server.sh start` locally) "
        "or set MLFLOW_TRACKING_URI to the server's URL."
    ]


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"tracking_uri": None}, "tracking_uri is empty: set MLFLOW_TRACKING_URI"),
        (
            {"tracking_uri": "sqlite:///mlflow.db"},
            (
                "MLFLOW_TRACKING_URI is 'sqlite:///mlflow.db'; "
                "this environment tracks to an MLflow server"
            ),
        ),
        ({"tracking_uri": "http://x", "timeout": 3}, "Unknown key(s) ['timeout']"),
    ],
)
def test_settings_that_cannot_be_a_server_are_reported(section, expected):
    (problem,) = check_mlflow_server(section)
    assert expected in problem
