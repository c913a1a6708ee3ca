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
import time as time_module
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from bot.content import Content, default_content
from bot.llm import Classifier, OfflineClassifier, Summariser, Summary
from bot.services.digest import build_digest, chart_input, digest_chart, post_digest, summarise_week
from bot.services.inbound import forget_old
from bot.services.issues import IssueService
from bot.services.journey import current_org
from bot.services.kpi import last_complete_week
from bot.services.observations import classify_pending
from bot.services.picture_delivery import prepare_picture
from bot.services.sla_sweep import SweepReport, sweep
from bot.services.tips import TipService, subscriptions
from bot.services.warehouse import pull_warehouse
from bot.store.db import driver_reason
from bot.store.models import Outbox, Subscription
from bot.telemetry import telemetry

log = logging.getLogger(__name__)

CLOCK_LOCK = 0x63786C6F636B  # "cxlock"
SWEEP_MINUTES = 5
MISFIRE_GRACE_SECONDS = 5 * 60


def run_sla_sweep(
    session_factory: sessionmaker[Session], clock: Callable[[], datetime], content: Content | None = None
) -> SweepReport | None:
    """One SLA sweep in its own transaction; None when no journey is loaded."""
    with session_factory.begin() as session:
        org = current_org(session)
        if org is None:
            return None
        forget_old(session, clock())  # the dedupe records of platform events nobody will resend
        return sweep(IssueService(session, org, (content or default_content()).catalogue, clock()))


def run_weekly_tips(
    session_factory: sessionmaker[Session],
    clock: Callable[[], datetime],
    order: str = "auto",
    content: Content | None = None,
) -> int:
    """This week's tip to every subscribed channel that has not had it; returns how many posted.

    Each channel in its own transaction, so one channel's trouble does not hold back the others;
    the unique (channel, week) makes a rerun, a restart or a second clock post nothing twice.
    """
    with session_factory() as session:
        org = current_org(session)
        if org is None:
            return 0
        channels = [s.id for s in subscriptions(session, org, "tips")]
    content = content or default_content()
    posted = 0
    for subscription_id in channels:
        with session_factory.begin() as session:
            org = current_org(session)
            subscription = session.get(Subscription, subscription_id)
            if org is None or subscription is None:
                continue
            service = TipService(session, org, content.catalogue, content.tips, clock())
            posted += service.post_weekly(subscription, order) is not None
    return posted


def run_weekly_digest(
    session_factory: sessionmaker[Session],
    clock: Callable[[], datetime],
    content: Content | None = None,
    summariser: Summariser | None = None,
    warehouse: Engine | None = None,
) -> int:
    """Last week's digest to every subscribed channel that has not had it; returns how many.

    The warehouse's figures for the week are pulled first (a failing query is logged, and the
    digest goes out without it). A week whose digest every channel has is not built again, so a
    catch-up after a restart costs nothing and asks OpenAI nothing.
    """
    with session_factory() as session:
        org = current_org(session)
        if org is None:
            return 0
        week = last_complete_week(clock(), ZoneInfo(org.time_zone))
        channels = subscriptions(session, org, "digest")
        keys = [f"digest:{week}:{c.platform}:{c.channel_ref}" for c in channels]
        done = set(session.scalars(select(Outbox.idempotency_key).where(Outbox.idempotency_key.in_(keys))))
    if not channels or done == set(keys):
        return 0
    if warehouse is not None:
        try:
            pull_warehouse(session_factory, warehouse, week, clock)
        except Exception:  # the digest goes out without the warehouse's figures
            log.exception("clock: the warehouse queries for %s failed", week)
    content = content or default_content()
    # OpenAI may take its time: ask it with no transaction open (on SQLite one would hold the
    # write lock, and every command would wait).
    summary = summarise_week(session_factory, week, org.language, summariser) if summariser is not None else None
    # Drawing takes a while too: the chart and the journey picture are drawn with no transaction
    # open, and the digest uses them if its figures are still the same inside the transaction.
    drawn = draw_ahead(session_factory, content, week, summary, clock)
    prepare_picture(session_factory, content.catalogue, org.language, clock(), week=week)
    with session_factory.begin() as session:
        org = current_org(session)
        if org is None:
            return 0
        digest = build_digest(
            session, org, week, catalogue=content.catalogue, tips=content.tips, now=clock(), summary=summary
        )
        return post_digest(session, org, digest, content.catalogue, clock(), drawn)


def draw_ahead(
    session_factory: sessionmaker[Session],
    content: Content,
    week: str,
    summary: Summary | None,
    clock: Callable[[], datetime],
) -> tuple[tuple[object, ...], bytes] | None:
    """The week's trend chart, drawn from a read of the figures, and what it was drawn from."""
    with session_factory() as session:
        org = current_org(session)
        if org is None:
            return None
        language = org.language
        digest = build_digest(
            session, org, week, catalogue=content.catalogue, tips=content.tips, now=clock(), summary=summary
        )
    if digest.empty:
        return None
    png = digest_chart(digest, language, content.catalogue)
    return (chart_input(digest), png) if png is not None else None


def due_this_week(trigger: CronTrigger, now: datetime, zone: ZoneInfo) -> bool:
    """Has the trigger fired this week already (by the schedule), so that a clock that was down
    then should catch up now? The week is the ISO week in the org's time zone."""
    local = now.astimezone(zone)
    monday = datetime.combine(local.date() - timedelta(days=local.weekday()), time(0), tzinfo=zone)
    first = trigger.get_next_fire_time(None, monday)
    return first is not None and first <= now


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
            # Autocommit: the lease is the session-level lock, not a transaction left open (which
            # idle_in_transaction_session_timeout would end, and the lease with it).
            connection: Connection | None = None
            try:
                connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": CLOCK_LOCK}).scalar()
            except Exception as exc:  # the database is away: nobody can lead; ask again next tick
                log.warning("clock: cannot reach the database to lead: %s", driver_reason(exc))
                if connection is not None:
                    connection.invalidate()
                return False
            if taken:
                self._connection = connection
                log.info("clock: this process leads")
                return True
            connection.close()
            return False

    def _release(self) -> None:
        if self._connection is not None:
            try:
                # Invalidate, not close: a connection that is alive after all must not go back
                # to the pool still holding the lock (no clock could lead then).
                self._connection.invalidate()
            finally:
                self._connection = None

    def release(self) -> None:
        with self._lock:
            if self._connection is not None:
                try:
                    self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": CLOCK_LOCK})
                except Exception:
                    log.debug("clock: unlock failed; closing the connection releases it", exc_info=True)
            self._release()


def led(leadership: Leadership, job: Callable[[], Any], name: str) -> Callable[[], None]:
    def run() -> None:
        leading = leadership.lead()
        telemetry().clock_leading(leading)
        if not leading:
            log.debug("clock: %s skipped, another clock leads", name)
            return
        try:
            job()
        except Exception:  # one failed run must not stop the clock
            log.exception("clock: %s failed", name)
            telemetry().job_ran(name, "failed", time_module.time())
            return
        telemetry().job_ran(name, "ok", time_module.time())

    return run


def build_scheduler(
    engine: Engine,
    session_factory: sessionmaker[Session],
    clock: Callable[[], datetime],
    time_zone: str,
    *,
    blocking: bool,
    tip_schedule: str = "0 9 * * mon",
    tip_order: str = "auto",
    content: Content | None = None,
    classifier: Classifier | None = None,
    digest_schedule: str = "0 9 * * mon",
    summariser: Summariser | None = None,
    warehouse: Engine | None = None,
    catch_up_at_start: bool = True,
) -> tuple[BaseScheduler, Leadership]:
    """The jobs, each under an explicit id, in the org's time zone, with minutes of misfire grace.

    A weekly job whose moment passed while no clock ran is caught up at start (it is idempotent),
    unless ``catch_up_at_start`` is off (the console: there, /clock runs it when asked); the
    hourly catch-up still comes.
    """
    leadership = Leadership(engine)
    scheduler: BaseScheduler = (
        BlockingScheduler(timezone=time_zone) if blocking else BackgroundScheduler(timezone=time_zone)
    )

    def every(job_id: str, name: str, trigger: Any, job: Callable[[], object]) -> Callable[[], None]:
        """A job under the lease, with the same explicit options for all: minutes of misfire
        grace (not APScheduler's one second), missed runs coalesced, one run at a time."""
        run = led(leadership, job, job_id)
        scheduler.add_job(
            run,
            trigger,
            id=job_id,
            name=name,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
            coalesce=True,
            max_instances=1,
            replace_existing=True,
        )
        return run

    every(
        "sla_sweep",
        "SLA reminders and escalation",
        IntervalTrigger(minutes=SWEEP_MINUTES, timezone=time_zone),
        lambda: run_sla_sweep(session_factory, clock, content),
    )
    every(
        "classify_observations",
        "Classify observations a crash left unclassified",
        IntervalTrigger(minutes=1, timezone=time_zone),
        lambda: classify_pending(session_factory, classifier or OfflineClassifier(), clock),
    )
    tips_trigger = CronTrigger.from_crontab(tip_schedule, timezone=time_zone)
    weekly_tips = every(
        "weekly_tips",
        "The weekly CX tip",
        tips_trigger,
        lambda: run_weekly_tips(session_factory, clock, tip_order, content),
    )
    if catch_up_at_start and due_this_week(tips_trigger, clock(), ZoneInfo(time_zone)):
        scheduler.add_job(weekly_tips, id="weekly_tips_catch_up", name="Catch up this week's tip")
    digest_trigger = CronTrigger.from_crontab(digest_schedule, timezone=time_zone)
    weekly_digest = every(
        "weekly_digest",
        "Last week's CX digest",
        digest_trigger,
        lambda: run_weekly_digest(session_factory, clock, content, summariser, warehouse),
    )
    if catch_up_at_start and due_this_week(digest_trigger, clock(), ZoneInfo(time_zone)):
        scheduler.add_job(weekly_digest, id="weekly_digest_catch_up", name="Catch up last week's digest")

    def catch_up() -> None:
        """A weekly post whose run failed (a database hiccup at 09:00) is retried within the hour,
        not next week; both jobs are idempotent, and cheap when every channel has its post."""
        zone = ZoneInfo(time_zone)
        if due_this_week(tips_trigger, clock(), zone):
            run_weekly_tips(session_factory, clock, tip_order, content)
        if due_this_week(digest_trigger, clock(), zone):
            run_weekly_digest(session_factory, clock, content, summariser, warehouse)

    every("weekly_catch_up", "Retry this week's tip and digest", IntervalTrigger(hours=1, timezone=time_zone), catch_up)
    return scheduler, leadership
