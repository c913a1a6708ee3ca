"""Nothing a person types is interpreted by Discord when the bot shows it: every Message the core
produces that carries user text (replies, routed issues, DMs, resolution notices, observations,
captures, the digest's quotes) goes through adapters/discord/render.py with hostile text, and
the embed that discord.py would send holds no markdown, masked link or mention left unescaped."""

from __future__ import annotations

import re

import discord
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adapters.discord.render import URL, escape, send_kwargs
from bot.app import CxApp
from bot.messages import CaptureRequest, Invocation, Message, Reply
from bot.store.models import Outbox
from tests.conftest import NOW, Clock

GUILD, CHANNEL = "900000000000000001", "900000000000000002"
LEILA, FATIMA, ELIN = "1190000000000000005", "1190000000000000007", "1190000000000000009"
MARK = "klicka här"  # how each rendering is found again
HOSTILE = (
    f"# Rubrik [{MARK}](https://evil.example/login) **VIKTIGT** __u__ ~~s~~ `kod` *lutande* "
    "<@123456789012345678> <@&123456789012345679> <#900000000000000002> <t:0:R> <:e:123456789012345670> "
    "@everyone @here https://ok.example/[ja](https://evil.example/2) > citat"
)
# Discord syntax that is live unless preceded by an odd number of backslashes.
LIVE = re.compile(r"(?<!\\)(?:\\\\)*(\[|<|\*|~~|__|`|@everyone|@here|^#|^>)", re.MULTILINE)


def live_syntax(text: str) -> list[str]:
    without_urls = URL.sub("", text)  # a URL's own _ and ~ are not markup
    return [m.group(1) for m in LIVE.finditer(without_urls)]


def rendered_texts(message: Message) -> list[str]:
    """What Discord renders as markdown: an embed's title, description and fields."""
    embed: discord.Embed | None = send_kwargs(message).get("embed")
    if embed is None:
        return []
    data = embed.to_dict()
    texts = [data.get("title") or "", data.get("description") or ""]
    texts += [part for f in data.get("fields", []) for part in (f["name"], f["value"])]
    return texts


def test_escape_leaves_nothing_live() -> None:
    assert live_syntax(HOSTILE), "the check finds what it must"
    assert live_syntax(escape(HOSTILE)) == []
    assert "https://ok.example/" in escape(HOSTILE)  # a bare URL stays a visible link


def test_every_rendering_of_user_text_on_discord_is_inert(loaded: sessionmaker[Session], clock: Clock) -> None:
    core = CxApp(loaded, clock=clock, default_language="sv", run_later=lambda task: task())
    replies: list[tuple[str, Reply]] = []

    def say(user: str, text: str) -> Reply:
        reply = core.dispatch(Invocation("discord", GUILD, user, CHANNEL, text))
        replies.append((text[:30], reply))
        return reply

    week = f"{NOW.isocalendar().year}-W{NOW.isocalendar().week:02d}"
    say(LEILA, f"report faktura: {HOSTILE}")  # routed to the billing team and owner, DMs
    say(LEILA, f"report # Rubrik [{MARK}](<#9>) **b** `k`: något hände")  # an unknown touchpoint, echoed
    say(LEILA, f"observe {HOSTILE}")
    say(LEILA, f"journey {HOSTILE}")  # an unknown stage, echoed
    say(LEILA, HOSTILE.replace("# ", "", 1))  # an unknown command, echoed
    say(FATIMA, "issue 1 ack")
    say(FATIMA, f"issue 1 resolve process: {HOSTILE}")  # the resolution notice
    say(LEILA, "issue 1")
    say(LEILA, "issues mine")
    say(LEILA, "observations")
    say(LEILA, "observation 1")
    say(ELIN, f"digest preview {week}")  # quotes observations
    capture = CaptureRequest("discord", GUILD, FATIMA, CHANNEL, f"{CHANNEL}:1", HOSTILE, LEILA, None)
    replies.append(("capture", core.capture(capture)))
    with loaded() as session:
        posts = [(row.topic or "post", Message.model_validate(row.payload)) for row in session.scalars(select(Outbox))]

    everything: list[tuple[str, Message]] = [(what, reply.message) for what, reply in replies] + posts
    carrying: dict[str, int] = {}
    for what, message in everything:
        for text in rendered_texts(message):
            assert live_syntax(text) == [], f"{what}: {text!r}"
            if MARK in text:
                carrying[what] = carrying.get(what, 0) + 1
    # The walk reached every kind of rendering that echoes user text.
    # The walk reached every kind of rendering that echoes user text: the choice of touchpoint,
    # an unknown stage, the detail (description and action taken), observations, the
    # digest's quotes, the routed issue and its updates, and the DMs and notices (topic-less posts).
    for expected in ("report # Rubrik", "journey", "issue 1", "observations", "observation 1", "digest", "post"):
        assert any(what.startswith(expected) for what in carrying), (expected, sorted(carrying))
    assert carrying.get("issue:1:routed", 0) >= 2, sorted(carrying)
