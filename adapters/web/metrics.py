"""``/metrics`` in Prometheus's text format, through prometheus_client.

Two kinds of figures, chosen so that they are right however many processes run:
- **Read from the database at scrape time** (``DatabaseCollector``): the outbox by platform and
  state, the age of its oldest pending row, and on PostgreSQL how many clocks hold the lead.
  They describe the shared state, so any process's /metrics gives the same answer.
- **Counted in this process** (``PrometheusTelemetry``, the core's ``bot.telemetry`` hook):
  commands, deliveries, redelivered events, classifier fallbacks, this clock's lead and its
  jobs' last runs. Each ``cxbot run`` process serves its own port, so Prometheus scrapes each as
  a target of its own and sums across them (``sum by (…)``); no multiprocess mode is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select, text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.scheduler import CLOCK_LOCK
from bot.store.models import Outbox

log = logging.getLogger(__name__)

COMMAND_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class PrometheusTelemetry:
    """The core's telemetry hook, kept in prometheus_client metrics on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.commands = Counter(
            "cxbot_commands",
            "Chat commands handled, by command and outcome.",
            ["command", "outcome"],
            registry=registry,
        )
        self.command_seconds = Histogram(
            "cxbot_command_seconds",
            "Time the core took to handle a chat command.",
            ["command"],
            buckets=COMMAND_SECONDS,
            registry=registry,
        )
        self.deliveries = Counter(
            "cxbot_deliveries",
            "Attempts to post an outbox row, by platform, outcome (sent, retried, given_up) and error class.",
            ["platform", "outcome", "error_class"],
            registry=registry,
        )
        self.deduplicated = Counter(
            "cxbot_inbound_deduplicated",
            "Events and commands a platform delivered again, ignored.",
            ["platform"],
            registry=registry,
        )
        self.fallbacks = Counter(
            "cxbot_classifier_fallbacks",
            "Times OpenAI failed and the offline classifier or summariser answered.",
            ["what"],
            registry=registry,
        )
        self.leading = Gauge(
            "cxbot_clock_leading", "1 while this process's clock holds the lead (at its last job).", registry=registry
        )
        self.job_last_run = Gauge(
            "cxbot_job_last_run_timestamp_seconds",
            "When each clock job last ran in this process, by outcome (ok, failed).",
            ["job", "outcome"],
            registry=registry,
        )

    def command_handled(self, name: str, outcome: str, seconds: float) -> None:
        self.commands.labels(name, outcome).inc()
        self.command_seconds.labels(name).observe(seconds)

    def delivery(self, platform: str, outcome: str, error_class: str) -> None:
        self.deliveries.labels(platform, outcome, error_class).inc()

    def inbound_deduplicated(self, platform: str) -> None:
        self.deduplicated.labels(platform).inc()

    def classifier_fallback(self, what: str) -> None:
        self.fallbacks.labels(what).inc()

    def clock_leading(self, leading: bool) -> None:
        self.leading.set(1 if leading else 0)

    def job_ran(self, job: str, outcome: str, at: float) -> None:
        self.job_last_run.labels(job, outcome).set(at)


class DatabaseCollector(Collector):
    """The outbox and the clock's lead, read from the database when Prometheus scrapes."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine, self.clock = engine, clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rows = GaugeMetricFamily(
            "cxbot_outbox_rows", "Outbox rows by platform and status.", labels=["platform", "status"]
        )
        oldest = GaugeMetricFamily(
            "cxbot_outbox_oldest_pending_age_seconds",
            "Age of the oldest row waiting to be posted (pending or being sent), by platform; 0 when none waits.",
            labels=["platform"],
        )
        up = GaugeMetricFamily("cxbot_database_up", "1 when the scrape could read the database.")
        families = [rows, oldest, up]
        try:
            with self.engine.connect() as connection:
                counts = connection.execute(
                    select(Outbox.platform, Outbox.status, func.count()).group_by(Outbox.platform, Outbox.status)
                ).all()
                firsts = connection.execute(
                    select(Outbox.platform, func.min(Outbox.created_at))
                    .where(Outbox.status.in_(("pending", "sending")))
                    .group_by(Outbox.platform)
                ).all()
                leaders = self._leaders(connection)
        except Exception as exc:  # the database is away: say so, and nothing else
            log.warning("metrics: cannot read the database: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield from families
            return
        up.add_metric([], 1)
        platforms = sorted({platform for platform, _, _ in counts})
        for platform, status, n in counts:
            rows.add_metric([platform, status], n)
        now = self.clock()
        waiting = {platform: first for platform, first in firsts}
        for platform in platforms:
            first = waiting.get(platform)
            age = (now - (first if first.tzinfo else first.replace(tzinfo=UTC))).total_seconds() if first else 0.0
            oldest.add_metric([platform], max(0.0, age))
        if leaders is not None:
            family = GaugeMetricFamily(
                "cxbot_clock_leaders", "Clocks holding the lead (PostgreSQL's advisory lock); 1 is right, 0 is none."
            )
            family.add_metric([], leaders)
            families.append(family)
        yield from families

    def _leaders(self, connection: object) -> int | None:
        if self.engine.dialect.name != "postgresql":
            return None  # on SQLite every clock leads; see cxbot_clock_leading
        # An advisory lock on a bigint key shows in pg_locks as two 32-bit halves.
        return int(
            connection.execute(  # type: ignore[attr-defined]
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND classid::bigint = :high AND objid::bigint = :low AND objsubid = 1"
                ),
                {"high": CLOCK_LOCK >> 32, "low": CLOCK_LOCK & 0xFFFFFFFF},
            ).scalar()
            or 0
        )


def metrics_routes(registry: CollectorRegistry) -> list[Route]:
    async def metrics(request: Request) -> Response:
        # generate_latest reads the database collector: off the event loop.
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return [Route("/metrics", metrics, methods=["GET"])]
