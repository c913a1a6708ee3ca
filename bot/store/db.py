"""Engines, sessions and schema upgrades, the same for SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

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


MASK = "***"
# A query parameter or fragment field whose name holds one of these holds a credential:
# password, passwd, pwd, sslpassword, secret, client_secret, token, access_token, key, apikey,
# api_key, auth, Authorization, X-Amz-Credential, X-Amz-Signature…
_SECRET_NAME_PARTS = ("pass", "pwd", "secret", "token", "key", "auth", "credential", "signature", "session")
_SECRET_NAMES = ("sig", "code", "jwt")
# Tokens where a path goes (Slack's and OpenAI's, GitHub's): the segment is masked from them on.
_TOKEN_IN_PATH = re.compile(r"(?i)(?:xox[a-z]-|xapp-|sk-|ghp_|github_pat_)[^/?#;&]*")
_HTTP_SCHEMES = ("http", "https", "ws", "wss")


def _secret_name(name: str) -> bool:
    folded = unquote(name).casefold().replace("-", "_")
    return folded in _SECRET_NAMES or any(part in folded for part in _SECRET_NAME_PARTS)


def _masked_pairs(text: str) -> str:
    """``a=1&password=x;b=2``: the value of each credential-looking name masked, and whatever
    follows an encoded ``#`` (SQLAlchemy renders a URL's fragment into the last value)."""
    pairs = []
    for pair in re.split(r"([&;])", text):
        name, equals, value = pair.partition("=")
        if pair in ("&", ";"):
            pairs.append(pair)
        elif equals and _secret_name(name):
            pairs.append(f"{name}={MASK}")
        elif re.search(r"(?i)%23", value):
            pairs.append(f"{name}={re.split(r'(?i)%23', value)[0]}%23{MASK}")
        else:
            pairs.append(pair)
    return "".join(pairs)


def safe_url(url: str) -> str:
    """The URL as it may be shown in a message or a log: every credential-looking part masked
    (the userinfo's password, or on HTTP the whole userinfo; query parameters named like
    credentials; the fragment; tokens where a path goes), the rest kept to find the server by.
    The one function for every URL cxbot prints: database, warehouse, Slack and OpenAI bases."""
    scheme, separator, rest = url.partition("://")
    if not separator:  # not a URL: whatever looks like userinfo, and every credential, goes
        return _masked_pairs(_TOKEN_IN_PATH.sub(MASK, url.rpartition("@")[2] if "@" in url else url))
    rest, hash_, _fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    # The userinfo ends at the last "@", even when an unencoded password holds a "/" (SQLAlchemy
    # reads it so); an "@" further along a plain path ("/users/@me") is not one.
    userinfo, at, after = rest.rpartition("@")
    if at and ("/" not in userinfo or ":" in userinfo.split("/")[0]):
        host, slash, path = after.partition("/")
    else:
        userinfo, at = "", ""
        host, slash, path = rest.partition("/")
    if at:
        user, colon, _password = userinfo.partition(":")
        http = scheme.casefold().split("+")[0] in _HTTP_SCHEMES
        userinfo = MASK if http and not colon else f"{user}:{MASK}" if colon else user
        if http and colon:
            userinfo = f"{MASK}:{MASK}" if _TOKEN_IN_PATH.search(user) else userinfo
    path, semicolon, parameters = path.partition(";")
    shown = f"{scheme}://{userinfo}{at}{host}{slash}{_TOKEN_IN_PATH.sub(MASK, path)}"
    if semicolon:
        shown += ";" + _masked_pairs(parameters)
    if question:
        shown += "?" + _masked_pairs(query)
    if hash_:
        shown += "#" + MASK
    return shown


def redacted(text: str, url: str) -> str:
    """A driver's message about ``url`` with anything of the URL's credentials taken out (a
    driver may quote the connection string it was given)."""
    for raw in (url, unquote(url)):
        text = text.replace(raw, safe_url(raw))
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return text
    secrets = [parsed.password] if parsed.password else []
    secrets += [v for k, vs in parsed.query.items() if _secret_name(k) for v in ((vs,) if isinstance(vs, str) else vs)]
    for secret in secrets:
        if secret and len(str(secret)) >= 3:
            text = text.replace(str(secret), MASK)
    return text


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
        raise DatabaseError(f"cannot use the database URL {safe_url(url)!r}: {redacted(str(exc), url)}") from None
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
        url = engine.url.render_as_string(hide_password=False)
        reason = redacted(driver_reason(exc), url)
        raise DatabaseError(f"cannot reach the database at {safe_url(url)}: {reason}") from None


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
