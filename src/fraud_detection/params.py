"""One strict base for every ``params:<group>`` model.

Each pipeline validates its parameter group with a subclass of ``StrictParams``. The
YAML files in ``conf/base/parameters_*.yml`` are the only source of defaults: the models
declare types and bounds, never values, so a key missing from the configuration fails
at start-up with its name instead of silently taking a second, different default.
"""

from __future__ import annotations

import datetime as dt
import difflib
import typing
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError


def _iso_date(value: Any) -> Any:
    """YAML reads ``2018-08-08`` as a date; parameters keep dates as ISO strings."""
    return value.isoformat() if isinstance(value, dt.date) else value


# A date or timestamp given in YAML either quoted or not, kept as an ISO string.
IsoDate = Annotated[str, BeforeValidator(_iso_date)]


class ParameterError(ValueError):
    """A parameter is unknown, missing or out of range.

    Attributes:
        key: Dotted name of the offending parameter, e.g. ``params:training.n_iter``.
        reason: What is wrong with it.
    """

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"Invalid parameter '{key}': {reason}")
        self.key = key
        self.reason = reason


class UnknownParameterError(ParameterError):
    """Keys that no field of the model declares (usually a typo)."""

    def __init__(self, path: str, unknown: list[str], allowed: list[str]) -> None:
        hints = [
            f"'{key}' -> '{close[0]}'"
            for key in unknown
            if (close := difflib.get_close_matches(key, allowed, n=1))
        ]
        hint = f"; did you mean {', '.join(hints)}?" if hints else ""
        ValueError.__init__(
            self,
            f"Unknown key(s) in {path}: {unknown}{hint} (allowed: {allowed})",
        )
        self.key = f"{path}.{unknown[0]}"
        self.reason = "unknown parameter"
        self.unknown = unknown


class StrictParams(BaseModel):
    """Frozen pydantic model that rejects unknown keys, naming them.

    Subclasses set ``group`` to the parameter group's name (``"training"``), used in
    error messages as ``params:training.<key>``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: ClassVar[str] = "params"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str | None = None) -> Self:
        """Validate a plain mapping (a Kedro ``params:`` entry).

        Args:
            data: The parameter group as loaded from YAML.
            path: Dotted name used in errors; default ``params:<group>``.

        Returns:
            The validated, immutable model.

        Raises:
            ParameterError: (a ``ValueError``) naming the unknown, missing or bad key.
        """
        path = path or f"params:{cls.group}"
        if not isinstance(data, Mapping):
            raise ParameterError(path, f"expected a mapping, got {type(data).__name__}")
        try:
            return cls.model_validate(dict(data))
        except ValidationError as err:
            raise _parameter_error(cls, err, path) from None


def _parameter_error(model: type[BaseModel], err: ValidationError, path: str) -> ParameterError:
    """The first problem of ``err`` as a ``ParameterError`` with the full dotted key."""
    problems = err.errors()
    extra = [p for p in problems if p["type"] == "extra_forbidden"]
    if extra:
        # All unknown keys of the same level at once, with their close matches.
        level = extra[0]["loc"][:-1]
        unknown = sorted(str(p["loc"][-1]) for p in extra if p["loc"][:-1] == level)
        owner: Any = model
        for part in level:
            owner = _field_model(owner, part)
        allowed = sorted(owner.model_fields) if owner is not None else []
        where = ".".join([path, *map(str, level)])
        return UnknownParameterError(where, unknown, allowed)
    # A bad value says more than the keys missing around it.
    first = next((p for p in problems if p["type"] != "missing"), problems[0])
    key = ".".join([path, *map(str, first["loc"])])
    reason = first["msg"]
    if first["type"] == "missing":
        reason = "missing (every default lives in conf/base/parameters_*.yml)"
    elif "input" in first and first["type"] not in {"value_error", "assertion_error"}:
        reason = f"{reason}, got {first['input']!r}"
    elif first["type"] == "value_error":
        reason = reason.removeprefix("Value error, ")
    return ParameterError(key, reason)


def _field_model(model: Any, part: Any) -> Any:
    """The nested model of field ``part`` of ``model``, or None."""
    if model is None or not isinstance(part, str) or part not in model.model_fields:
        return None
    annotation = model.model_fields[part].annotation
    # dict[str, Model] and Model | None fields hold models one level down too.
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None
