"""Credentials out of what the project logs or sends.

A URL may carry a user name and password (``https://user:password@host``, as
``MLFLOW_TRACKING_URI`` often does for a server behind basic auth). Every URL that
goes into a start-up problem, a log line, an alert or an alert link passes through
:func:`redact` first, which keeps the scheme, host and path and replaces the user
information with ``***``. This module imports nothing from the project.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "***"

# scheme://userinfo@ where userinfo stops at the first '/', whitespace or quote, so
# an '@' later in a path or query is left alone.
_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)"
    r"(?P<userinfo>[^/\s?#'\"<>@]+(?:@[^/\s?#'\"<>@]+)*)@"
)


def redact(text: str) -> str:
    """``text`` with the user information of every URL in it replaced by ``***``.

    Example::

        >>> redact("MLflow server https://alice:s3cret@mlflow.example/ is down")
        'MLflow server https://***@mlflow.example/ is down'
    """
    if "@" not in text:
        return text
    return _USERINFO.sub(lambda match: f"{match['scheme']}{REDACTED}@", text)


def redact_value(value: Any) -> Any:
    """:func:`redact` applied to every string in nested dicts, lists and tuples."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_value(item) for item in value]
    if isinstance(value, tuple):
        return tuple(redact_value(item) for item in value)
    return value
