"""The clock: APScheduler jobs that call services. One clock leads at a time.

APScheduler 3 cannot share a job store between processes, so every clock keeps its jobs in
memory and, on PostgreSQL, only the holder of an advisory lock runs them (the lock is a lease:
it is released when the holder's connection dies, and another clock takes over at its next tick).
Every job's effect is idempotent anyway (state on the rows, unique outbox keys), so even two
leading clocks post once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session, sessionmaker

from bot.i18n import Catalogue, default_catalogue
from bot.services.issues import IssueService
from bot.services.journey import current_org
from bot.services.sla_sweep import SweepReport, sweep

log = logging.getLogger(__name__)

CLOCK_LOCK = 0x63786C6F636B  # "cxlock"
SWEEP_MINUTES = 5
MISFIRE_GRACE_SECONDS = 5 * 60


def run_sla_sweep(
    session_factory: sessionmaker[Session], clock: Callable[[], datetime], catalogue: Catalogue | None = None
) -> SweepReport | None:
    """One SLA sweep in its own transaction; None when no journey is loaded."""
    with session_factory.begin() as session:
        org = current_org(session)
        if org is None:
            return None
        return sweep(IssueService(session, org, catalogue or default_catalogue(), clock()))


class Leadership:
    """Whether this clock may run jobs now: always on SQLite; on PostgreSQL while it holds the lock."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: Connection | None = None
        self._lock = threading.Lock()

    def lead(self) -> bool:
        if self.engine.dialect.name != "postgresql":
            return True
        with self._lock:
            if self._connection is not None:
                try:
                    self._connection.execute(text("SELECT 1"))
                    return True
                except Exception:  # the connection died, and with it the lease
                    log.warning("clock: lost the leader connection; trying to lead again")
                    self._release()
            connection = self.engine.connect()
            taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": CLOCK_LOCK}).scalar()
            connection.commit()
            if taken:
                self._connection = connection
                log.info("clock: this process leads")
                return True
            connection.close()
            return False

    def _release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None

    def release(self) -> None:
        with self._lock:
            if self._connection is not None:
                try:
                    self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": CLOCK_LOCK})
                    self._connection.commit()
                except Exception:
                    log.debug("clock: unlock failed; closing the connection releases it", exc_info=True)
            self._release()


def led(leadership: Leadership, job: Callable[[], Any], name: str) -> Callable[[], None]:
    def run() -> None:
        if not leadership.lead():
            log.debug("clock: %s skipped, another clock leads", name)
            return
        try:
            job()
        except Exception:  # one failed run must not stop the clock
            log.exception("clock: %s failed", name)

    return run


def build_scheduler(
    engine: Engine,
    session_factory: sessionmaker[Session],
    clock: Callable[[], datetime],
    time_zone: str,
    *,
    blocking: bool,
) -> tuple[BaseScheduler, Leadership]:
    leadership = Leadership(engine)
    scheduler: BaseScheduler = (
        BlockingScheduler(timezone=time_zone) if blocking else BackgroundScheduler(timezone=time_zone)
    )
    scheduler.add_job(
        led(leadership, lambda: run_sla_sweep(session_factory, clock), "sla_sweep"),
        IntervalTrigger(minutes=SWEEP_MINUTES, timezone=time_zone),
        id="sla_sweep",
        name="SLA reminders and escalation",
        misfire_grace_time=MISFIRE_GRACE_SECONDS,
        coalesce=True,
        max_instances=1,
        replace_existing=True,
    )
    return scheduler, leadership
