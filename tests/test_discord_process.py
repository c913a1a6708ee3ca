"""The real `cxbot run --adapter discord` process against loopback stand-ins of Discord's REST
API (tests/discord_stub.py) and gateway (tests/discord_gateway_stub.py)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.discord_gateway_stub import IDENTIFY, DiscordGatewayStub
from tests.discord_stub import DiscordStub
from tests.test_console import cli_env, start_cxbot

APP, GUILD = 1100000000000000001, 900000000000000001


@pytest.fixture
def rest() -> Iterator[DiscordStub]:
    stub = DiscordStub(app_id=APP).start()
    yield stub
    stub.stop()


@pytest.fixture
def gateway() -> Iterator[DiscordGatewayStub]:
    stub = DiscordGatewayStub(app_id=APP, bot_user_id=APP, guild_ids=(GUILD,))
    yield stub
    stub.close()


def test_sigterm_shuts_discord_down_cleanly(
    bare_engine: Any, tmp_path: Any, rest: DiscordStub, gateway: DiscordGatewayStub
) -> None:
    env = {
        **cli_env(bare_engine, tmp_path),
        "DISCORD_TOKEN": "stub-token",
        "DISCORD_GUILD_IDS": str(GUILD),
        "DISCORD_API_BASE_URL": rest.api_base,
        "DISCORD_GATEWAY_URL": gateway.url,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(name, None)
    process = start_cxbot(tmp_path, env, "run", "--adapter", "discord", "--demo", "--no-clock")
    try:
        identify = gateway.wait_for_op(IDENTIFY, timeout=120)  # logged in, commands synced, connected
        assert identify["d"]["token"] == "stub-token"
        rest.wait_for(lambda c: c.method == "PUT" and c.path.endswith(f"/guilds/{GUILD}/commands"), timeout=60)
        time.sleep(0.5)  # READY and GUILD_CREATE are being handled: a shutdown may come at any moment
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    problems = [line for line in stderr.splitlines() if any(w in line for w in ("ERROR", "Traceback", "failed"))]
    assert problems == [], stderr
    gateway.wait_closed()  # the connection was closed, not dropped
