"""Demo data for `cxbot run --demo` and `cxbot demo`: a few days of a company's CX life.

Seeded through the same services a user's commands use, a few days in the past, once: a
database that already has issues gets none. What the seeding posted counts as history, so it is
marked delivered rather than shown again when the console starts.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, func, literal, select, update
from sqlalchemy.orm import Session

from bot.domain.issues import IssueAction, parse_report
from bot.i18n import Catalogue
from bot.outbox import SENT, SUPERSEDED
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
    first_post = last_post_id(session)
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
    mark_demo_posts_as_history(session, first_post, now)
    return created


def last_post_id(session: Session) -> int:
    """Where the outbox stands: the demo's posts are those after it."""
    return session.scalar(select(func.max(Outbox.id))) or 0


def mark_demo_posts_as_history(session: Session, after_id: int, now: datetime, *, console_only: bool = False) -> None:
    """The seeding's posts are history: not shown again when the console starts. On the console
    they count as delivered, with the reference the console would have given them, so that a
    later change edits them in place (with no reference, an edit can only be a new message). On
    Slack and Discord they were never posted: nothing there to edit, so their edits are dropped
    rather than sent as new messages. ``console_only``: leave the other platforms' posts be."""
    console_ref = literal("console-") + cast(func.coalesce(Outbox.update_of_id, Outbox.id), String)
    demo = Outbox.id > after_id
    session.execute(
        update(Outbox)
        .where(demo, Outbox.platform == "console")
        .values(status=SENT, sent_at=now, platform_ref=console_ref)
        .execution_options(synchronize_session=False)
    )
    if console_only:  # what Slack and Discord users should still get (the journey-load notices)
        return
    session.execute(
        update(Outbox)
        .where(demo, Outbox.platform != "console")
        .values(status=SUPERSEDED, last_error="demo history: never posted on this platform")
        .execution_options(synchronize_session=False)
    )


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


def seed_demo_answers(session: Session, org: Org, now: datetime, weeks: int = 9) -> int:
    """Nine weeks of made-up survey answers for every stage with an NPS, CSAT or CES target, and
    churn and FCR figures where targeted, so that /cx kpi and the digest have something to show.
    Deterministic (a fixed seed); some weeks fall under the small-sample threshold on purpose."""
    import random

    from bot.domain.kpi import SCALES, Metric
    from bot.domain.weeks import iso_week, previous_week, week_start
    from bot.services.kpi_import import upsert_values
    from bot.store.models import KpiTarget, Stage, SurveyResponse

    if session.scalar(select(func.count()).select_from(SurveyResponse).where(SurveyResponse.org_id == org.id)):
        return 0
    zone = ZoneInfo(org.time_zone)
    chance = random.Random(2026)
    week_list = [iso_week(now, zone)]
    while len(week_list) < weeks:
        week_list.append(previous_week(week_list[-1], zone))
    targets = session.execute(
        select(Stage, KpiTarget.metric).join(KpiTarget).where(Stage.org_id == org.id, Stage.archived_at.is_(None))
    ).all()
    rows: list[dict[str, object]] = []
    aggregates: list[dict[str, object]] = []
    for age, week in enumerate(week_list):
        start = week_start(week, zone)
        for stage, metric_name in targets:
            metric = Metric(metric_name)
            if metric in SCALES:
                low, high = SCALES[metric]
                # Stages drift: some improve over the weeks, some slip, one hovers.
                lean = (stage.position % 3 - 1) * age * 0.012
                count = chance.randint(18, 90) if age else chance.randint(5, 30)
                for i in range(count):
                    moment = start + timedelta(minutes=chance.randint(0, 7 * 24 * 60 - 1))
                    if moment > now:
                        continue
                    score = round(low + (high - low) * min(1.0, max(0.0, chance.betavariate(6, 2) - lean)))
                    rows.append(
                        {
                            "org_id": org.id,
                            "metric": metric.value,
                            "score": score,
                            "stage_id": stage.id,
                            "touchpoint_id": None,
                            "answered_at": moment.astimezone(UTC),
                            "iso_week": week,
                            "source": "demo",
                            "external_id": f"demo:{week}:{stage.key}:{metric.value}:{i}",
                        }
                    )
            elif age:  # aggregates arrive after the week: none yet for this one
                value = {
                    Metric.CHURN: 1.0 + chance.random(),
                    Metric.FCR: 68 + chance.random() * 12,
                    Metric.AHT: 5 + chance.random() * 2,
                }[metric]
                aggregates.append(
                    {
                        "org_id": org.id,
                        "metric": metric.value,
                        "stage_id": stage.id,
                        "iso_week": week,
                        "value": round(value, 2),
                        "n": chance.randint(800, 1200) if metric == Metric.FCR else None,
                        "source": "demo",
                        "recorded_at": now,
                    }
                )
    if rows:
        session.execute(SurveyResponse.__table__.insert(), rows)
    upsert_values(session, aggregates)
    return len(rows)
