"""Running discord.py's event loop in a thread of its own, beside the synchronous rest of cxbot
(other adapters, the outbox drains, the clock) in one process."""

from __future__ import annotations

import asyncio
import logging
import threading

from adapters.discord.bot import CxDiscord

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


def stop_client(client: CxDiscord, thread: threading.Thread) -> None:
    if not client.is_closed():
        asyncio.run_coroutine_threadsafe(client.close(), client.loop).result(15)
    thread.join(15)
