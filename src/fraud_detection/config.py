"""The project's configuration, loaded the same way by every entry point.

A leaf module: it imports nothing from ``fraud_detection``, so the CLIs (producer,
scorer), the Airflow callbacks and ``settings.py`` can all use it without building
Kedro hooks or importing the service clients.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

logger = logging.getLogger(__name__)

CONFIG_LOADER_ARGS: dict[str, Any] = {
    "base_env": "base",
    "default_run_env": "local",
    # `oc.env` is registered for every config file (not only credentials) so that
    # environments can take paths and endpoints from the environment; secrets still
    # belong in credentials.yml only.
    "custom_resolvers": {"oc.env": oc.env},
    # Environments override single parameters (e.g. split.test_start) without
    # repeating the whole group.
    "merge_strategy": {"parameters": "soft", "validation": "soft", "alerting": "soft"},
    "config_patterns": {
        "validation": ["validation*", "validation*/**"],
        "alerting": ["alerting*", "alerting*/**"],
        # SparkSession settings; only conf/spark has them (fraud_detection.hooks.SparkHook).
        "spark": ["spark*", "spark*/**"],
    },
}

# Config groups that entry points outside a Kedro session may ask for by name.
EXTRA_PATTERNS: dict[str, list[str]] = {"mlflow": ["mlflow*", "mlflow*/**"]}


def load_env_file(project_path: str | Path) -> bool:
    """Load ``<project>/.env`` into the process environment, if it exists.

    Variables already set in the process win over the file, as users expect.

    Returns:
        Whether a file was loaded.
    """
    env_file = Path(project_path) / ".env"
    if not env_file.is_file():
        return False
    load_dotenv(env_file, override=False)
    logger.debug("Loaded environment variables from %s", env_file)
    return True


def load_project_config(
    project_path: str | Path,
    env: str | None = None,
    extra_patterns: Mapping[str, Sequence[str]] | None = None,
) -> OmegaConfigLoader:
    """The config loader of a Kedro environment, as a session would build it.

    Loads ``.env`` first, so ``${oc.env:...}`` values resolve.

    Args:
        project_path: The Kedro project root (holding ``conf/``).
        env: The Kedro environment; default ``$KEDRO_ENV``, else ``local``.
        extra_patterns: More config groups, e.g. ``{"mlflow": ["mlflow*"]}``.

    Returns:
        An ``OmegaConfigLoader``; ``loader["parameters"]`` etc. read the groups.
    """
    project = Path(project_path)
    load_env_file(project)
    args = dict(CONFIG_LOADER_ARGS)
    args["config_patterns"] = {
        **CONFIG_LOADER_ARGS["config_patterns"],
        **{name: list(patterns) for name, patterns in (extra_patterns or {}).items()},
    }
    return OmegaConfigLoader(
        conf_source=str(project / "conf"),
        env=env or os.environ.get("KEDRO_ENV") or None,
        **args,
    )


def config_section(loader: OmegaConfigLoader, name: str) -> dict[str, Any]:
    """One config group as a plain dict; ``{}`` when the environment has none."""
    try:
        return dict(loader[name] or {})
    except KeyError:
        return {}
