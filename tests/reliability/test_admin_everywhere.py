"""Admin commands are refused to non-admins on every adapter: the console, Slack (the real
slack_bolt App, signed requests, answers through the response URL at the loopback stub) and
Discord (the real discord.py client, raw interaction payloads, the loopback API stub).

The admin commands are not listed here: they are found in the core's registry, by running every
command (and every literal word of its usage) as a non-admin on a scratch database and noting
which ones ask ``Context.require_admin``. A new admin command is covered without touching this
file. For each adapter, command and non-admin: a polite refusal that says the command is for
admins (never the internal-error apology), a log line, and not one stored row changed. An admin
typing the same command is not refused, so these tests can fail.
"""

from __future__ import annotations

import functools
import logging
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from unittest import mock

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adapters.slack.bot import SlackBot
from bot.app import Context, CxApp, language_for
from bot.content import default_content
from bot.domain.journey_map import load_journey_file
from bot.i18n import default_catalogue
from bot.messages import Invocation
from bot.services.journey import current_org
from bot.services.setup import apply_journey
from bot.store.db import make_engine, make_session_factory
from bot.store.models import Base, Identity, Person
from tests.conftest import EXAMPLE, NOW, Clock
from tests.discord_stub import DiscordStub
from tests.reliability.test_bad_input import APOLOGY, snapshot
from tests.slack_stub import SlackStub
from tests.test_console import run_console
from tests.test_discord import (
    ADMIN_ROLE,
    APP,
    MANAGE_GUILD,
    Running,
    callbacks,
    embed_text,
    interaction,
    member,
    message,
    running,
    slash,
)
from tests.test_discord import stub as discord_stub
from tests.test_slack import command, core, no_proxy, signature_clock, slack, texts_of
from tests.test_slack import interaction as slack_interaction
from tests.test_slack import stub as slack_stub

# The adapters' own fixtures, imported and then asked for by name. Slack's and Discord's stubs
# are both called ``stub`` where they are defined: each adapter's class below says which it gets.
ADAPTER_FIXTURES = (core, no_proxy, signature_clock, slack, slack_stub, running, discord_stub)

CATALOGUE = default_content().catalogue
# A member who reads Swedish, a touchpoint owner who reads English, and the CX lead: none of
# them is an admin in the journey file.
NON_ADMINS = ("leila", "fatima", "anna")
ADMIN = "elin"
# Arguments that make an admin command do something real; a command found later without an
# entry here is typed as found (the refusal comes before its arguments are read).
EXAMPLES = {"erase": "erase david", "kpi record": "kpi record nps 10 loyalty"}
KNOWN = {"subscribe", "unsubscribe", "erase", "digest", "kpi record"}  # digest: digest preview
WRITES = {"subscribe", "erase", "kpi record"}  # what an admin's EXAMPLES visibly store


@dataclass(frozen=True)
class AdminCommand:
    name: str  # the registry's command
    word: str  # the usage word that makes it admin-only ("record"), else its first one, or ""
    whole: bool  # every use of the command is for admins, not just the ``word``
    aliases: tuple[str, ...]

    @property
    def key(self) -> str:
        """``subscribe`` (all of it), ``kpi record`` (only recording)."""
        return self.name if self.whole else f"{self.name} {self.word}"

    @property
    def text(self) -> str:
        return EXAMPLES.get(self.key, f"{self.name} {self.word}".strip())

    def spellings(self) -> list[str]:
        """The command as typed, then with each of its aliases (`prenumerera tips`)."""
        rest = self.text[len(self.name) :]
        return [self.text, *(alias + rest for alias in self.aliases)]


USAGE_WORD = re.compile(r"<[^>]*>|[^\s\[\]|<>]+")


def usage_words(usage: str) -> list[str]:
    """The literal words of a usage line after the command: ``kpi [stage|record <metric> …]`` →
    stage, record, week, n=N. The placeholders in angle brackets are left out."""
    return [w for w in USAGE_WORD.findall(usage)[1:] if not w.startswith("<")]


@functools.cache
def admin_commands() -> tuple[AdminCommand, ...]:
    """Every command, and every literal word of its usage, run as a non-admin on a scratch
    SQLite database with the example journey: the ones that ask for an admin."""
    journey = load_journey_file(str(EXAMPLE)).journey
    assert journey is not None
    asked: list[str] = []
    require_admin = Context.require_admin

    def spy(ctx: Context) -> Person:
        asked.append(ctx.user_id)
        return require_admin(ctx)

    with tempfile.TemporaryDirectory() as folder, mock.patch.object(Context, "require_admin", spy):
        engine = make_engine(f"sqlite:///{folder}/probe.db")
        Base.metadata.create_all(engine)
        factory = make_session_factory(engine)
        with factory.begin() as session:
            apply_journey(session, journey, NOW, default_catalogue(), implicit_platforms=("console",))
        app = CxApp(factory, clock=Clock(), run_later=lambda task: None)

        def asks_for_an_admin(text: str) -> bool:
            asked.clear()
            app.dispatch(Invocation("console", "console", "leila", "#cx", text))
            return bool(asked)

        found: list[AdminCommand] = []
        for listed in app.registry.listed():
            words = [w for w in usage_words(listed.usage) if asks_for_an_admin(f"{listed.name} {w}")]
            if asks_for_an_admin(listed.name):
                found.append(AdminCommand(listed.name, words[0] if words else "", True, listed.aliases))
            else:
                found += [AdminCommand(listed.name, w, False, listed.aliases) for w in words]
        app.close()
        engine.dispose()
    return tuple(found)


ADMIN_COMMANDS = admin_commands()
BY_KEY = [pytest.param(c, id=c.key) for c in ADMIN_COMMANDS]
# Every spelling (aliases too) for the first non-admin, the usual one for the others.
CASES = [
    pytest.param(typed, who, id=f"{typed}-{who}")
    for c in ADMIN_COMMANDS
    for who in NON_ADMINS
    for typed in (c.spellings() if who == NON_ADMINS[0] else [c.text])
]
SUBSCRIPTIONS = [typed for c in ADMIN_COMMANDS if c.name == "subscribe" for typed in c.spellings()]


def test_the_admin_commands_the_core_enforces_are_the_ones_it_declares() -> None:
    """Adapters that guard before the core (Discord) read the declaration; it must match what
    the handlers enforce, or a guard would let through, or stop, the wrong commands."""
    from bot.commands import default_registry

    declared = {
        command.name if command.admin else f"{command.name} {word}"
        for command in default_registry().listed()
        for word in (["*"] if command.admin else sorted(command.admin_words))
    }
    enforced = {c.key for c in ADMIN_COMMANDS}
    # A declared word may be one of several spellings ("record", "registrera"): any one enforces it.
    assert {key.split(" ")[0] for key in declared} == {key.split(" ")[0] for key in enforced}
    assert enforced <= declared, (enforced, declared)


def test_the_admin_commands_are_found_in_the_registry() -> None:
    keys = {c.key for c in ADMIN_COMMANDS}
    assert ADMIN_COMMANDS and keys >= KNOWN, keys
    assert {c.key: c.text for c in ADMIN_COMMANDS}["kpi record"] == "kpi record nps 10 loyalty"
    assert "kpi" not in keys and "journey" not in keys  # /cx kpi is for everyone, only recording is not


# --- what a refusal must be --------------------------------------------------------------------


def stored(loaded: sessionmaker[Session]) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Every table's row count, and every row."""
    with loaded() as session:
        rows = {t.name: sorted(repr(tuple(r)) for r in session.execute(select(t))) for t in Base.metadata.sorted_tables}
    return snapshot(loaded), rows


def person_facts(loaded: sessionmaker[Session], key: str, platform: str) -> tuple[str, str]:
    """A person's id on a platform, and the language the bot speaks with them."""
    with loaded() as session:
        person = session.scalar(select(Person).where(Person.key == key))
        assert person is not None and person.is_admin == (key == ADMIN)
        user_id = session.scalar(
            select(Identity.external_user_id).where(Identity.person_id == person.id, Identity.platform == platform)
        )
        assert user_id is not None
        return user_id, language_for(person, current_org(session), "sv")


def admins_only(language: str) -> str:
    return CATALOGUE.text(language, "common.admin_only")


def log_lines(caplog: pytest.LogCaptureFixture, *words: str, timeout: float = 5) -> list[str]:
    """The log lines holding all ``words``, waiting a little for those a worker thread writes."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r.getMessage() for r in caplog.records if all(w in r.getMessage() for w in words)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def check_refusal(
    loaded: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
    who: str,
    platform: str,
    typed: str,
    ask: Callable[[str], str],
) -> str:
    """``ask`` (given the person's id on ``platform``) types ``typed`` and returns what they were
    shown: it must say the command is for admins, in their language,
    leave a log line, and change no stored row."""
    user_id, language = person_facts(loaded, who, platform)
    before = stored(loaded)
    caplog.set_level(logging.INFO)
    shown = ask(user_id)
    assert admins_only(language) in shown, shown[:400]
    assert not any(apology in shown for apology in APOLOGY), shown[:400]
    sub = typed.split(" ")[0]
    # The line names the command and platform; not who (logs carry no chat ids: erasure).
    assert log_lines(caplog, "refused", f"/cx {sub}", platform), [r.getMessage() for r in caplog.records]
    after = stored(loaded)
    assert after[0] == before[0], "row counts changed"
    assert after[1] == before[1], "rows changed"
    return shown


def check_not_refused(
    loaded: sessionmaker[Session], platform: str, admin_command: AdminCommand, ask: Callable[[str], str]
) -> str:
    """The positive control: an admin typing the command is not refused, and where the command
    writes, the rows compared in the refusals do change."""
    user_id, _ = person_facts(loaded, ADMIN, platform)
    before = stored(loaded)
    shown = ask(user_id)
    assert shown.strip(), "an answer"
    assert not any(admins_only(language) in shown for language in ("sv", "en")), shown[:400]
    assert not any(apology in shown for apology in APOLOGY), shown[:400]
    if admin_command.key in WRITES:
        assert stored(loaded) != before, "the admin's command was carried out"
    return shown


def erased(loaded: sessionmaker[Session], key: str = "david") -> bool:
    with loaded() as session:
        return session.scalar(select(Person).where(Person.key == key)) is None


ERASE_LABELS = {CATALOGUE.text(language, "confirm.erase") for language in ("sv", "en")}
ERASE_DONE = {CATALOGUE.text(language, "observations.erased", name="David Andersson") for language in ("sv", "en")}


# --- the console and Slack: commands typed ----------------------------------------------------------

Ask = Callable[[str, str], str]  # (what is typed, by whom: their id on the platform) → what they see


class TypedCommands:
    """The checks for an adapter where people type the command: each adapter's class below
    says which platform it is and how to ``ask``."""

    platform: str

    @pytest.mark.parametrize(("typed", "who"), CASES)
    def test_a_non_admin_is_refused(
        self, ask: Ask, loaded: sessionmaker[Session], caplog: pytest.LogCaptureFixture, typed: str, who: str
    ) -> None:
        check_refusal(loaded, caplog, who, self.platform, typed, lambda user_id: ask(typed, user_id))

    @pytest.mark.parametrize("admin_command", BY_KEY)
    def test_an_admin_is_not_refused(
        self, ask: Ask, loaded: sessionmaker[Session], admin_command: AdminCommand
    ) -> None:
        check_not_refused(loaded, self.platform, admin_command, lambda user_id: ask(admin_command.text, user_id))


class TestConsole(TypedCommands):
    platform = "console"

    @pytest.fixture
    def ask(self, core: CxApp, loaded: sessionmaker[Session]) -> Ask:
        run_console(core, loaded, [])  # the journey-load notices are shown (sent) before the test
        return lambda typed, user_id: run_console(core, loaded, [f"/cx {typed}"], person=user_id)

    def test_an_admin_erases_by_pressing_the_preview_button(self, core: CxApp, loaded: sessionmaker[Session]) -> None:
        """`/cx erase` is a preview with numbered buttons: typing the Erase button's number erases."""
        import io

        from adapters.console import ConsoleAdapter

        run_console(core, loaded, [])
        user_id, _ = person_facts(loaded, ADMIN, self.platform)
        out = io.StringIO()
        console = ConsoleAdapter(core, loaded, user_id, out=out, echo=True)
        console.run(["/cx erase david"])
        assert not erased(loaded)
        number = next(n for n, b in console.buttons.items() if b.button.label in ERASE_LABELS)
        console.run([str(number)])
        assert erased(loaded), out.getvalue()
        assert any(done in out.getvalue() for done in ERASE_DONE)


class TestSlack(TypedCommands):
    platform = "slack"

    @pytest.fixture
    def stub(self, slack_stub: SlackStub) -> SlackStub:
        return slack_stub

    @pytest.fixture
    def ask(self, slack: SlackBot, stub: SlackStub) -> Ask:
        def answer(typed: str, user_id: str) -> str:
            response = command(slack, typed, user=user_id)
            assert response.status == 200 and response.body == ""  # acknowledged at once
            answers = stub.called("response_url")
            assert answers, "answered through the response URL"
            return answers[-1]["text"] + "\n" + texts_of(answers[-1]["blocks"])

        return answer

    def test_an_admin_erases_by_pressing_the_preview_button(
        self, slack: SlackBot, stub: SlackStub, loaded: sessionmaker[Session]
    ) -> None:
        """The preview comes through the response URL with Block Kit buttons; the Erase button's
        block_actions payload erases."""
        user_id, _ = person_facts(loaded, ADMIN, self.platform)
        command(slack, "erase david", user=user_id)
        preview = stub.called("response_url")[-1]
        buttons = [e for b in preview["blocks"] if b["type"] == "actions" for e in b["elements"]]
        erase = next(b for b in buttons if b["text"]["text"] in ERASE_LABELS)
        assert not erased(loaded)
        payload = {
            "type": "block_actions",
            "user": {"id": user_id},
            "channel": {"id": "C0NLCXCX007"},
            "trigger_id": "trig-erase",
            "actions": [{"action_id": erase["action_id"], "value": erase.get("value", ""), "type": "button"}],
        }
        assert slack_interaction(slack, payload, stub).status == 200
        assert erased(loaded)
        assert any(done in stub.called("response_url")[-1]["text"] for done in ERASE_DONE)

    @pytest.mark.parametrize("typed", SUBSCRIPTIONS)
    def test_a_refused_subscription_joins_no_channel(
        self, ask: Ask, stub: SlackStub, loaded: sessionmaker[Session], typed: str
    ) -> None:
        user_id, language = person_facts(loaded, NON_ADMINS[0], self.platform)
        assert admins_only(language) in ask(typed, user_id)
        assert not stub.called("conversations.join")  # the bot joins only channels an admin subscribed


# --- Discord ----------------------------------------------------------------------------------------


def discord_answer(bot: Running, stub: DiscordStub, typed: str, user_id: str, **standing: object) -> str:
    """``typed`` as the /cx sub-command and its text, by a member with ``standing`` (permissions,
    roles); what they are shown."""
    name, _, text = typed.partition(" ")
    bot.feed(slash(name, text or None, member=member(int(user_id), **standing)))  # type: ignore[arg-type]
    answer = callbacks(stub)[0]
    assert answer["data"]["flags"] & 64  # privately
    if answer["type"] == 5:
        # Deferred: the core took longer than the adapter's patience, which a busy machine can
        # make happen; the answer then follows through the interaction's webhook, as in Discord.
        follow_up = stub.wait_for(lambda c: c.method == "POST" and c.path.startswith(f"/webhooks/{APP}/"), timeout=60)
        data = follow_up[-1].json
        assert data["flags"] & 64
    else:
        assert answer["type"] == 4  # answered at once
        data = answer["data"]
    return (data.get("content") or "") + "\n" + embed_text(data)


class TestDiscord:
    @pytest.fixture
    def stub(self, discord_stub: DiscordStub) -> DiscordStub:
        return discord_stub

    @pytest.mark.parametrize("manage_server", [False, True], ids=["member", "manage-server"])
    @pytest.mark.parametrize("who", NON_ADMINS)
    @pytest.mark.parametrize("admin_command", BY_KEY)
    def test_a_non_admin_is_refused(
        self,
        running: Running,
        stub: DiscordStub,
        loaded: sessionmaker[Session],
        caplog: pytest.LogCaptureFixture,
        admin_command: AdminCommand,
        who: str,
        manage_server: bool,
    ) -> None:
        """A member is stopped by Discord's own guard, before the core (an admin command the
        guard's list lacks fails here). Manage Server gets past the guard, but does not make an
        admin: the core still asks the journey file."""
        typed = admin_command.text
        standing = {"permissions": MANAGE_GUILD} if manage_server else {}
        shown = check_refusal(
            loaded,
            caplog,
            who,
            "discord",
            typed,
            lambda user_id: discord_answer(running, stub, typed, user_id, **standing),
        )
        assert shown.startswith("🔒") != manage_server
        assert log_lines(caplog, "common.admin_only" if manage_server else "no Manage Server")

    def test_the_discord_guard_refuses_in_the_persons_language(
        self,
        running: Running,
        stub: DiscordStub,
        loaded: sessionmaker[Session],
    ) -> None:
        """Fatima reads English (the journey file says so); the org and the bot default to Swedish."""
        user_id, language = person_facts(loaded, "fatima", "discord")
        shown = discord_answer(running, stub, ADMIN_COMMANDS[0].text, user_id)
        assert admins_only(language) in shown, shown

    @pytest.mark.parametrize("admin_command", BY_KEY)
    def test_an_admin_with_the_admin_role_is_not_refused(
        self,
        running: Running,
        stub: DiscordStub,
        loaded: sessionmaker[Session],
        admin_command: AdminCommand,
    ) -> None:
        def ask(user_id: str) -> str:
            return discord_answer(running, stub, admin_command.text, user_id, roles=(ADMIN_ROLE,))

        assert not check_not_refused(loaded, "discord", admin_command, ask).startswith("🔒")

    def test_an_admin_erases_by_pressing_the_preview_button(
        self, running: Running, stub: DiscordStub, loaded: sessionmaker[Session]
    ) -> None:
        """The preview's buttons are components whose ids carry the core's action; pressing
        Erase (a component interaction) erases."""
        user_id, _ = person_facts(loaded, ADMIN, "discord")
        running.feed(slash("erase", "david", member=member(int(user_id), roles=(ADMIN_ROLE,))))
        preview = callbacks(stub)[0]["data"]
        buttons = [c for row in preview["components"] for c in row["components"]]
        erase = next(b for b in buttons if b["label"] in ERASE_LABELS)
        assert not erased(loaded)
        shown = message(800000000000000009, components=preview["components"])
        running.feed(
            interaction(3, {"custom_id": erase["custom_id"], "component_type": 2}, user=int(user_id), message=shown)
        )
        answer = callbacks(stub, 2)[-1]
        assert answer["data"]["flags"] & 64  # privately
        assert erased(loaded)
        said = (answer["data"].get("content") or "") + embed_text(answer["data"])
        shown_text = re.sub(r"\\(.)", r"\1", said)  # as Discord shows it: escapes removed
        assert any(done in shown_text for done in ERASE_DONE), shown_text
