"""Running discord.py's event loop in a thread of its own, beside the synchronous rest of cxbot
(other adapters, the outbox drains, the clock) in one process."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from adapters.discord.bot import PLATFORM, CxDiscord
from adapters.discord.sender import DiscordSender
from bot.outbox import drain

log = logging.getLogger(__name__)


def start_in_thread(client: CxDiscord, token: str, ready_timeout: float = 60.0) -> threading.Thread:
    """Log in and connect on a new loop in a daemon thread; returns once logged in (the HTTP
    session exists, so the outbox can send), or raises what login raised."""
    logged_in = threading.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        try:
            await client.login(token)
        except BaseException as exc:  # a bad token: told to the starting thread
            failure.append(exc)
            logged_in.set()
            return
        logged_in.set()
        try:
            await client.connect(reconnect=True)
        finally:
            if not client.is_closed():
                await client.close()

    def run() -> None:
        try:
            asyncio.run(main())
        except Exception:
            log.exception("discord: the client stopped")

    thread = threading.Thread(target=run, name="discord", daemon=True)
    thread.start()
    if not logged_in.wait(ready_timeout):
        raise TimeoutError("discord: login did not finish in time")
    if failure:
        raise failure[0]
    return thread


def drain_forever(
    session_factory: sessionmaker[Session],
    sender: DiscordSender,
    clock: Callable[[], datetime],
    stop: threading.Event,
    interval: float = 1.0,
) -> None:
    """Deliver Discord's posts until ``stop`` is set; a failing round is logged, not fatal."""
    while not stop.is_set():
        try:
            delivered = drain(session_factory, PLATFORM, sender, clock)
        except Exception:
            log.exception("discord: outbox drain failed; trying again")
            delivered = []
        if not delivered:
            stop.wait(interval)


def stop_client(client: CxDiscord, thread: threading.Thread) -> None:
    if not client.is_closed():
        asyncio.run_coroutine_threadsafe(client.close(), client.loop).result(15)
    thread.join(15)
