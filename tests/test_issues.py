"""Touchpoint issues through the core, as any platform would drive them, on both databases.

In the example map, monthly-invoice is owned by the billing team (fatima) with elin as backup,
in the usage stage owned by oskar; anna is the CX lead; erik and elin are admins.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.app import CxApp
from bot.messages import Click, Invocation, Reply
from bot.services.issues import SIMILAR, similarity
from bot.store.models import Issue, IssueEvent, IssueFollower, Outbox, ReportDraft
from tests.conftest import NOW, Clock

PLATFORM_IDS = {
    ("anna", "slack"): "U0NLANNA01",
    ("anna", "discord"): "1190000000000000001",
    ("fatima", "slack"): "U0NLFATI07",
}


def say(app: CxApp, text: str, user: str = "anna", platform: str = "console") -> Reply:
    external = PLATFORM_IDS.get((user, platform), user)
    return app.dispatch(Invocation(platform, platform, external, "#cx", text))


def press(app: CxApp, action_id: str, user: str = "anna") -> Reply:
    return app.click(Click("console", "console", user, "#cx", action_id))


def count(session_factory: sessionmaker[Session], model: type, *where: object) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def outbox_rows(session_factory: sessionmaker[Session], *where: object) -> list[Outbox]:
    with session_factory() as session:
        return list(session.scalars(select(Outbox).where(*where).order_by(Outbox.id)))


def issue(session_factory: sessionmaker[Session], number: int = 1) -> Issue:
    with session_factory() as session:
        found = session.get(Issue, number)
        assert found is not None
        return found


def events(session_factory: sessionmaker[Session], number: int = 1) -> list[str]:
    with session_factory() as session:
        return list(
            session.scalars(select(IssueEvent.kind).where(IssueEvent.issue_id == number).order_by(IssueEvent.id))
        )


def report_invoice(app: CxApp, user: str = "anna", text: str = "Fakturan visar fel moms för november") -> Reply:
    return say(app, f"/cx report faktura: {text}", user)


# --- reporting and routing -----------------------------------------------------------------


def test_a_report_is_stored_routed_and_confirmed(app: CxApp, loaded: sessionmaker[Session]) -> None:
    reply = report_invoice(app)
    assert reply.message.text == (
        "Tack! Ärende #1 (Månadsfaktura) ligger nu hos Fakturering · Fatima Hassan. "
        "Jag hör av mig när det är kvitterat och när det är löst."
    )
    stored = issue(loaded)
    assert (stored.status, stored.severity, stored.affected_count, stored.anonymous) == (
        "open",
        "normal",
        1,
        False,
    )
    assert stored.reported_at == NOW
    assert events(loaded) == ["reported"]
    assert count(loaded, IssueFollower, IssueFollower.role == "reporter") == 1
    routed = outbox_rows(loaded, Outbox.topic == "issue:1:routed")
    # The billing channel and fatima's DM, on Slack, Discord and the console each.
    assert sorted((r.target_kind, r.platform, r.target_ref) for r in routed) == [
        ("channel", "console", "#billing"),
        ("channel", "discord", "1180000000000000004"),
        ("channel", "slack", "C0NLBILL004"),
        ("user", "console", "fatima"),
        ("user", "discord", "1190000000000000007"),
        ("user", "slack", "U0NLFATI07"),
    ]
    dm = next(r for r in routed if r.target_ref == "U0NLFATI07")
    channel = next(r for r in routed if r.target_ref == "C0NLBILL004")
    assert (dm.language, channel.language) == ("en", "sv")  # fatima reads English; the org Swedish
    assert dm.payload["header"] == "#1 · Monthly invoice · normal"
    assert [b["action_id"] for b in dm.payload["buttons"]] == [
        "issue:1:ack",
        "issue:1:resolve",
        "issue:1:reassign",
        "issue:1:details",
    ]
    context = channel.payload["context"][0]
    assert context == "Öppna ärenden i det här steget: 1 · Mål: NPS +30.0, CSAT 80.0 %, Kundbortfall 1.20 %"


def test_deadlines_follow_the_sla_and_business_hours(app: CxApp, loaded: sessionmaker[Session]) -> None:
    report_invoice(app)  # Tuesday 10:30 in Stockholm, normal: 1 working day / 5 working days
    say(app, "/cx report kritisk app: kraschar vid inloggning")
    normal, critical = issue(loaded, 1), issue(loaded, 2)
    assert (normal.ack_due_at, normal.resolve_due_at) == (NOW + timedelta(days=1), NOW + timedelta(days=7))
    assert (critical.ack_due_at, critical.resolve_due_at) == (
        NOW + timedelta(hours=1),
        NOW + timedelta(days=1),
    )


def test_a_touchpoint_override_beats_the_org_sla(app: CxApp, loaded: sessionmaker[Session]) -> None:
    say(app, "/cx report critical outage-notifications: no SMS went out during the storm")
    assert issue(loaded).ack_due_at == NOW + timedelta(minutes=15)


def test_the_same_report_from_any_platform_makes_the_same_rows_and_message(
    app: CxApp, loaded: sessionmaker[Session]
) -> None:
    replies = []
    for number, platform in enumerate(("console", "slack", "discord"), start=1):
        replies.append(say(app, "/cx report chatt: boten svarade fel om elpriset", "anna", platform).message)
        say(app, f"/cx issue {number} resolve training: Uppdaterade botens svar", "elin")
    assert replies[0].text == replies[1].text.replace("#2", "#1") == replies[2].text.replace("#3", "#1")  # type: ignore[union-attr]
    payloads = []
    for number in (1, 2, 3):
        rows = outbox_rows(loaded, Outbox.topic == f"issue:{number}:routed", Outbox.update_of_id.is_(None))
        assert len(rows) == 6
        payloads.append(
            json.dumps(rows[0].payload, sort_keys=True)
            .replace(f"#{number}", "#N")
            .replace(f"issue:{number}:", "issue:N:")
        )
    assert payloads[0] == payloads[1] == payloads[2]
    with loaded() as session:
        assert list(session.scalars(select(Issue.source_platform).order_by(Issue.id))) == [
            "console",
            "slack",
            "discord",
        ]


def test_a_report_from_discord_reaches_the_owner_on_slack(app: CxApp, loaded: sessionmaker[Session]) -> None:
    say(app, "/cx report faktura: dubbeldebitering", "anna", "discord")
    slack_dm = outbox_rows(loaded, Outbox.platform == "slack", Outbox.target_ref == "U0NLFATI07")
    assert len(slack_dm) == 1 and slack_dm[0].topic == "issue:1:routed"


def test_an_ambiguous_touchpoint_asks_and_stores_nothing_until_chosen(
    app: CxApp, loaded: sessionmaker[Session]
) -> None:
    reply = say(app, "/cx report invoice: the total is wrong")
    assert reply.message.text == "Vilken kontaktpunkt gäller det? Tryck på en (ingenting sparas förrän du gör det)."
    labels = {b.label for b in reply.message.buttons}
    assert {"Första fakturan", "Månadsfaktura"} <= labels
    assert count(loaded, Issue) == 0
    monthly = next(b for b in reply.message.buttons if b.label == "Månadsfaktura")
    created = press(app, monthly.action_id)
    assert created.message.text is not None and created.message.text.startswith("Tack! Ärende #1 (Månadsfaktura)")
    assert issue(loaded).description == "the total is wrong"
    # The same button again, or someone else's press, does nothing.
    assert (
        press(app, monthly.action_id).message.text
        == "Den knappen gör inget längre. Kör kommandot igen för att få en ny."
    )
    assert count(loaded, Issue) == 1


def test_a_draft_belongs_to_its_writer_and_expires(app: CxApp, loaded: sessionmaker[Session], clock: Clock) -> None:
    reply = say(app, "/cx report the app crashes when I open the energy dashboard")
    button = reply.message.buttons[0]
    assert press(app, button.action_id, user="erik").message.text == (
        "Den knappen gör inget längre. Kör kommandot igen för att få en ny."
    )
    clock.now = NOW + timedelta(days=2)
    assert (
        press(app, button.action_id).message.text
        == "Den knappen gör inget längre. Kör kommandot igen för att få en ny."
    )
    assert count(loaded, Issue) == 0
    assert count(loaded, ReportDraft, ReportDraft.used_at.is_(None)) == 1


def test_a_report_without_a_touchpoint_proposes_the_best_matches(app: CxApp, loaded: sessionmaker[Session]) -> None:
    reply = say(app, "/cx report Kunden väntade 40 minuter i telefonkön")
    assert [b.label for b in reply.message.buttons][:1] == ["Kundtjänst per telefon"]
    press(app, reply.message.buttons[0].action_id)
    assert issue(loaded).touchpoint_id is not None
    assert count(loaded, Issue) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "/cx report teleporter: it broke",
            "Jag känner inte till någon kontaktpunkt som heter ”teleporter”. Närmast är: ",
        ),
        ("/cx report", "Beskriv gärna vad som hände: `/cx report <kontaktpunkt>: <vad som hände>`."),
        (
            "/cx report faktura:   ",
            "Beskriv gärna vad som hände: `/cx report <kontaktpunkt>: <vad som hände>`.",
        ),
        (
            "/cx report faktura: " + "x" * 3001,
            "Beskrivningen är 3001 tecken lång; gränsen är 3000. Korta ner den, tack.",
        ),
        (
            "/cx report faktura: fel | impact: " + "y" * 501,
            "Kundpåverkan är 501 tecken lång; gränsen är 500.",
        ),
        ("/cx report a happy customer said thanks", "Jag kunde inte avgöra vilken kontaktpunkt det gäller."),
    ],
)
def test_bad_reports_are_refused_and_nothing_is_stored(
    app: CxApp, loaded: sessionmaker[Session], text: str, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bot.app"):
        reply = say(app, text)
    assert reply.message.text is not None and reply.message.text.startswith(expected)
    assert count(loaded, Issue) == 0
    assert count(loaded, ReportDraft) == 0
    assert count(loaded, Outbox, Outbox.topic.is_not(None)) == 0
    assert "refused /cx report" in caplog.text


def test_a_report_of_exactly_3000_characters_is_accepted(app: CxApp, loaded: sessionmaker[Session]) -> None:
    say(app, "/cx report faktura: " + "z" * 3000)
    assert len(issue(loaded).description) == 3000


def test_mass_mentions_never_ping_when_echoed(app: CxApp, loaded: sessionmaker[Session]) -> None:
    say(app, "/cx report faktura: @everyone fakturan är fel <!channel> @here | impact: <!everyone> alla")
    for row in outbox_rows(loaded, Outbox.topic == "issue:1:routed"):
        text = json.dumps(row.payload, ensure_ascii=False).lower()
        for mention in ("@everyone", "@here", "<!channel", "<!everyone"):
            assert mention not in text, (mention, row.target_ref)
    assert "@everyone" in issue(loaded).description  # stored as written


# --- duplicates --------------------------------------------------------------------------------


def test_a_similar_open_issue_is_offered_as_plus_one(app: CxApp, loaded: sessionmaker[Session]) -> None:
    report_invoice(app, "anna", "Fakturan visar fel moms för november")
    offer = report_invoice(app, "erik", "fel moms på fakturan för november")
    assert offer.message.text == "Det här liknar ärende #1, som fortfarande är öppet. Är det samma problem?"
    assert [b.label for b in offer.message.buttons] == ["+1 på #1", "Nej, rapportera ett nytt ärende"]
    joined = press(app, offer.message.buttons[0].action_id, user="erik")
    assert joined.message.text == "Din +1 är tillagd på #1: nu har 2 personer sett det. Du får veta hur det går."
    assert count(loaded, Issue) == 1
    assert issue(loaded).affected_count == 2
    assert events(loaded) == ["reported", "joined"]
    notices = outbox_rows(loaded, Outbox.idempotency_key.like("issue:1:joined:2:fatima:%"))
    assert len(notices) == 3
    # The routed posts are edited to show two people saw it.
    edits = outbox_rows(loaded, Outbox.topic == "issue:1:routed", Outbox.update_of_id.is_not(None))
    assert len(edits) == 6
    assert any(f["value"] == "2" for f in edits[0].payload["fields"])


@pytest.mark.parametrize(
    ("a", "b", "alike"),
    [
        ("Fakturan visar fel moms för november", "fel moms på fakturan för november", True),
        ("the app crashes on login for android users", "app crashes when logging in on android", True),
        ("Fakturan visar fel moms för november", "fakturan kom inte fram", False),
        ("the app crashes on login for android users", "the app is slow", False),
        ("kunden väntade länge i telefonkön", "kunden fick fel svar i telefon", False),
    ],
)
def test_similarity_of_descriptions(a: str, b: str, alike: bool) -> None:
    assert (similarity(a, b) >= SIMILAR) is alike


def test_a_second_plus_one_from_the_same_person_counts_once(app: CxApp, loaded: sessionmaker[Session]) -> None:
    report_invoice(app, "anna")
    for _ in range(2):
        offer = report_invoice(app, "erik")
        last = press(app, offer.message.buttons[0].action_id, user="erik")
    assert last.message.text == "Du följer redan #1."
    assert issue(loaded).affected_count == 2


def test_report_as_new_despite_a_similar_issue(app: CxApp, loaded: sessionmaker[Session]) -> None:
    report_invoice(app, "anna")
    offer = report_invoice(app, "erik")
    press(app, offer.message.buttons[1].action_id, user="erik")
    assert count(loaded, Issue) == 2


# --- the lifecycle -----------------------------------------------------------------------------


def test_acknowledge_resolve_reopen_with_the_loop_closed(
    app: CxApp, loaded: sessionmaker[Session], clock: Clock
) -> None:
    report_invoice(app, "anna")
    clock.now = NOW + timedelta(minutes=20)
    assert say(app, "/cx issue 1 ack", "fatima").message.text == "You acknowledged #1. The reporter has been told."
    acked = issue(loaded)
    assert (acked.status, acked.acknowledged_at) == ("acknowledged", NOW + timedelta(minutes=20))
    told = outbox_rows(loaded, Outbox.idempotency_key.like("issue:1:ack:%:anna:%"))
    assert (
        len(told) == 3 and told[0].payload["text"] == "Din rapport #1 (Månadsfaktura) har kvitterats av Fatima Hassan."
    )

    assert say(app, "/cx issue 1 ack", "fatima").message.text == "#1 is already acknowledged."
    assert say(app, "/cx issue 1 resolve", "fatima").message.text.startswith("To resolve #1, give the root cause")  # type: ignore[union-attr]
    assert say(app, "/cx issue 1 resolve weather: it rained", "fatima").message.text.startswith("To resolve #1")  # type: ignore[union-attr]
    assert say(app, "/cx issue 1 resolve process:   ", "fatima").message.text.startswith("To resolve #1")  # type: ignore[union-attr]
    assert issue(loaded).status == "acknowledged"

    clock.now = NOW + timedelta(hours=3)
    reply = say(app, "/cx issue 1 resolve system: Fixed the VAT table and re-sent 212 invoices", "fatima")
    assert reply.message.text is not None and reply.message.text.startswith("You resolved #1.")
    resolved = issue(loaded)
    assert (resolved.status, resolved.root_cause, resolved.action_taken) == (
        "resolved",
        "system",
        "Fixed the VAT table and re-sent 212 invoices",
    )
    notice = outbox_rows(loaded, Outbox.idempotency_key.like("issue:1:resolve:%:anna:console:%"))[0].payload
    assert notice["header"] == "#1 är löst"
    assert {"label": "Åtgärd", "value": "Fixed the VAT table and re-sent 212 invoices"} in notice["fields"]
    assert say(app, "/cx issue 1 resolve process: again", "fatima").message.text == "#1 is already resolved."

    clock.now = NOW + timedelta(days=1)
    assert (
        say(app, "/cx issue 1 reopen", "anna").message.text == "#1 är öppet igen, och ägaren har fått en ny tidsgräns."
    )
    reopened = issue(loaded)
    assert reopened.status == "open"
    assert reopened.ack_due_at == NOW + timedelta(days=2)
    say(app, "/cx issue 1 resolve system: Also fixed the PDF template", "fatima")
    final = issue(loaded)
    # A reopen does not restart the first resolution; the last one is kept apart.
    assert final.resolved_at == NOW + timedelta(hours=3)
    assert final.last_resolved_at == NOW + timedelta(days=1)
    assert events(loaded) == ["reported", "acknowledged", "resolved", "reopened", "resolved"]


def test_every_change_edits_each_routed_post_in_its_language(app: CxApp, loaded: sessionmaker[Session]) -> None:
    report_invoice(app)
    say(app, "/cx issue 1 ack", "fatima")
    originals = outbox_rows(loaded, Outbox.topic == "issue:1:routed", Outbox.update_of_id.is_(None))
    edits = outbox_rows(loaded, Outbox.topic == "issue:1:routed", Outbox.update_of_id.is_not(None))
    assert sorted(e.update_of_id for e in edits) == sorted(o.id for o in originals)  # type: ignore[type-var]
    for edit in edits:
        original = next(o for o in originals if o.id == edit.update_of_id)
        assert edit.language == original.language
        status = next(f["value"] for f in edit.payload["fields"] if f["label"] in ("Status",))
        assert status in ("kvitterat, arbete pågår", "acknowledged, being worked on")


@pytest.mark.parametrize("who", ["anna", "jonas", "oskar"])
def test_only_owners_and_admins_may_change_an_issue(app: CxApp, loaded: sessionmaker[Session], who: str) -> None:
    report_invoice(app)
    for attempt in ("/cx issue 1 ack", "/cx issue 1 resolve process: x", "/cx issue 1 reassign erik"):
        reply = say(app, attempt, who)
        assert reply.message.text is not None and "#1" in reply.message.text
        assert "ändra" in reply.message.text or "change" in reply.message.text
    assert press(app, "issue:1:ack", user=who).message.text in (
        "Bara ägarteamet, den som ärendet är tilldelat och administratörer kan ändra #1.",
        "Only the owner team, the person it is assigned to and admins can change #1.",
    )
    assert issue(loaded).status == "open"
    assert events(loaded) == ["reported"]


@pytest.mark.parametrize("who", ["fatima", "elin", "erik"])  # owner, backup and admin, admin
def test_owner_backup_and_admins_may_acknowledge(app: CxApp, loaded: sessionmaker[Session], who: str) -> None:
    report_invoice(app)
    press(app, "issue:1:ack", user=who)
    assert issue(loaded).status == "acknowledged"


def test_reassign(app: CxApp, loaded: sessionmaker[Session]) -> None:
    report_invoice(app)
    assert say(app, "/cx issue 1 reassign nobody", "fatima").message.text == (
        "There is no person or team called “nobody” in the journey map."
    )
    assert say(app, "/cx issue 1 reassign", "fatima").message.text == (
        "To reassign #1: `/cx issue 1 reassign <person or team key>`."
    )
    reassigned_to = say(app, "/cx issue 1 reassign @elin", "fatima").message.text
    assert reassigned_to == "#1 now belongs to Billing · Elin Sandberg."  # names, not what was typed
    with loaded() as session:
        reassigned = session.get(Issue, 1)
        assert reassigned is not None and reassigned.assignee is not None and reassigned.assignee.key == "elin"
    assert len(outbox_rows(loaded, Outbox.idempotency_key.like("issue:1:routed:dm:elin:%"))) == 3
    latest_edit = outbox_rows(loaded, Outbox.topic == "issue:1:routed", Outbox.update_of_id.is_not(None))[-1]
    owner = next(f["value"] for f in latest_edit.payload["fields"] if f["label"] in ("Ägare", "Owner"))
    assert owner.endswith("Elin Sandberg")  # the edited post shows the new owner, not fatima
    say(app, "/cx issue 1 reassign customer-service", "elin")
    assert len(outbox_rows(loaded, Outbox.idempotency_key.like("issue:1:routed:team:customer-service:%"))) == 3
    assert events(loaded) == ["reported", "reassigned", "reassigned"]


def test_queries_and_bad_issue_commands(app: CxApp, loaded: sessionmaker[Session], clock: Clock) -> None:
    report_invoice(app, "anna")
    say(app, "/cx report app: kraschar", "erik")
    mine = say(app, "/cx issues mine", "anna")
    assert [f.label for f in mine.message.fields] == ["#1 · Månadsfaktura · normal"]
    assert say(app, "/cx issues", "anna").message.header == "Ärenden (2)"
    assert [f.label for f in say(app, "/cx issues team web").message.fields] == ["#2 · Mobilappen · normal"]
    assert say(app, "/cx issues touchpoint faktura").message.header == "Ärenden (1)"
    assert say(app, "/cx issues overdue").message.text == "Inga ärenden matchar. 🎉"
    clock.now = NOW + timedelta(days=2)
    overdue = say(app, "/cx issues overdue")
    assert overdue.message.header == "Ärenden (2)"
    assert all("försenat" in f.value for f in overdue.message.fields)
    details = say(app, "/cx issue 1")
    assert details.message.fields[-1].label == "Tidslinje"
    assert "rapporterat av Anna Lindqvist" in details.message.fields[-1].value
    for text, expected in [
        ("/cx issues team nope", "Det finns inget team som heter ”nope”."),
        ("/cx issues sideways", "Välj en av:"),
        ("/cx issue 99", "Det finns inget ärende #99."),
        ("/cx issue abc", "”abc” är inget ärendekommando."),
        ("/cx issue 1 dance", "”1 dance” är inget ärendekommando."),
        ("/cx issue 99999999999999", "”99999999999999” är ett för stort tal."),
    ]:
        text_out = say(app, text).message.text
        assert text_out is not None and text_out.startswith(expected), (text, text_out)
    for stale in ("issue:99:ack", "issue:x:ack", "issue:1:fly", "issue:1"):
        assert press(app, stale, "erik").message.text in (
            "Det finns inget ärende #99.",
            "Den knappen gör inget längre. Kör kommandot igen för att få en ny.",
        )


# --- anonymity ---------------------------------------------------------------------------------


def test_an_anonymous_reporter_is_never_shown_yet_hears_the_outcome(
    app: CxApp, loaded: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        reply = say(app, "/cx report anonymous chatt: boten var otrevlig mot en kund", "jonas")
        assert reply.message.context == [
            "Du rapporterade anonymt: ägarna ser inte vem du är, men du får ändå veta hur det gick."
        ]
        say(app, "/cx issue 1 ack", "elin")
        details = say(app, "/cx issue 1", "elin")
        listing = say(app, "/cx issues", "elin")
        say(app, "/cx issue 1 resolve training: Genomgång med teamet", "elin")
    shown = [
        json.dumps(r.payload, ensure_ascii=False)
        for r in outbox_rows(loaded)
        if r.target_ref not in ("jonas", "U0NLJONA04", "1190000000000000004")
    ]
    shown += [details.message.model_dump_json(), listing.message.model_dump_json()]
    for text in shown:
        assert "Jonas" not in text and "jonas" not in text
    assert "anonym" in details.message.model_dump_json()
    assert not re.search(r"jonas|Jonas", caplog.text)
    with loaded() as session:
        actors = session.scalars(select(IssueEvent.actor_id).where(IssueEvent.kind == "reported")).all()
        assert actors == [None]
    # ...and jonas, privately, hears both steps.
    to_jonas = outbox_rows(loaded, Outbox.target_ref == "jonas")
    assert [r.payload.get("header") or r.payload.get("text") for r in to_jonas] == [
        "Din rapport #1 (Chatt) har kvitterats av Elin Sandberg.",
        "#1 är löst",
    ]
    mine = say(app, "/cx issues mine", "jonas")
    assert [f.label for f in mine.message.fields] == []  # resolved issues are not listed as open
    assert mine.message.text == "Inga ärenden matchar. 🎉"


# --- concurrency -------------------------------------------------------------------------------


def test_two_owners_acknowledging_at_once_make_one_event(loaded: sessionmaker[Session], clock: Clock) -> None:
    # On PostgreSQL a row lock decides; on SQLite the write lock taken at BEGIN.
    pg_session_factory = loaded
    app = CxApp(pg_session_factory, clock=clock, default_language="sv")
    report_invoice(app)
    replies: list[str] = []
    barrier = threading.Barrier(2)

    def acknowledge(who: str) -> None:
        barrier.wait()
        replies.append(press(app, "issue:1:ack", user=who).message.text or "")

    threads = [threading.Thread(target=acknowledge, args=(who,)) for who in ("fatima", "elin")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(replies) == sorted(
        ["You acknowledged #1. The reporter has been told.", "#1 är redan kvitterat."]
    ) or sorted(replies) == sorted(
        ["Du har kvitterat #1. Den som rapporterade har fått veta det.", "#1 is already acknowledged."]
    )
    assert events(pg_session_factory) == ["reported", "acknowledged"]
    # One set of edits and one notice to the reporter, not two.
    assert len(outbox_rows(pg_session_factory, Outbox.idempotency_key.like("issue:1:ack:%:anna:%"))) == 3


# --- what a review found --------------------------------------------------------------------


def test_a_made_up_join_button_cannot_join_or_reopen_another_issue(app: CxApp, loaded: sessionmaker[Session]) -> None:
    say(app, "/cx report anonymous chatt: boten var otrevlig", "jonas")
    say(app, "/cx issue 1 resolve training: genomgång", "elin")
    offer = say(app, "/cx report fel pris på hemsidan", "sara")  # a touchpoint prompt: its own draft
    token = offer.message.buttons[0].action_id.split(":")[1]
    assert press(app, f"report:{token}:join:1", "sara").message.text == (
        "Den knappen gör inget längre. Kör kommandot igen för att få en ny."
    )
    assert say(app, "/cx issue 1 reopen", "sara").message.text == (
        "Bara ägarteamet, den som ärendet är tilldelat och administratörer kan ändra #1."
    )
    assert events(loaded) == ["reported", "resolved"]


def test_a_plus_one_to_an_issue_resolved_meanwhile_becomes_a_new_issue(
    app: CxApp, loaded: sessionmaker[Session]
) -> None:
    report_invoice(app, "anna")
    offer = report_invoice(app, "erik")
    say(app, "/cx issue 1 resolve system: rättat", "fatima")
    reply = press(app, offer.message.buttons[0].action_id, "erik")
    assert reply.message.text is not None and reply.message.text.startswith("Tack! Ärende #2 (Månadsfaktura)")
    assert issue(loaded, 1).affected_count == 1


def test_an_anonymous_reporter_who_reopens_stays_anonymous(app: CxApp, loaded: sessionmaker[Session]) -> None:
    say(app, "/cx report anonymous chatt: boten var otrevlig", "jonas")
    say(app, "/cx issue 1 resolve training: genomgång", "elin")
    assert (
        say(app, "/cx issue 1 reopen", "jonas").message.text == "#1 är öppet igen, och ägaren har fått en ny tidsgräns."
    )
    details = say(app, "/cx issue 1", "elin").message.model_dump_json()
    assert "Jonas" not in details and "öppnat igen av någon (anonym)" in details
    with loaded() as session:
        assert session.scalars(select(IssueEvent.actor_id).where(IssueEvent.kind == "reopened")).all() == [None]
    for row in outbox_rows(loaded):
        assert "Jonas" not in json.dumps(row.payload, ensure_ascii=False) or row.target_ref in ("jonas", "U0NLJONA04")


def test_a_reopen_gets_working_time_deadlines_and_a_new_round_of_escalation(
    app: CxApp, loaded: sessionmaker[Session], clock: Clock
) -> None:
    from bot.scheduler import run_sla_sweep

    report_invoice(app, "anna")
    clock.now = issue(loaded).ack_due_at + timedelta(minutes=1)
    run_sla_sweep(loaded, clock)  # step 1: elin
    say(app, "/cx issue 1 resolve system: rättat", "fatima")
    clock.now = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)  # Friday 18:00 in Stockholm
    say(app, "/cx issue 1 reopen", "anna")
    reopened = issue(loaded)
    assert reopened.ack_due_at == datetime(2026, 12, 1, 7, 0, tzinfo=UTC)  # Tuesday 08:00, not Saturday
    assert reopened.resolve_breach_noted_at is None and reopened.reopen_count == 1
    clock.now = reopened.ack_due_at + timedelta(minutes=1)
    run_sla_sweep(loaded, clock)
    second_round = outbox_rows(loaded, Outbox.idempotency_key.like("issue:1:r1:escalated:1:elin:%"))
    assert len(second_round) == 3  # told again in the new round, not swallowed by the old key


def test_two_plus_ones_at_once_count_both(loaded: sessionmaker[Session], clock: Clock) -> None:
    pg_loaded = loaded
    app = CxApp(pg_loaded, clock=clock, default_language="sv")
    report_invoice(app, "anna")
    offers = {who: report_invoice(app, who) for who in ("erik", "sara")}
    barrier = threading.Barrier(2)

    def join(who: str) -> None:
        barrier.wait()
        press(app, offers[who].message.buttons[0].action_id, who)

    threads = [threading.Thread(target=join, args=(who,)) for who in offers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert issue(pg_loaded).affected_count == 3
    assert count(pg_loaded, IssueFollower) == 3


@pytest.mark.postgres
def test_a_long_reminder_list_fits_its_key_on_postgresql(pg_loaded: sessionmaker[Session], clock: Clock) -> None:
    from bot.scheduler import run_sla_sweep

    app = CxApp(pg_loaded, clock=clock, default_language="sv")
    for _ in range(90):  # one owner, ninety waiting issues: a list of ids would outgrow 255 characters
        say(app, f"/cx report faktura: {uuid.uuid4().hex} {uuid.uuid4().hex}", "anna")
    assert count(pg_loaded, Issue) == 90
    clock.now = datetime(2026, 11, 25, 7, 5, tzinfo=UTC)  # Wednesday 08:05
    report = run_sla_sweep(pg_loaded, clock)
    assert report is not None and report.reminders == 1
    [row] = outbox_rows(pg_loaded, Outbox.idempotency_key.like("remind:fatima:%:console:%"))
    assert len(row.payload["fields"]) == 90
