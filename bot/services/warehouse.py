"""Metrics measured in a warehouse: the journey file's ``queries`` run weekly, read-only.

Each query gets ``:week`` ("2026-W47"), ``:week_start`` and ``:week_end`` (the week's bounds in
the org's time zone, as UTC; on SQLite as 'YYYY-MM-DD HH:MM:SS' text) and returns one row with a
``value`` column and optionally ``n``. One query failing leaves the others' figures stored.

Each query runs contained (see ``warehouse_guard``): on a connection of its own that is closed
afterwards (nothing it took, an advisory lock or a session setting, outlives it), in a READ ONLY
transaction with statement and lock timeouts on PostgreSQL, and on SQLite behind an authorizer
that lets it only read and a deadline that stops it. What it answers is never echoed: a failure
is told by its class and SQLSTATE only (an error's text may quote the data it choked on).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, create_engine, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from bot.domain.kpi import Metric, value_problem
from bot.domain.weeks import week_bounds
from bot.services.journey import current_org
from bot.services.kpi_import import record_value
from bot.services.warehouse_guard import restrict_sqlite
from bot.store.db import normalize_url
from bot.store.models import KpiQuery, Stage

log = logging.getLogger(__name__)

QUERY_TIMEOUT_SECONDS = 60.0
# If the server does not stop a query at its statement timeout, the client cancels it this long after.
CANCEL_GRACE_SECONDS = 5.0


class QueryProblem(Exception):
    pass


@dataclass
class PullReport:
    week: str
    stored: list[str] = field(default_factory=list)  # "stage/metric"
    failed: list[str] = field(default_factory=list)  # "stage/metric: why"


CONNECT_TIMEOUT_SECONDS = 10


def warehouse_engine(url: str) -> Engine:
    """An engine without a pool: every query gets a fresh connection, closed after it. None of
    the bot database's write-oriented SQLite settings; a connect timeout so that an unreachable
    warehouse fails the week's queries fast instead of hanging."""
    options: dict[str, object] = {"poolclass": NullPool, "hide_parameters": True}
    url = normalize_url(url)
    if url.startswith("postgresql"):
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    return create_engine(url, **options)


def _contain(connection: Connection, timeout: float) -> Callable[[], None]:
    """Read-only, time-limited; returns what undoes what cannot be undone by closing."""
    raw = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        milliseconds = max(1, int(timeout * 1000))
        connection.execute(text("SET TRANSACTION READ ONLY"))
        connection.execute(text(f"SET LOCAL statement_timeout = {milliseconds}"))
        connection.execute(text(f"SET LOCAL lock_timeout = {milliseconds}"))
        connection.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = {milliseconds}"))
        # The bounds are UTC instants: compared with a column without a time zone, PostgreSQL
        # would read them in the session's zone, whatever the warehouse's default is.
        connection.execute(text("SET LOCAL TIME ZONE 'UTC'"))
        watchdog = threading.Timer(timeout + CANCEL_GRACE_SECONDS, raw.cancel)  # type: ignore[union-attr]
        watchdog.daemon = True
        watchdog.start()
        return watchdog.cancel
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA query_only = ON")
        return restrict_sqlite(raw, timeout)  # type: ignore[arg-type]
    return lambda: None


# What a failure is called, by SQLSTATE (PostgreSQL) or by the start of a message without one
# (SQLite's, psycopg's failure to connect): fixed words, never the error's own text.
_KNOWN_SQLSTATES = {
    "57014": "stopped at the time limit",
    "55P03": "stopped waiting for a lock",
    "25006": "refused: read-only transaction",
    "42501": "permission denied",
    "42P01": "no such table",
    "42703": "no such column",
    "42601": "syntax error",
    "42883": "no such function",
}
_KNOWN_MESSAGES = {
    "connection failed": "cannot reach the warehouse",  # psycopg's, with no SQLSTATE
    "interrupted": "stopped at the time limit",
    "not authorized": "refused: the warehouse connection only reads, with a few functions",
    "attempt to write a readonly database": "refused: read-only connection",
    "no such table": "no such table",
    "no such column": "no such column",
    "no such function": "no such function",
}


def failure_name(exc: BaseException) -> str:
    """A failure as its class and code: what an admin needs to look, and nothing of the data
    (PostgreSQL's "invalid input syntax for type integer: \"Sara\"" quotes a row)."""
    orig = getattr(exc, "orig", None) or exc
    kind = type(orig).__name__
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate:
        known = _KNOWN_SQLSTATES.get(sqlstate)
        return f"{known}: {kind} (SQLSTATE {sqlstate})" if known else f"{kind} (SQLSTATE {sqlstate})"
    message = str(orig)
    known = next((name for start, name in _KNOWN_MESSAGES.items() if message.startswith(start)), None)
    code = getattr(orig, "sqlite_errorname", None)
    named = f"{kind} ({code})" if code else kind
    return f"{known}: {named}" if known else named


def run_query(
    engine: Engine, sql: str, week: str, zone: ZoneInfo, timeout: float = QUERY_TIMEOUT_SECONDS
) -> tuple[float, int | None]:
    """The query's value and n for the week; QueryProblem when it gives no usable figure."""
    start, end = week_bounds(week, zone)
    bounds: dict[str, object] = {"week": week, "week_start": start, "week_end": end}
    if engine.dialect.name == "sqlite":
        bounds.update(week_start=start.strftime("%Y-%m-%d %H:%M:%S"), week_end=end.strftime("%Y-%m-%d %H:%M:%S"))
    try:
        with engine.connect() as connection:
            try:
                release = _contain(connection, timeout)
                try:
                    row = connection.execute(text(sql), bounds).mappings().first()
                finally:
                    release()
            finally:
                # Closed, never pooled: a session-level advisory lock, a prepared statement or
                # a setting the query made goes with the connection, on any engine.
                connection.invalidate()
    except (SQLAlchemyError, OSError) as exc:  # the query's fault, or the warehouse is unreachable
        raise QueryProblem(failure_name(exc)) from None
    if row is None:
        raise QueryProblem("the query returned no row")
    if "value" not in row:
        raise QueryProblem(f"the query returned no 'value' column (it returned {', '.join(row.keys())})")
    if row["value"] is None:
        raise QueryProblem("the query's value is NULL (no data for the week?)")
    try:
        value = float(row["value"])
        n = None if row.get("n") is None else int(row["n"])
    except (TypeError, ValueError):
        raise QueryProblem("the value or n is not a number") from None
    if n is not None and n < 0:
        raise QueryProblem("n is negative")
    return value, n


def pull_warehouse(
    session_factory: sessionmaker[Session],
    engine: Engine,
    week: str,
    clock: Callable[[], datetime],
    timeout: float = QUERY_TIMEOUT_SECONDS,
) -> PullReport:
    """Run every stage's queries for the week and store their figures (replacing earlier ones)."""
    report = PullReport(week)
    with session_factory() as session:
        org = current_org(session)
        if org is None:
            return report
        zone = ZoneInfo(org.time_zone)
        queries = session.execute(
            select(Stage.id, Stage.key, KpiQuery.metric, KpiQuery.sql)
            .join(KpiQuery, KpiQuery.stage_id == Stage.id)
            .where(Stage.org_id == org.id, Stage.archived_at.is_(None))
            .order_by(Stage.position, KpiQuery.metric)
        ).all()
    for stage_id, stage_key, metric_name, sql in queries:
        label = f"{stage_key}/{metric_name}"
        metric = Metric(metric_name)
        try:
            value, n = run_query(engine, sql, week, zone, timeout)
            problem = value_problem(metric, value)
            if problem is not None:
                raise QueryProblem(f"the value {problem}")
        except QueryProblem as exc:
            log.warning("warehouse: %s for %s gave no figure: %s", label, week, exc)
            report.failed.append(f"{label}: {exc}")
            continue
        with session_factory.begin() as session:
            org = current_org(session)
            stage = session.get(Stage, stage_id)
            if org is None or stage is None:
                continue
            record_value(session, org, metric, stage, week, value, n, "warehouse", clock())
        report.stored.append(label)
        log.info("warehouse: %s for %s stored", label, week)
    return report
