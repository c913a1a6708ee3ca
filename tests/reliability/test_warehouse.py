"""Security: the journey file's warehouse SQL is admin-written, and is contained as if it were
hostile. It never runs on the bot's own database, on PostgreSQL it runs as a plain reader on a
connection that is closed after it (nothing it takes outlives it) and is cancelled at its time
limit, on SQLite it may only read and only until its deadline, and what it answers or chokes on
is never echoed into logs or chat.

The PostgreSQL tests make a real role, as README's "Warehouse queries" says to (trust auth)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bot.services.warehouse import QueryProblem, pull_warehouse, run_query, warehouse_engine
from bot.services.warehouse_guard import WarehouseRefused, check_warehouse, own_database_problem, role_problem
from bot.store.db import make_engine
from tests.conftest import PG_URL, Clock, require_postgres
from tests.test_kpi_sources import fill_warehouse, with_queries

ZONE = ZoneInfo("Europe/Stockholm")
WEEK = "2026-W47"
SECRET = "Sara Bergström"  # a row's text that an error must never carry out


def problem_of(engine: Engine, sql: str, timeout: float = 60.0) -> str:
    with pytest.raises(QueryProblem) as caught:
        run_query(engine, sql, WEEK, ZONE, timeout)
    return str(caught.value)


# --- SQLite --------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_warehouse(tmp_path: Path) -> Iterator[Engine]:
    engine = warehouse_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    fill_warehouse(engine)
    yield engine
    engine.dispose()


def test_a_sqlite_query_that_never_ends_is_stopped_at_its_deadline(sqlite_warehouse: Engine) -> None:
    """A recursive query with no end used to run forever, and the weekly digest waited for it."""
    forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS value FROM c"
    outcome: list[str] = []

    def run() -> None:
        try:
            run_query(sqlite_warehouse, forever, WEEK, ZONE, timeout=1.0)
            outcome.append("a figure")
        except QueryProblem as exc:
            outcome.append(str(exc))

    started = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)  # daemon: a hung query must not hang pytest
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the query was not stopped"
    assert outcome and outcome[0].startswith("stopped at the time limit"), outcome
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT length(fts3_tokenizer('simple')) AS value",  # a pointer out; with two arguments, a crash
        "SELECT load_extension('/tmp/evil') AS value",
        "DELETE FROM churn",
        "WITH x AS (SELECT 1) INSERT INTO churn SELECT 'w', 1, 1 FROM x",
        "ATTACH DATABASE 'other.db' AS other",
        "PRAGMA query_only = OFF",
        "PRAGMA writable_schema = ON",
        "CREATE TEMP TABLE t AS SELECT 1 AS value",
    ],
)
def test_a_sqlite_query_may_only_read(sqlite_warehouse: Engine, sql: str) -> None:
    assert problem_of(sqlite_warehouse, sql).startswith("refused"), sql
    with sqlite_warehouse.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM churn")).scalar() == 2


def test_a_sqlite_query_that_reads_still_measures(sqlite_warehouse: Engine) -> None:
    sql = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) "
        "SELECT round(100.0 * sum(lost) / sum(at_start), 1) + (SELECT max(i) FROM n) - 3 AS value, "
        "count(*) AS n FROM churn WHERE week = :week AND lower(week) LIKE '2026%'"
    )
    assert run_query(sqlite_warehouse, sql, WEEK, ZONE) == (2.0, 2)


def test_the_bots_own_sqlite_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    bot_url = f"sqlite:///{tmp_path / 'cxbot.db'}"
    for same in (bot_url, "sqlite:///cxbot.db", f"sqlite:///{tmp_path}/./cxbot.db"):
        problem = own_database_problem(warehouse_engine(same), bot_url)
        assert problem is not None and "own database" in problem, same
        with pytest.raises(WarehouseRefused):
            check_warehouse(warehouse_engine(same), bot_url)
    assert own_database_problem(warehouse_engine("sqlite:///warehouse.db"), bot_url) is None
    check_warehouse(warehouse_engine("sqlite:///warehouse.db"), bot_url)  # not refused


# --- PostgreSQL ----------------------------------------------------------------------------------


class Reader:
    """A schema with the warehouse's tables, and a role that may only read them."""

    def __init__(self) -> None:
        self.suffix = uuid.uuid4().hex[:10]
        self.schema, self.role = f"wh_{self.suffix}", f"cxbot_reader_{self.suffix}"
        self.admin = make_engine(PG_URL)
        with self.admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            connection.execute(text(f'CREATE ROLE "{self.role}" LOGIN'))
        owner = make_engine(PG_URL, connect_args={"options": f"-csearch_path={self.schema}"})
        fill_warehouse(owner)
        with owner.begin() as connection:
            connection.execute(text("CREATE TABLE people (name TEXT)"))
            connection.execute(text("INSERT INTO people VALUES (:name)"), {"name": SECRET})
            # The README's role, as it says (schema by schema).
            connection.execute(text(f'GRANT USAGE ON SCHEMA "{self.schema}" TO "{self.role}"'))
            connection.execute(text(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{self.schema}" TO "{self.role}"'))
        owner.dispose()
        self.url = self.url_for("test")

    def url_for(self, database: str) -> str:
        url = make_url(PG_URL).set(
            username=self.role, password=None, database=database, query={"options": f"-csearch_path={self.schema}"}
        )
        return url.render_as_string(hide_password=False)

    def engine(self, database: str = "test") -> Engine:
        return warehouse_engine(self.url_for(database))

    def advisory_locks(self, key: int) -> int:
        with self.admin.connect() as connection:
            found = connection.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :key"), {"key": key}
            )
            return int(found.scalar() or 0)

    def close(self) -> None:
        with self.admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
            connection.execute(text(f'DROP OWNED BY "{self.role}"'))
            connection.execute(text(f'DROP ROLE "{self.role}"'))
        self.admin.dispose()


@pytest.fixture
def reader() -> Iterator[Reader]:
    require_postgres()
    made = Reader()
    try:
        yield made
    finally:
        made.close()


@pytest.mark.postgres
def test_an_advisory_lock_taken_by_a_query_is_released_after_it(reader: Reader) -> None:
    """A session-level advisory lock outlives the READ ONLY transaction; it once kept a lock that
    hung `cxbot db upgrade`. The connection is closed after each query, and the lock with it."""
    key = 870_000 + int(reader.suffix[:4], 16)
    engine = reader.engine()
    value, _ = run_query(engine, f"SELECT count(*) AS value FROM (SELECT pg_advisory_lock({key})) AS taken", WEEK, ZONE)
    assert value == 1
    assert reader.advisory_locks(key) == 0
    # Also on an engine with a pool (the bot's own kind): the connection is not given back.
    pooled = make_engine(reader.url)
    run_query(pooled, f"SELECT count(*) AS value FROM (SELECT pg_advisory_lock({key})) AS taken", WEEK, ZONE)
    assert reader.advisory_locks(key) == 0
    pooled.dispose()
    engine.dispose()


@pytest.mark.postgres
def test_a_plain_reader_cannot_reach_past_its_tables(reader: Reader) -> None:
    """What a query can do is what its role can do: the reader cannot end the bot's sessions
    or read the server's files, and is told so by SQLSTATE, not by the server's text."""
    engine = reader.engine()
    with reader.admin.connect() as bystander:
        pid = bystander.execute(text("SELECT pg_backend_pid()")).scalar()
        terminate = f"SELECT count(*) AS value FROM (SELECT pg_terminate_backend({pid})) AS t"
        assert problem_of(engine, terminate).startswith("permission denied"), terminate
        assert bystander.execute(text("SELECT 1")).scalar() == 1  # still alive
    reading = "SELECT length(pg_read_file('/etc/hostname')) AS value"
    assert problem_of(engine, reading).startswith("permission denied")
    writing = "WITH gone AS (DELETE FROM churn RETURNING lost) SELECT count(*) AS value FROM gone"
    assert "25006" in problem_of(engine, writing)


@pytest.mark.postgres
def test_a_query_is_cancelled_at_its_time_limit(reader: Reader) -> None:
    started = time.monotonic()
    problem = problem_of(reader.engine(), "SELECT count(*) AS value FROM (SELECT pg_sleep(120)) AS s", timeout=1.0)
    assert problem.startswith("stopped at the time limit") and "57014" in problem, problem
    assert time.monotonic() - started < 30


@pytest.mark.postgres
def test_an_error_holding_data_is_not_echoed(
    reader: Reader, loaded: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL says `invalid input syntax for type integer: "Sara Bergström"`; the report and
    the log say which query failed and its SQLSTATE."""
    caplog.set_level(logging.DEBUG)
    with_queries(loaded, {"churn": "SELECT CAST(name AS integer) AS value FROM people"})
    report = pull_warehouse(loaded, reader.engine(), WEEK, Clock())
    assert report.stored == [] and len(report.failed) == 1
    assert report.failed[0] == "loyalty/churn: InvalidTextRepresentation (SQLSTATE 22P02)", report.failed
    assert "loyalty/churn" in caplog.text and "22P02" in caplog.text
    for part in SECRET.split():
        assert part not in caplog.text and part not in report.failed[0]


@pytest.mark.postgres
def test_a_role_that_can_do_more_than_read_is_refused(reader: Reader) -> None:
    engine = reader.engine("postgres")  # another database on the server: not the bot's
    assert role_problem(engine) is None
    check_warehouse(engine, PG_URL)  # the README's role, elsewhere: accepted
    superuser = warehouse_engine(make_url(PG_URL).set(database="postgres").render_as_string(hide_password=False))
    assert "superuser" in (role_problem(superuser) or "")
    grants = [
        (f'GRANT pg_signal_backend TO "{reader.role}"', "pg_signal_backend"),
        (f'GRANT pg_read_server_files TO "{reader.role}"', "pg_read_server_files"),
        (f'GRANT INSERT ON "{reader.schema}".churn TO "{reader.role}"', "may write"),
    ]
    for grant, named in grants:
        with reader.admin.begin() as connection:
            connection.execute(text(grant))
        problem = role_problem(reader.engine())
        assert problem is not None and named in problem, (grant, problem)
        if named != "may write":  # a role's membership holds in every database; the table is in "test"
            with pytest.raises(WarehouseRefused, match=named):
                check_warehouse(engine, PG_URL)
        with reader.admin.begin() as connection:
            connection.execute(text(grant.replace("GRANT", "REVOKE").replace(" TO ", " FROM ")))
    assert role_problem(engine) is None


@pytest.mark.postgres
def test_the_bots_own_postgresql_database_is_refused(reader: Reader) -> None:
    """Another role, another search path, the same server and database: still the bot's own."""
    for url in (PG_URL, reader.url):
        problem = own_database_problem(warehouse_engine(url), PG_URL)
        assert problem is not None and "own database" in problem, url
    assert own_database_problem(reader.engine("postgres"), PG_URL) is None


def test_the_cli_refuses_the_bots_own_database_with_one_line(bare_engine: Engine, tmp_path: Path) -> None:
    from tests.test_console import cli_env, run_cxbot

    own = cli_env(bare_engine, tmp_path)["CXBOT_DATABASE_URL"]
    run = run_cxbot(bare_engine, tmp_path, "", "kpi", "pull", env={"CXBOT_WAREHOUSE_URL": own})
    assert run.returncode == 1
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "own database" in lines[0], run.stderr


def test_an_unreachable_warehouse_is_named_as_such() -> None:
    engine = warehouse_engine(f"postgresql://bob:{SECRET.split()[0]}@127.0.0.1:1/warehouse")
    assert problem_of(engine, "SELECT 1 AS value") == "cannot reach the warehouse: OperationalError"
