"""Slack over Socket Mode, with the real slack_bolt and slack_sdk against loopback stand-ins of
Slack's Web API (tests/slack_stub.py) and Socket Mode server (tests/socket_mode_stub.py)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from adapters.slack.bot import SlackBot, make_client
from adapters.slack.socket_mode import SocketModeRefused, connect_socket_mode
from bot.app import CxApp
from tests.conftest import Clock
from tests.slack_stub import SlackStub
from tests.socket_mode_stub import SocketModeStub, disconnect, slash_command
from tests.test_console import CXBOT, cli_env, start_cxbot

# Slack's limit is 3 s; slack_sdk's built-in client took 2.9 s here after a refresh, the chosen
# one about 10 ms (benchmarks/socket_mode_reconnect.py). Generous for a busy machine, yet far
# below what the built-in client needs.
ACK_AFTER_REFRESH = 1.5


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def web(no_proxy: None) -> Iterator[SlackStub]:
    stub = SlackStub()
    yield stub
    stub.close()


@pytest.fixture
def server(web: SlackStub) -> Iterator[SocketModeStub]:
    stub = SocketModeStub()
    web.socket_mode_url = stub.url
    yield stub
    stub.close()


@pytest.fixture
def bot(loaded: sessionmaker[Session], clock: Clock, web: SlackStub) -> Iterator[SlackBot]:
    core = CxApp(loaded, clock=clock, default_language="sv", run_later=lambda task: task())
    made = SlackBot(core, make_client("xoxb-test", web.api_url))
    yield made
    made.close()


@pytest.mark.parametrize("reason", ["refresh_requested", "warning"])
def test_an_envelope_on_the_new_socket_is_acknowledged_at_once_after_slack_asks_to_reconnect(
    bot: SlackBot, web: SlackStub, server: SocketModeStub, reason: str
) -> None:
    handler = connect_socket_mode(bot.app, "xapp-1-test")
    try:
        first = server.wait_for_connection(1)
        envelope, _ = server.envelope(first, "slash_commands", slash_command("whoami"))
        assert server.wait_for_ack(envelope)[0] is first
        server.send(first, disconnect(reason))  # Slack keeps the old socket open a while
        second = server.wait_for_connection(2)
        envelope, sent = server.envelope(second, "slash_commands", slash_command("whoami"))
        acked_on, acked_at = server.wait_for_ack(envelope)
        assert acked_on is second
        assert acked_at - sent < ACK_AFTER_REFRESH, f"acknowledged after {acked_at - sent:.2f} s"
        deadline = time.monotonic() + 30  # and the command was answered, as before the refresh
        while time.monotonic() < deadline and len(web.called("chat.postEphemeral")) < 2:
            time.sleep(0.05)
        assert len(web.called("chat.postEphemeral")) == 2
        assert len(web.called("apps.connections.open")) >= 2  # a new URL for the new socket
    finally:
        handler.close()


def test_a_refused_app_token_is_one_clear_error(bot: SlackBot, web: SlackStub) -> None:
    web.fail_next("apps.connections.open", 200, error="invalid_auth")
    with pytest.raises(SocketModeRefused, match=r"^Slack refused the app-level token .*: invalid_auth$"):
        connect_socket_mode(bot.app, "xapp-1-revoked")


def test_cxbot_run_with_a_refused_app_token_says_so_in_one_line(
    bare_engine: Any, tmp_path: Any, web: SlackStub
) -> None:
    """The real `cxbot run --adapter slack` (Socket Mode): Slack answers apps.connections.open
    with invalid_auth; the operator gets one line and a non-zero exit, not a traceback."""
    env = {
        **cli_env(bare_engine, tmp_path),
        "SLACK_BOT_TOKEN": "xoxb-e2e",
        "SLACK_APP_TOKEN": "xapp-1-revoked",
        "SLACK_API_BASE_URL": web.api_url,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    web.fail_next("apps.connections.open", 200, error="invalid_auth")
    finished = subprocess.run(
        [CXBOT, "run", "--adapter", "slack", "--demo", "--no-clock"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert finished.returncode != 0
    assert "Traceback" not in finished.stderr, finished.stderr
    errors = [line for line in finished.stderr.splitlines() if "invalid_auth" in line]
    assert errors == ["cxbot: Slack: Slack refused the app-level token (SLACK_APP_TOKEN): invalid_auth"], (
        finished.stderr
    )
    assert web.called("apps.connections.open")


def test_cxbot_run_over_socket_mode_answers_across_a_refresh_and_stops_cleanly(
    bare_engine: Any, tmp_path: Any, web: SlackStub, server: SocketModeStub
) -> None:
    """The real `cxbot run --adapter slack` in Socket Mode: a /cx command before and after Slack
    asks for a reconnect is acknowledged on its socket and answered; SIGTERM ends it with 0."""
    env = {
        **cli_env(bare_engine, tmp_path),
        "SLACK_BOT_TOKEN": "xoxb-e2e",
        "SLACK_APP_TOKEN": "xapp-1-e2e",
        "SLACK_API_BASE_URL": web.api_url,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    process = start_cxbot(tmp_path, env, "run", "--adapter", "slack", "--demo", "--no-clock")
    try:
        first = server.wait_for_connection(1, timeout=120)
        envelope, _ = server.envelope(first, "slash_commands", slash_command("whoami", user="U0NLLEIL05"))
        assert server.wait_for_ack(envelope)[0] is first
        server.send(first, disconnect("refresh_requested"))
        second = server.wait_for_connection(2)
        envelope, sent = server.envelope(second, "slash_commands", slash_command("whoami", user="U0NLLEIL05"))
        acked_on, acked_at = server.wait_for_ack(envelope)
        assert acked_on is second and acked_at - sent < ACK_AFTER_REFRESH
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(web.called("chat.postEphemeral")) < 2:
            time.sleep(0.05)
        answers = web.called("chat.postEphemeral")
        assert len(answers) == 2 and all("Leila" in str(a.get("blocks")) for a in answers)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert [line for line in stderr.splitlines() if "ERROR" in line or "Traceback" in line] == [], stderr
