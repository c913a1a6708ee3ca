"""The right to erasure leaves no trace of the person's words or identity.

Zebulon Ångmark (key ``zebulon``, a Slack and a Discord identity, an admin, owner of the first
invoice, backup on moving house) lives a full life in the bot through the core, the way every
adapter drives it: the language he chose, a subscription, a tip he reacted to and replied under,
observations (named, anonymous, one of his chat messages captured by a colleague, one of a
colleague's messages he captured, one he placed on the journey), issues (named, anonymous, a +1,
a report left waiting for a touchpoint, issues he owned, acknowledged, resolved and reassigned,
one made from his observation by a colleague, one he made from a colleague's), SLA reminders
and escalations to him, and a weekly digest that shouted him out and quoted him, posted and
delivered. Every log record of the whole run is kept, at DEBUG.

Then an admin erases him, and every column of every row of every table (reflected, so a table
added later is searched too) and every log line is searched for his name, key, Slack id, Discord
id and the distinctive words he wrote under his name (``zanzibar-quokka-N``). What must survive
does: the issues, their routing to the owners, other people's observations and issues as they
were, and what he wrote anonymously (``wombat-ombudsman-N``), word for word and no longer linked
to him (``tests/reliability/test_privacy.py`` shows colleagues see no change in it at all).

**His person row is deleted, not kept under a pseudonym.** A row renamed "erased person 17"
would still tie his acknowledgements, reassignments and +1s together as one person's, which is
what erasure undoes; his identities must go in any case, so such a row could never be used again.
Deleting it leaves the issues with no assignee (their team keeps them; an unowned touchpoint's
new issues go to the CX lead and the admins) and the timelines saying "someone (erased)". If he
is still in the journey file, the next load adds him back: a new row, his name and chat ids as
the file gives them, and no history. That is what the file is for; the admin is told so.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, MetaData, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.app import CxApp
from bot.content import default_content
from bot.domain.journey_map import load_journey_file
from bot.messages import CaptureRequest, Click, Invocation, Reaction, Reply, ThreadReply
from bot.outbox import Post, drain
from bot.scheduler import run_sla_sweep, run_weekly_digest, run_weekly_tips
from bot.services.setup import apply_journey
from bot.store.models import (
    Identity,
    Issue,
    IssueEvent,
    Observation,
    Outbox,
    Person,
    Subscription,
    TipEngagement,
)
from tests.conftest import EXAMPLE, NOW, Clock

NAME, KEY, SLACK_ID, DISCORD_ID = "Zebulon Ångmark", "zebulon", "U0ZEBULON9", "1199999999999999999"
WORDS = "zanzibar-quokka"  # every text he signs carries it: zanzibar-quokka-1, -4, …
# What he writes anonymously carries this instead: it stays, as it is, unlinked from him (it is
# not his to be traced by; changing it when he is erased would say who wrote it).
UNSIGNED = "wombat-ombudsman"
# Searched case-insensitively: the key is also his first name and part of his Slack id.
TRACES = (NAME, "Zebulon", "Ångmark", KEY, SLACK_ID, DISCORD_ID, WORDS)

SLACK = {
    "anna": "U0NLANNA01",
    "erik": "U0NLERIK02",
    "jonas": "U0NLJONA04",
    "leila": "U0NLLEIL05",
    "fatima": "U0NLFATI07",
    "oskar": "U0NLOSKA08",
    "elin": "U0NLELIN09",
    KEY: SLACK_ID,
}
DISCORD = {KEY: DISCORD_ID, "erik": "1190000000000000002"}
CX_CHANNEL, SERVICE_CHANNEL, BILLING_CHANNEL = "C0NLCXCX007", "C0NLKUND006", "C0NLBILL004"
PLATFORMS = ("slack", "discord", "console")
CATALOGUE = default_content().catalogue
REMOVED = CATALOGUE.text("sv", "erasure.removed")


# --- the world ---------------------------------------------------------------------------------


def journey_with_zebulon(tmp_path: Path) -> Path:
    """The example map, with him in it: an admin, in billing, owner and backup of touchpoints."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["org"]["admins"].append(KEY)
    data["people"].append(
        {
            "key": KEY,
            "name": NAME,
            "teams": ["billing"],
            "identities": {"slack": SLACK_ID, "discord": DISCORD_ID},
            "time_zone": "Europe/Stockholm",
        }
    )
    for stage in data["stages"]:
        for touchpoint in stage["touchpoints"]:
            if touchpoint["key"] == "first-invoice":
                touchpoint["owner"] = KEY
            if touchpoint["key"] == "moving-house":
                touchpoint["backup"] = KEY
    path = tmp_path / "journey.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def load(session_factory: sessionmaker[Session], path: Path, now: datetime) -> None:
    result = load_journey_file(str(path))
    assert result.journey is not None, result.problems
    with session_factory.begin() as session:
        apply_journey(session, result.journey, now, CATALOGUE, implicit_platforms=("console",))


class World:
    """The core app with a hand-moved clock, deferred work run on demand, and a chat platform
    that takes every post (its reference is what reactions and edits point at)."""

    def __init__(self, session_factory: sessionmaker[Session], clock: Clock) -> None:
        self.session_factory, self.clock = session_factory, clock
        self.later: list[Callable[[], object]] = []
        self.app = CxApp(session_factory, clock=clock, default_language="sv", run_later=self.later.append)
        self.delivered: list[Post] = []
        self.deliveries = 0

    def say(self, who: str, text: str, platform: str = "slack", channel: str = CX_CHANNEL) -> Reply:
        user = {"slack": SLACK, "discord": DISCORD}.get(platform, {}).get(who, who)
        self.deliveries += 1  # a delivery id per request, as Slack's trigger_id: opaque
        return self.app.dispatch(
            Invocation(platform, "T0NL", user, channel, text, delivery_id=f"trigger-{self.deliveries}")
        )

    def press(self, who: str, action_id: str) -> Reply:
        return self.app.click(Click("slack", "T0NL", SLACK[who], CX_CHANNEL, action_id))

    def erase(self, who: str, key: str) -> Reply:
        """``/cx erase``: a preview first, then the admin presses its *Erase* button."""
        preview = self.say(who, f"/cx erase {key}")
        assert [b.action_id.rsplit(":", 1)[-1] for b in preview.message.buttons] == ["yes", "no"], preview
        return self.press(who, preview.message.buttons[0].action_id)

    def settle(self) -> None:
        """What the bot does after replying (classifying observations)."""
        while self.later:
            self.later.pop(0)()

    def send(self, post: Post) -> str:
        self.delivered.append(post)
        return post.edit_ref or f"ref-{post.id}"

    def deliver(self) -> list[Post]:
        """Drain every platform's outbox, as the adapters' delivery loops would."""
        start = len(self.delivered)
        for platform in PLATFORMS:
            while drain(self.session_factory, platform, self, self.clock):
                pass
        return self.delivered[start:]

    def number(self, text: str) -> int:
        """The issue whose description contains ``text``."""
        with self.session_factory() as session:
            found = session.scalar(select(Issue.id).where(Issue.description.contains(text)))
            assert found is not None, text
            return found

    def observation(self, text: str) -> int:
        with self.session_factory() as session:
            found = session.scalar(select(Observation.id).where(Observation.text.contains(text)))
            assert found is not None, text
            return found


def his_full_life(world: World) -> dict[str, int]:
    """Everything he does, and everything others do with him, up to the digest; returns the
    issue numbers by name."""
    say, clock = world.say, world.clock
    issues: dict[str, int] = {}

    assert say(KEY, "/cx lang en").message.text
    assert say(KEY, "/cx subscribe all").message.text  # he set up #cx: tips and the digest
    assert "NPS" in (say(KEY, "/cx kpi record nps 12 loyalty 2026-W46 n=40").message.text or "")  # by hand
    say("erik", "/cx subscribe digest", platform="discord", channel="1180000000000000007")
    assert run_weekly_tips(world.session_factory, clock) == 1
    tip_post = next(p for p in world.deliver() if p.target.ref == CX_CHANNEL)
    tip_ref = f"ref-{tip_post.id}"
    for who, emoji in ((KEY, "+1"), ("leila", "heart")):
        world.app.react(
            Reaction("slack", "T0NL", SLACK[who], CX_CHANNEL, tip_ref, emoji, delivery_id=f"Ev-react-{emoji}")
        )
    world.app.replied(
        ThreadReply("slack", "T0NL", SLACK_ID, CX_CHANNEL, tip_ref, f"{CX_CHANNEL}:1764000000.0002", "Ev-reply-1")
    )

    # Observations: his own, named and anonymous; his chat message, captured by a colleague;
    # a colleague's message he captured; a colleague's he corrected.
    say(KEY, "/cx observe zanzibar-quokka-1 kunden ringde och var arg över fakturan, zanzibar-quokka-1")
    say(KEY, f"/cx observe anonymous {UNSIGNED}-2 installatören kom aldrig, {UNSIGNED}-2", platform="discord")
    world.app.react(
        Reaction(
            "slack",
            "T0NL",
            SLACK["leila"],
            SERVICE_CHANNEL,
            f"{SERVICE_CHANNEL}:1764000000.0001",
            "ear",
            "zanzibar-quokka-3 kunden vill byta elbolag för att appen krånglar, zanzibar-quokka-3",
            SLACK_ID,
            f"https://nordljus.slack.com/archives/{SERVICE_CHANNEL}/p1764000000000100",
            delivery_id="Ev-ear-1",
        )
    )
    world.app.capture(
        CaptureRequest(
            "slack",
            "T0NL",
            SLACK_ID,
            SERVICE_CHANNEL,
            f"{SERVICE_CHANNEL}:1764000000.0003",
            "Kunden tyckte att appen var toppen efter uppdateringen",
            SLACK["jonas"],
            f"https://nordljus.slack.com/archives/{SERVICE_CHANNEL}/p1764000000000300",
        )
    )
    say("jonas", "/cx observe Kunden väntade länge på offerten för solpanelerna")
    say("elin", "/cx observe anonymous Chatten var stängd när kunden behövde hjälp")
    world.settle()
    mine, captured = world.observation("zanzibar-quokka-1"), world.observation("appen var toppen")
    say(KEY, f"/cx observation {mine} touchpoint faktura")
    say(KEY, f"/cx observation {captured} touchpoint app")
    say(KEY, f"/cx observation {world.observation('offerten')} stage consideration")

    # Issues he reported, named and anonymous, and one he +1'd; one left waiting for a touchpoint.
    say(
        KEY, "/cx report faktura: zanzibar-quokka-4 fakturan visar dubbla belopp | impact: zanzibar-quokka-5 tre samtal"
    )
    issues["his"] = world.number("zanzibar-quokka-4")
    say(KEY, f"/cx report high anonymous chatt: {UNSIGNED}-6 chattboten svarar bara på engelska", platform="discord")
    issues["his_anonymous"] = world.number(f"{UNSIGNED}-6")
    say("leila", "/cx report app: Appen kraschar när kunden loggar in med BankID")
    issues["plus_one"] = world.number("Appen kraschar")
    offer = say(KEY, "/cx report app: appen kraschar när kunden loggar in med bankid zanzibar-quokka-7")
    assert offer.message.buttons, offer.message.text  # "+1 to #N?"
    world.press(KEY, offer.message.buttons[0].action_id)
    waiting = say(KEY, "/cx report zanzibar-quokka-8 kunden kom inte fram i telefonkön")
    assert waiting.message.buttons, waiting.message.text  # left unanswered: a draft
    say("jonas", "/cx report prisjämförelse: Elpriskollen visar ett gammalt pris")  # unowned: to the admins

    # Issues he owned: acknowledged, resolved with his words; one reassigned to him and by him.
    say("jonas", "/cx report första fakturan: Startfakturan kom aldrig fram till kunden")
    issues["he_resolved"] = world.number("Startfakturan")
    clock.now = NOW + timedelta(minutes=30)
    say(KEY, f"/cx issue {issues['he_resolved']} ack")
    say(KEY, f"/cx issue {issues['he_resolved']} resolve process: zanzibar-quokka-9 vi skickade om startfakturorna")
    say("erik", f"/cx issue {issues['plus_one']} reassign {KEY}")
    say(KEY, f"/cx issue {issues['plus_one']} reassign web")
    say("fatima", f"/cx issue {issues['his']} ack")
    say("fatima", f"/cx issue {issues['his']} resolve system: Rättade momstabellen och skickade nya fakturor")

    # Issues made from observations: a colleague's from his words, his from a colleague's.
    say("fatima", f"/cx observation {mine} report")
    issues["from_his_words"] = world.number("zanzibar-quokka-1")
    say(KEY, f"/cx observation {captured} report")
    issues["he_made"] = world.number("appen var toppen")

    # Left waiting: a reminder to him as the owner, an escalation to him as the backup.
    say("anna", "/cx report första fakturan: Kunden fick startfakturan två gånger")
    issues["assigned_to_him"] = world.number("två gånger")
    say("jonas", "/cx report high flytt: Flyttanmälan försvann i systemet")
    issues["escalated"] = world.number("Flyttanmälan")
    clock.now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert run_sla_sweep(world.session_factory, clock) is not None
    world.deliver()

    # The week's digest: his shout-out, his words quoted; posted and delivered.
    clock.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    say("elin", "/cx digest preview")
    assert run_weekly_digest(world.session_factory, clock) == 2
    world.deliver()
    world.deliver()  # the chart's and the edits' turn

    # Not delivered yet when he is erased: what his last acknowledgement queued.
    clock.now += timedelta(minutes=5)
    say(KEY, f"/cx issue {issues['assigned_to_him']} ack")
    return issues


# --- looking everywhere ------------------------------------------------------------------------


def shown(value: Any) -> str:
    """A column's value as text to search: JSON as JSON with its letters unescaped (a JSON
    column may hold "\\u00c5" for Å), bytes decoded as far as they decode."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    text = str(value)
    if text[:1] in "{[":
        try:
            return text + " " + json.dumps(json.loads(text), ensure_ascii=False)
        except ValueError:
            pass
    return text


def every_row(engine: Engine) -> dict[str, list[str]]:
    """Every column of every row of every table there is, table by table."""
    metadata = MetaData()
    metadata.reflect(engine)
    dump: dict[str, list[str]] = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            dump[table.name] = sorted(
                " | ".join(f"{column}={shown(value)}" for column, value in row._mapping.items())
                for row in connection.execute(select(table))
            )
    return dump


def traces_in(text: str) -> list[str]:
    folded = text.casefold()
    return [trace for trace in TRACES if trace.casefold() in folded]


def leaks(dump: dict[str, list[str]]) -> list[str]:
    return [f"{table}: {row}" for table, rows in dump.items() for row in rows if traces_in(row)]


def log_leaks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [line for line in caplog.text.splitlines() if traces_in(line)]


def kept_observations(session_factory: sessionmaker[Session]) -> dict[int, tuple[Any, ...]]:
    """The observations that stay (other people's, and his anonymous one) as they stand,
    leaving out the columns that named him."""
    with session_factory() as session:
        rows = session.scalars(select(Observation).where(~Observation.text.contains(WORDS)).order_by(Observation.id))
        return {
            o.id: (o.text, o.author_id, o.anonymous, o.stage_id, o.touchpoint_id, o.sentiment, o.themes, o.issue_id)
            for o in rows
        }


def issue_texts(session_factory: sessionmaker[Session]) -> dict[int, tuple[Any, ...]]:
    with session_factory() as session:
        return {
            i.id: (i.description, i.customer_impact, i.action_taken, i.status, i.assignee_team_id, i.affected_count)
            for i in session.scalars(select(Issue).order_by(Issue.id))
        }


@pytest.fixture
def world(
    session_factory: sessionmaker[Session], clock: Clock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> Iterator[World]:
    caplog.set_level(logging.DEBUG)  # every record of the whole run, from the first load on
    load(session_factory, journey_with_zebulon(tmp_path), NOW)
    world = World(session_factory, clock)
    yield world
    world.app.close()


# --- the proof ---------------------------------------------------------------------------------


def test_erasure_leaves_no_trace_of_his_words_or_identity(
    world: World, engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    issues = his_full_life(world)
    sf = world.session_factory

    before = every_row(engine)
    everywhere = "\n".join(row for rows in before.values() for row in rows)
    for trace in TRACES:  # he is everywhere to begin with…
        assert trace.casefold() in everywhere.casefold(), trace
    for table in ("person", "identity", "observation", "issue", "issue_event", "outbox", "report_draft"):
        assert any(traces_in(row) for row in before[table]), table
    with sf() as session:
        assert session.scalar(select(func.count()).select_from(TipEngagement)) == 3
        assert session.scalar(select(func.count()).select_from(Outbox).where(Outbox.status == "sent")) > 20
        assert session.scalar(select(func.count()).select_from(Outbox).where(Outbox.status == "pending")) > 0
    kept, texts = kept_observations(sf), issue_texts(sf)
    assert len(kept) == 4  # jonas's two (one captured by him), elin's anonymous one, his anonymous one

    reply = world.erase("erik", KEY)

    # Polite and clear, to the admin alone; the name is what he asked to erase, echoed once.
    assert reply.message.text == CATALOGUE.text("sv", "observations.erased", name=NAME) + " " + CATALOGUE.text(
        "sv", "observations.erased_in_file"
    )
    after = every_row(engine)
    assert leaks(after) == []
    assert log_leaks(caplog) == []
    kept_words = "\n".join(after["observation"] + after["issue"])
    assert f"{UNSIGNED}-2" in kept_words and f"{UNSIGNED}-6" in kept_words  # his anonymous words stay

    with sf() as session:
        assert session.scalar(select(Person).where(Person.key == KEY)) is None
        assert (
            session.scalar(select(func.count()).select_from(Identity).where(Identity.external_user_id == SLACK_ID)) == 0
        )
        # The issues stay, all of them; his words in them are replaced, nobody else's.
        assert session.scalar(select(func.count()).select_from(Issue)) == len(texts)
        # His engagement with the tip is gone, leila's stays; the subscriptions he made stay.
        assert session.scalars(select(TipEngagement.external_user_id)).all() == [SLACK["leila"]]
        assert session.scalar(select(func.count()).select_from(Subscription)) == 3
        # Timelines keep every event, no longer saying who he was.
        assert session.scalar(select(func.count()).select_from(IssueEvent)) == len(before["issue_event"])
    now = issue_texts(sf)
    assert now[issues["his"]][:2] == (REMOVED, REMOVED)
    assert now[issues["his_anonymous"]] == texts[issues["his_anonymous"]]  # anonymous: as it was
    assert now[issues["from_his_words"]][0] == REMOVED
    assert now[issues["he_resolved"]][2] == REMOVED
    assert now[issues["he_resolved"]][0] == texts[issues["he_resolved"]][0]  # jonas's report
    assert now[issues["his"]][2] == texts[issues["his"]][2]  # fatima's action
    changed = {issues[k] for k in ("his", "from_his_words", "he_resolved")}
    for number, values in texts.items():
        if number not in changed:  # other people's words, to the letter
            assert now[number][:3] == values[:3], number
    assert now[issues["he_made"]][0] == "Kunden tyckte att appen var toppen efter uppdateringen"  # jonas's words
    assert kept_observations(sf) == kept  # other people's observations and his anonymous one, untouched

    # The timeline still reads, in both languages: "acknowledged by someone (erased)".
    for who, language in (("elin", "sv"), ("fatima", "en")):
        details = world.say(who, f"/cx issue {issues['he_resolved']}").message
        erased = CATALOGUE.text(language, "issues.actor.acknowledged")
        assert CATALOGUE.text(language, "issues.event.acknowledged", who=erased) in details.fields[-1].value
        assert "issues.actor" not in details.model_dump_json() and not traces_in(details.model_dump_json())

    # What was delivered is edited: every routed issue post he was in, and the digests.
    edits = world.deliver()
    assert edits and not [p for p in edits if traces_in(p.message.model_dump_json())]
    # A routed post's edit is keyed "<topic>:v<version>:edit:<the post it edits>".
    edited_topics = {p.idempotency_key.split(":edit:")[0].rsplit(":v", 1)[0] for p in edits if p.edit_ref}
    for name in ("his", "plus_one", "he_resolved", "assigned_to_him", "from_his_words", "he_made"):
        assert f"issue:{issues[name]}:routed" in edited_topics, name
    assert f"issue:{issues['his_anonymous']}:routed" not in edited_topics  # nothing to say who wrote it
    digest_edits = [p for p in edits if p.edit_ref and p.message.header and "2026-W48" in p.message.header]
    assert {p.target.platform for p in digest_edits} == {"slack", "discord"}
    # Scrubbed, not built again (a digest is a record of its week, with that week's figures and
    # summary): his name gives way to "someone (erased)", lines quoting him go, the chart stays.
    assert all(p.message.image is not None and p.message.image.attachment for p in digest_edits)
    assert any(CATALOGUE.text("sv", "erasure.someone") in p.message.model_dump_json() for p in digest_edits)
    with sf() as session:  # the delivered posts keep their reference: later edits still find them
        sent_digests = session.scalars(select(Outbox).where(Outbox.topic == "digest:2026-W48")).all()
        assert sent_digests and all(r.platform_ref for r in sent_digests if r.update_of_id is None)

    # The issues still reach their owners: his former touchpoint's team, and for want of an
    # owner, the CX lead and the admins. The issue he was backup on is acknowledged by its
    # owner, the one assigned to him is resolved by his team.
    ack = world.say("leila", f"/cx issue {issues['escalated']} ack")
    assert ack.message.text == CATALOGUE.text("sv", "issues.acknowledged", number=issues["escalated"])
    world.say("jonas", "/cx report första fakturan: Startfakturan saknar OCR-nummer")
    fresh = world.number("OCR-nummer")
    with sf() as session:
        targets = set(session.scalars(select(Outbox.target_ref).where(Outbox.topic == f"issue:{fresh}:routed")))
    assert {BILLING_CHANNEL, SLACK["anna"], SLACK["erik"], SLACK["elin"]} <= targets
    reply = world.say("fatima", f"/cx issue {issues['assigned_to_him']} resolve process: Krediterade dubbletten")
    assert reply.message.text == CATALOGUE.text("en", "issues.resolved", number=issues["assigned_to_him"])
    assert not [p for p in world.deliver() if traces_in(p.message.model_dump_json())]
    assert leaks(every_row(engine)) == []

    # Still in the journey file: the next load adds him back, with nothing of his past.
    load(sf, journey_with_zebulon(tmp_path), world.clock.now)
    assert world.say(KEY, "/cx observations mine").message.text == CATALOGUE.text("sv", "observations.list_empty")
    assert world.say(KEY, "/cx issues mine").message.text == CATALOGUE.text("sv", "issues.list_empty")
    assert log_leaks(caplog) == []


def test_a_failed_erasure_erases_nothing(
    world: World, engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """One transaction: when the last step fails, the first ones are undone with it."""
    world.say(KEY, "/cx observe zanzibar-quokka-1 kunden ringde om fakturan")
    world.say(KEY, "/cx report faktura: zanzibar-quokka-4 fakturan visar dubbla belopp")
    world.deliver()
    preview = world.say("erik", f"/cx erase {KEY}")
    before = every_row(engine)

    def broken(*_: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr("bot.services.issues.IssueService.refresh_routed", broken)
    reply = world.press("erik", preview.message.buttons[0].action_id)
    assert reply.message.text == CATALOGUE.text("sv", "common.internal_error")
    after = every_row(engine)
    assert after == before  # the question stays unanswered, and nothing of the erasure was kept
    assert log_leaks(caplog) == []


def test_a_colleagues_words_lose_his_name_and_keep_the_rest(world: World, engine: Engine) -> None:
    """Leila names him in her report, and the routed post went out with it. After the erasure
    her words stay, his name in them does not, in the issue and in the edit of the routed post
    alike (the edit is rendered from the issue, and scrubbed once more)."""
    world.say("leila", f"/cx report faktura: {NAME} lovade kunden en återbetalning per telefon")
    number = world.number("återbetalning")
    world.deliver()
    world.erase("erik", KEY)
    someone = CATALOGUE.text("sv", "erasure.someone")
    assert issue_texts(world.session_factory)[number][0] == f"{someone} lovade kunden en återbetalning per telefon"
    edits = [p for p in world.deliver() if p.edit_ref and f"#{number}" in p.message.model_dump_json()]
    assert edits and not [p for p in edits if traces_in(p.message.model_dump_json())]
    assert all("återbetalning per telefon" in p.message.model_dump_json() for p in edits)  # her words stay
    assert leaks(every_row(engine)) == []


def test_a_post_that_may_be_on_the_platform_gets_its_edit(world: World) -> None:
    """A post naming him timed out after the platform may have taken it (pending, outcome
    unknown): scrubbing the stored copy is not enough, the copy out there needs an edit."""
    world.say("leila", f"/cx report faktura: {NAME} ringde kunden om dubbla fakturor i går")
    number = world.number("dubbla fakturor i går")
    with world.session_factory.begin() as session:
        routed = session.scalars(select(Outbox).where(Outbox.topic == f"issue:{number}:routed")).all()
        assert routed
        for row in routed:
            row.status, row.delivery_unknown, row.platform_ref = "pending", True, None
    world.erase("erik", KEY)
    with world.session_factory() as session:
        edits = session.scalars(select(Outbox).where(Outbox.update_of_id.in_([r.id for r in routed]))).all()
        assert {e.update_of_id for e in edits} == {r.id for r in routed}
        assert not [e for e in edits if traces_in(json.dumps(e.payload, ensure_ascii=False))]


def test_his_name_leaves_anonymous_texts_as_it_leaves_any_text(world: World, engine: Engine) -> None:
    """An anonymous text naming him loses his name, whoever wrote it: the rule is the same for
    his own anonymous words and for a colleague's, so the change says nothing about who wrote
    them. The rest of the text stays, as it was."""
    world.say(KEY, f"/cx observe anonymous {NAME} glömde ringa tillbaka kunden om flytten")
    world.say("leila", f"/cx observe anonymous {NAME} lovade kunden ett nytt avtal")
    world.say(KEY, f"/cx report anonymous faktura: {NAME} skickade fakturan till fel adress")
    world.say("leila", f"/cx report anonymous app: {NAME} sa att appen visar fel saldo")
    world.settle()
    world.erase("erik", KEY)
    someone = CATALOGUE.text("sv", "erasure.someone")
    with world.session_factory() as session:
        observations = set(session.scalars(select(Observation.text).where(Observation.anonymous)))
        issues = set(session.scalars(select(Issue.description).where(Issue.anonymous)))
    assert observations == {
        f"{someone} glömde ringa tillbaka kunden om flytten",
        f"{someone} lovade kunden ett nytt avtal",
    }
    assert issues == {f"{someone} skickade fakturan till fel adress", f"{someone} sa att appen visar fel saldo"}
    assert leaks(every_row(engine)) == []
