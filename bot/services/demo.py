"""Demo data for `cxbot run --demo` and `cxbot demo`: a few days of a company's CX life.

Seeded through the same services a user's commands use, a few days in the past, once: a
database that already has issues gets none. What the seeding posted counts as history, so it is
marked delivered rather than shown again when the console starts.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.domain.issues import IssueAction, parse_report
from bot.i18n import Catalogue
from bot.outbox import SENT
from bot.services.issues import Created, IssueService
from bot.services.tips import SUBSCRIPTION_KINDS, subscribe
from bot.store.models import Issue, Org, Outbox, Person

# (days ago, local time, reporter, report text, then what happens: (actor, action, argument) …)
DEMO_ISSUES: list[tuple[int, time, str, str, list[tuple[str, str, str]]]] = [
    (
        4,
        time(9, 12),
        "leila",
        "high faktura: Flera kunder har fått novemberfakturan två gånger | impact: cirka 40 samtal till kundtjänst",
        [
            ("fatima", "ack", ""),
            ("fatima", "resolve", "system: Dubblettkörningen i faktureringen stoppad; kunderna krediterade"),
        ],
    ),
    (
        3,
        time(13, 40),
        "david",
        "installatörsbesök: Installatören kom utan rätt fästen och fick boka om besöket",
        [("mikael", "ack", "")],
    ),
    (2, time(10, 5), "sara", "anonymous chatt: Chattboten lovade ett pris som inte finns i prislistan", []),
    (1, time(15, 30), "jonas", "app: Appen visar gårdagens förbrukning som noll för vissa kunder", []),
    (0, time(7, 45), "anna", "critical avbrott: SMS om strömavbrott gick inte ut i Norrland i morse", []),
]


def _at_local(day: datetime, moment: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day.astimezone(zone).date(), moment, tzinfo=zone).astimezone(UTC)


def seed_demo_issues(session: Session, org: Org, catalogue: Catalogue, now: datetime) -> int:
    """Create the demo issues unless the database already has issues; returns how many."""
    if session.scalar(select(func.count()).select_from(Issue).where(Issue.org_id == org.id)):
        return 0
    first_post = session.scalar(select(func.max(Outbox.id))) or 0
    people = {p.key: p for p in session.scalars(select(Person).where(Person.org_id == org.id))}
    created = 0
    zone = ZoneInfo(org.time_zone)
    for days_ago, clock_time, reporter, text, steps in DEMO_ISSUES:
        moment = _at_local(now - timedelta(days=days_ago), clock_time, zone)
        if moment > now:  # "this morning" before the morning has come: yesterday's
            moment -= timedelta(days=1)
        service = IssueService(session, org, catalogue, moment)
        outcome = service.report(people[reporter], parse_report(text), "console", allow_duplicate=True)
        if not isinstance(outcome, Created):
            continue
        created += 1
        for hours, (actor, action, argument) in enumerate(steps, start=1):
            service.now = moment + timedelta(hours=3 * hours)
            if action == "ack":
                service.change(outcome.issue.id, people[actor], IssueAction.ACKNOWLEDGE)
            else:
                cause, _, taken = argument.partition(":")
                service.change(
                    outcome.issue.id, people[actor], IssueAction.RESOLVE, cause=cause, action_taken=taken.strip()
                )
    session.execute(update(Outbox).where(Outbox.id > first_post).values(status=SENT, sent_at=now))
    return created


def subscribe_demo_channel(session: Session, org: Org, now: datetime) -> None:
    """The console's #cx gets the weekly tip and digest, as an admin would have asked."""
    admin = session.scalar(select(Person).where(Person.org_id == org.id, Person.is_admin).order_by(Person.key))
    if admin is not None:
        subscribe(session, org, "console", "#cx", SUBSCRIPTION_KINDS, admin.id, now)


# (days ago, local time, who, text, anonymous)
DEMO_OBSERVATIONS: list[tuple[int, time, str, str, bool]] = [
    (
        4,
        time(10, 20),
        "leila",
        "Tre kunder i rad ringde om novemberfakturan; alla trodde att de debiterats två gånger.",
        False,
    ),
    (
        3,
        time(14, 5),
        "mikael",
        "The customer in Tallbacka was delighted that the installer cleaned up and explained the inverter.",
        False,
    ),
    (
        2,
        time(9, 40),
        "jonas",
        "Flera som funderar på solpaneler frågar om grönt avdrag; offertverktyget säger inget om det.",
        False,
    ),
    (
        1,
        time(16, 10),
        "sara",
        "Someone on Instagram asked three times about our prices and got no reply from us.",
        True,
    ),
    (0, time(8, 30), "elin", "Kunden i chatten var glad att hon kunde flytta sitt avtal på fem minuter.", False),
]


def seed_demo_observations(session: Session, org: Org, catalogue: Catalogue, now: datetime) -> int:
    """A week of observations, classified offline, unless the database already has some."""
    from bot.llm import OfflineClassifier
    from bot.services.observations import ObservationService, journey_index, store_classification
    from bot.store.models import Observation

    if session.scalar(select(func.count()).select_from(Observation).where(Observation.org_id == org.id)):
        return 0
    people = {p.key: p for p in session.scalars(select(Person).where(Person.org_id == org.id))}
    index = journey_index(session, org)
    zone = ZoneInfo(org.time_zone)
    for days_ago, clock_time, who, text, anonymous in DEMO_OBSERVATIONS:
        moment = _at_local(now - timedelta(days=days_ago), clock_time, zone)
        if moment > now:
            moment -= timedelta(days=1)
        service = ObservationService(session, org, catalogue, moment)
        observation = service.observe(people[who], text, anonymous, "console", "#cx")
        store_classification(session, observation.id, OfflineClassifier().classify(text, index), moment)
    return len(DEMO_OBSERVATIONS)
