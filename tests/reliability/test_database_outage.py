"""The database unreachable at start, or going away for a while: a clear error, retries, and no
report lost without its reporter being told.

PostgreSQL is reached through a loopback TCP relay (tests/tcp_proxy.py) that the test cuts and
restores, so the shared server itself is never stopped. SQLite's form of "unavailable" is a file
another process keeps locked past the busy timeout.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bot.app import CxApp
from bot.domain.journey_map import JourneyMap
from bot.i18n import default_catalogue
from bot.messages import Message
from bot.outbox import Post, Target, drain_until, enqueue
from bot.scheduler import Leadership
from bot.services.setup import apply_journey
from bot.store.db import database_unavailable, make_engine, make_session_factory, upgrade
from bot.store.models import Issue, Outbox
from tests.conftest import NOW, PG_URL, Clock, postgres_engine_in_fresh_schema, require_postgres
from tests.tcp_proxy import TcpProxy
from tests.test_console import CXBOT
from tests.test_issues import say

UNAVAILABLE = default_catalogue().text("sv", "common.database_unavailable")
REPORT = "/cx report faktura: Kunden fick dubbla fakturor i november"


@dataclass
class Outage:
    """One PostgreSQL schema, reached directly (to check what is stored) and through the relay."""

    direct: sessionmaker[Session]
    proxied: sessionmaker[Session]
    engine: Engine
    proxy: TcpProxy
    url: str  # the relay's URL, with the schema, for a child process


def proxied_url(schema: str, port: int) -> str:
    url = make_url(PG_URL).set(host="127.0.0.1", port=port)
    return url.render_as_string(hide_password=False) + f"?options=-csearch_path%3D{schema}"


@pytest.fixture
def outage(example_journey: JourneyMap) -> Iterator[Outage]:
    require_postgres()
    direct, drop = postgres_engine_in_fresh_schema()
    with direct.connect() as connection:
        schema = str(connection.exec_driver_sql("select current_schema()").scalar())
    proxy = TcpProxy(str(direct.url.host or "127.0.0.1"), int(direct.url.port or 5432))
    url = proxied_url(schema, proxy.port)
    engine = make_engine(url)
    try:
        yield Outage(make_session_factory(direct), make_session_factory(engine), engine, proxy, url)
    finally:
        engine.dispose()
        proxy.close()
        drop()


@pytest.fixture
def loaded_outage(outage: Outage, example_journey: JourneyMap) -> Outage:
    upgrade(outage.engine)
    with outage.direct.begin() as session:
        apply_journey(session, example_journey, NOW, default_catalogue(), implicit_platforms=("console",))
    return outage


def rows(session_factory: sessionmaker[Session], model: type) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.postgres
def test_a_report_while_the_database_is_away_is_refused_clearly_and_the_next_one_works(
    loaded_outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    outage = loaded_outage
    app = CxApp(outage.proxied, clock=Clock(), default_language="sv")
    assert say(app, REPORT).message.text != UNAVAILABLE
    issues, posts = rows(outage.direct, Issue), rows(outage.direct, Outbox)
    assert issues == 1

    outage.proxy.cut()  # the pool's connections die, and new ones are refused
    with caplog.at_level(logging.ERROR):
        for attempt in range(3):
            reply = say(app, REPORT + f" ({attempt})")
            assert reply.message.text == UNAVAILABLE  # told: nothing was saved, try again later
    assert rows(outage.direct, Issue) == issues and rows(outage.direct, Outbox) == posts
    unavailable = [r for r in caplog.records if "the database is unavailable" in r.getMessage()]
    assert len(unavailable) == 3 and all(r.exc_info is None for r in unavailable)  # a line, not a traceback

    outage.proxy.restore()
    reply = say(
        app, "/cx report app: Appen kraschar när kunden loggar in med BankID"
    )  # the first command after the outage works: no dead connection
    assert reply.message.text != UNAVAILABLE and rows(outage.direct, Issue) == issues + 1


class Recorder:
    """A platform that takes every post (the faults here are the database's, not the platform's)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, post: Post) -> str:
        self.sent.append(post.message.text or "")
        return f"ref-{post.id}"


def eventually(condition: Callable[[], bool], seconds: float = 60.0) -> bool:
    """Waits for a condition; the deadline is generous because CI may be a busy machine."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.postgres
def test_the_delivery_loop_and_the_clock_ride_out_an_outage(
    loaded_outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    outage = loaded_outage
    clock = Clock(NOW + timedelta(hours=1))
    with outage.direct.begin() as session:
        session.query(Outbox).delete()
        enqueue(session, Target("console", "channel", "#cx"), Message(text="före"), "outage-1", NOW)
    sender, stop = Recorder(), threading.Event()
    loop = threading.Thread(
        target=drain_until, args=(outage.proxied, "console", sender, clock, stop, 0.05, 0.2), daemon=True
    )
    leadership = Leadership(outage.engine)
    caplog.set_level(logging.INFO)
    loop.start()
    try:
        assert eventually(lambda: sender.sent == ["före"])
        assert leadership.lead() is True

        outage.proxy.cut()
        assert eventually(lambda: any("draining console failed" in r.getMessage() for r in caplog.records))
        assert eventually(lambda: sum("draining console failed" in r.getMessage() for r in caplog.records) >= 3)
        assert loop.is_alive()
        assert leadership.lead() is False  # its lease died with its connection; nobody can lead now
        with outage.direct.begin() as session:  # queued while the bot cannot reach the database
            enqueue(session, Target("console", "channel", "#cx"), Message(text="under"), "outage-2", NOW)

        outage.proxy.restore()
        assert eventually(lambda: sender.sent == ["före", "under"]), sender.sent
        # The line is logged after the round that delivered "under" returns: wait for it, do not race it.
        assert eventually(lambda: any("works again" in r.getMessage() for r in caplog.records))
        assert leadership.lead() is True
    finally:
        stop.set()
        loop.join(5)
        leadership.release()
    failed_rounds = [r for r in caplog.records if "draining console failed" in r.getMessage()]
    assert sum(r.exc_info is not None for r in failed_rounds) == 1  # one traceback per outage, not one a second


@pytest.mark.postgres
def test_cxbot_waits_for_a_database_that_is_late_and_gives_up_with_one_line(outage: Outage, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXBOT_", "SLACK_", "DISCORD_"))}
    env |= {"CXBOT_DATABASE_URL": outage.url}
    outage.proxy.cut()
    gave_up = subprocess.run(
        [CXBOT, "db", "upgrade"],
        env=env | {"CXBOT_DATABASE_WAIT": "2"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert gave_up.returncode == 1
    last = gave_up.stderr.strip().splitlines()[-1]
    assert last.startswith("cxbot: cannot reach the database at postgresql+psycopg://") and "(waited 2 s)" in last
    assert "trying again in" in gave_up.stderr and "Traceback" not in gave_up.stderr

    late = subprocess.Popen(
        [CXBOT, "db", "upgrade"],
        env=env | {"CXBOT_DATABASE_WAIT": "60"},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert late.stderr is not None
    said: list[str] = []
    stream = late.stderr

    def read_lines() -> None:
        for line in stream:  # each line as it comes, not all at the end
            said.append(line)

    reader = threading.Thread(target=read_lines, daemon=True)
    reader.start()
    # Restore only once it has tried and said it waits: on a busy machine the start alone can
    # take longer than any fixed sleep, and then the first try would simply succeed.
    assert eventually(lambda: any("trying again in" in line for line in said)), said
    assert late.poll() is None
    outage.proxy.restore()
    assert late.wait(timeout=60) == 0, "".join(said)
    reader.join(10)
    assert rows(outage.direct, Issue) == 0  # the schema is there: the upgrade ran once the database came


def test_a_sqlite_file_locked_past_the_busy_timeout_is_reported_as_unavailable(
    tmp_path: Path, example_journey: JourneyMap, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "locked.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        apply_journey(session, example_journey, NOW, default_catalogue(), implicit_platforms=("console",))
    app = CxApp(factory, clock=Clock(), default_language="sv")
    other = sqlite3.connect(path, isolation_level=None)  # another process, holding the write lock
    other.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.ERROR):
            assert say(app, REPORT).message.text == UNAVAILABLE
        assert any("the database is unavailable: database is locked" in r.getMessage() for r in caplog.records)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert rows(factory, Issue) == 0
    assert say(app, REPORT).message.text != UNAVAILABLE and rows(factory, Issue) == 1
    engine.dispose()


@pytest.mark.postgres
def test_a_slack_report_while_the_database_is_away_is_answered_with_the_reason(
    loaded_outage: Outage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the real slack-bolt app: the command is acknowledged, and its answer at the
    response URL tells the person that their report was not saved."""
    from adapters.slack.bot import SlackBot, make_client
    from tests.slack_stub import SlackStub
    from tests.test_slack import ANNA, SECRET, FixedClock, InlineExecutor, command, texts_of

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    stub = SlackStub()
    core = CxApp(loaded_outage.proxied, clock=Clock(), default_language="sv", run_later=lambda task: task())
    slack = SlackBot(
        core,
        make_client("xoxb-outage", stub.api_url),
        signing_secret=SECRET,
        listener_executor=InlineExecutor(),
        work_executor=InlineExecutor(),
        verification_clock=FixedClock(time.time()),  # type: ignore[arg-type]
    )
    try:
        loaded_outage.proxy.cut()
        assert command(slack, REPORT.removeprefix("/cx "), user=ANNA).status == 200
        answer = stub.called("response_url")[-1]
        assert UNAVAILABLE in texts_of(answer["blocks"])
        assert rows(loaded_outage.direct, Issue) == 0
    finally:
        stub.close()


@pytest.mark.parametrize(
    ("driver_error", "unavailable"),
    [
        (sqlite3.OperationalError("database is locked"), True),
        (sqlite3.OperationalError("unable to open database file"), True),
        (sqlite3.OperationalError("no such table: issue"), False),  # a bug, not an outage
        (psycopg.OperationalError("connection failed: server closed the connection"), True),
        (psycopg.errors.AdminShutdown("terminating connection due to administrator command"), True),
        (psycopg.errors.DeadlockDetected("deadlock detected"), False),  # worth a retry, but a bug to trace
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), False),
    ],
)
def test_only_a_database_that_cannot_be_used_counts_as_unavailable(driver_error: Exception, unavailable: bool) -> None:
    """A deadlock or a missing table keeps its traceback and the generic apology; only an
    unreachable, restarting or locked database gets the "nothing was saved, try later" reply."""
    assert database_unavailable(OperationalError("SELECT 1", {}, driver_error)) is unavailable
