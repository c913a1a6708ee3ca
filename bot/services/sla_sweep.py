"""The SLA sweep: remind before a deadline, escalate after it. Run by the clock every few minutes.

Each step is recorded on the issue (``reminded_at``, ``escalation_level``,
``resolve_breach_noted_at``) and as an IssueEvent, in the same transaction as its outbox rows,
whose keys make a repeated sweep (a restart, or a second clock) post nothing twice. Issue rows
are locked while they are looked at, so two sweeps at once do not both act on one issue.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.app import language_for
from bot.domain.issues import IssueStatus
from bot.domain.journey_map import Severity
from bot.domain.sla import (
    OFFICE_HOURS,
    WorkingHours,
    escalation_level,
    escalation_times,
    reminder_due,
    within_working_hours,
)
from bot.outbox import post_to_person
from bot.services import issue_views as views
from bot.services.issues import IssueService
from bot.store.models import Issue, IssueEvent, Person

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    reminders: int = 0  # messages, one per person
    escalations: int = 0
    overdue: int = 0
    held_for_working_hours: list[str] = field(default_factory=list)


def escalation_chain(service: IssueService, issue: Issue) -> list[Person]:
    """Who hears of a missed acknowledge deadline, in order: backup, stage owner, CX lead."""
    chain: list[Person] = []
    seen = {issue.assignee_id}
    lead = next((p for p in service.fallback_people() if p.is_cx_lead), None)
    for person in (issue.touchpoint.backup, issue.stage.owner, lead):
        if person is not None and person.id not in seen and person.archived_at is None:
            chain.append(person)
            seen.add(person.id)
    return chain


def resolve_breach_recipients(service: IssueService, issue: Issue) -> list[Person]:
    """Who hears of a missed resolve deadline: the assignee (the touchpoint's owner when the
    issue lies with a team and nobody has taken it), and the stage owner; the CX lead when there
    is neither."""
    told = [p for p in (issue.assignee or issue.touchpoint.owner, issue.stage.owner) if p is not None]
    if not told:
        told = [p for p in service.fallback_people() if p.is_cx_lead]
    return list({p.id: p for p in told if p.archived_at is None}.values())


def sweep(service: IssueService) -> SweepReport:
    session, org, now = service.session, service.org, service.now
    report = SweepReport()
    hours = WorkingHours.from_spec(org.business_hours) or OFFICE_HOURS  # for reminders
    due_reminders: dict[int, list[Issue]] = defaultdict(list)
    people: dict[int, Person] = {}

    issues = session.scalars(
        select(Issue)
        .where(Issue.org_id == org.id, Issue.status != IssueStatus.RESOLVED)
        .order_by(Issue.id)
        .with_for_update(skip_locked=True)
    ).all()
    zone = ZoneInfo(org.time_zone)
    org_hours = WorkingHours.from_spec(org.business_hours)
    for issue in issues:
        severity = Severity(issue.severity)
        acknowledge, _ = service.sla_windows(issue.touchpoint, severity)
        if issue.status == IssueStatus.OPEN:
            chain = escalation_chain(service, issue)
            steps = escalation_times(
                issue.ack_due_at,
                acknowledge,
                len(chain),
                zone=zone,
                hours=None if severity is Severity.CRITICAL else org_hours,
            )
            level = escalation_level(now, steps)
            for step in range(issue.escalation_level + 1, level + 1):
                report.escalations += _notify(service, issue, chain[step - 1], "acknowledge", step)
            if level > issue.escalation_level:
                issue.escalation_level = level
            owner = issue.assignee
            if owner is not None and issue.reminded_at is None and reminder_due(now, issue.ack_due_at, acknowledge):
                due_reminders[owner.id].append(issue)
                people[owner.id] = owner
        # Acknowledged or not: an issue still open at its resolve deadline is flagged, once per
        # round. An unacknowledged one is being escalated for its first deadline already; the
        # second is news of its own (the customer has now waited past the promise).
        if issue.resolve_breach_noted_at is None and now >= issue.resolve_due_at:
            issue.resolve_breach_noted_at = now
            for person in resolve_breach_recipients(service, issue):
                _notify(service, issue, person, "resolve", 0)
            report.overdue += 1

    for person_id, waiting in due_reminders.items():
        person = people[person_id]
        person_zone = ZoneInfo(person.time_zone or org.time_zone)
        if not within_working_hours(now, person_zone, hours):
            # Not now: the next sweep inside their working day will send it (if still due).
            report.held_for_working_hours.append(person.key)
            continue
        # One message for this set of issues (each in its round): a fixed-length key, however many.
        rounds = ",".join(f"{i.id}r{i.reopen_count}" for i in waiting)
        digest = hashlib.sha256(rounds.encode()).hexdigest()[:20]
        post_to_person(
            session,
            person,
            lambda lang, waiting=waiting: views.reminder_message(service.catalogue, lang, waiting, org),
            language_for(person, org, org.language),
            f"remind:{person.key}:{digest}",
            now,
        )
        for issue in waiting:
            issue.reminded_at = now
            session.add(IssueEvent(issue_id=issue.id, kind="reminded", actor_id=None, at=now, data={"to": person.name}))
        report.reminders += 1
    session.flush()
    if report.reminders or report.escalations or report.overdue:
        log.info(
            "SLA sweep: %s reminder(s), %s escalation(s), %s overdue",
            report.reminders,
            report.escalations,
            report.overdue,
        )
    return report


def _notify(service: IssueService, issue: Issue, person: Person, breach: str, step: int) -> int:
    org = service.org
    kind = "escalated" if breach == "acknowledge" else "overdue"
    service.session.add(
        IssueEvent(
            issue_id=issue.id,
            kind=kind,
            actor_id=None,
            at=service.now,
            data={"to": person.name, "step": step},
        )
    )
    post_to_person(
        service.session,
        person,
        lambda lang: views.escalation_message(service.catalogue, lang, issue, org, breach),
        language_for(person, org, org.language),
        f"issue:{issue.id}:r{issue.reopen_count}:{kind}:{step}:{person.key}",
        service.now,
    )
    return 1
