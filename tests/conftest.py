"""Fixtures: every database test runs on SQLite and on PostgreSQL, each in a clean schema.

PostgreSQL's URL comes from CXBOT_TEST_POSTGRES_URL (``.ci/run`` sets it). Without a reachable
server the PostgreSQL half is skipped locally, but fails under CI, where it must run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from bot.app import CxApp
from bot.config import REPO_CONTENT
from bot.domain.journey_map import JourneyMap, load_journey_file
from bot.i18n import default_catalogue
from bot.services.setup import apply_journey
from bot.store.db import make_engine, make_session_factory
from bot.store.models import Base

PG_URL = os.environ.get("CXBOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
EXAMPLE = REPO_CONTENT / "journey.example.yaml"
NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)

_pg_state: dict[str, str | None] = {}


def postgres_unavailable() -> str | None:
    """None when PostgreSQL answers, else why not (checked once per run)."""
    if "reason" not in _pg_state:
        try:
            probe = make_engine(PG_URL, connect_args={"connect_timeout": 3})
            with probe.connect() as connection:
                connection.execute(text("select 1"))
            probe.dispose()
            _pg_state["reason"] = None
        except Exception as exc:
            _pg_state["reason"] = f"PostgreSQL at {PG_URL} is not reachable: {exc}"
    return _pg_state["reason"]


def require_postgres() -> None:
    reason = postgres_unavailable()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def postgres_engine_in_fresh_schema() -> tuple[Engine, Callable[[], None]]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    # Each schema's connections carry its name, so the drop can end the ones still busy.
    engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}", "application_name": schema})

    def drop() -> None:
        engine.dispose()
        with admin.begin() as connection:
            # A thread the test started (an app's follow-up, a racing clock) may still hold a
            # connection; dropping under it deadlocks. End those sessions first.
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": schema},
            )
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return engine, drop


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def bare_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty database: no tables yet."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'test.db'}")
        yield engine
        engine.dispose()
        return
    require_postgres()
    engine, drop = postgres_engine_in_fresh_schema()
    try:
        yield engine
    finally:
        drop()


@pytest.fixture
def engine(bare_engine: Engine) -> Engine:
    Base.metadata.create_all(bare_engine)
    return bare_engine


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture(scope="session")
def example_journey() -> JourneyMap:
    result = load_journey_file(str(EXAMPLE))
    assert result.journey is not None, result.problems
    return result.journey


@pytest.fixture
def loaded(session_factory: sessionmaker[Session], example_journey: JourneyMap) -> sessionmaker[Session]:
    """The example journey in the database, with console identities, as the demo has it."""
    with session_factory.begin() as session:
        apply_journey(session, example_journey, NOW, default_catalogue(), implicit_platforms=("console",))
    return session_factory


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(loaded: sessionmaker[Session], clock: Clock) -> Iterator[CxApp]:
    app = CxApp(loaded, clock=clock, default_language="sv")
    yield app
    # Follow-ups (routing a report, telling a reporter) run on the app's pool; they must end
    # before the test's schema is dropped, or the drop deadlocks with them on PostgreSQL.
    app.close(wait=True)


@pytest.fixture
def pg_session_factory() -> Iterator[sessionmaker[Session]]:
    """PostgreSQL alone, for what only it does (row locks, advisory locks, SKIP LOCKED)."""
    require_postgres()
    engine, drop = postgres_engine_in_fresh_schema()
    Base.metadata.create_all(engine)
    try:
        yield make_session_factory(engine)
    finally:
        drop()


@pytest.fixture
def pg_loaded(pg_session_factory: sessionmaker[Session], example_journey: JourneyMap) -> sessionmaker[Session]:
    """The example journey on PostgreSQL alone."""
    with pg_session_factory.begin() as session:
        apply_journey(session, example_journey, NOW, default_catalogue(), implicit_platforms=("console",))
    return pg_session_factory
