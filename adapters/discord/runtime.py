"""Running discord.py's event loop in a thread of its own, beside the synchronous rest of cxbot
(other adapters, the outbox drains, the clock) in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

import discord
import yarl
from discord.gateway import DiscordWebSocket

from adapters.discord.bot import CxDiscord

log = logging.getLogger(__name__)


def point_at(api_base_url: str | None, gateway_url: str | None) -> None:
    """Another REST API base and gateway than Discord's own (a proxy; tests: loopback stubs).
    discord.py keeps both as class attributes."""
    if api_base_url:
        discord.http.Route.BASE = api_base_url.rstrip("/")
    if gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class RunningClient:
    """A logged-in client connected on its own loop in a daemon thread; ``stop()`` ends it."""

    def __init__(self, client: CxDiscord) -> None:
        self.client = client
        self.thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None

    async def main(self, token: str, logged_in: threading.Event, failure: list[BaseException]) -> None:
        self.loop, self.stopping = asyncio.get_running_loop(), asyncio.Event()
        try:
            await self.client.login(token)
        except BaseException as exc:  # a bad token: told to the starting thread
            failure.append(exc)
            logged_in.set()
            return
        logged_in.set()
        connection = asyncio.create_task(self.client.connect(reconnect=True), name="discord-connection")
        stop = asyncio.create_task(self.stopping.wait(), name="discord-stop")
        try:
            await asyncio.wait({connection, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Closing (not cancelling) lets discord.py end the connection its own way, so nothing
            # is cancelled under it and the shutdown logs no error.
            await self.client.close()
            stop.cancel()
            done, _ = await asyncio.wait({connection}, timeout=10)
            if connection in done and not connection.cancelled() and connection.exception() is not None:
                log.error("discord: the connection ended: %s", connection.exception())
            elif connection not in done:
                connection.cancel()

    def stop(self, timeout: float = 15.0) -> None:
        """Close the connection and the HTTP session, and wait for the loop's thread to end."""
        if self.loop is not None and self.stopping is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop has just ended by itself: nothing to stop
                self.loop.call_soon_threadsafe(self.stopping.set)
        if self.thread is not None:
            self.thread.join(timeout)
            if self.thread.is_alive():
                log.warning("discord: the client did not stop within %.0f s", timeout)


def start_in_thread(client: CxDiscord, token: str, ready_timeout: float = 60.0) -> RunningClient:
    """Log in and connect on a new loop in a daemon thread; returns once logged in (the HTTP
    session exists, so the outbox can send), or raises what login raised."""
    logged_in = threading.Event()
    failure: list[BaseException] = []
    running = RunningClient(client)

    def run() -> None:
        try:
            asyncio.run(running.main(token, logged_in, failure))
        except Exception:
            log.exception("discord: the client stopped")

    running.thread = threading.Thread(target=run, name="discord", daemon=True)
    running.thread.start()
    if not logged_in.wait(ready_timeout):
        raise TimeoutError("discord: login did not finish in time")
    if failure:
        raise failure[0]
    return running
