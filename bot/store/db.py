"""Engines, sessions and schema upgrades, the same for SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Select, create_engine, event, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")
CONNECT_TIMEOUT_SECONDS = 10  # an unreachable host must not hang a command for minutes
KEEPALIVE = {
    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}

log = logging.getLogger(__name__)


class DatabaseError(Exception):
    """A database URL that cannot be used; the message is fit to show a user."""


def normalize_url(url: str) -> str:
    """Accept the URLs hosting providers hand out (``postgres://``) and pick psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def safe_url(url: str) -> str:
    """The URL with its password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url.split("@")[-1] if "@" in url else url


# The databases cxbot is built and tested on, each with the driver it ships: any other URL would
# fail later, inside SQLAlchemy, with a driver's ImportError and a page of traceback.
SUPPORTED_DRIVERS = frozenset({"sqlite", "sqlite+pysqlite", "postgresql+psycopg"})
SUPPORTED = "cxbot runs on SQLite (sqlite:///FILE) or PostgreSQL (postgresql://USER:PASSWORD@HOST/DATABASE)"


def make_engine(url: str, **kwargs: Any) -> Engine:
    try:
        parsed = make_url(normalize_url(url))
    except (ArgumentError, ValueError):
        parsed = None
    if parsed is None or parsed.drivername not in SUPPORTED_DRIVERS:
        raise DatabaseError(f"cannot use the database URL {safe_url(url)!r}: {SUPPORTED}")
    try:
        # An error's text would carry the statement's parameters (people's words, chat ids) into
        # the logs: never.
        kwargs.setdefault("hide_parameters", True)
        if parsed.get_backend_name() == "postgresql":
            # A database that went away (a restart, a failover) leaves dead connections in the
            # pool: test each before use, so the first command after it is back just works; and
            # a connection whose server vanished without a word is noticed within a minute.
            kwargs.setdefault("pool_pre_ping", True)
            kwargs["connect_args"] = {**KEEPALIVE, **kwargs.get("connect_args", {})}
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, ValueError) as exc:
        raise DatabaseError(f"cannot use the database URL {safe_url(url)!r}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # Several threads (adapter, outbox sender, clock) share one file: wait rather than fail.
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()
    # pysqlite would BEGIN only at the first write, so a transaction's reads are not protected;
    # take over (SQLAlchemy's documented recipe) and begin every transaction ourselves.
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(connection: Any) -> None:
    """SQLite has no row locks: what PostgreSQL's SELECT … FOR UPDATE does for one row, a write
    lock taken at BEGIN does for the whole file. Transactions run one at a time, so two owners
    acknowledging at once, or two clocks on one file, behave as they do on PostgreSQL."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def for_update(query: Select[Any]) -> Select[Any]:
    """Lock the selected row for this transaction and read it as it is now, not as this session
    last saw it: whoever waited for the lock sees the earlier writer's changes."""
    return query.with_for_update().execution_options(populate_existing=True)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe to call on every start."""
    command.upgrade(alembic_config(engine), revision)


def schema_head() -> str:
    """The newest migration this code knows."""
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return str(ScriptDirectory.from_config(config).get_current_head())


def database_answers(engine: Engine) -> bool:
    with engine.connect() as connection:
        return connection.exec_driver_sql("SELECT 1").scalar() == 1


def schema_is_at(engine: Engine, head: str) -> bool:
    """Whether the database answers and its schema is at ``head`` (for a readiness probe: one
    short query on a pooled connection)."""
    with engine.connect() as connection:
        return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == head


def check_connection(engine: Engine) -> None:
    """Fail early, with a sentence, when the database cannot be reached."""
    try:
        with engine.connect() as connection:
            inspect(connection).get_table_names()
    except Exception as exc:  # the driver's own exception types differ per database
        reason = driver_reason(exc)
        raise DatabaseError(
            f"cannot reach the database at {engine.url.render_as_string(hide_password=True)}: {reason}"
        ) from None


def wait_for_database(
    engine: Engine,
    patience: float,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """``check_connection``, retried with backoff for up to ``patience`` seconds: a server still
    starting (a host that restarts the database and the bot together) is waited for, not failed
    on. A SQLite file does not appear by waiting, so it is checked once."""
    deadline, delay = monotonic() + patience, 1.0
    while True:
        try:
            check_connection(engine)
            return
        except DatabaseError as exc:
            left = deadline - monotonic()
            if left <= 0 or engine.dialect.name == "sqlite":
                raise DatabaseError(
                    f"{exc} (waited {patience:.0f} s)" if patience and left <= 0 else str(exc)
                ) from None
            log.warning("%s; trying again in %.0f s", exc, min(delay, left))
            sleep(min(delay, left))
            delay = min(delay * 2, 15.0)


def driver_reason(error: BaseException) -> str:
    """The driver's own first line (SQLAlchemy wraps it in a paragraph with the SQL and a link)."""
    lines = str(getattr(error, "orig", None) or error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


# SQLSTATE classes of a server that cannot be used: connection exceptions, and the server
# shutting down or starting up ("operator intervention"). A deadlock or a timeout is not one.
UNAVAILABLE_SQLSTATES = ("08", "57P")
UNAVAILABLE_SQLITE = ("database is locked", "unable to open", "disk i/o error")


def database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database could not be used at all (unreachable, gone mid-way,
    locked past the busy timeout, no connection free), rather than that a statement was wrong."""
    if isinstance(error, PoolTimeout):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if not isinstance(error, OperationalError):
        return False
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate is not None:
        return str(sqlstate).startswith(UNAVAILABLE_SQLSTATES)
    reason = driver_reason(error).casefold()
    # psycopg's own connection failures carry no SQLSTATE; SQLite's carry none at all.
    return "sqlite" not in type(error.orig).__module__ or reason.startswith(UNAVAILABLE_SQLITE)


def insert_for(session: Session, model: type) -> Any:
    """The dialect's INSERT, which has ON CONFLICT on both PostgreSQL and SQLite."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)
