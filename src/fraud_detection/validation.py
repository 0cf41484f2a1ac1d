"""Start-up checks of the environment a run is about to use.

Each check returns a list of problems, each a sentence saying what is wrong and what
to do. Nothing here raises on the first problem: users get the whole list at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from fraud_detection.errors import StartupValidationError
from fraud_detection.mlflow_server import check_mlflow_server
from fraud_detection.object_store import check_object_store
from fraud_detection.streaming.clients import check_kafka

__all__ = ["StartupValidationError", "validate_environment"]


def check_required_env_vars(names: list[str]) -> list[str]:
    """Reports required environment variables that are unset or empty."""
    return [
        f"Environment variable {name} is not set: add it to .env (see .env.example)."
        for name in names
        if not os.environ.get(name)
    ]


def check_packages(minimum_versions: Mapping[str, str]) -> list[str]:
    """Reports packages that are missing or older than the configured minimum."""
    problems = []
    for package, minimum in minimum_versions.items():
        try:
            installed = metadata.version(package)
        except metadata.PackageNotFoundError:
            problems.append(
                f"Package {package} is not installed: run `make install` "
                f"(needs {package}>={minimum})."
            )
            continue
        try:
            too_old = Version(installed) < Version(str(minimum))
        except InvalidVersion:
            continue
        if too_old:
            problems.append(
                f"Package {package} {installed} is older than the required {minimum}: "
                "run `make install`."
            )
    return problems


def check_writable_paths(paths: list[str], project_path: Path) -> list[str]:
    """Reports local folders that cannot be created or written to."""
    problems = []
    for raw in paths:
        path = Path(raw)
        path = path if path.is_absolute() else project_path / path
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".write_probe"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            problems.append(
                f"Path {path} is not writable ({exc.strerror}): fix its permissions or change "
                "it in the catalog."
            )
    return problems


def validate_environment(config: Mapping[str, Any], project_path: Path) -> list[str]:
    """Runs every configured start-up check and returns all problems found.

    Args:
        config: The ``startup_validation`` section of ``validation.yml``.
        project_path: Root of the Kedro project, for relative paths.

    Returns:
        Problems found, empty when the environment is fit to run.
    """
    unknown = set(config) - {"required_env_vars", "packages", "writable_paths"} - set(_EXTRA_CHECKS)
    if unknown:
        return [f"Unknown start-up check(s) in validation.yml: {sorted(unknown)}."]
    problems = check_required_env_vars(list(config.get("required_env_vars", [])))
    problems += check_packages(dict(config.get("packages", {})))
    problems += check_writable_paths(list(config.get("writable_paths", [])), project_path)
    for name, check in _EXTRA_CHECKS.items():
        if name in config:
            problems += check(config[name])
    return problems


# Service checks (Kafka, object store, MLflow server) register here by name, so an
# environment enables one by adding its section to validation.yml.
_EXTRA_CHECKS: dict[str, Any] = {}
_EXTRA_CHECKS["kafka"] = check_kafka  # bootstrap servers answer in time
_EXTRA_CHECKS["object_store"] = check_object_store  # endpoint, keys, buckets writable
_EXTRA_CHECKS["mlflow_server"] = check_mlflow_server  # /health and its artifact store
