"""Loading the journey map: complete, idempotent, archiving instead of deleting."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from bot.domain.journey_map import JourneyMap, parse_journey
from bot.i18n import default_catalogue
from bot.services.journey import OrgDefaults, active_stages, current_org, find_stage, load_journey
from bot.services.setup import apply_journey
from bot.store.models import Base, Identity, KpiTarget, Outbox, Person, Stage, Team, Touchpoint
from tests.conftest import EXAMPLE, NOW


def dump(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to compare two database states exactly."""
    state = {}
    for table in Base.metadata.sorted_tables:
        rows = session.execute(select(table).order_by(*table.primary_key.columns)).all()
        state[table.name] = [tuple(row) for row in rows]
    return state


def without(journey_text: str, touchpoint_key: str) -> JourneyMap:
    """The example map with one touchpoint's block cut out."""
    lines = journey_text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip() == f"- key: {touchpoint_key}")
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
        end += 1
    result = parse_journey("".join(lines[:start] + lines[end:]), "edited.yaml")
    assert result.journey is not None, result.problems
    return result.journey


def test_load_creates_everything(session_factory: sessionmaker[Session], example_journey: JourneyMap) -> None:
    with session_factory.begin() as session:
        org, report = load_journey(session, example_journey, NOW)
        assert org.name == example_journey.org.name
        assert session.scalar(select(func.count()).select_from(Stage)) == len(example_journey.stages)
        touchpoints = sum(len(s.touchpoints) for s in example_journey.stages)
        assert session.scalar(select(func.count()).select_from(Touchpoint)) == touchpoints
        assert session.scalar(select(func.count()).select_from(Team)) == len(example_journey.teams)
        assert session.scalar(select(func.count()).select_from(Person)) == len(example_journey.people)
        identities = sum(len(p.identities) for p in example_journey.people)
        assert session.scalar(select(func.count()).select_from(Identity)) == identities
        targets = sum(len(s.targets) for s in example_journey.stages)
        assert session.scalar(select(func.count()).select_from(KpiTarget)) == targets
        admins = set(session.scalars(select(Person.key).where(Person.is_admin)))
        assert admins == set(example_journey.org.admins)
        assert report.changed and not report.archived


def test_loading_twice_changes_nothing(session_factory: sessionmaker[Session], example_journey: JourneyMap) -> None:
    with session_factory.begin() as session:
        load_journey(session, example_journey, NOW)
    with session_factory.begin() as session:
        before = dump(session)
    with session_factory.begin() as session:
        _, report = load_journey(session, example_journey, NOW + timedelta(days=1))
        assert not report.changed, report
        # Not even a pending UPDATE: the session is clean after a no-op load.
        assert not any(inspect(obj).modified for obj in session.identity_map.values())
    with session_factory.begin() as session:
        assert dump(session) == before


def test_removed_touchpoint_is_archived_then_restored(
    session_factory: sessionmaker[Session], example_journey: JourneyMap
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    with session_factory.begin() as session:
        load_journey(session, example_journey, NOW)
    with session_factory.begin() as session:
        _, report = load_journey(session, without(text, "chat"), NOW + timedelta(hours=1))
        assert report.archived == ["touchpoint chat"]
    with session_factory.begin() as session:
        chat = session.scalar(select(Touchpoint).where(Touchpoint.key == "chat"))
        assert chat is not None and chat.archived_at == NOW + timedelta(hours=1)
        org = current_org(session)
        assert org is not None
        keys = {tp.key for s in active_stages(session, org) for tp in s.touchpoints if tp.archived_at is None}
        assert "chat" not in keys
    with session_factory.begin() as session:
        _, report = load_journey(session, example_journey, NOW + timedelta(hours=2))
        assert report.restored == ["touchpoint chat"]
        chat = session.scalar(select(Touchpoint).where(Touchpoint.key == "chat"))
        assert chat is not None and chat.archived_at is None


def test_identity_moved_to_another_person(session_factory: sessionmaker[Session]) -> None:
    base = """\
org: {name: Acme}
people:
  - {key: ann, name: Ann, identities: {slack: U1}}
  - {key: bo, name: Bo}
stages:
  - key: buy
    name: {sv: Köp, en: Buy}
    touchpoints: [{key: checkout, name: {sv: Kassa, en: Checkout}, owner: ann}]
"""
    moved = base.replace("identities: {slack: U1}}", "}").replace(
        "{key: bo, name: Bo}", "{key: bo, name: Bo, identities: {slack: U1}}"
    )
    for text in (base, moved):
        journey = parse_journey(text, "j.yaml").journey
        assert journey is not None
        with session_factory.begin() as session:
            load_journey(session, journey, NOW)
    with session_factory.begin() as session:
        owner = session.scalar(
            select(Person.key).join(Identity).where(Identity.platform == "slack", Identity.external_user_id == "U1")
        )
        assert owner == "bo"


def test_admins_are_told_once_per_change(session_factory: sessionmaker[Session], example_journey: JourneyMap) -> None:
    for _ in range(2):
        with session_factory.begin() as session:
            apply_journey(session, example_journey, NOW, default_catalogue())
    with session_factory.begin() as session:
        rows = session.scalars(select(Outbox).order_by(Outbox.id)).all()
        admins = session.scalars(select(Person).where(Person.is_admin)).all()
        expected = sum(len(a.identities) for a in admins)
        assert len(rows) == expected
        assert {r.target_kind for r in rows} == {"user"}
        assert all(r.payload["header"] in ("Kundresekartan är inläst", "Journey map loaded") for r in rows)


def test_settings_fill_what_the_file_leaves_out(session_factory: sessionmaker[Session]) -> None:
    text = "org: {name: Acme}\nstages: [{key: buy, name: {sv: Köp, en: Buy}}]\n"
    journey = parse_journey(text, "j.yaml").journey
    assert journey is not None
    with session_factory.begin() as session:
        org, _ = load_journey(session, journey, NOW, OrgDefaults(time_zone="Europe/London", language="en"))
        assert (org.time_zone, org.language) == ("Europe/London", "en")
    explicit = parse_journey(text.replace("{name: Acme}", "{name: Acme, language: sv}"), "j.yaml").journey
    assert explicit is not None
    with session_factory.begin() as session:
        org, report = load_journey(session, explicit, NOW, OrgDefaults(time_zone="Europe/London", language="en"))
        assert (org.time_zone, org.language) == ("Europe/London", "sv")
        assert report.updated == ["org Acme"]


def test_find_stage_by_key_name_and_spelling(loaded: sessionmaker[Session]) -> None:
    with loaded() as session:
        org = current_org(session)
        assert org is not None
        stages = active_stages(session, org)
        assert find_stage(stages, "purchase").key == "purchase"  # type: ignore[union-attr]
        assert find_stage(stages, "Köp").key == "purchase"  # type: ignore[union-attr]
        assert find_stage(stages, "SUPPORT").key == "support"  # type: ignore[union-attr]
        assert find_stage(stages, "onbording").key == "onboarding"  # type: ignore[union-attr]
        assert find_stage(stages, "xyzzy") is None
        assert find_stage(stages, "   ") is None


def test_demo_issues_are_seeded_once_as_history(loaded: sessionmaker[Session]) -> None:
    from bot.services.demo import DEMO_ISSUES, seed_demo_issues
    from bot.store.models import Issue

    def waiting() -> int:
        with loaded() as session:
            waits = Outbox.status.in_(("pending", "sending"))
            return session.scalar(select(func.count()).select_from(Outbox).where(waits)) or 0

    before = waiting()  # the journey-load notices to the admins
    for expected in (len(DEMO_ISSUES), 0):
        with loaded.begin() as session:
            org = current_org(session)
            assert org is not None
            assert seed_demo_issues(session, org, default_catalogue(), NOW) == expected
    with loaded() as session:
        statuses = sorted(session.scalars(select(Issue.status)).all())
        assert statuses == ["acknowledged", "open", "open", "open", "resolved"]
        assert all(i.reported_at < NOW for i in session.scalars(select(Issue)))
        assert (session.scalar(select(func.count()).select_from(Outbox)) or 0) > before + len(DEMO_ISSUES)
    # What the seeding posted is history: nothing more waits to be shown. On the console it was
    # delivered, with the reference a later edit needs; on Slack and Discord it never went out.
    assert waiting() == before
    with loaded() as session:
        seeded = session.scalars(select(Outbox).where(Outbox.topic.like("issue:%:routed"))).all()
        for row in seeded:
            if row.platform == "console":
                assert row.status == "sent" and row.platform_ref == f"console-{row.update_of_id or row.id}"
            else:
                assert row.status == "superseded" and row.platform_ref is None


def test_a_partial_sla_override_keeps_the_other_defaults(session_factory: sessionmaker[Session]) -> None:
    text = (
        "org: {name: Acme}\nsla:\n  high: {acknowledge: 2h}\n"
        "stages: [{key: buy, name: {sv: Köp, en: Buy}, touchpoints: [{key: t, name: {sv: T, en: T}}]}]\n"
    )
    journey = parse_journey(text, "j.yaml").journey
    assert journey is not None
    with session_factory.begin() as session:
        org, _ = load_journey(session, journey, NOW)
        assert org.sla["high"] == {"acknowledge": 7200, "resolve": 3 * 86400}
        assert org.sla["normal"] == {"acknowledge": 86400, "resolve": 5 * 86400}


def test_a_person_removed_from_the_map_loses_access(session_factory: sessionmaker[Session]) -> None:
    from bot.app import CxApp
    from bot.messages import Invocation

    with_erik = """\
org: {name: Acme, admins: [erik]}
people:
  - {key: erik, name: Erik, identities: {slack: U2}}
  - {key: ann, name: Ann}
stages: [{key: buy, name: {sv: Köp, en: Buy}, touchpoints: [{key: t, name: {sv: T, en: T}, owner: ann}]}]
"""
    without_erik = with_erik.replace("admins: [erik]", "admins: [ann]").replace(
        "  - {key: erik, name: Erik, identities: {slack: U2}}\n", ""
    )
    app = CxApp(session_factory, clock=lambda: NOW, default_language="en")
    whoami = Invocation("slack", "T1", "U2", "C1", "/cx whoami")
    for text, expected in ((with_erik, "Erik"), (without_erik, None)):
        journey = parse_journey(text, "j.yaml").journey
        assert journey is not None
        with session_factory.begin() as session:
            load_journey(session, journey, NOW)
        reply = app.dispatch(whoami)
        assert reply.message.header == expected
    assert app.dispatch(whoami).message.text == (
        "Jag vet inte vem du är på slack än (ditt användar-id är U2). "
        "Be en administratör lägga till dig i kundresefilen."
    )
    subscribe = app.dispatch(Invocation("slack", "T1", "U2", "C1", "/cx subscribe tips"))
    assert subscribe.message.text is not None and subscribe.message.text.startswith("Jag vet inte vem du är")
