"""What each alert says: one builder per event type, pure functions of the run's data.

Every alert carries the Kedro environment, the run id (the Kedro session id, or the
Airflow DAG run id) and the MLflow run id with a link to it when the tracking server
has a web UI, so whoever reads it can open the run in one click.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from fraud_detection.drift.verdict import drifted_features
from fraud_detection.errors import DataQualityError, StartupValidationError
from fraud_detection.redaction import redact, redact_value

PIPELINE_FAILED = "pipeline_failed"
DATA_QUALITY_FAILED = "data_quality_failed"
DRIFT_DETECTED = "drift_detected"
MODEL_PROMOTED = "model_promoted"
CHALLENGER_REJECTED = "challenger_rejected"
CHAMPION_NOT_COMPARABLE = "champion_not_comparable"
SERVICE_UNREACHABLE = "service_unreachable"
EVENT_TYPES = (
    PIPELINE_FAILED,
    DATA_QUALITY_FAILED,
    DRIFT_DETECTED,
    MODEL_PROMOTED,
    CHALLENGER_REJECTED,
    CHAMPION_NOT_COMPARABLE,
    SERVICE_UNREACHABLE,
)

# Long error messages (a whole failing batch in a pandas error) would drown a chat
# channel; the full text stays in the structured log.
MAX_ERROR_CHARS = 1500

# The attribute set on an exception once an alert has been sent for it, so a second
# reporter in the same process (the Airflow failure callback after the Kedro hook)
# does not send it twice.
ALERTED_MARKER = "_fraud_detection_alerted"


@dataclass(frozen=True)
class RunInfo:
    """Where an alert comes from.

    Attributes:
        environment: The Kedro environment (``local``, ``prod``, ...).
        run_id: The Kedro session id, or the Airflow DAG run id; ``None`` before a run
            has started (start-up checks).
        mlflow_run_id: The MLflow run the pipeline logs to, when one is active.
        mlflow_run_url: A link to that run in the MLflow UI, when the UI is known.
    """

    environment: str
    run_id: str | None = None
    mlflow_run_id: str | None = None
    mlflow_run_url: str | None = None


@dataclass(frozen=True)
class Table:
    """A small table every sink can render: text, Slack/Teams markdown, HTML."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def as_text(self) -> str:
        cells = [self.columns, *self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = [
            "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip()
            for row in cells
        ]
        lines.insert(1, "  ".join("-" * width for width in widths))
        return "\n".join(lines)


@dataclass(frozen=True)
class Alert:
    """One alert, independent of where it is sent.

    Attributes:
        event: One of ``EVENT_TYPES``; sinks are chosen per event in ``alerting.yml``.
        severity: ``error``, ``warning`` or ``info``.
        title: One line, shown as the subject / headline.
        summary: A few sentences saying what happened and what to do.
        run: Environment and run ids.
        facts: Short key/value pairs (node, counts, decision).
        table: Figures side by side (metrics, reasons, drifted features), if any.
        details: The structured data behind the alert, for logs and webhooks.
        created_at: UTC time the alert was built, ISO 8601.
    """

    event: str
    severity: str
    title: str
    summary: str
    run: RunInfo
    facts: dict[str, str] = field(default_factory=dict)
    table: Table | None = None
    details: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )

    def all_facts(self) -> dict[str, str]:
        """The event's facts followed by the run's identity."""
        identity = {
            "environment": self.run.environment,
            "run id": self.run.run_id or "not started",
            "MLflow run id": self.run.mlflow_run_id or "none",
        }
        if self.run.mlflow_run_url:
            identity["MLflow run"] = self.run.mlflow_run_url
        return {**self.facts, **identity}

    def as_text(self) -> str:
        """Plain-text body: summary, facts, table."""
        parts = [self.title, "", self.summary, ""]
        facts = self.all_facts()
        width = max(len(k) for k in facts)
        parts += [f"{key.ljust(width)}  {value}" for key, value in facts.items()]
        if self.table is not None:
            parts += ["", self.table.as_text()]
        return "\n".join(parts) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the structured log and generic consumers."""
        out = asdict(self)
        out["table"] = (
            None
            if self.table is None
            else {"columns": list(self.table.columns), "rows": [list(r) for r in self.table.rows]}
        )
        return out


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _error_text(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def pipeline_failed(error: BaseException, node_name: str | None, run: RunInfo) -> Alert:
    """A node (or the run around it) raised."""
    return Alert(
        event=PIPELINE_FAILED,
        severity="error",
        title=f"[{run.environment}] Pipeline run failed"
        + (f" in node {node_name}" if node_name else ""),
        summary=f"The run stopped: {_error_text(error)}",
        run=run,
        facts={"node": node_name or "unknown", "error type": type(error).__name__},
        details={
            "node": node_name,
            "error_type": type(error).__name__,
            "error": str(error),
            "traceback": "".join(traceback.format_exception(error)[-8:]),
        },
    )


def data_quality_failed(
    error: BaseException, report: Mapping[str, Any] | None, node_name: str | None, run: RunInfo
) -> Alert:
    """Too many invalid rows: ingestion stopped the run (``DataQualityError``)."""
    report = dict(report or {})
    reasons = dict(report.get("quarantined_by_reason") or {})
    table = None
    if reasons:
        table = Table(
            ("reason", "rows"),
            tuple(
                (reason, f"{count:,}")
                for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1])
            ),
        )
    facts = {"node": node_name or "unknown"}
    if report:
        facts.update(
            {
                "rows in": f"{report.get('rows_in', 0):,}",
                "rows quarantined": f"{report.get('rows_quarantined', 0):,}",
                "invalid share": f"{report.get('invalid_share', 0.0):.2%}",
                "limit": f"{report.get('max_invalid_share', 0.0):.2%}",
            }
        )
    return Alert(
        event=DATA_QUALITY_FAILED,
        severity="error",
        title=f"[{run.environment}] Data-quality limit exceeded: ingestion stopped the run",
        summary=(
            f"{_error_text(error)} The quarantined rows and their reasons are listed below; "
            "no model was trained on this data."
        ),
        run=run,
        facts=facts,
        table=table,
        details={"node": node_name, "report": report, "error": str(error)},
    )


DRIFT_STATISTICS = ("psi", "ks_statistic", "ks_pvalue", "chi2_pvalue")


def _moved_metrics(performance: Mapping[str, Any]) -> list[str]:
    """Metrics of the labelled window that degraded (or a fraud rate that shifted)."""
    return [
        m
        for m, v in performance.items()
        if isinstance(v, Mapping) and (v.get("degraded") or v.get("drifted"))
    ]


def drift_detected(verdict: Mapping[str, Any], run: RunInfo) -> Alert:
    """The monitoring verdict says the inputs, the scores or the model's performance
    moved away from the training-time reference.

    The verdict (written by the monitoring pipeline as ``monitoring_verdict``) is a
    mapping with at least ``drift_detected``; ``features`` (statistics per feature,
    ``drifted``), ``score`` (the score distribution's), ``performance`` (metrics where
    labels arrived, ``current`` against ``reference``), ``reasons``,
    ``recommendation``, ``window`` and ``model_version`` are used when present.
    """
    entries = drifted_features(verdict)
    drifted = [e for e in entries if e.get("drifted")]
    stats = [s for s in DRIFT_STATISTICS if any(s in e for e in entries)]
    table = None
    if entries:
        shown = drifted or entries[:10]
        table = Table(
            ("feature", *stats, "drifted"),
            tuple(
                (str(e["feature"]), *(_fmt(e.get(s)) for s in stats), _fmt(bool(e.get("drifted"))))
                for e in shown
            ),
        )
    score = verdict.get("score") or {}
    window = verdict.get("window") or {}
    performance = verdict.get("performance") or {}
    facts = {
        "drifted features": ", ".join(str(e["feature"]) for e in drifted) or "none",
        "score drift": _fmt(bool(score.get("drifted"))) if score else "not measured",
    }
    if verdict.get("recommendation"):
        facts["recommendation"] = str(verdict["recommendation"])
    if verdict.get("model_version"):
        facts["champion version"] = str(verdict["model_version"])
    if isinstance(window, Mapping) and window:
        facts["window"] = f"{window.get('start', '?')} to {window.get('end', '?')}" + (
            f" ({window['rows']:,} rows)" if window.get("rows") is not None else ""
        )
    for metric, values in performance.items():
        if isinstance(values, Mapping) and "current" in values:
            facts[metric] = (
                f"{_fmt(values.get('current'))} now vs {_fmt(values.get('reference'))} at training"
            )
    what = [f"{len(drifted)} feature(s)"] if drifted else []
    what += ["the score distribution"] if score.get("drifted") else []
    what += (
        [", ".join(m.replace("_", " ") for m in _moved_metrics(performance))]
        if _moved_metrics(performance)
        else []
    )
    reasons = [str(r) for r in verdict.get("reasons") or []]
    return Alert(
        event=DRIFT_DETECTED,
        severity="warning",
        title=f"[{run.environment}] Drift detected: "
        + (" and ".join(what) if what else "see the verdict"),
        summary=(
            "The current window differs from the training-time reference beyond the configured "
            "thresholds"
            + (": " + "; ".join(reasons) + "." if reasons else ".")
            + " Check the drifted features' sources; retraining is due if the change is real."
        ),
        run=run,
        facts=facts,
        table=table,
        details={"verdict": dict(verdict)},
    )


def promotion_decided(decision: Mapping[str, Any], run: RunInfo) -> Alert:
    """The promotion node's decision: the challenger became champion or was rejected;
    challenger and champion metrics side by side. A champion that could not be compared
    (``comparable: false``) gets its own event, a warning: someone has to look."""
    promoted = bool(decision.get("promote"))
    if decision.get("comparable") is False:
        return _champion_not_comparable(decision, promoted, run)
    challenger = (decision.get("challenger") or {}).get("metrics") or {}
    champion_entry = decision.get("champion") or {}
    champion = champion_entry.get("metrics") or {}
    rows = []
    for metric in sorted(set(challenger) | set(champion)):
        new, old = challenger.get(metric), champion.get(metric)
        gain = (
            f"{new - old:+.4f}"
            if isinstance(new, int | float) and isinstance(old, int | float)
            else "-"
        )
        rows.append((metric, _fmt(new), _fmt(old), gain))
    # Live evidence required first: the winner was made challenger, the champion kept.
    staged = decision.get("stage") == "challenger"
    facts = {
        "decision": "promoted" if promoted else "challenger" if staged else "rejected",
        "challenger run": str(decision.get("challenger_run_id") or "-"),
        "champion version": str(champion_entry.get("version") or "none"),
        "test rows": _fmt(decision.get("test_rows")),
    }
    return Alert(
        event=MODEL_PROMOTED if promoted else CHALLENGER_REJECTED,
        severity="info",
        title=f"[{run.environment}] "
        + (
            "New champion: challenger promoted"
            if promoted
            else "Challenger staged: champion kept until live evidence"
            if staged
            else "Challenger rejected: champion kept"
        ),
        summary=f"Reason: {decision.get('reason', '-')}.",
        run=run,
        facts=facts,
        table=Table(("metric", "challenger", "champion", "gain"), tuple(rows)) if rows else None,
        details={"decision": dict(decision)},
    )


def _champion_not_comparable(decision: Mapping[str, Any], promoted: bool, run: RunInfo) -> Alert:
    champion = decision.get("champion") or {}
    challenger = (decision.get("challenger") or {}).get("metrics") or {}
    return Alert(
        event=CHAMPION_NOT_COMPARABLE,
        severity="warning",
        title=f"[{run.environment}] Champion not comparable: "
        + ("challenger promoted on the floors alone" if promoted else "champion kept"),
        summary=(
            f"Champion version {champion.get('version', '?')} could not be compared with "
            f"the challenger: {decision.get('not_comparable_reason') or '-'}. "
            f"Decision: {decision.get('reason', '-')}."
        ),
        run=run,
        facts={
            "decision": "promoted" if promoted else "rejected",
            "challenger run": str(decision.get("challenger_run_id") or "-"),
            "champion version": str(champion.get("version") or "none"),
            "test rows": _fmt(decision.get("test_rows")),
        },
        table=Table(
            ("metric", "challenger"),
            tuple((metric, _fmt(value)) for metric, value in sorted(challenger.items())),
        )
        if challenger
        else None,
        details={"decision": dict(decision)},
    )


def service_unreachable(
    problems: Sequence[str], run: RunInfo, error: BaseException | None = None
) -> Alert:
    """Start-up checks failed: a service did not answer, or a variable, package or
    path the run needs is missing. No node ran."""
    return Alert(
        event=SERVICE_UNREACHABLE,
        severity="error",
        title=(
            f"[{run.environment}] Start-up checks failed: {len(problems)} problem(s), no node ran"
        ),
        summary="The run did not start. Each problem says what to fix:\n"
        + "\n".join(f"- {p}" for p in problems),
        run=run,
        facts={"problems": str(len(problems))},
        table=Table(("problem",), tuple((p,) for p in problems)) if problems else None,
        details={"problems": list(problems), "error": None if error is None else str(error)},
    )


def alert_for_error(error: BaseException, node_name: str | None, run: RunInfo) -> Alert:
    """The alert that describes a failed run: data-quality and start-up failures get
    their own event types, anything else is a pipeline failure."""

    if isinstance(error, DataQualityError):
        return data_quality_failed(error, getattr(error, "report", None), node_name, run)
    if isinstance(error, StartupValidationError):
        return service_unreachable(error.problems, run, error)
    return pipeline_failed(error, node_name, run)


def mlflow_run_url(
    ui_url: str | None, tracking_uri: str | None, experiment_id: str | None, run_id: str | None
) -> str | None:
    """Link to a run in the MLflow UI: ``ui_url`` if set, else the tracking URI when it
    is an HTTP(S) server (a SQLite file has no UI address)."""
    base = ui_url or (
        tracking_uri if tracking_uri and tracking_uri.startswith(("http://", "https://")) else None
    )
    if not base or not run_id or experiment_id is None:
        return None
    # A tracking URI with user:password@ would put the password in every alert link.
    return f"{redact(base).rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def redact_alert(alert: Alert) -> Alert:
    """``alert`` with the credentials of every URL in its text removed (``***@``)."""
    table = alert.table
    if table is not None:
        table = Table(tuple(redact_value(table.columns)), tuple(redact_value(table.rows)))
    run = alert.run
    if run.mlflow_run_url:
        run = replace(run, mlflow_run_url=redact(run.mlflow_run_url))
    return replace(
        alert,
        title=redact(alert.title),
        summary=redact(alert.summary),
        run=run,
        facts=redact_value(alert.facts),
        table=table,
        details=redact_value(alert.details),
    )
