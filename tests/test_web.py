"""The web adapter in process: readiness within its timeout and without leaks, the metrics the
core's telemetry feeds and those read from the database, the error classes of deliveries."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.testclient import TestClient

from adapters.web.health import Readiness, health_routes
from adapters.web.metrics import DatabaseCollector, PrometheusTelemetry
from bot.app import CxApp
from bot.messages import Invocation
from bot.outbox import DeliveryError, Post, Target, drain, enqueue
from bot.scheduler import Leadership
from bot.telemetry import NoTelemetry, error_class, install
from tests.conftest import NOW, Clock


def sample(registry: CollectorRegistry, name: str, labels: dict[str, str] | None = None) -> float | None:
    return registry.get_sample_value(name, labels or {})


@pytest.fixture
def registry() -> CollectorRegistry:
    found = CollectorRegistry()
    install(PrometheusTelemetry(found))
    yield found
    install(NoTelemetry())


def test_readyz_names_what_is_not_ready_within_its_timeout_and_leaks_nothing() -> None:
    hung = threading.Event()

    def database() -> bool:
        raise RuntimeError("could not connect to postgresql://cxbot:hunter2@db.internal:5432/cx")

    def platform() -> bool:
        hung.wait(30)  # a check that never answers
        return True

    readiness = Readiness({"database": database, "platform:slack": platform, "migrations": lambda: True}, 0.5)
    client = TestClient(Starlette(routes=health_routes(readiness)))
    started = time.monotonic()
    answer = client.get("/readyz")
    took = time.monotonic() - started
    hung.set()
    assert answer.status_code == 503
    assert answer.json()["not_ready"] == ["database", "platform:slack"]
    assert answer.json()["checks"]["migrations"] is True
    assert "hunter2" not in answer.text and "db.internal" not in answer.text
    assert took < 5, f"/readyz took {took:.1f} s with a 0.5 s timeout"
    assert client.get("/healthz").status_code == 200


def test_commands_and_redeliveries_are_counted_by_name_and_outcome(
    registry: CollectorRegistry, loaded: sessionmaker[Session], clock: Clock
) -> None:
    core = CxApp(loaded, clock=clock, run_later=lambda task: None)
    for text in ("help", "journey", "no-such-command secret words", "erase anna"):
        core.dispatch(Invocation("slack", "T0NL", "U0NLLEIL05", "C1", text))
    core.dispatch(Invocation("slack", "T0NL", "U0NLLEIL05", "C1", "help", delivery_id="t1"))
    core.dispatch(Invocation("slack", "T0NL", "U0NLLEIL05", "C1", "help", delivery_id="t1"))
    assert sample(registry, "cxbot_commands_total", {"command": "help", "outcome": "ok"}) == 3
    assert sample(registry, "cxbot_commands_total", {"command": "unknown", "outcome": "ok"}) == 1
    assert sample(registry, "cxbot_commands_total", {"command": "erase", "outcome": "refused"}) == 1
    assert sample(registry, "cxbot_command_seconds_count", {"command": "journey"}) == 1
    assert sample(registry, "cxbot_inbound_deduplicated_total", {"platform": "slack"}) == 1
    assert b"secret words" not in generate_latest(registry)


class Flaky:
    def __init__(self, errors: list[DeliveryError | None]) -> None:
        self.errors = errors

    def send(self, post: Post) -> str:
        error = self.errors.pop(0)
        if error is not None:
            raise error
        return "ref"


def test_deliveries_are_counted_by_outcome_and_error_class_and_the_outbox_read_from_the_database(
    registry: CollectorRegistry, loaded: sessionmaker[Session]
) -> None:
    from bot.messages import Message
    from bot.store.models import Outbox

    with loaded.begin() as session:
        session.query(Outbox).delete()
        for n in range(3):
            enqueue(session, Target("slack", "channel", f"C{n}"), Message(text=f"post {n}"), f"k{n}", NOW)
    registry.register(DatabaseCollector(loaded.kw["bind"], clock=lambda: NOW + timedelta(seconds=90)))
    assert sample(registry, "cxbot_outbox_rows", {"platform": "slack", "status": "pending"}) == 3
    assert sample(registry, "cxbot_outbox_oldest_pending_age_seconds", {"platform": "slack"}) == 90
    sender = Flaky(
        [
            None,
            DeliveryError("slack: rate limited", retryable=True, retry_after=1),
            DeliveryError("slack: channel_not_found", retryable=False),
        ]
    )
    drain(loaded, "slack", sender, Clock(NOW))
    assert sample(registry, "cxbot_deliveries_total", {"platform": "slack", "outcome": "sent", "error_class": ""}) == 1
    retried = {"platform": "slack", "outcome": "retried", "error_class": "rate_limited"}
    given_up = {"platform": "slack", "outcome": "given_up", "error_class": "channel_not_found"}
    assert sample(registry, "cxbot_deliveries_total", retried) == 1
    assert sample(registry, "cxbot_deliveries_total", given_up) == 1
    assert sample(registry, "cxbot_outbox_rows", {"platform": "slack", "status": "failed"}) == 1
    assert sample(registry, "cxbot_outbox_rows", {"platform": "slack", "status": "sent"}) == 1
    assert sample(registry, "cxbot_database_up") == 1


def test_the_number_of_leading_clocks_is_read_from_postgresql(loaded: sessionmaker[Session]) -> None:
    engine = loaded.kw["bind"]
    if engine.dialect.name != "postgresql":
        pytest.skip("on SQLite every clock leads; cxbot_clock_leading tells it per process")
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(engine))
    assert sample(registry, "cxbot_clock_leaders") == 0
    leadership = Leadership(engine)
    try:
        assert leadership.lead()
        assert sample(registry, "cxbot_clock_leaders") == 1
    finally:
        leadership.release()
    assert sample(registry, "cxbot_clock_leaders") == 0


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("slack: rate limited", "rate_limited"),
        ("slack: HTTP 503", "http_503"),
        ("discord: HTTP 403 Missing Access to #secret-channel", "http_403"),
        ("slack: channel_not_found", "channel_not_found"),
        ("network: [Errno 111] Connection refused to 10.0.0.1", "network"),
        ("discord: timed out", "timeout"),
        ("RuntimeError('boom in C0NL')", "other"),
        ("", "other"),
    ],
)
def test_a_delivery_error_class_is_a_short_bounded_word(reason: str, expected: str) -> None:
    assert error_class(reason) == expected
