"""Security: an anonymous reporter or observer never appears anywhere — replies, posts, the
digest and its JSON, the issue's timeline, or a log line — and secrets never reach the logs."""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.app import CxApp
from bot.content import default_content
from bot.messages import Invocation, Reply
from bot.scheduler import run_weekly_digest
from bot.services.digest import build_digest, digest_message
from bot.services.journey import current_org
from bot.store.models import Observation, Outbox
from tests.conftest import NOW, Clock
from tests.reliability.test_erasure import DISCORD_ID, KEY, NAME, SLACK_ID, World, journey_with_zebulon, load

SARA = ("Sara", "Bergström", "sara", "U0NLSARA03", "1190000000000000003")  # her name, key and ids


def say(app: CxApp, text: str, user: str, platform: str = "slack") -> Reply:
    return app.dispatch(Invocation(platform, "T", user, "C1", text))


def everything_shown(reply: Reply) -> str:
    return reply.message.model_dump_json()


def test_an_anonymous_reporter_and_observer_appear_nowhere(
    app: CxApp, loaded: sessionmaker[Session], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    shown: list[str] = []
    shown.append(everything_shown(say(app, "/cx report anonymous faktura: Fakturan var fel för många", "U0NLSARA03")))
    shown.append(everything_shown(say(app, "/cx observe anonymous Kunden grät i telefon", "U0NLSARA03")))
    # Everything anyone else can see of them: lists, details, timelines, buttons, the digest.
    for user, text in [
        ("U0NLFATI07", "/cx issues"),
        ("U0NLFATI07", "/cx issue 1"),
        ("U0NLFATI07", "/cx issues touchpoint monthly-invoice"),
        ("U0NLELIN09", "/cx observations"),
        ("U0NLELIN09", "/cx observation 1"),
        ("U0NLELIN09", "/cx observations stage usage"),
    ]:
        shown.append(everything_shown(say(app, text, user)))
    clock.now = NOW + timedelta(hours=2)
    shown.append(everything_shown(say(app, "/cx issue 1 ack", "U0NLFATI07")))
    shown.append(everything_shown(say(app, "/cx issue 1 resolve system: Fakturan rättad", "U0NLFATI07")))
    shown.append(everything_shown(say(app, "/cx issue 1", "U0NLELIN09")))
    clock.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    shown.append(everything_shown(say(app, "/cx digest preview 2026-W48", "U0NLELIN09")))
    content = default_content()
    with loaded() as session:
        org = current_org(session)
        assert org is not None
        digest = build_digest(session, org, "2026-W48", catalogue=content.catalogue, tips=content.tips, now=clock.now)
        shown.append(json.dumps(digest.as_json(), ensure_ascii=False))
        for language in ("sv", "en"):
            shown.append(digest_message(content.catalogue, language, digest).model_dump_json())
        # Every post queued for anyone but Sara herself (she is told the outcome of her report).
        for row in session.scalars(select(Outbox)):
            if row.target_ref not in ("sara", "U0NLSARA03", "1190000000000000003"):
                shown.append(json.dumps(row.payload, ensure_ascii=False))
    assert digest.observations.count == 1 and digest.issues.opened == 1  # her words are there…
    everything = "\n".join(shown) + "\n" + caplog.text
    assert "Fakturan var fel för många" in everything and "Kunden grät i telefon" in everything
    assert "Fakturan rättad" in everything  # the outcome was rendered too
    for trace in SARA:  # …but not she
        assert trace not in everything, trace


def test_tokens_and_secrets_never_reach_the_logs(bare_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.test_cli import CXBOT
    from tests.test_console import cli_env

    secrets = {
        "SLACK_BOT_TOKEN": "xoxb-secret-0123456789",
        "SLACK_APP_TOKEN": "xapp-secret-0123456789",
        "SLACK_SIGNING_SECRET": "signing-secret-0123456789",
        "DISCORD_TOKEN": "discord-secret-0123456789",
        "OPENAI_API_KEY": "sk-secret-0123456789",
    }
    # A base URL with credentials in it (an Azure-style api-key, a proxy's password): the log
    # says where the API is, with them masked (nothing listens there: the offline classifier
    # takes over).
    base = "http://proxy-user:proxy-secret-0123456789@127.0.0.1:9/v1?api-key=url-secret-0123456789"
    env = {**cli_env(bare_engine, tmp_path), **secrets, "CXBOT_LOG_LEVEL": "DEBUG", "OPENAI_BASE_URL": base}
    env["CXBOT_OPENAI_TIMEOUT"] = "1"
    script = "/cx help\n/cx report faktura: Fel belopp\n/cx observe Kunden var nöjd\n/cx kpi\n/cx digest preview\n"
    run = subprocess.run(
        [CXBOT, "run", "--adapter", "console", "--demo", "--as", "elin"],
        input=script,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    logged = (tmp_path / "cxbot.log").read_text(encoding="utf-8")
    assert "DEBUG" in logged or "INFO" in logged  # something was logged at all
    assert "openai: API at http://proxy-user:***@127.0.0.1:9/v1?api-key=***" in logged
    for value in [*secrets.values(), "proxy-secret-0123456789", "url-secret-0123456789"]:
        assert value not in logged and value not in run.stdout and value not in run.stderr, value


def test_at_debug_the_platform_libraries_do_not_log_whole_requests() -> None:
    """slack_sdk, slack-bolt, discord.py and openai log request bodies (people's words, chat ids)
    at DEBUG; cxbot's own DEBUG lines stay, the libraries' start at INFO."""
    from bot.cli import PAYLOAD_LOGGERS, setup_logging
    from bot.config import Settings

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        setup_logging(Settings(log_level="DEBUG"))
        assert logging.getLogger("bot.app").isEnabledFor(logging.DEBUG)
        for library in ("slack_sdk", "slack_bolt", "discord", "openai"):
            assert library in PAYLOAD_LOGGERS
            assert not logging.getLogger(f"{library}.web.client").isEnabledFor(logging.DEBUG), library
            assert logging.getLogger(library).isEnabledFor(logging.INFO)
        setup_logging(Settings(log_level="WARNING"))
        assert not logging.getLogger("slack_sdk").isEnabledFor(logging.INFO)
    finally:
        for library in PAYLOAD_LOGGERS:
            logging.getLogger(library).setLevel(logging.NOTSET)
        root.handlers[:] = handlers
        root.setLevel(level)


# --- erasure and anonymity ---------------------------------------------------------------------


@pytest.fixture
def zebulons_world(session_factory: sessionmaker[Session], clock: Clock, tmp_path: Path) -> Iterator[World]:
    load(session_factory, journey_with_zebulon(tmp_path), NOW)
    world = World(session_factory, clock)
    yield world
    world.app.close()


def digest_counts(world: World) -> tuple[int, int]:
    """The week's observations and opened issues, as the digest counts them."""
    content = default_content()
    with world.session_factory() as session:
        org = current_org(session)
        assert org is not None
        digest = build_digest(
            session, org, "2026-W48", catalogue=content.catalogue, tips=content.tips, now=world.clock.now
        )
    return digest.observations.count, digest.issues.opened


def listed(shown: str, number: int) -> str:
    """The item's entry in a list reply ("#3 · Chat": its text)."""
    fields = json.loads(shown)["fields"]
    return json.dumps([f for f in fields if f["label"].startswith(f"#{number} ")], ensure_ascii=False)


def colleague_view(world: World, issues: list[int], observations: list[int]) -> dict[str, str]:
    """Everything colleagues can see of these issues and observations, item by item: the details
    (with the timeline), the item's line in the lists, every post and edit of it in the outbox
    addressed to anyone but him, and whether the week's digest quotes it (built again, and in each
    posted digest as it now reads)."""
    view: dict[str, str] = {}
    lists = {
        "issues": everything_shown(world.say("fatima", "/cx issues")),
        "observations": everything_shown(world.say("jonas", "/cx observations")),
    }
    digest = everything_shown(world.say("elin", "/cx digest preview 2026-W48"))
    with world.session_factory() as session:
        texts = {o.id: o.text for o in session.scalars(select(Observation).where(Observation.id.in_(observations)))}
        posts = {
            number: [
                (row.id, row.update_of_id, row.platform, row.target_ref, row.payload)
                for row in session.scalars(
                    select(Outbox).where(Outbox.topic.like(f"issue:{number}:%")).order_by(Outbox.id)
                )
                if row.target_ref not in (SLACK_ID, DISCORD_ID, KEY)
            ]
            for number in issues
        }
        digests: dict[int, str] = {}  # each digest post as it now reads: its last edit, or itself
        for row in session.scalars(select(Outbox).where(Outbox.topic.like("digest:%")).order_by(Outbox.id)):
            digests[row.update_of_id or row.id] = json.dumps(row.payload, ensure_ascii=False)
    for number in issues:
        view[f"issue {number}"] = everything_shown(world.say("fatima", f"/cx issue {number}"))
        view[f"issue {number} listed"] = listed(lists["issues"], number)
        view[f"issue {number} posts"] = json.dumps(posts[number], ensure_ascii=False)
    for number in observations:
        view[f"observation {number}"] = everything_shown(world.say("jonas", f"/cx observation {number}"))
        quoted = json.dumps(texts.get(number, "-"), ensure_ascii=False)[1:-1][:40]
        view[f"observation {number} listed"] = listed(lists["observations"], number)
        view[f"observation {number} in the digest"] = str(quoted in digest)
        view[f"observation {number} in the digest posts"] = str([quoted in post for post in digests.values()])
    return view


def test_erasing_someone_does_not_reveal_what_they_wrote_anonymously(zebulons_world: World) -> None:
    """Colleagues watch everything they can see while an admin erases Zebulon. His named issue
    and observation change (his words go); his anonymous ones stay byte for byte as they were,
    posts and timelines and lists and the digest alike, as does a colleague's anonymous issue:
    nothing they see ties the anonymous ones to him."""
    world, say = zebulons_world, zebulons_world.say
    say("erik", "/cx subscribe digest")
    say(KEY, "/cx observe zanzibar-quokka-1 kunden ringde och var arg över fakturan i dag")
    say(KEY, "/cx observe anonymous Installatören kom aldrig och kunden fick ta ledigt i onödan")
    say("elin", "/cx observe anonymous Chatten var stängd när kunden behövde hjälp med flytten")
    say(KEY, "/cx report faktura: zanzibar-quokka-4 fakturan visar dubbla belopp för november")
    say(KEY, "/cx report high anonymous chatt: Chattboten svarar bara på engelska på kvällarna")
    say("leila", "/cx report anonymous app: Appen visar fel förbrukning för december")
    world.settle()
    named_issue, anonymous_issue = world.number("zanzibar-quokka-4"), world.number("bara på engelska")
    colleagues_issue = world.number("fel förbrukning")
    named_observation = world.observation("zanzibar-quokka-1")
    anonymous_observation = world.observation("Installatören kom aldrig")
    colleagues_observation = world.observation("Chatten var stängd")
    world.clock.now = NOW + timedelta(hours=1)
    acknowledged = say("elin", f"/cx issue {anonymous_issue} ack").message.text or ""
    assert f"#{anonymous_issue}" in acknowledged  # a timeline with more than its report
    world.clock.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert run_weekly_digest(world.session_factory, world.clock) == 1
    world.deliver()
    world.deliver()  # the chart's turn
    issues = [named_issue, anonymous_issue, colleagues_issue]
    observations = [named_observation, anonymous_observation, colleagues_observation]
    before = colleague_view(world, issues, observations)
    counted = digest_counts(world)
    assert before[f"observation {anonymous_observation} in the digest"] == "True"  # the digest quotes it
    assert before[f"observation {anonymous_observation} in the digest posts"] == "[True]"

    reply = world.erase("erik", KEY)
    assert reply.message.text and NAME in reply.message.text
    edits = world.deliver()
    after = colleague_view(world, issues, observations)
    # The week's figures lose his named observation, and only it: the anonymous ones still count.
    assert digest_counts(world) == (counted[0] - 1, counted[1])

    anonymous = {f"issue {n}" for n in (anonymous_issue, colleagues_issue)}
    anonymous |= {f"observation {n}" for n in (anonymous_observation, colleagues_observation)}
    seen = [item for item in before if " ".join(item.split()[:2]) in anonymous]
    shown_before = [item for item in seen if before[item] not in ("", "[]", "False")]
    assert len(seen) == 14 and len(shown_before) >= 12  # the digest quotes some observations, not all
    assert [item for item in seen if after[item] != before[item]] == []  # byte for byte
    for item in (f"issue {named_issue}", f"issue {named_issue} posts", f"observation {named_observation}"):
        assert after[item] != before[item], item  # his named words went
    # No post of the anonymous issues was edited; the erasure's edits are of his named words.
    edited = "\n".join(p.message.model_dump_json() for p in edits)
    assert f"#{named_issue}" in edited
    assert f"#{anonymous_issue}" not in edited and f"#{colleagues_issue}" not in edited
