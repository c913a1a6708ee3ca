"""What keeps admin-written warehouse SQL contained: the warehouse must not be the bot's own
database, on PostgreSQL its role must be a plain reader, and on SQLite the connection may only
read (an authorizer) and only for so long (a progress-handler deadline).

A READ ONLY transaction alone does not contain a query on PostgreSQL: an advisory lock outlives
it, ``pg_terminate_backend`` ends other sessions, and with privileges ``dblink_exec`` writes and
``pg_read_file`` reads the server's files into an error text. What a query can do is what its
role can do; hence the dedicated role (README: "Warehouse queries") checked here at start.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from bot.store.db import make_engine, normalize_url


class WarehouseRefused(Exception):
    """A warehouse the bot will not query; the message is one line, fit to show an admin."""


# --- the bot's own database --------------------------------------------------------------------


def _sqlite_file(url: str) -> str | None:
    database = make_url(normalize_url(url)).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.realpath(database)


def _server_and_database(engine: Engine) -> tuple[Any, ...] | None:
    """Which PostgreSQL cluster and database a connection lands in, as the server says: the
    cluster's system identifier when the role may read it, else its address and port."""
    try:
        with engine.connect() as connection:
            name, address, port = connection.execute(
                text("SELECT current_database(), inet_server_addr()::text, inet_server_port()")
            ).one()
            try:
                cluster = connection.execute(text("SELECT system_identifier FROM pg_control_system()")).scalar()
            except SQLAlchemyError:  # not granted to this role: the address will do
                connection.rollback()
                cluster = None
            return (name, cluster) if cluster is not None else (name, address, port)
    except SQLAlchemyError:
        return None


def own_database_problem(warehouse: Engine, bot_url: str, bot: Engine | None = None) -> str | None:
    """Why the warehouse is the bot's own database, or None. Its queries must never read the
    bot's tables (who reported what anonymously), nor hold its locks."""
    warehouse_url = warehouse.url.render_as_string(hide_password=False)
    same = "CXBOT_WAREHOUSE_URL is the bot's own database (CXBOT_DATABASE_URL); give the warehouse its own"
    if make_url(normalize_url(warehouse_url)).set(password=None) == make_url(normalize_url(bot_url)).set(password=None):
        return same
    if warehouse.dialect.name == "sqlite":
        mine, theirs = _sqlite_file(bot_url), _sqlite_file(warehouse_url)
        return same if mine is not None and mine == theirs else None
    if warehouse.dialect.name == "postgresql" and make_url(normalize_url(bot_url)).get_backend_name() == "postgresql":
        probe = bot if bot is not None else make_engine(bot_url, poolclass=NullPool)
        try:
            ours, theirs_ = _server_and_database(probe), _server_and_database(warehouse)
        finally:
            if bot is None:
                probe.dispose()
        return same if ours is not None and ours == theirs_ else None
    return None


# --- the PostgreSQL role -------------------------------------------------------------------------

# Roles whose members can end other sessions or read and run things on the server.
_POWERFUL_ROLES = ("pg_signal_backend", "pg_read_server_files", "pg_write_server_files", "pg_execute_server_program")
# Functions that reach outside the transaction: another database, the server's files.
_REACHING_FUNCTIONS = (
    "dblink",
    "dblink_exec",
    "dblink_connect",
    "dblink_connect_u",
    "dblink_send_query",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "lo_import",
    "lo_export",
)
_ROLE_CHECK = text(
    """
    SELECT r.rolsuper,
           ARRAY(SELECT g FROM unnest(CAST(:roles AS text[])) AS g
                 WHERE EXISTS (SELECT 1 FROM pg_roles WHERE rolname = g)
                   AND pg_has_role(current_user, g, 'MEMBER')) AS powerful,
           ARRAY(SELECT DISTINCT p.proname FROM pg_proc p
                 WHERE p.proname = ANY(CAST(:functions AS text[]))
                   AND has_function_privilege(current_user, p.oid, 'EXECUTE')) AS reaching,
           ARRAY(SELECT DISTINCT n.nspname || '.' || c.relname FROM pg_class c
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
                   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                   AND n.nspname NOT LIKE 'pg_toast%'
                   AND has_table_privilege(current_user, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
                 LIMIT 3) AS writable
    FROM pg_roles r WHERE r.rolname = current_user
    """
)


def role_problem(warehouse: Engine) -> str | None:
    """Why the warehouse's PostgreSQL role may do more than read, or None.

    Refused: a superuser; a member of a role that ends sessions or touches the server's files;
    a role that may run dblink or read files; a role that may write to a table (the bot only
    reads, and a role that can write turns every admin-written query into a risk)."""
    if warehouse.dialect.name != "postgresql":
        return None
    with warehouse.connect() as connection:
        superuser, powerful, reaching, writable = connection.execute(
            _ROLE_CHECK, {"roles": list(_POWERFUL_ROLES), "functions": list(_REACHING_FUNCTIONS)}
        ).one()
        user = connection.execute(text("SELECT current_user")).scalar()
    advice = "use a read-only role (README: Warehouse queries)"
    if superuser:
        return f"the warehouse role {user} is a superuser: {advice}"
    if powerful:
        return f"the warehouse role {user} is a member of {', '.join(powerful)}: {advice}"
    if reaching:
        return f"the warehouse role {user} may execute {', '.join(reaching)}: {advice}"
    if writable:
        return f"the warehouse role {user} may write to tables ({', '.join(writable)}, …): {advice}"
    return None


def check_warehouse(warehouse: Engine, bot_url: str) -> None:
    """At start: WarehouseRefused (one line) for the bot's own database or a role that can do
    more than read. A warehouse that cannot be reached now is not refused: its queries fail
    each week, and are logged, until it can."""
    problem = own_database_problem(warehouse, bot_url)
    if problem is None:
        try:
            problem = role_problem(warehouse)
        except SQLAlchemyError:
            return
    if problem is not None:
        raise WarehouseRefused(problem)


# --- SQLite: reads only, and not forever ---------------------------------------------------------

# Functions a measuring query needs; anything else (fts3_tokenizer, load_extension, readfile…)
# is refused by the authorizer.
SQLITE_FUNCTIONS = frozenset(
    [
        "abs",
        "avg",
        "ceil",
        "ceiling",
        "char",
        "coalesce",
        "concat",
        "concat_ws",
        "count",
        "cume_dist",
        "date",
        "datetime",
        "dense_rank",
        "exp",
        "first_value",
        "floor",
        "format",
        "glob",
        "group_concat",
        "hex",
        "ifnull",
        "iif",
        "instr",
        "json",
        "json_array",
        "json_array_length",
        "json_each",
        "json_extract",
        "json_group_array",
        "json_group_object",
        "json_object",
        "json_tree",
        "json_type",
        "json_valid",
        "julianday",
        "lag",
        "last_value",
        "lead",
        "length",
        "like",
        "likelihood",
        "likely",
        "ln",
        "log",
        "log10",
        "log2",
        "lower",
        "ltrim",
        "max",
        "median",
        "min",
        "mod",
        "nth_value",
        "ntile",
        "nullif",
        "percent_rank",
        "pow",
        "power",
        "printf",
        "quote",
        "random",
        "rank",
        "replace",
        "round",
        "row_number",
        "rtrim",
        "sign",
        "sqrt",
        "strftime",
        "string_agg",
        "substr",
        "substring",
        "sum",
        "time",
        "timediff",
        "total",
        "trim",
        "typeof",
        "unicode",
        "unixepoch",
        "unlikely",
        "upper",
    ]
)
_READING = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    getattr(sqlite3, "SQLITE_RECURSIVE", 33),
}


def _authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    if action in _READING:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in SQLITE_FUNCTIONS:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def restrict_sqlite(raw: sqlite3.Connection, seconds: float) -> Callable[[], None]:
    """Let the connection only read, until ``seconds`` from now; returns what lifts it."""
    deadline = time.monotonic() + seconds
    raw.set_authorizer(_authorizer)
    # Called every 10 000 virtual-machine steps: a non-zero answer interrupts the query.
    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)

    def lift() -> None:
        raw.set_authorizer(None)
        raw.set_progress_handler(None, 0)

    return lift
