"""Start-up check of an MLflow tracking server: it answers ``/health`` and, when it
proxies artifacts (``mlflow server --serve-artifacts``), can list its artifact store.

Listing the artifact root is read-only and makes the server touch its bucket, so a
server started with the wrong S3 keys or a missing ``mlflow`` bucket is caught here
rather than when the first plot is uploaded mid-run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import requests

from fraud_detection.redaction import redact

DEFAULT_TIMEOUT_S = 5.0
ARTIFACTS_ENDPOINT = "/api/2.0/mlflow-artifacts/artifacts"
_FIX_URI = (
    "start it (`scripts/mlflow_server.sh start` locally) or set MLFLOW_TRACKING_URI to the "
    "server's URL"
)


def _auth() -> dict[str, Any]:
    """The same credentials the MLflow client sends (basic auth or a bearer token)."""
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"headers": {"Authorization": f"Bearer {token}"}}
    user, password = (
        os.environ.get("MLFLOW_TRACKING_USERNAME"),
        os.environ.get("MLFLOW_TRACKING_PASSWORD"),
    )
    return {"auth": (user, password or "")} if user else {}


def _error_message(response: requests.Response) -> str:
    try:
        return str(response.json().get("message") or response.text)
    except ValueError:
        return response.text.strip()[:300]


def check_mlflow_server(section: Mapping[str, Any]) -> list[str]:
    """Start-up check: the tracking server answers and its artifact store works.

    Args:
        section: ``startup_validation.mlflow_server`` from ``validation.yml``:
            ``tracking_uri`` (an ``http(s)://`` URL, required), ``timeout_s``
            (default 5) and ``artifacts`` (default true: the server proxies
            artifacts, check that it can list them).

    Returns:
        Problems found, empty when the server is fit to use.
    """
    unknown = sorted(set(section) - {"tracking_uri", "timeout_s", "artifacts"})
    if unknown:
        return [
            f"Unknown key(s) {unknown} in startup_validation.mlflow_server; expected "
            "tracking_uri, timeout_s, artifacts."
        ]
    uri = str(section.get("tracking_uri") or "").rstrip("/")
    if not uri:
        return [
            "startup_validation.mlflow_server.tracking_uri is empty: set MLFLOW_TRACKING_URI "
            "to the MLflow server's http(s):// URL (`scripts/mlflow_server.sh env` prints the "
            "local one)."
        ]
    if urlparse(uri).scheme not in {"http", "https"}:
        return [
            f"MLFLOW_TRACKING_URI is {redact(uri)!r}; this environment tracks to an MLflow server: "
            "set it to the "
            "server's http(s):// URL (`scripts/mlflow_server.sh env` prints the local one)."
        ]
    timeout = float(section.get("timeout_s", DEFAULT_TIMEOUT_S))
    problem = _check_health(uri, timeout)
    if problem is None and section.get("artifacts", True):
        problem = _check_artifacts(uri, timeout)
    return [problem] if problem else []


def _check_health(uri: str, timeout: float) -> str | None:
    """The problem with ``GET /health``, or ``None`` when it answers 200."""
    shown = redact(uri)  # the URL may carry user:password@; the request uses it, no text does
    try:
        health = requests.get(f"{uri}/health", timeout=timeout, **_auth())
    except requests.Timeout:
        return (
            f"MLflow server {shown} did not answer /health within {timeout:g}s: check the server, "
            f"or {_FIX_URI}."
        )
    except requests.RequestException as exc:
        return f"MLflow server {shown} is not reachable ({type(exc).__name__}): {_FIX_URI}."
    if health.status_code != 200:
        return (
            f"MLflow server {shown} answered /health with HTTP {health.status_code} "
            f"({redact(_error_message(health))}): check that the URL is an MLflow server and the "
            "server's log."
        )
    return None


def _check_artifacts(uri: str, timeout: float) -> str | None:
    """The problem with listing the proxied artifact store, or ``None``."""
    shown = redact(uri)
    try:
        listing = requests.get(f"{uri}{ARTIFACTS_ENDPOINT}", timeout=timeout, **_auth())
    except requests.RequestException as exc:
        return (
            f"MLflow server {shown} did not list its artifact store ({type(exc).__name__}): "
            "check the server's log."
        )
    if listing.status_code != 200:
        return (
            f"MLflow server {shown} cannot use its artifact store (HTTP {listing.status_code}: "
            f"{redact(_error_message(listing))}): check the server's --artifacts-destination "
            "bucket and its S3 keys and endpoint (MLFLOW_S3_ENDPOINT_URL), or set artifacts: "
            "false if it does not serve artifacts."
        )
    return None
