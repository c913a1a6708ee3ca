"""Getting KPI numbers in: raw survey answers and aggregated figures, from CSV files.

Every invalid row is reported with its line and reason. By default nothing is imported when any
row is invalid; with ``skip_invalid`` the valid rows are. Importing the same file twice adds
nothing: an answer's identity is the file's ``id`` column, or a hash of the row.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.domain.kpi import SCALES, Metric, valid_score, value_problem
from bot.domain.weeks import iso_week, parse_week
from bot.store.db import insert_for
from bot.store.models import KpiValue, Org, Stage, SurveyResponse, Touchpoint

ANSWER_COLUMNS = ("answered_at", "metric", "score", "stage")
ANSWER_OPTIONAL = ("touchpoint", "id")
AGGREGATE_COLUMNS = ("week", "metric", "stage", "value")
AGGREGATE_OPTIONAL = ("n",)
BATCH = 5000


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str


@dataclass
class ImportResult:
    rows: int = 0
    imported: int = 0
    already_there: int = 0
    errors: list[RowError] = field(default_factory=list)
    refused: bool = False  # invalid rows and no skip_invalid: nothing was imported


class ImportFileError(Exception):
    """The file as a whole cannot be read; carries the line where it went wrong."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line, self.reason = line, reason


def read_rows(raw: bytes, required: tuple[str, ...], optional: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """Decode and split a CSV file: (line number, row) pairs, or ImportFileError."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(raw[: exc.start].count(b"\n") + 1, "the file is not valid UTF-8") from None
    if not text.strip():
        raise ImportFileError(1, "the file is empty")
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        header = [h.strip().casefold() for h in next(reader)]
        missing = [c for c in required if c not in header]
        unknown = [c for c in header if c not in required and c not in optional]
        if missing or unknown:
            expected = ",".join(required) + "".join(f"[,{c}]" for c in optional)
            problems = [f"missing {', '.join(missing)}"] if missing else []
            problems += [f"unknown {', '.join(unknown)}"] if unknown else []
            raise ImportFileError(1, f"wrong columns ({'; '.join(problems)}); expected {expected}")
        rows = []
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                rows.append((reader.line_num, {"__error__": f"{len(values)} fields; the header has {len(header)}"}))
                continue
            rows.append((reader.line_num, {k: v.strip() for k, v in zip(header, values, strict=True)}))
        return rows
    except csv.Error as exc:
        raise ImportFileError(reader.line_num, f"malformed CSV: {exc}") from None


def _lookups(session: Session, org: Org) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    stages = {key: id_ for id_, key in session.execute(select(Stage.id, Stage.key).where(Stage.org_id == org.id))}
    touchpoints = {
        key: (id_, stage_id)
        for id_, key, stage_id in session.execute(
            select(Touchpoint.id, Touchpoint.key, Touchpoint.stage_id).where(Touchpoint.org_id == org.id)
        )
    }
    return stages, touchpoints


def import_answers(
    session: Session,
    org: Org,
    raw: bytes,
    source: str,
    *,
    skip_invalid: bool = False,
    progress: Callable[[int], object] | None = None,
) -> ImportResult:
    """``answered_at,metric,score,stage[,touchpoint][,id]``; answered_at without an offset is
    in the org's time zone."""
    rows = read_rows(raw, ANSWER_COLUMNS, ANSWER_OPTIONAL)
    stages, touchpoints = _lookups(session, org)
    zone = ZoneInfo(org.time_zone)
    result = ImportResult(rows=len(rows))
    valid: list[dict[str, object]] = []
    for line, row in rows:
        reason, values = _answer(row, stages, touchpoints, zone)
        if reason is not None:
            result.errors.append(RowError(line, reason))
            continue
        values.update(org_id=org.id, source=source[:200])
        valid.append(values)
    if result.errors and not skip_invalid:
        result.refused = True
        return result
    before = session.scalar(select(func.count()).select_from(SurveyResponse).where(SurveyResponse.org_id == org.id))
    for start in range(0, len(valid), BATCH):
        chunk = valid[start : start + BATCH]
        session.execute(
            insert_for(session, SurveyResponse).on_conflict_do_nothing(index_elements=["external_id"]), chunk
        )
        if progress is not None:
            progress(len(chunk))
    after = session.scalar(select(func.count()).select_from(SurveyResponse).where(SurveyResponse.org_id == org.id))
    result.imported = (after or 0) - (before or 0)
    result.already_there = len(valid) - result.imported
    return result


def _answer(
    row: dict[str, str], stages: dict[str, int], touchpoints: dict[str, tuple[int, int]], zone: ZoneInfo
) -> tuple[str | None, dict[str, object]]:
    if "__error__" in row:
        return row["__error__"], {}
    try:
        answered = datetime.fromisoformat(row["answered_at"])
    except ValueError:
        return f"answered_at {row['answered_at']!r} is not an ISO 8601 time", {}
    if answered.tzinfo is None:
        answered = answered.replace(tzinfo=zone)
    try:
        metric = Metric(row["metric"].casefold())
    except ValueError:
        return f"unknown metric {row['metric']!r}; answers are nps, csat or ces", {}
    if metric not in SCALES:
        return f"{metric.value} arrives aggregated; use --aggregates", {}
    try:
        score = int(row["score"])
    except ValueError:
        return f"score {row['score']!r} is not a whole number", {}
    if not valid_score(metric, score):
        low, high = SCALES[metric]
        return f"{metric.value} score {score} is outside {low}–{high}", {}
    stage_id = stages.get(row["stage"])
    if stage_id is None:
        return f"unknown stage {row['stage']!r}", {}
    touchpoint_id = None
    if row.get("touchpoint"):
        found = touchpoints.get(row["touchpoint"])
        if found is None:
            return f"unknown touchpoint {row['touchpoint']!r}", {}
        if found[1] != stage_id:
            return f"touchpoint {row['touchpoint']!r} is not in stage {row['stage']!r}", {}
        touchpoint_id = found[0]
    identity = row.get("id") or ""
    if identity:
        external = f"id:{identity}"[:128]
    else:
        canonical = "|".join(
            (answered.astimezone(UTC).isoformat(), metric.value, str(score), row["stage"], row.get("touchpoint", ""))
        )
        external = "sha:" + hashlib.sha256(canonical.encode()).hexdigest()
    return None, {
        "metric": metric.value,
        "score": score,
        "stage_id": stage_id,
        "touchpoint_id": touchpoint_id,
        "answered_at": answered.astimezone(UTC),
        "iso_week": iso_week(answered, zone),
        "external_id": external,
    }


def import_aggregates(
    session: Session, org: Org, raw: bytes, source: str, now: datetime, *, skip_invalid: bool = False
) -> ImportResult:
    """``week,metric,stage,value[,n]``, e.g. churn, fcr or aht per stage and ISO week."""
    rows = read_rows(raw, AGGREGATE_COLUMNS, AGGREGATE_OPTIONAL)
    stages, _ = _lookups(session, org)
    result = ImportResult(rows=len(rows))
    valid = []
    for line, row in rows:
        reason = row.get("__error__")
        values: dict[str, object] = {}
        if reason is None:
            reason, values = _aggregate(row, stages)
        if reason is not None:
            result.errors.append(RowError(line, reason))
            continue
        values.update(org_id=org.id, source=source[:200], recorded_at=now)
        valid.append(values)
    if result.errors and not skip_invalid:
        result.refused = True
        return result
    upsert_values(session, valid)
    result.imported = len(valid)
    return result


def upsert_values(session: Session, rows: list[dict[str, object]]) -> None:
    """Store aggregated figures; a figure for the same metric, stage and week replaces the old."""
    for values in rows:
        statement = insert_for(session, KpiValue).values(**values)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["org_id", "metric", "stage_id", "iso_week"],
                set_={
                    "value": statement.excluded.value,
                    "n": statement.excluded.n,
                    "source": statement.excluded.source,
                    "recorded_at": statement.excluded.recorded_at,
                },
            )
        )


def record_value(
    session: Session,
    org: Org,
    metric: Metric,
    stage: Stage,
    week: str,
    value: float,
    n: int | None,
    source: str,
    now: datetime,
) -> None:
    """One figure by hand (/cx kpi record) or from the warehouse; the caller has checked it."""
    upsert_values(
        session,
        [
            {
                "org_id": org.id,
                "metric": metric.value,
                "stage_id": stage.id,
                "iso_week": week,
                "value": value,
                "n": n,
                "source": source[:200],
                "recorded_at": now,
            }
        ],
    )


def _aggregate(row: dict[str, str], stages: dict[str, int]) -> tuple[str | None, dict[str, object]]:
    try:
        parse_week(row["week"])
    except ValueError as exc:
        return str(exc), {}
    try:
        metric = Metric(row["metric"].casefold())
    except ValueError:
        return f"unknown metric {row['metric']!r}; one of {', '.join(m.value for m in Metric)}", {}
    stage_id = stages.get(row["stage"])
    if stage_id is None:
        return f"unknown stage {row['stage']!r}", {}
    try:
        value = float(row["value"])
    except ValueError:
        return f"value {row['value']!r} is not a number", {}
    problem = value_problem(metric, value)
    if problem is not None:
        return f"value {row['value']} {problem}", {}
    n = None
    if row.get("n"):
        if not row["n"].isdecimal():
            return f"n {row['n']!r} is not a whole number", {}
        n = int(row["n"])
    return None, {"metric": metric.value, "stage_id": stage_id, "iso_week": row["week"].strip(), "value": value, "n": n}
