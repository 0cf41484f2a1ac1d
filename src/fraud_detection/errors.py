"""Errors that cross layers: raised by a pipeline, read by the hooks and the alerts."""

from __future__ import annotations

from typing import Any

from fraud_detection.redaction import redact


class DataQualityError(ValueError):
    """The share of invalid rows is above the configured limit.

    ``report`` holds the same counts and reasons as the ``data_quality_report`` the
    run would have saved, for the alert that reports the stop.
    """

    def __init__(self, message: str, report: dict[str, Any] | None = None):
        super().__init__(message)
        self.report = report


class StartupValidationError(RuntimeError):
    """The environment is not fit to run; the message lists every problem found."""

    def __init__(self, env: str | None, problems: list[str]):
        # Printed, logged and sent in the service_unreachable alert: no credentials.
        problems = [redact(p) for p in problems]
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"Start-up validation failed for Kedro environment '{env}' "
            f"({len(problems)} problem(s)):\n{lines}"
        )
