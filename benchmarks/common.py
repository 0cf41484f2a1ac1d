"""What every benchmark shares: the environment of the Kedro processes it starts (no
telemetry prompt, the project's JSON log handler allowed), as the Makefile exports it."""

from __future__ import annotations

import os

KEDRO_ENV_VARS = {
    "KEDRO_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "KEDRO_LOGGING_MODULE_ALLOWLIST": "pythonjsonlogger",
}


def kedro_env() -> dict[str, str]:
    """This process's environment plus ``KEDRO_ENV_VARS``, for a child process."""
    return {**os.environ, **KEDRO_ENV_VARS}
