"""The monitoring verdict as a typed value, and readers of saved verdicts.

Plain Python only: the alerts read verdicts in processes (Airflow callbacks) that should
not import pandas or scipy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class DriftVerdict:
    """What the monitoring pipeline concluded about a window (saved as JSON).

    ``to_dict`` gives the JSON form the catalog saves; ``from_dict`` reads it back
    (alerts and reports read verdicts written by earlier runs).
    """

    drift_detected: bool
    recommendation: str
    status: str
    reasons: tuple[str, ...]
    drifted_features: tuple[str, ...]
    features: Mapping[str, Any]
    window: Mapping[str, Any]
    thresholds: Mapping[str, Any]
    generated_at: str
    model_version: str | None = None
    reference: Mapping[str, Any] = field(default_factory=dict)
    score: Mapping[str, Any] | None = None
    performance: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: plain dicts and lists, keys as in earlier releases."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["reasons"], out["drifted_features"] = list(self.reasons), list(self.drifted_features)
        return {k: v for k, v in out.items() if v is not None or k == "model_version"}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftVerdict:
        """Reads a saved verdict; absent optional parts stay ``None`` or empty."""
        return cls(
            drift_detected=bool(data.get("drift_detected", False)),
            recommendation=str(data.get("recommendation", "none")),
            status=str(data.get("status", "ok")),
            reasons=tuple(data.get("reasons") or ()),
            drifted_features=tuple(data.get("drifted_features") or ()),
            features=dict(data.get("features") or {}),
            window=dict(data.get("window") or {}),
            thresholds=dict(data.get("thresholds") or {}),
            generated_at=str(data.get("generated_at", "")),
            model_version=data.get("model_version"),
            reference=dict(data.get("reference") or {}),
            score=data.get("score"),
            performance=data.get("performance"),
        )


def drifted_features(verdict: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The per-feature entries of a monitoring verdict, as a list of dicts with a
    ``feature`` key, drifted ones first.

    A verdict lists features either as ``{"features": {name: {...}}}`` or as
    ``{"features": [{"feature": name, ...}]}``; each entry may carry ``drifted`` and
    any statistics (``psi``, ``ks_statistic``, ``ks_pvalue``, ...).
    """
    raw = verdict.get("features") or {}
    if isinstance(raw, Mapping):
        entries = [
            {"feature": name, **(dict(v) if isinstance(v, Mapping) else {"value": v})}
            for name, v in raw.items()
        ]
    else:
        entries = [dict(v) for v in raw if isinstance(v, Mapping)]
    return sorted(entries, key=lambda e: (not e.get("drifted", False), -float(e.get("psi") or 0.0)))
