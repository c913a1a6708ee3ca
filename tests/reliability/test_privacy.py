"""Security: an anonymous reporter or observer never appears anywhere — replies, posts, the
digest and its JSON, the issue's timeline, or a log line — and secrets never reach the logs."""

from __future__ import annotations

import json
import logging
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.app import CxApp
from bot.content import default_content
from bot.messages import Invocation, Reply
from bot.services.digest import build_digest, digest_message
from bot.services.journey import current_org
from bot.store.models import Outbox
from tests.conftest import NOW, Clock

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
    env = {**cli_env(bare_engine, tmp_path), **secrets, "CXBOT_LOG_LEVEL": "DEBUG"}
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
    for value in secrets.values():
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
