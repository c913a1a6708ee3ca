"""Getting KPI numbers in: raw survey answers and aggregated figures, from CSV files.

Every invalid row is reported with its line and reason. By default nothing is imported when any
row is invalid; with ``skip_invalid`` the valid rows are. Importing the same file twice adds
nothing: an answer's identity is the file's ``id`` column, or a hash of the row.

Answers come by the million (benchmarks/kpi_digest.py): they are checked in one loop over the
rows and written past the ORM, to SQLite through the driver's executemany and to PostgreSQL in
pipelined INSERT … SELECT FROM unnest(…) batches, with the same values the ORM would write.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bot.domain.kpi import SCALES, Metric, value_problem
from bot.domain.numbers import NotANumber, decimal_number, whole_number
from bot.domain.text import control_character
from bot.domain.weeks import FIRST_YEAR, LAST_YEAR, BadWeek, parse_week
from bot.store.db import insert_for
from bot.store.models import KpiValue, Org, Stage, SurveyResponse, Touchpoint

ANSWER_COLUMNS = ("answered_at", "metric", "score", "stage")
ANSWER_OPTIONAL = ("touchpoint", "id")
AGGREGATE_COLUMNS = ("week", "metric", "stage", "value")
AGGREGATE_OPTIONAL = ("n",)
BATCH = 5000  # answers per executemany
PIPELINE_BATCH = 50_000  # answers per INSERT on PostgreSQL
MAX_LINE_BYTES = 64 * 1024  # a row is a few dozen bytes; anything near this is not a row
READ_BLOCK = 1 << 20


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
    replaced: int = 0  # aggregated figures that replaced an earlier one for their week
    # Aggregated figures stored but not shown: survey answers for the same stage, metric and
    # week are what /cx kpi and the digest compute from.
    hidden: list[HiddenFigure] = field(default_factory=list)


@dataclass(frozen=True)
class HiddenFigure:
    line: int
    week: str
    stage: str
    metric: str
    answers: int


@dataclass(frozen=True)
class StoredFigure:
    """What became of one aggregated figure: the one it replaced (None: there was none), and how
    many survey answers for its stage, metric and week take precedence over it (0: it is shown)."""

    earlier: float | None
    answers: int


def fate_of(session: Session, org_id: int, stage_id: int, metric: str, week: str) -> StoredFigure:
    """Read before a figure is stored: what it will replace, and whether answers will hide it."""
    earlier = session.scalar(
        select(KpiValue.value).where(
            KpiValue.org_id == org_id,
            KpiValue.stage_id == stage_id,
            KpiValue.metric == metric,
            KpiValue.iso_week == week,
        )
    )
    answers = session.scalar(
        select(func.count())
        .select_from(SurveyResponse)
        .where(
            SurveyResponse.org_id == org_id,
            SurveyResponse.stage_id == stage_id,
            SurveyResponse.metric == metric,
            SurveyResponse.iso_week == week,
        )
    )
    return StoredFigure(earlier, answers or 0)


class ImportFileError(Exception):
    """The file as a whole cannot be read; carries the line where it went wrong."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line, self.reason = line, reason


# A non-blank row: its line and its stripped values, or why it has the wrong number of fields.
Record = tuple[int, list[str] | str]


# A file, or its bytes (tests, small files).
Source = BinaryIO | bytes


def read_rows(raw: Source, required: tuple[str, ...], optional: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """Decode and split a CSV file: (line number, row) pairs, or ImportFileError."""
    header, records = _open_csv(raw, required, optional)
    return [
        (line, {"__error__": values} if isinstance(values, str) else dict(zip(header, values, strict=True)))
        for line, values in records
    ]


def _lines(stream: BinaryIO) -> Iterator[str]:
    """The file's lines, decoded, read a block at a time. A line longer than MAX_LINE_BYTES is
    refused, with its number, as soon as the block holding that many of its bytes is read:
    memory stays bounded whatever the file holds (a quoted field across lines is bounded by
    csv.field_size_limit)."""
    number, pending = 0, b""
    while block := stream.read(READ_BLOCK):
        block = pending + block
        cut = block.rfind(b"\n") + 1  # a newline byte is never inside a UTF-8 character
        whole, pending = block[:cut], block[cut:]
        if whole:
            lines = whole.split(b"\n")
            if max(map(len, lines)) > MAX_LINE_BYTES:  # rare: then look closer (a CR does not count)
                index = next((i for i, line in enumerate(lines) if len(line.rstrip(b"\r")) > MAX_LINE_BYTES), None)
                if index is not None:
                    raise _overlong(number + index + 1)
            yield from io.StringIO(_decoded(whole, number))
            number += len(lines) - 1
        if len(pending) > MAX_LINE_BYTES:
            raise _overlong(number + 1)
    if pending:
        yield _decoded(pending, number)


def _overlong(line: int) -> ImportFileError:
    return ImportFileError(line, f"the line is longer than {MAX_LINE_BYTES} bytes; is this a CSV file?")


def _decoded(data: bytes, lines_before: int) -> str:
    try:
        return data.decode("utf-8-sig" if lines_before == 0 else "utf-8")
    except UnicodeDecodeError as exc:
        line = lines_before + data[: exc.start].count(b"\n") + 1
        raise ImportFileError(line, "the file is not valid UTF-8") from None


def _open_csv(raw: Source, required: tuple[str, ...], optional: tuple[str, ...]) -> tuple[list[str], Iterator[Record]]:
    """The header, and the rows as they are read; ImportFileError when the file as a whole cannot
    be read (from the iterator, for a malformed row further down)."""
    reader = csv.reader(_lines(io.BytesIO(raw) if isinstance(raw, bytes) else raw), strict=True)
    try:
        first = next(reader, None)
        if first is None or not "".join(first).strip():
            if first is None or not any("".join(row).strip() for row in reader):
                raise ImportFileError(1, "the file is empty")
            first = []  # a blank first line: the columns are missing
    except csv.Error as exc:
        raise ImportFileError(reader.line_num, f"malformed CSV: {exc}") from None
    header = [h.strip().casefold() for h in first]
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in required and c not in optional]
    if missing or unknown:
        expected = ",".join(required) + "".join(f"[,{c}]" for c in optional)
        problems = [f"missing {', '.join(missing)}"] if missing else []
        problems += [f"unknown {', '.join(unknown)}"] if unknown else []
        raise ImportFileError(1, f"wrong columns ({'; '.join(problems)}); expected {expected}")
    return header, _records(reader, len(header))


def _records(reader: Any, width: int) -> Iterator[Record]:
    # One row at a time: a million rows held as lists would keep the garbage collector busy.
    try:
        for values in reader:
            stripped = [v.strip() for v in values]
            if not any(stripped):
                continue
            if len(stripped) != width:
                yield reader.line_num, f"{len(values)} fields; the header has {width}"
                continue
            control = control_character("".join(stripped))
            if control is not None:  # NUL and its kind: PostgreSQL refuses them, nobody means them
                yield reader.line_num, f"a control character ({control}) in a field"
                continue
            yield reader.line_num, stripped
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


# A valid answer on its way to the table: metric, score, stage, touchpoint, answered_at (naive
# UTC, as UTCDateTime stores it), ISO week in the org's zone, external id.
Answer = tuple[str, int, int, int | None, datetime, str, str]
_METRICS = {m.value: m for m in Metric}


def import_answers(
    session: Session,
    org: Org,
    raw: Source,
    source: str,
    *,
    skip_invalid: bool = False,
    progress: Callable[[int], object] | None = None,
) -> ImportResult:
    """``answered_at,metric,score,stage[,touchpoint][,id]``; answered_at without an offset is
    in the org's time zone."""
    header, records = _open_csv(raw, ANSWER_COLUMNS, ANSWER_OPTIONAL)
    stages, touchpoints = _lookups(session, org)
    zone = ZoneInfo(org.time_zone)

    def check(rows: Iterator[Record], errors: list[RowError]) -> tuple[list[Answer], int]:
        return _valid_answers(header, rows, stages, touchpoints, zone, errors)

    connection = session.connection()
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        driver = connection.connection.driver_connection
        return _import_pipelined(
            connection.dialect, driver, org.id, source[:200], records, check, skip_invalid, progress
        )
    result = ImportResult()
    valid, result.rows = check(records, result.errors)
    if result.errors and not skip_invalid:
        result.refused = True
        return result
    result.imported = _insert_answers(session, org.id, source[:200], valid, progress)
    result.already_there = len(valid) - result.imported
    return result


def _valid_answers(
    header: list[str],
    records: Iterator[Record],
    stages: dict[str, int],
    touchpoints: dict[str, tuple[int, int]],
    zone: ZoneInfo,
    errors: list[RowError],
) -> tuple[list[Answer], int]:
    """Check the rows: the valid ones as Answers, and how many rows there were; every invalid
    one goes to ``errors`` with its line and reason.

    One loop with the columns by position, a million rows in a couple of seconds; the checks,
    their order and their messages are those of a row at a time."""
    column = {name: index for index, name in enumerate(header)}  # a repeated column: the last, as in a dict
    at_, metric_, score_, stage_ = (column[c] for c in ANSWER_COLUMNS)
    touchpoint_, id_ = column.get("touchpoint"), column.get("id")
    valid: list[Answer] = []
    add, fail = valid.append, errors.append
    parse, utc, sha256, metrics, scales = datetime.fromisoformat, UTC, hashlib.sha256, _METRICS, SCALES
    offset, weeks = zone.utcoffset, {}
    plain_scores = {str(n): n for n in range(11)}
    rows = 0
    for line, row in records:
        rows += 1
        if isinstance(row, str):
            fail(RowError(line, row))
            continue
        text = row[at_]
        try:
            answered = parse(text)
        except ValueError:
            fail(RowError(line, f"answered_at {text!r} is not an ISO 8601 time"))
            continue
        metric = metrics.get(row[metric_].casefold())
        if metric is None:
            fail(RowError(line, f"unknown metric {row[metric_]!r}; answers are nps, csat or ces"))
            continue
        scale = scales.get(metric)
        if scale is None:
            fail(RowError(line, f"{metric.value} arrives aggregated; use --aggregates"))
            continue
        score = plain_scores.get(row[score_])  # "7": the usual case, without a parse
        if score is None:
            try:
                score = whole_number(row[score_])
            except NotANumber:
                fail(RowError(line, f"score {row[score_]!r} is not a whole number"))
                continue
        if not scale[0] <= score <= scale[1]:
            fail(RowError(line, f"{metric.value} score {score} is outside {scale[0]}–{scale[1]}"))
            continue
        stage = row[stage_]
        stage_id = stages.get(stage)
        if stage_id is None:
            fail(RowError(line, f"unknown stage {stage!r}"))
            continue
        touchpoint = row[touchpoint_] if touchpoint_ is not None else ""
        touchpoint_id = None
        if touchpoint:
            found = touchpoints.get(touchpoint)
            if found is None:
                fail(RowError(line, f"unknown touchpoint {touchpoint!r}"))
                continue
            if found[1] != stage_id:
                fail(RowError(line, f"touchpoint {touchpoint!r} is not in stage {stage!r}"))
                continue
            touchpoint_id = found[0]
        # The week the answer counts in must be one cxbot can show (bot.domain.weeks). An aware
        # time far outside that range is judged by its written date: converting it could run
        # off the calendar.
        near = answered.tzinfo is not None and FIRST_YEAR <= answered.year <= LAST_YEAR
        day = answered.astimezone(zone).date() if near else answered.date()
        week = weeks.get(day)
        if week is None:
            year, number, _ = day.isocalendar()
            week = weeks[day] = f"{year}-W{number:02d}" if FIRST_YEAR <= year <= LAST_YEAR else ""
        if not week:
            fail(RowError(line, f"answered_at {text!r} is outside the weeks cxbot keeps ({FIRST_YEAR} to {LAST_YEAR})"))
            continue
        # A wall time is in the org's zone: the instant that answered.replace(tzinfo=zone) would
        # give, without building it, which costs more than all the rest of the row.
        at = answered - offset(answered) if answered.tzinfo is None else answered.astimezone(utc).replace(tzinfo=None)
        identity = row[id_] if id_ is not None else ""
        if identity:
            external = f"id:{identity}"[:128]
        else:
            canonical = "|".join((at.isoformat() + "+00:00", metric.value, str(score), stage, touchpoint))
            external = "sha:" + sha256(canonical.encode()).hexdigest()
        add((metric.value, score, stage_id, touchpoint_id, at, week, external))
    return valid, rows


COLUMNS = ("org_id", "metric", "score", "stage_id", "touchpoint_id", "answered_at", "iso_week", "source", "external_id")
UNNEST_INSERT = (
    f"INSERT INTO {SurveyResponse.__tablename__} ({', '.join(COLUMNS)}) "
    "SELECT %s, metric, score, stage_id, touchpoint_id, answered_at, iso_week, %s, external_id "
    "FROM unnest(%b::varchar[], %b::integer[], %b::integer[], %b::integer[], %b::timestamp[], %b::varchar[], "
    "%b::varchar[]) AS answer(metric, score, stage_id, touchpoint_id, answered_at, iso_week, external_id) "
    "ON CONFLICT (external_id) DO NOTHING"
)


def _insert_answers(
    session: Session, org_id: int, source: str, answers: list[Answer], progress: Callable[[int], object] | None
) -> int:
    """Insert the answers whose external id is new, in file order; how many were new.

    On SQLite they go straight to the driver's executemany, with answered_at in UTCDateTime's
    text; rowcount counts only the rows that ON CONFLICT DO NOTHING let in."""
    connection = session.connection()
    statement = insert_for(session, SurveyResponse).on_conflict_do_nothing(index_elements=["external_id"])
    if connection.dialect.name == "sqlite":
        compiled = statement.compile(dialect=connection.dialect, column_keys=list(COLUMNS))
        assert list(compiled.positiontup or ()) == list(COLUMNS), compiled.positiontup
        # What UTCDateTime hands the dialect (a naive UTC time) as the dialect writes it.
        as_text = SurveyResponse.__table__.c.answered_at.type.dialect_impl(connection.dialect).impl.bind_processor(
            connection.dialect
        )
        cursor = connection.connection.driver_connection.cursor()
        inserted = 0
        try:
            for start in range(0, len(answers), BATCH):
                chunk = answers[start : start + BATCH]
                cursor.executemany(
                    str(compiled),
                    [(org_id, m, s, st, tp, as_text(at), w, source, e) for m, s, st, tp, at, w, e in chunk],
                )
                inserted += cursor.rowcount
                if progress is not None:
                    progress(len(chunk))
        except connection.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(exc, str(compiled), connection.dialect) from exc
        finally:
            cursor.close()
        return inserted
    # Any other database: SQLAlchemy core, counting the rows before and after.
    counted = select(func.count()).select_from(SurveyResponse).where(SurveyResponse.org_id == org_id)
    before = session.scalar(counted) or 0
    for start in range(0, len(answers), BATCH):
        chunk = answers[start : start + BATCH]
        connection.execute(
            statement,
            [
                dict(zip(COLUMNS, (org_id, *a[:4], a[4].replace(tzinfo=UTC), a[5], source, a[6]), strict=True))
                for a in chunk
            ],
        )
        if progress is not None:
            progress(len(chunk))
    return (session.scalar(counted) or 0) - before


def _wrapped(exc: Exception, statement: str, dialect: Dialect) -> DBAPIError:
    """The driver's error as SQLAlchemy would have raised it (e.g. OperationalError)."""
    return DBAPIError.instance(statement, None, exc, dialect.loaded_dbapi.Error, dialect=dialect)


def _import_pipelined(
    dialect: Dialect,
    driver: Any,
    org_id: int,
    source: str,
    records: Iterator[Record],
    check: Callable[[Iterator[Record], list[RowError]], tuple[list[Answer], int]],
    skip_invalid: bool,
    progress: Callable[[int], object] | None,
) -> ImportResult:
    """PostgreSQL (psycopg): the file is checked a batch at a time, and each checked batch goes
    to the server as one INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING in pipeline mode,
    so that the server inserts one batch (foreign key checks and indexes: most of the time)
    while the next one is checked. The columns travel as binary arrays (no text to parse), and
    unnest hands the rows over in file order. (COPY would be as fast for the server, but it
    cannot be pipelined, so the checking could not overlap the inserting.)

    The batches go in inside a savepoint. The first invalid row stops the inserting (the rest
    of the file is still checked, for the complete list of errors); unless skip_invalid, the
    savepoint is then rolled back: a refused file leaves the table as it was, and so does a
    file found unreadable further down (ImportFileError)."""
    import psycopg

    result = ImportResult()
    cursors: list[Any] = []
    valid = 0
    try:
        with driver.transaction():  # a savepoint in the caller's transaction
            with driver.pipeline():
                while batch := list(islice(records, PIPELINE_BATCH)):
                    answers, rows = check(iter(batch), result.errors)
                    result.rows += rows
                    valid += len(answers)
                    if (result.errors and not skip_invalid) or not answers:
                        continue
                    cursor = driver.cursor()
                    cursors.append(cursor)
                    cursor.execute(UNNEST_INSERT, (org_id, source, *(list(c) for c in zip(*answers, strict=True))))
                    if progress is not None:
                        progress(len(answers))
            if result.errors and not skip_invalid:
                result.refused = True
                raise psycopg.Rollback()
        if not result.refused:
            result.imported = sum(cursor.rowcount for cursor in cursors)
            result.already_there = valid - result.imported
    except psycopg.Error as exc:
        raise _wrapped(exc, UNNEST_INSERT, dialect) from exc
    finally:
        for cursor in cursors:
            cursor.close()
    return result


def import_aggregates(
    session: Session, org: Org, raw: Source, source: str, now: datetime, *, skip_invalid: bool = False
) -> ImportResult:
    """``week,metric,stage,value[,n]``, e.g. churn, fcr or aht per stage and ISO week."""
    rows = read_rows(raw, AGGREGATE_COLUMNS, AGGREGATE_OPTIONAL)
    stages, _ = _lookups(session, org)
    result = ImportResult(rows=len(rows))
    valid: list[tuple[int, dict[str, object]]] = []
    for line, row in rows:
        reason = row.get("__error__")
        values: dict[str, object] = {}
        if reason is None:
            reason, values = _aggregate(row, stages)
        if reason is not None:
            result.errors.append(RowError(line, reason))
            continue
        values.update(org_id=org.id, source=source[:200], recorded_at=now)
        valid.append((line, values))
    if result.errors and not skip_invalid:
        result.refused = True
        return result
    stage_keys = {stage_id: key for key, stage_id in stages.items()}
    for line, values in valid:
        stage_id, metric, week = values["stage_id"], str(values["metric"]), str(values["iso_week"])
        assert isinstance(stage_id, int)  # _aggregate found it among the stages
        fate = fate_of(session, org.id, stage_id, metric, week)
        result.replaced += fate.earlier is not None
        if fate.answers:
            result.hidden.append(HiddenFigure(line, week, stage_keys[stage_id], metric, fate.answers))
    upsert_values(session, [values for _, values in valid])
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


def recorded_in_chat_by(person_key: str) -> str:
    """A figure's source when an admin typed it with /cx kpi record (erasure looks for it)."""
    return f"chat:{person_key}"


ERASED_CHAT_SOURCE = "chat"


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
) -> StoredFigure:
    """One figure by hand (/cx kpi record) or from the warehouse; the caller has checked it.
    Returns what it replaced and whether survey answers hide it."""
    fate = fate_of(session, org.id, stage.id, metric.value, week)
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
    return fate


def _aggregate(row: dict[str, str], stages: dict[str, int]) -> tuple[str | None, dict[str, object]]:
    try:
        week = parse_week(row["week"])
    except BadWeek as exc:
        return str(exc), {}
    try:
        metric = Metric(row["metric"].casefold())
    except ValueError:
        return f"unknown metric {row['metric']!r}; one of {', '.join(m.value for m in Metric)}", {}
    stage_id = stages.get(row["stage"])
    if stage_id is None:
        return f"unknown stage {row['stage']!r}", {}
    try:
        value = decimal_number(row["value"])
    except NotANumber:
        return f"value {row['value']!r} is not a number", {}
    problem = value_problem(metric, value)
    if problem is not None:
        return f"value {row['value']} {problem}", {}
    n = None
    if row.get("n"):
        try:
            n = whole_number(row["n"], 0)
        except NotANumber:
            return f"n {row['n']!r} is not a whole number", {}
    return None, {"metric": metric.value, "stage_id": stage_id, "iso_week": week, "value": value, "n": n}
