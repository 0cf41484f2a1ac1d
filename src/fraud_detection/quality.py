"""Data-quality guards of incoming transactions: column mapping, validation with
quarantine, and the quality gate (the ``ingestion`` and ``monitoring`` pipelines and
the producer CLI use them).

Every input row ends up either in the validated table or in quarantine with the
reasons it failed; the counts always add up, and the run stops when the invalid share
passes the configured limit.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import AfterValidator, Field, field_validator

from fraud_detection import schema
from fraud_detection.errors import DataQualityError
from fraud_detection.params import IsoDate, StrictParams
from fraud_detection.schema import TRANSACTION_SCHEMA

logger = logging.getLogger(__name__)

QUARANTINE_REASON = "quarantine_reason"


def _duration(text: str) -> str:
    try:
        pd.Timedelta(text)
    except ValueError as exc:
        raise ValueError(f"invalid duration {text!r} (use e.g. '1h', '1D')") from exc
    return text


class IngestionParams(StrictParams):
    """Typed ``params:ingestion`` (defaults in ``conf/base/parameters_ingestion.yml``)."""

    group: ClassVar[str] = "ingestion"

    column_mapping: dict[str, str]
    max_invalid_share: float = Field(ge=0, le=1)
    quality_gate_min_rows: int = Field(ge=0)
    min_amount: float
    max_amount: float
    min_timestamp: IsoDate
    max_future: Annotated[str, AfterValidator(_duration)]
    reference_time: IsoDate | None
    timestamp_unit: str | None

    @field_validator("column_mapping", mode="before")
    @classmethod
    def _canonical_columns(cls, mapping: Any) -> Any:
        mapping = dict(mapping or {})
        bad = sorted(set(mapping) - set(schema.COLUMN_NAMES))
        if bad:
            raise ValueError(
                f"column_mapping maps unknown canonical column(s) {bad}; "
                f"canonical columns are {list(schema.COLUMN_NAMES)}"
            )
        return mapping


def standardise_columns(raw: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Renames source columns to the canonical schema and fills absent optional ones.

    ``params['column_mapping']`` maps canonical names to source names
    (``{"amount": "TX_AMOUNT"}``). Columns outside the schema are kept as extras.

    Raises:
        ValueError: When a required column is absent, naming it and the mapping.
    """
    p = IngestionParams.from_dict(params)
    missing_sources = sorted(src for src in p.column_mapping.values() if src not in raw.columns)
    if missing_sources:
        raise ValueError(
            f"Column mapping names source column(s) {missing_sources} that the raw table "
            f"does not have; it has {list(raw.columns)}"
        )
    # Canonical columns that the source also carries under their canonical name would
    # clash with a mapped one: the mapping wins and the unmapped duplicate is dropped.
    renamed_targets = set(p.column_mapping)
    keep = [c for c in raw.columns if c not in renamed_targets or c in p.column_mapping.values()]
    out = raw[keep].rename(columns={src: dst for dst, src in p.column_mapping.items()})
    missing = [c.name for c in TRANSACTION_SCHEMA if c.required and c.name not in out.columns]
    if missing:
        raise ValueError(
            f"Required column(s) {missing} are missing from the raw transactions; map them "
            "with params:ingestion.column_mapping (canonical name: source name)"
        )
    for col in TRANSACTION_SCHEMA:
        if col.name not in out.columns:
            out[col.name] = col.default if col.kind != "label" else pd.NA
    ordered = list(schema.COLUMN_NAMES) + [c for c in out.columns if c not in schema.COLUMN_NAMES]
    return out[ordered]


def _coerce(frame: pd.DataFrame, unit: str | None) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Casts canonical columns to their types; returns failures per column as masks.

    Timestamps that parse but do not fit pandas' nanosecond range (year 0001, 9999)
    are not type failures: they come back under ``_before_range`` / ``_after_range``
    so the bound rules name them.
    """
    out = frame.copy()
    failed: dict[str, pd.Series] = {}
    for col in TRANSACTION_SCHEMA:
        values = frame[col.name]
        present = values.notna()
        if col.kind == "datetime":
            if unit and pd.api.types.is_numeric_dtype(values):
                cast = pd.to_datetime(values, unit=unit, errors="coerce")
            else:
                cast = pd.to_datetime(values, errors="coerce", format="mixed")
            if getattr(cast.dt, "tz", None) is not None:
                cast = cast.dt.tz_convert("UTC").dt.tz_localize(None)
            failed["_before_range"] = cast < pd.Timestamp.min
            failed["_after_range"] = cast > pd.Timestamp.max
            cast = cast.mask(failed["_before_range"] | failed["_after_range"])
            present = present & ~failed["_before_range"] & ~failed["_after_range"]
            cast = cast.astype("datetime64[ns]")
        elif col.kind == "float":
            cast = pd.to_numeric(values, errors="coerce").astype("float64")
        elif col.kind == "label":
            cast = pd.to_numeric(values, errors="coerce").astype("Float64")
        else:
            cast = values.astype("string").str.strip()
            cast = cast.mask(cast == "")
            present = present & cast.notna()
        failed[col.name] = present & cast.isna()
        out[col.name] = cast
    return out, failed


def validate_transactions(
    transactions: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Checks schema, types, nulls, ranges, timestamps and duplicate ids.

    Never raises on bad rows: the quarantine and the report are saved even when the
    run is about to stop, so users can see why; ``enforce_quality_limit`` stops it.

    Returns:
        The valid rows (typed), the quarantined rows (original values as text plus a
        ``quarantine_reason`` listing every failed rule), and a report with counts.
    """
    p = IngestionParams.from_dict(params)
    n_in = len(transactions)
    typed, failed = _coerce(transactions, p.timestamp_unit)
    reasons: dict[str, pd.Series] = {}
    for col in TRANSACTION_SCHEMA:
        if not col.nullable:
            # The typed value: an id of blanks is missing too, not a valid null.
            missing = typed[col.name].isna() & ~failed[col.name]
            if col.kind == "datetime":
                missing &= ~failed["_before_range"] & ~failed["_after_range"]
            reasons[f"missing_{col.name}"] = missing
        reasons[f"bad_type_{col.name}"] = failed[col.name]
    amount = typed[schema.AMOUNT]
    reasons["amount_out_of_range"] = amount.notna() & (
        (amount < p.min_amount) | (amount > p.max_amount)
    )
    label = typed[schema.LABEL]
    reasons["label_not_0_or_1"] = label.notna() & ~label.isin([0, 1])
    reference = (
        pd.Timestamp(p.reference_time)
        if p.reference_time
        else pd.Timestamp.now(tz="UTC").tz_localize(None)
    )
    ts = typed[schema.TIMESTAMP]
    too_old = ts.notna() & (ts < pd.Timestamp(p.min_timestamp))
    in_future = ts.notna() & (ts > reference + pd.Timedelta(p.max_future))
    reasons["timestamp_too_old"] = too_old | failed["_before_range"]
    reasons["timestamp_in_future"] = in_future | failed["_after_range"]
    ids = typed[schema.TRANSACTION_ID]
    reasons["duplicate_transaction_id"] = ids.notna() & ids.duplicated(keep="first")

    reason_frame = pd.DataFrame(
        {k: v.fillna(False).to_numpy(bool) for k, v in reasons.items()}, index=transactions.index
    )
    invalid = reason_frame.any(axis=1).to_numpy()
    reason_text = _join_reasons(reason_frame.loc[invalid])

    valid = typed.loc[~invalid].copy()
    valid[schema.LABEL] = valid[schema.LABEL].astype("Int8")
    quarantine = transactions.loc[invalid].astype("string").copy()
    quarantine[QUARANTINE_REASON] = reason_text.to_numpy()

    n_bad = int(invalid.sum())
    by_reason = {k: int(v) for k, v in reason_frame.sum().items() if v}
    report = quality_report(n_in, n_bad, p.max_invalid_share, by_reason)
    share = report["invalid_share"]
    logger.info(
        "Ingestion: %d rows in = %d valid + %d quarantined (%.3f%%); reasons %s",
        n_in,
        n_in - n_bad,
        n_bad,
        100 * share,
        by_reason,
    )
    return valid.reset_index(drop=True), quarantine.reset_index(drop=True), report


def enforce_quality_limit(
    screened: pd.DataFrame, report: dict[str, Any], params: dict[str, Any]
) -> pd.DataFrame:
    """Passes the valid rows on, or stops the run when too many rows were bad.

    The share is that of the rows ``validate_transactions`` judged (in the ``kafka``
    environment: the batch just consumed, before its offsets are committed). A batch
    of fewer than ``quality_gate_min_rows`` rows passes with a warning whatever its
    share, so one bad message in a tiny batch cannot stop a stream; its bad rows are
    quarantined all the same.

    Raises:
        DataQualityError: When the invalid share is above ``max_invalid_share``,
            with the counts and reasons (the quarantine is already saved).
    """
    p = IngestionParams.from_dict(params)
    if (
        report["rows_valid"] + report["rows_quarantined"] != report["rows_in"]
        or len(screened) != report["rows_valid"]
    ):
        raise DataQualityError(f"Ingestion counts do not add up: {report}", report=report)
    too_many = report["invalid_share"] > p.max_invalid_share
    if too_many and report["rows_in"] < p.quality_gate_min_rows:
        logger.warning(
            "%d of %d transactions (%.2f%%) failed validation, above the limit, but the batch is "
            "smaller than params:ingestion.quality_gate_min_rows=%d: passed; reasons %s",
            report["rows_quarantined"],
            report["rows_in"],
            100 * report["invalid_share"],
            p.quality_gate_min_rows,
            report["quarantined_by_reason"],
        )
    elif too_many:
        raise DataQualityError(
            f"{report['rows_quarantined']} of {report['rows_in']} transactions "
            f"({report['invalid_share']:.2%}) failed validation, above the limit "
            f"params:ingestion.max_invalid_share={p.max_invalid_share:.2%}; reasons: "
            f"{report['quarantined_by_reason']}. The rows and reasons are in "
            "quarantined_transactions. Fix the source or the column mapping; a batch read from "
            "Kafka is not committed and is judged again by the next run.",
            report=report,
        )
    return screened


def _join_reasons(flags: pd.DataFrame) -> pd.Series:
    """Turns one boolean column per rule into one ';'-separated reason per row."""
    if flags.empty:
        return pd.Series([], dtype="string", index=flags.index)
    names = np.array(flags.columns, dtype=object)
    matrix = flags.to_numpy(bool)
    text = [";".join(names[row]) for row in matrix]
    return pd.Series(text, index=flags.index, dtype="string")


def quality_report(
    n_in: int, n_bad: int, max_invalid_share: float, by_reason: dict[str, int]
) -> dict[str, Any]:
    """The data-quality report of one batch (the same for the pandas and Spark checks)."""
    return {
        "rows_in": n_in,
        "rows_valid": n_in - n_bad,
        "rows_quarantined": n_bad,
        "invalid_share": n_bad / n_in if n_in else 0.0,
        "max_invalid_share": max_invalid_share,
        "quarantined_by_reason": by_reason,
    }
