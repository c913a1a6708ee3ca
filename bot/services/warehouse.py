"""Metrics measured in a warehouse: the journey file's ``queries`` run weekly, read-only.

Each query gets ``:week`` ("2026-W47"), ``:week_start`` and ``:week_end`` (the week's bounds in
the org's time zone, as UTC; on SQLite as 'YYYY-MM-DD HH:MM:SS' text) and returns one row with a
``value`` column and optionally ``n``. The connection is read-only (a READ ONLY transaction with
a statement timeout on PostgreSQL, ``PRAGMA query_only`` on SQLite), so a query can never
change the warehouse, whatever it says. One query failing leaves the others' figures stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, create_engine, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.domain.kpi import Metric, value_problem
from bot.domain.weeks import week_bounds
from bot.services.journey import current_org
from bot.services.kpi_import import record_value
from bot.store.models import KpiQuery, Stage

log = logging.getLogger(__name__)

STATEMENT_TIMEOUT_MS = 60_000


class QueryProblem(Exception):
    pass


@dataclass
class PullReport:
    week: str
    stored: list[str] = field(default_factory=list)  # "stage/metric"
    failed: list[str] = field(default_factory=list)  # "stage/metric: why"


CONNECT_TIMEOUT_SECONDS = 10


def warehouse_engine(url: str) -> Engine:
    """A plain engine: none of the bot database's write-oriented SQLite settings, and a connect
    timeout so that an unreachable warehouse fails the week's queries fast instead of hanging."""
    options: dict[str, object] = {"pool_pre_ping": True}
    if url.startswith(("postgresql", "postgres")):
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    return create_engine(url, **options)


def _read_only(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET TRANSACTION READ ONLY"))
        connection.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
        # The bounds are UTC instants: compared with a column without a time zone, PostgreSQL
        # would read them in the session's zone, whatever the warehouse's default is.
        connection.execute(text("SET LOCAL TIME ZONE 'UTC'"))
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA query_only = ON")


def run_query(engine: Engine, sql: str, week: str, zone: ZoneInfo) -> tuple[float, int | None]:
    """The query's value and n for the week; QueryProblem when it gives no usable figure."""
    start, end = week_bounds(week, zone)
    bounds: dict[str, object] = {"week": week, "week_start": start, "week_end": end}
    if engine.dialect.name == "sqlite":
        bounds.update(week_start=start.strftime("%Y-%m-%d %H:%M:%S"), week_end=end.strftime("%Y-%m-%d %H:%M:%S"))
    try:
        with engine.connect() as connection:
            try:
                _read_only(connection)
                row = connection.execute(text(sql), bounds).mappings().first()
            finally:
                connection.rollback()
    except (SQLAlchemyError, OSError) as exc:  # the query's fault, or the warehouse is unreachable
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()
        raise QueryProblem(reason[0][:200] if reason else type(exc).__name__) from None
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
        raise QueryProblem(f"value {row['value']!r} or n {row.get('n')!r} is not a number") from None
    if n is not None and n < 0:
        raise QueryProblem(f"n {n} is negative")
    return value, n


def pull_warehouse(
    session_factory: sessionmaker[Session], engine: Engine, week: str, clock: Callable[[], datetime]
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
            value, n = run_query(engine, sql, week, zone)
            problem = value_problem(metric, value)
            if problem is not None:
                raise QueryProblem(f"value {value:g} {problem}")
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
        log.info("warehouse: %s for %s = %s (n %s)", label, week, value, n)
    return report
