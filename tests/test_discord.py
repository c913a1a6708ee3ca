"""The Discord adapter, offline: a real discord.py client and command tree, real Interaction
objects built from raw payloads and fed through discord.py's own gateway parser, and
discord.py's HTTP client pointed (``Route.BASE``) at a loopback Discord API stub."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import discord
import pytest
from discord.http import Route
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from adapters.discord.bot import CAPTURE_MENU, CxDiscord, command_help
from adapters.discord.render import CHART_FILENAME, message_embed
from adapters.discord.sender import DiscordSender, post_nonce
from bot.app import CxApp
from bot.messages import Button, Click, Image, Invocation, Message, MessageField
from bot.outbox import DeliveryError, Post, Target
from bot.store.models import Attachment, Identity, Issue, Observation, Outbox, Person
from tests.conftest import NOW, Clock
from tests.discord_stub import DiscordStub, snowflake
from tests.test_issues import count, issue

GUILD = 900000000000000001
CHANNEL = 900000000000000002
ADMIN_ROLE = 900000000000000009
APP = 1100000000000000001
LEILA, FATIMA, ELIN = 1190000000000000005, 1190000000000000007, 1190000000000000009
BILLING = 1180000000000000004
MANAGE_GUILD = discord.Permissions(manage_guild=True, send_messages=True).value
MEMBER = discord.Permissions(send_messages=True).value


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[DiscordStub]:
    server = DiscordStub(app_id=APP).start()
    monkeypatch.setattr(Route, "BASE", server.api_base)  # a class attribute: every route uses it
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield server
    server.stop()


@pytest.fixture
def core(loaded: sessionmaker[Session], clock: Clock) -> CxApp:
    return CxApp(loaded, clock=clock, default_language="sv", run_later=lambda task: task(), capture_emoji={"👂"})


class Running:
    """The client logged in (no gateway) on an event loop in a thread of its own, as in
    production; tests talk to it from the test thread."""

    def __init__(self, client: CxDiscord) -> None:
        self.client = client
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.run(client.login("test-token"))

    def run(self, coroutine: Any, timeout: float = 15) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def feed(self, raw: dict[str, Any]) -> None:
        """An interaction arriving from the gateway: discord.py's own parser takes it from here."""
        self.loop.call_soon_threadsafe(self.client._connection.parse_interaction_create, raw)

    def event(self, name: str, raw: dict[str, Any]) -> None:
        self.loop.call_soon_threadsafe(self.client._connection.parsers[name], raw)

    def close(self) -> None:
        async def settle() -> None:  # let the handlers still running finish, as a clean shutdown would
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if pending:
                await asyncio.wait(pending, timeout=5)

        self.run(settle())
        self.run(self.client.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def running(core: CxApp, stub: DiscordStub) -> Iterator[Running]:
    client = CxDiscord(
        core,
        guild_ids=[GUILD],
        admin_role_ids=[ADMIN_ROLE],
        capture_emoji={"👂"},
        command_help=command_help(core, "en"),
    )
    bot = Running(client)
    yield bot
    bot.close()


def member(user_id: int, permissions: int = MEMBER, roles: tuple[int, ...] = ()) -> dict[str, Any]:
    return {
        "user": {
            "id": str(user_id),
            "username": f"u{user_id}",
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
        },
        "roles": [str(r) for r in roles],
        "permissions": str(permissions),
        "joined_at": "2024-01-01T00:00:00+00:00",
        "flags": 0,
        "nick": None,
        "deaf": False,
        "mute": False,
        "pending": False,
    }


def interaction(kind: int, data: dict[str, Any], user: int = LEILA, **extra: Any) -> dict[str, Any]:
    number = snowflake()
    payload = {
        "id": str(number),
        "application_id": str(APP),
        "type": kind,
        "token": f"tok-{number}",
        "version": 1,
        "guild_id": str(GUILD),
        "channel_id": str(CHANNEL),
        "channel": {"id": str(CHANNEL), "type": 0, "guild_id": str(GUILD), "name": "cx", "position": 0},
        "guild": {"id": str(GUILD), "locale": "sv-SE", "features": []},
        "member": member(user),
        "app_permissions": str(discord.Permissions.all().value),
        "locale": "sv-SE",
        "guild_locale": "sv-SE",
        "entitlements": [],
        "authorizing_integration_owners": {"0": str(GUILD)},
        "context": 0,
        "attachment_size_limit": 10 * 1024 * 1024,
        "data": data,
    }
    payload.update(extra)
    return payload


def slash(sub: str, text: str | None = None, *, focused: bool = False, **extra: Any) -> dict[str, Any]:
    options = (
        [] if text is None else [{"type": 3, "name": "text", "value": text, **({"focused": True} if focused else {})}]
    )
    data = {
        "id": "123456789012345678",
        "name": "cx",
        "type": 1,
        "guild_id": str(GUILD),
        "options": [{"type": 1, "name": sub, "options": options}],
    }
    return interaction(4 if focused else 2, data, **extra)


def message(
    message_id: int, content: str = "", components: list[Any] | None = None, author: int = APP
) -> dict[str, Any]:
    return {
        "id": str(message_id),
        "channel_id": str(CHANNEL),
        "type": 0,
        "content": content,
        "author": {"id": str(author), "username": "x", "discriminator": "0", "avatar": None, "bot": author == APP},
        "timestamp": "2026-11-24T09:00:00+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "components": components or [],
        "pinned": False,
        "flags": 0,
    }


def callbacks(stub: DiscordStub, count_: int = 1) -> list[Any]:
    calls = stub.wait_for(lambda c: c.method == "POST" and c.path.endswith("/callback"), count=count_, timeout=15)
    return [c.json for c in calls]


def embed_text(data: dict[str, Any]) -> str:
    parts = []
    for embed in data.get("embeds", []):
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']} {f['value']}" for f in embed.get("fields", [])]
        parts.append((embed.get("footer") or {}).get("text", ""))
    return "\n".join(parts)


# --- the command tree ---------------------------------------------------------------------


def test_commands_are_synced_to_the_configured_guild(running: Running, stub: DiscordStub) -> None:
    synced = stub.find("PUT", rf"/applications/{APP}/guilds/{GUILD}/commands")
    assert synced, "synced at login"
    names = {c["name"] for c in synced[-1].json}
    assert names == {"cx", CAPTURE_MENU}
    group = next(c for c in synced[-1].json if c["name"] == "cx")
    subcommands = {o["name"] for o in group["options"]}
    assert {"report", "observe", "kpi", "digest", "issue", "tip", "journey"} <= subcommands


def test_a_command_answers_privately_and_pings_nobody(running: Running, stub: DiscordStub) -> None:
    running.feed(slash("whoami"))
    answer = callbacks(stub)[0]
    assert answer["type"] == 4 and answer["data"]["flags"] & 64  # a channel message, ephemeral
    assert answer["data"]["allowed_mentions"] == {"parse": []}
    assert "Leila" in embed_text(answer["data"])


def test_a_report_on_discord_reaches_an_owner_who_is_only_on_slack(
    running: Running, stub: DiscordStub, loaded: sessionmaker[Session]
) -> None:
    with loaded.begin() as session:  # Fatima, billing's owner, has only a Slack identity now
        fatima = session.scalar(select(Person).where(Person.key == "fatima"))
        assert fatima is not None
        session.execute(delete(Identity).where(Identity.person_id == fatima.id, Identity.platform == "discord"))
    running.feed(slash("report", "faktura: Dubbla fakturor till @everyone i Umeå"))
    answer = callbacks(stub)[0]
    assert "#1" in embed_text(answer["data"])
    with loaded() as session:
        stored = session.get(Issue, 1)
        assert stored is not None and stored.source_platform == "discord"
        routed = {
            (r.platform, r.target_ref) for r in session.scalars(select(Outbox).where(Outbox.topic == "issue:1:routed"))
        }
    assert ("slack", "U0NLFATI07") in routed  # through the outbox, on the platform she is on
    assert ("discord", str(FATIMA)) not in routed
    assert ("discord", str(BILLING)) in routed  # and the billing team's Discord channel


def test_report_without_text_opens_a_modal_and_its_submission_reports(
    running: Running, stub: DiscordStub, loaded: sessionmaker[Session]
) -> None:
    running.feed(slash("report"))
    modal = callbacks(stub)[0]
    assert modal["type"] == 9 and modal["data"]["custom_id"] == "cxform:report"
    time.sleep(0.3)  # discord.py stores the modal once its callback call has returned
    submit = interaction(
        5,
        {
            "custom_id": "cxform:report",
            "components": [
                {"type": 1, "components": [{"type": 4, "custom_id": "touchpoint", "value": "appen"}]},
                {"type": 1, "components": [{"type": 4, "custom_id": "description", "value": "Appen visar fel saldo"}]},
                {"type": 18, "id": 3, "component": {"type": 3, "custom_id": "severity", "values": ["high"]}},
                {"type": 1, "components": [{"type": 4, "custom_id": "impact", "value": ""}]},
                {"type": 18, "id": 5, "component": {"type": 3, "custom_id": "anonymous", "values": ["true"]}},
            ],
        },
    )
    running.feed(submit)
    answer = callbacks(stub, 2)[-1]
    assert answer["type"] == 4 and "#1" in embed_text(answer["data"])
    with loaded() as session:
        stored = session.get(Issue, 1)
        assert stored is not None
        assert (stored.touchpoint.key, stored.severity, stored.anonymous) == ("mobile-app", "high", True)


def test_buttons_work_on_messages_sent_before_a_restart(
    running: Running, stub: DiscordStub, loaded: sessionmaker[Session], core: CxApp
) -> None:
    running.feed(slash("report", "faktura: Dubbla fakturor"))
    callbacks(stub)
    old = message(
        800000000000000001,
        components=[
            {"type": 1, "components": [{"type": 2, "style": 1, "label": "Kvittera", "custom_id": "cx:issue:1:ack"}]}
        ],
    )
    running.feed(interaction(3, {"custom_id": "cx:issue:1:ack", "component_type": 2}, user=FATIMA, message=old))
    answer = callbacks(stub, 2)[-1]
    assert answer["data"]["flags"] & 64
    assert issue(loaded).status == "acknowledged"


def test_resolve_opens_a_modal_for_cause_and_action(
    running: Running, stub: DiscordStub, loaded: sessionmaker[Session]
) -> None:
    running.feed(slash("report", "faktura: Dubbla fakturor"))
    callbacks(stub)
    old = message(
        800000000000000002,
        components=[
            {"type": 1, "components": [{"type": 2, "style": 2, "label": "Lös", "custom_id": "cx:issue:1:resolve"}]}
        ],
    )
    running.feed(interaction(3, {"custom_id": "cx:issue:1:resolve", "component_type": 2}, user=FATIMA, message=old))
    modal = callbacks(stub, 2)[-1]
    assert modal["type"] == 9 and modal["data"]["custom_id"] == "cxform:resolve:1"
    time.sleep(0.3)
    running.feed(
        interaction(
            5,
            {
                "custom_id": "cxform:resolve:1",
                "components": [
                    {"type": 18, "id": 1, "component": {"type": 3, "custom_id": "cause", "values": ["system"]}},
                    {"type": 1, "components": [{"type": 4, "custom_id": "action", "value": "Dubbletten stoppad"}]},
                ],
            },
            user=FATIMA,
        )
    )
    callbacks(stub, 3)
    resolved = issue(loaded)
    assert (resolved.status, resolved.root_cause, resolved.action_taken) == ("resolved", "system", "Dubbletten stoppad")


def test_admin_sub_commands_need_manage_server_or_the_admin_role(
    running: Running, stub: DiscordStub, loaded: sessionmaker[Session]
) -> None:
    from bot.store.models import Subscription

    running.feed(slash("subscribe", "digest", member=member(ELIN)))  # an admin in the file, not on Discord
    refused = callbacks(stub)[0]
    assert refused["data"]["content"].startswith("🔒")
    assert count(loaded, Subscription) == 0
    running.feed(slash("subscribe", "digest", member=member(ELIN, roles=(ADMIN_ROLE,))))
    callbacks(stub, 2)
    assert count(loaded, Subscription) == 1
    running.feed(slash("unsubscribe", "digest", member=member(ELIN, permissions=MANAGE_GUILD)))
    callbacks(stub, 3)
    assert count(loaded, Subscription) == 0


def test_autocomplete_offers_stages(running: Running, stub: DiscordStub) -> None:
    running.feed(slash("journey", "lo", focused=True))
    answer = callbacks(stub)[0]
    assert answer["type"] == 8
    assert {"name": "Förnyelse och lojalitet", "value": "loyalty"} in answer["data"]["choices"]


STRANGER = 1190000000000000099  # a guild member who is not in the journey file


def suggested(running: Running, stub: DiscordStub, sub: str, typed: str, user: int = LEILA) -> list[str]:
    """The values Discord's autocomplete offers ``user`` for ``/cx <sub> <typed>``."""
    before = len(stub.find("POST", r".*/callback"))
    running.feed(slash(sub, typed, focused=True, member=member(user, MANAGE_GUILD)))
    answer = callbacks(stub, before + 1)[-1]
    assert answer["type"] == 8
    return [choice["value"] for choice in answer["data"]["choices"]]


def test_autocomplete_offers_touchpoints_by_the_aliases_the_command_accepts(
    running: Running, stub: DiscordStub
) -> None:
    assert suggested(running, stub, "report", "kassan")[0] == "order-form: "  # an alias, as /cx report kassan: …
    assert suggested(running, stub, "report", "kassan: kön stod still")[0] == "order-form: kön stod still"
    assert suggested(running, stub, "report", "high anonym kassan")[0] == "high anonym order-form: "
    assert suggested(running, stub, "report", "kassan: " + "x" * 120) == []  # a choice would cut the text
    assert suggested(running, stub, "report", "beställningsformular")[0].startswith("order-form")  # a near spelling
    assert suggested(running, stub, "journey", "onbording")[0] == "onboarding"  # as /cx journey onbording finds it


def test_autocomplete_tells_nothing_to_people_the_core_does_not_know(
    running: Running, stub: DiscordStub, core: CxApp
) -> None:
    core.dispatch(
        Invocation("discord", str(GUILD), str(LEILA), str(CHANNEL), "report faktura: Kunden Nilsson fick fel")
    )
    core.dispatch(Invocation("discord", str(GUILD), str(LEILA), str(CHANNEL), "observe Kunden Berg var arg"))
    everything = {
        "issue": "",
        "observation": "",
        "erase": "",
        "journey": "",
        "kpi": "",
        "report": "",
        "subscribe": "",
        "issues": "",
        "tip": "",
    }
    for sub, typed in everything.items():
        assert suggested(running, stub, sub, typed, user=STRANGER) == [], sub
    # Someone known gets what the commands show them: issues and observations, not the people
    # under erase (an admin command)...
    assert suggested(running, stub, "issue", "nilsson") == ["1"]
    assert suggested(running, stub, "observation", "berg") != []
    assert suggested(running, stub, "erase", "") == []
    assert suggested(running, stub, "subscribe", "") == []
    # ...and an admin gets the people.
    assert "leila" in suggested(running, stub, "erase", "lei", user=ELIN)


def test_people_the_core_does_not_know_see_neither_the_journey_nor_the_kpis(core: CxApp) -> None:
    for text in ("journey", "journey köp", "kpi", "kpi köp"):
        reply = core.dispatch(Invocation("discord", str(GUILD), str(STRANGER), str(CHANNEL), text))
        assert reply.refused, text
        assert str(STRANGER) in reply.message.plain_text()  # "I don't know who you are … (your id is …)"
    stage_button = Click("discord", str(GUILD), str(STRANGER), str(CHANNEL), "journey:stage:purchase")
    assert core.click(stage_button).refused


# --- observations ----------------------------------------------------------------------------


def test_the_context_menu_saves_a_message_as_an_observation(
    running: Running, stub: DiscordStub, loaded: sessionmaker[Session]
) -> None:
    target = 800000000000000003
    data = {
        "id": "223456789012345678",
        "name": CAPTURE_MENU,
        "type": 3,
        "guild_id": str(GUILD),
        "target_id": str(target),
        "resolved": {"messages": {str(target): message(target, "Kunden väntade 40 minuter", author=LEILA)}},
    }
    running.feed(interaction(2, data))
    callbacks(stub)
    with loaded() as session:
        saved = session.scalars(select(Observation)).one()
    assert saved.text == "Kunden väntade 40 minuter"
    assert saved.source_link == f"https://discord.com/channels/{GUILD}/{CHANNEL}/{target}"


def test_an_ear_reaction_saves_the_message(running: Running, stub: DiscordStub, loaded: sessionmaker[Session]) -> None:
    target = 800000000000000004
    with stub._lock:
        stub.messages[target] = message(target, "Fakturan kom två gånger", author=LEILA)
    raw = {
        "user_id": str(FATIMA),
        "channel_id": str(CHANNEL),
        "message_id": str(target),
        "guild_id": str(GUILD),
        "emoji": {"id": None, "name": "👂"},
        "type": 0,
        "burst": False,
    }
    running.event("MESSAGE_REACTION_ADD", raw)
    stub.wait_for(lambda c: c.method == "GET" and c.path.endswith(f"/messages/{target}"))
    deadline = time.time() + 10
    while time.time() < deadline and count(loaded, Observation) == 0:
        time.sleep(0.05)
    with loaded() as session:
        saved = session.scalars(select(Observation)).one()
    assert saved.text == "Fakturan kom två gånger"
    # The guild message's own link (a link under @me would open nothing for a guild message).
    assert saved.source_link == f"https://discord.com/channels/{GUILD}/{CHANNEL}/{target}"


# --- the outbox sender ------------------------------------------------------------------------


def test_the_sender_posts_with_the_chart_edits_and_writes_dms(
    running: Running, stub: DiscordStub, loaded: sessionmaker[Session]
) -> None:
    with loaded.begin() as session:
        session.add(
            Attachment(key="chart:1", filename="c.png", content_type="image/png", data=b"\x89PNG.", created_at=NOW)
        )
    sender = DiscordSender(running.client, loaded)
    digest = Message(header="CX den här veckan", text="@everyone hej", image=Image(alt="Trend", attachment="chart:1"))
    ref = sender.send(Post(1, Target("discord", "channel", str(BILLING)), digest, "k1", 0))
    assert ref is not None and ref.startswith(f"{BILLING}:")
    sent = stub.find("POST", rf"/channels/{BILLING}/messages")[-1]
    assert sent.is_multipart and sent.files[0]["filename"] == CHART_FILENAME and sent.files[0]["data"] == b"\x89PNG."
    assert sent.json["allowed_mentions"] == {"parse": []}
    assert sent.json["embeds"][0]["image"]["url"] == f"attachment://{CHART_FILENAME}"
    edited = Message(text="Uppdaterad", buttons=[Button(action_id="issue:1:details", label="Detaljer")])
    assert sender.send(Post(2, Target("discord", "channel", str(BILLING)), edited, "k2", 0, ref)) == ref
    patch = stub.find("PATCH", rf"/channels/{BILLING}/messages/{ref.split(':')[1]}")[-1]
    assert patch.json["components"][0]["components"][0]["custom_id"] == "cx:issue:1:details"
    dm = sender.send(Post(3, Target("discord", "user", str(LEILA)), Message(text="Till dig"), "k3", 0))
    assert dm is not None and stub.find("POST", r"/users/@me/channels")


def test_a_resent_post_gets_the_message_made_before_not_a_second_one(
    running: Running, stub: DiscordStub, loaded: sessionmaker[Session]
) -> None:
    """A retry after a timeout or a killed sender sends the same nonce (from the outbox key), and
    Discord, enforcing it, answers with the message it already made (the stub does the same)."""
    sender = DiscordSender(running.client, loaded)
    post = Post(7, Target("discord", "channel", str(BILLING)), Message(text="En gång"), "digest:2026-W47:x", 2)
    first, again = sender.send(post), sender.send(post)
    assert first is not None and first == again
    sends = stub.find("POST", rf"/channels/{BILLING}/messages")
    assert len(sends) == 2 and {s.json["nonce"] for s in sends} == {post_nonce(post)}
    assert all(s.json["enforce_nonce"] is True for s in sends) and len(post_nonce(post)) <= 25
    other = sender.send(Post(8, Target("discord", "channel", str(BILLING)), Message(text="En gång"), "other", 1))
    assert other != first  # another outbox row is another message, even with the same words


@pytest.mark.parametrize(
    ("status", "body", "retryable"),
    [
        (403, {"message": "Missing Access", "code": 50001}, False),
        (404, {"message": "Unknown Channel", "code": 10003}, False),
        (429, {"message": "You are being rate limited.", "retry_after": 0.01, "global": False}, True),
        (400, {"message": "Invalid Form Body", "code": 50035}, False),
    ],
)
def test_the_sender_sorts_discord_errors(
    running: Running,
    stub: DiscordStub,
    loaded: sessionmaker[Session],
    status: int,
    body: dict[str, Any],
    retryable: bool,
) -> None:
    stub.queue("POST", rf"/channels/{BILLING}/messages", status, body)
    sender = DiscordSender(running.client, loaded)
    with pytest.raises(DeliveryError) as raised:
        sender.send(Post(1, Target("discord", "channel", str(BILLING)), Message(text="Hej"), "k", 0))
    assert raised.value.retryable is retryable
    assert sender.send(Post(1, Target("discord", "channel", str(BILLING)), Message(text="Hej"), "k", 0))
    with pytest.raises(DeliveryError) as not_an_id:
        sender.send(Post(2, Target("discord", "channel", "#billing"), Message(text="Hej"), "k", 0))
    assert not_an_id.value.retryable is False


def test_embeds_keep_discords_limits() -> None:
    big = Message(
        header="H" * 300,
        text="x" * 5000,
        fields=[MessageField(label=f"f{i}", value="v" * 2000) for i in range(30)],
        context=["c" * 3000],
    )
    embed = message_embed(big)
    assert embed is not None
    assert len(embed.title or "") <= 256 and len(embed.description or "") <= 4096
    assert len(embed.fields) <= 25 and all(len(f.value or "") <= 1024 for f in embed.fields)
    assert len(embed) <= 6000


def test_the_readme_invite_link_grants_what_the_bot_uses() -> None:
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    wanted = discord.Permissions(
        view_channel=True,
        send_messages=True,
        send_messages_in_threads=True,
        embed_links=True,
        attach_files=True,
        read_message_history=True,
        add_reactions=True,
    )
    assert f"permissions={wanted.value}" in readme


def test_reactions_and_replies_on_a_tip_post_count_as_engagement(
    running: Running, stub: DiscordStub, loaded: sessionmaker[Session], clock: Clock
) -> None:
    from bot.outbox import drain
    from bot.scheduler import run_weekly_tips
    from bot.services.journey import current_org
    from bot.services.tips import subscribe
    from bot.store.models import TipEngagement

    tips_channel = 1180000000000000099
    with loaded.begin() as session:
        org = current_org(session)
        assert org is not None
        subscribe(session, org, "discord", str(tips_channel), ("tips",), 1, NOW)
    assert run_weekly_tips(loaded, clock) == 1
    drain(loaded, "discord", DiscordSender(running.client, loaded), clock)
    with loaded() as session:
        ref = session.scalar(select(Outbox.platform_ref).where(Outbox.topic.like("tip:%")))
    assert ref is not None and ref.startswith(f"{tips_channel}:")
    message_id = int(ref.split(":")[1])
    running.event(
        "MESSAGE_REACTION_ADD",
        {
            "user_id": str(LEILA),
            "channel_id": str(tips_channel),
            "message_id": str(message_id),
            "guild_id": str(GUILD),
            "emoji": {"id": None, "name": "👍"},
            "type": 0,
            "burst": False,
        },
    )
    answer = message(snowflake(), "Bra fråga, vi testar!", author=FATIMA)
    answer.update(
        channel_id=str(tips_channel),
        guild_id=str(GUILD),
        message_reference={"message_id": str(message_id), "channel_id": str(tips_channel), "guild_id": str(GUILD)},
    )
    running.event("MESSAGE_CREATE", answer)
    deadline = time.time() + 10
    while time.time() < deadline and count(loaded, TipEngagement) < 2:
        time.sleep(0.05)
    with loaded() as session:
        kinds = sorted(e.kind for e in session.scalars(select(TipEngagement)))
    assert kinds == ["reaction", "reply"]


def test_a_slow_answer_is_deferred_then_followed_up(core: CxApp, stub: DiscordStub) -> None:
    """Discord allows 3 s for the first answer: when the core takes longer than the adapter's
    patience (here: none at all), the interaction is deferred and the answer follows."""
    client = CxDiscord(core, guild_ids=[GUILD], command_help=command_help(core, "en"), defer_after=0.0)
    bot = Running(client)
    try:
        bot.feed(slash("whoami"))
        deferred = callbacks(stub)[0]
        assert deferred["type"] == 5 and deferred["data"]["flags"] & 64  # "thinking…", privately
        follow_up = stub.wait_for(lambda c: c.method == "POST" and c.path.startswith(f"/webhooks/{APP}/"), timeout=15)
        assert "Leila" in embed_text(follow_up[-1].json)
        assert follow_up[-1].json["allowed_mentions"] == {"parse": []}
    finally:
        bot.close()
