"""The SLA sweep with a controlled clock: reminders, escalation, overdue — each exactly once.

NOW is Tuesday 24 November 2026, 10:30 in Stockholm. monthly-invoice and first-invoice are
owned by fatima (backup elin); the usage stage is oskar's (who works from London); anna is the
CX lead.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.app import CxApp
from bot.scheduler import MISFIRE_GRACE_SECONDS, Leadership, build_scheduler, run_sla_sweep
from bot.store.models import IssueEvent, Outbox
from tests.conftest import NOW, Clock
from tests.test_issues import events, issue, outbox_rows, say


def stockholm(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in November 2026, Stockholm (UTC+1)."""
    return datetime(2026, 11, day, hour - 1, minute, tzinfo=UTC)


def sweep_at(loaded: sessionmaker[Session], clock: Clock, moment: datetime):  # type: ignore[no-untyped-def]
    clock.now = moment
    return run_sla_sweep(loaded, clock)


def test_reminders_come_once_per_person_within_working_hours(
    app: CxApp, loaded: sessionmaker[Session], clock: Clock
) -> None:
    say(app, "/cx report faktura: fel moms")  # acknowledge by Wednesday 10:30
    say(app, "/cx report första fakturan: saknar kundnummer")
    say(app, "/cx report app: kraschar")  # oskar's, not fatima's
    assert sweep_at(loaded, clock, NOW).reminders == 0  # type: ignore[union-attr]
    early = sweep_at(loaded, clock, stockholm(25, 5))  # inside the 6 h lead, before the working day
    assert early.reminders == 0 and early.held_for_working_hours == ["fatima", "oskar"]  # type: ignore[union-attr]
    assert outbox_rows(loaded, Outbox.idempotency_key.like("remind:%")) == []

    at_eight = sweep_at(loaded, clock, stockholm(25, 8, 5))
    # 08:05 in Stockholm is 07:05 in London: oskar's reminder waits for his working day.
    assert at_eight.reminders == 1 and at_eight.held_for_working_hours == ["oskar"]  # type: ignore[union-attr]
    assert sweep_at(loaded, clock, stockholm(25, 9, 5)).reminders == 1  # type: ignore[union-attr]
    to_fatima = outbox_rows(loaded, Outbox.idempotency_key.like("remind:fatima:%"))
    assert len(to_fatima) == 3  # one message, on each of her three platforms
    message = to_fatima[0].payload
    assert message["header"] == "Waiting for you to acknowledge: 2 issue(s)"
    assert [f["label"] for f in message["fields"]] == [
        "#1 · Monthly invoice · normal",
        "#2 · First invoice · normal",
    ]
    assert sweep_at(loaded, clock, stockholm(25, 10)).reminders == 0  # type: ignore[union-attr]
    assert len(outbox_rows(loaded, Outbox.idempotency_key.like("remind:%"))) == 6
    assert events(loaded, 1) == ["reported", "reminded"]


def test_no_reminder_once_acknowledged(app: CxApp, loaded: sessionmaker[Session], clock: Clock) -> None:
    say(app, "/cx report faktura: fel moms")
    say(app, "/cx issue 1 ack", "fatima")
    report = sweep_at(loaded, clock, stockholm(25, 9))
    assert report is not None and report.reminders == 0 and report.escalations == 0
    assert events(loaded) == ["reported", "acknowledged"]


def test_a_reminder_follows_the_owners_own_time_zone(app: CxApp, loaded: sessionmaker[Session], clock: Clock) -> None:
    clock.now = stockholm(24, 16, 30)
    say(app, "/cx report kritisk app: kraschar")  # oskar, London: acknowledge by 17:30 Stockholm
    say(app, "/cx report kritisk faktura: fel belopp")  # fatima, Stockholm
    report = sweep_at(loaded, clock, stockholm(24, 17, 20))  # 16:20 in London, after hours here
    assert report is not None and report.held_for_working_hours == ["fatima"]
    assert [r.target_ref for r in outbox_rows(loaded, Outbox.idempotency_key.like("remind:%"))] == [
        "oskar",
        "1190000000000000008",
        "U0NLOSKA08",
    ]


def test_escalation_climbs_the_chain_once_per_step(app: CxApp, loaded: sessionmaker[Session], clock: Clock) -> None:
    say(app, "/cx report faktura: fel moms")
    due = issue(loaded).ack_due_at
    expected = [
        (due - timedelta(minutes=1), 0),
        (due, 1),
        (due + timedelta(hours=23), 1),
        (due + timedelta(days=1), 2),
    ]
    expected += [(due + timedelta(days=2), 3), (due + timedelta(days=30), 3)]
    for moment, level in expected:
        for _ in range(2):  # a second sweep, as after a restart, adds nothing
            sweep_at(loaded, clock, moment)
        assert issue(loaded).escalation_level == level, moment
    with loaded() as session:
        steps = (
            session.execute(select(IssueEvent.data).where(IssueEvent.kind == "escalated").order_by(IssueEvent.id))
            .scalars()
            .all()
        )
    assert [(s["step"], s["to"]) for s in steps] == [
        (1, "Elin Sandberg"),
        (2, "Oskar Holm"),
        (3, "Anna Lindqvist"),
    ]
    notices = outbox_rows(loaded, Outbox.idempotency_key.like("issue:1:r0:escalated:%"))
    assert len(notices) == 9  # three people, three platforms each, once
    assert notices[0].payload["text"].startswith("#1 kvitterades inte före 2026-11-25 10:30.")


def test_a_missed_resolve_deadline_is_told_once(app: CxApp, loaded: sessionmaker[Session], clock: Clock) -> None:
    say(app, "/cx report faktura: fel moms")
    say(app, "/cx issue 1 ack", "fatima")
    due = issue(loaded).resolve_due_at
    for moment in (due - timedelta(minutes=1), due, due + timedelta(hours=1)):
        sweep_at(loaded, clock, moment)
    assert events(loaded) == ["reported", "acknowledged", "overdue", "overdue"]  # fatima and oskar
    assert {r.target_ref for r in outbox_rows(loaded, Outbox.idempotency_key.like("issue:1:r0:overdue:%"))} == {
        "fatima",
        "oskar",
        "U0NLFATI07",
        "U0NLOSKA08",
        "1190000000000000007",
        "1190000000000000008",
    }
    assert issue(loaded).resolve_breach_noted_at == due


def test_an_unowned_touchpoint_goes_to_the_cx_lead_and_admins(app: CxApp, loaded: sessionmaker[Session]) -> None:
    say(app, "/cx report prisjämförelse: fel pris visas")
    people = {r.target_ref for r in outbox_rows(loaded, Outbox.topic == "issue:1:routed", Outbox.platform == "console")}
    assert people == {"anna", "elin", "erik"}


def test_the_sweep_without_a_journey_does_nothing(session_factory: sessionmaker[Session], clock: Clock) -> None:
    assert run_sla_sweep(session_factory, clock) is None


def test_the_clock_jobs_are_configured_explicitly(
    engine: Engine, session_factory: sessionmaker[Session], clock: Clock
) -> None:
    scheduler, leadership = build_scheduler(engine, session_factory, clock, "Europe/Stockholm", blocking=False)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    # Tuesday: this week's Monday 09:00 has passed, so the tip and the digest are caught up at start.
    assert set(jobs) == {
        "sla_sweep",
        "classify_observations",
        "weekly_tips",
        "weekly_tips_catch_up",
        "weekly_digest",
        "weekly_digest_catch_up",
        "weekly_catch_up",
    }
    for job_id in ("sla_sweep", "classify_observations", "weekly_tips", "weekly_digest"):
        job = jobs[job_id]
        assert (job.misfire_grace_time, job.coalesce, job.max_instances) == (MISFIRE_GRACE_SECONDS, True, 1)
        assert str(job.trigger.timezone) == "Europe/Stockholm"
    assert isinstance(jobs["sla_sweep"].trigger, IntervalTrigger)
    assert isinstance(jobs["weekly_tips"].trigger, CronTrigger)
    assert isinstance(jobs["weekly_digest"].trigger, CronTrigger)
    assert str(scheduler.timezone) == "Europe/Stockholm"
    try:
        assert leadership.lead() is True
    finally:
        leadership.release()  # the lock is database-wide: never leave it held


@pytest.mark.postgres
def test_one_clock_leads_and_another_takes_over(pg_session_factory: sessionmaker[Session]) -> None:
    engine = pg_session_factory.kw["bind"]
    first, second = Leadership(engine), Leadership(engine)
    try:
        assert first.lead() is True
        assert second.lead() is False
        assert first.lead() is True  # still leading: the lease holds
        first.release()
        assert second.lead() is True
    finally:
        first.release()
        second.release()


def test_two_sweeps_at_once_escalate_once(loaded: sessionmaker[Session], clock: Clock) -> None:
    # On PostgreSQL a row lock decides; on SQLite the write lock taken at BEGIN.
    pg_session_factory = loaded
    app = CxApp(pg_session_factory, clock=clock, default_language="sv")
    for n in range(10):
        # Different enough from each other not to be offered as "+1".
        say(app, f"/cx report kritisk app: {'abcdefghij'[n] * 30} {n}")
    clock.now = NOW + timedelta(hours=3)
    barrier = threading.Barrier(2)

    def sweeper() -> None:
        barrier.wait()
        run_sla_sweep(pg_session_factory, clock)

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    run_sla_sweep(pg_session_factory, clock)  # and a third, after both
    with pg_session_factory() as session:
        per_issue = session.execute(
            select(IssueEvent.issue_id, func.count())
            .where(IssueEvent.kind == "escalated")
            .group_by(IssueEvent.issue_id)
        ).all()
    # Critical: 1 h window, 3 h late → every step of the chain (erik, anna), each once.
    assert len(per_issue) >= 1
    assert {n for _, n in per_issue} == {2}


def test_an_unacknowledged_issue_past_its_resolve_deadline_is_flagged_once(
    app: CxApp, loaded: sessionmaker[Session], clock: Clock
) -> None:
    """Nobody acknowledged it: the acknowledge escalation runs its chain, and when the resolve
    deadline passes too, the assignee and the stage owner hear that as well, once."""
    say(app, "/cx report faktura: fel moms")
    due = issue(loaded).resolve_due_at
    for moment in (due - timedelta(minutes=1), due, due + timedelta(hours=1), due + timedelta(days=3)):
        sweep_at(loaded, clock, moment)
    assert events(loaded).count("overdue") == 2  # fatima and oskar
    overdue = outbox_rows(loaded, Outbox.idempotency_key.like("issue:1:r0:overdue:%"), Outbox.platform == "console")
    assert {r.target_ref for r in overdue} == {"fatima", "oskar"}
    texts = {r.target_ref: r.payload["text"] for r in overdue}
    assert texts["fatima"].startswith("#1 was not resolved by ") and texts["oskar"].startswith(
        "#1 was not resolved by "
    )  # both read English
    assert issue(loaded).resolve_breach_noted_at == due
    assert issue(loaded).status == "open"


def test_a_missed_resolve_deadline_with_no_one_assigned_reaches_the_owner_or_the_cx_lead(
    app: CxApp, loaded: sessionmaker[Session], clock: Clock
) -> None:
    say(app, "/cx report faktura: fel moms")
    say(app, "/cx issue 1 reassign billing", "fatima")  # with the team: no one person has it
    say(app, "/cx report prisjämförelse: fel pris visas")  # nobody owns the touchpoint
    sweep_at(loaded, clock, NOW + timedelta(days=30))
    told = {
        number: {
            r.target_ref
            for r in outbox_rows(
                loaded, Outbox.idempotency_key.like(f"issue:{number}:r0:overdue:%"), Outbox.platform == "console"
            )
        }
        for number in (1, 2)
    }
    assert told[1] == {"fatima", "oskar"}  # the touchpoint's owner, and the stage's
    assert told[2] == {"sara"}  # no touchpoint owner: the stage owner alone
