"""How fast each of Bolt's Socket Mode clients acknowledges an envelope, before and right after
Slack asks it to reconnect (``{"type": "disconnect", "reason": "refresh_requested"}``).

A loopback Socket Mode server (tests/socket_mode_stub.py) and Web API stub (tests/slack_stub.py,
which answers ``apps.connections.open`` with the server's ``ws://`` URL) stand in for Slack. Per
round: connect; send a ``/cx`` envelope and time its ack (the steady state); send
``disconnect``/``refresh_requested`` on that socket and keep it open, as Slack does for a few
seconds; as soon as the client's new socket is up, send an envelope on it and time its ack.
Slack wants every envelope acknowledged within 3 seconds.

The app is a bare Bolt ``App`` whose ``/cx`` listener only acknowledges, so what is measured is
the client, not cxbot.

    .venv/bin/python benchmarks/socket_mode_reconnect.py [--rounds 5] [--clients builtin,websocket_client,…]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from slack_bolt import Ack, App
from slack_sdk import WebClient

from tests.slack_stub import SlackStub
from tests.socket_mode_stub import SocketModeStub, disconnect, slash_command

CLIENTS = ("builtin", "websocket_client", "aiohttp", "websockets")
APP_TOKEN = "xapp-1-A0NLCXBOT1-bench"


def bare_app(api_url: str) -> App:
    app = App(client=WebClient(token="xoxb-bench", base_url=api_url), token_verification_enabled=False)

    @app.command("/cx")
    def cx(ack: Ack) -> None:
        ack()

    return app


def connect(kind: str, app: App, api_url: str) -> Callable[[], None]:
    """Connect ``app`` over Socket Mode with one of Bolt's clients; returns how to close it."""
    if kind == "builtin":
        from slack_bolt.adapter.socket_mode.builtin import SocketModeHandler

        handler: Any = SocketModeHandler(app, app_token=APP_TOKEN)
        handler.connect()
        return handler.close
    if kind == "websocket_client":
        from slack_bolt.adapter.socket_mode.websocket_client import SocketModeHandler as WebsocketClientHandler

        handler = WebsocketClientHandler(app, app_token=APP_TOKEN)
        handler.connect()
        return handler.close
    # The asyncio clients: their own loop in a thread; the sync App's listeners run on it.
    from slack_sdk.web.async_client import AsyncWebClient

    if kind == "aiohttp":
        from slack_bolt.adapter.socket_mode.aiohttp import SocketModeHandler as AsyncHandler
    elif kind == "websockets":
        from slack_bolt.adapter.socket_mode.websockets import SocketModeHandler as AsyncHandler  # type: ignore[assignment]
    else:
        raise ValueError(kind)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> Any:
        made = AsyncHandler(app, app_token=APP_TOKEN, web_client=AsyncWebClient(token="xoxb-bench", base_url=api_url))
        await made.connect_async()
        return made

    async_handler = asyncio.run_coroutine_threadsafe(start(), loop).result(30)

    def close() -> None:
        asyncio.run_coroutine_threadsafe(async_handler.close_async(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    return close


def one_round(kind: str) -> tuple[float, float]:
    """(steady ack, ack on the new socket right after a refresh), in seconds."""
    web, server = SlackStub(), SocketModeStub()
    web.socket_mode_url = server.url
    close = connect(kind, bare_app(web.api_url), web.api_url)
    try:
        first = server.wait_for_connection(1)
        envelope, sent = server.envelope(first, "slash_commands", slash_command("help"))
        _, acked = server.wait_for_ack(envelope)
        steady = acked - sent
        server.send(first, disconnect("refresh_requested"))  # the old socket stays open meanwhile
        second = server.wait_for_connection(2)
        envelope, sent = server.envelope(second, "slash_commands", slash_command("help"))
        on, acked = server.wait_for_ack(envelope)
        if on is not second:
            raise AssertionError(f"{kind}: acknowledged on connection {on.number}, not on the new one")
        return steady, acked - sent
    finally:
        close()
        server.close()
        web.close()


def measure(kind: str, rounds: int) -> tuple[list[float], list[float]]:
    steady, after = [], []
    for _ in range(rounds):
        before_refresh, after_refresh = one_round(kind)
        steady.append(before_refresh)
        after.append(after_refresh)
    return steady, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    options = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # the clients log every reconnect at INFO/ERROR
    print(f"{'client':<18}{'steady ack (ms)':>18}{'ack after refresh (ms): median':>34}{'max':>8}")
    for kind in options.clients.split(","):
        try:
            steady, after = measure(kind, options.rounds)
        except Exception as exc:  # one client failing says something too; measure the others
            print(f"{kind:<18}failed: {type(exc).__name__}: {exc}")
            continue
        print(
            f"{kind:<18}{statistics.median(steady) * 1000:>18.1f}"
            f"{statistics.median(after) * 1000:>34.1f}{max(after) * 1000:>8.1f}"
        )
        time.sleep(0.2)


if __name__ == "__main__":
    main()
