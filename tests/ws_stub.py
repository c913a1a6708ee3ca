"""A loopback websocket server in a thread of its own (aiohttp, which discord.py already brings):
the base of the Slack Socket Mode and Discord gateway stand-ins."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web


class LoopbackWebsocketServer:
    path = "/"

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.sockets: list[web.WebSocketResponse] = []
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), name=type(self).__name__, daemon=True)
        self.thread.start()
        if not started.wait(15):
            raise RuntimeError(f"{type(self).__name__} did not start")

    async def serve(self, socket: web.WebSocketResponse, request: web.Request) -> None:
        """One connection, from its opening to its end (the subclass's protocol)."""
        raise NotImplementedError

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        started.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get(self.path, self._accept)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _accept(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self.sockets.append(socket)
        await self.serve(socket, request)
        return socket

    def run(self, coroutine: Any, timeout: float = 15.0) -> Any:
        """Run a coroutine on the server's loop, from a test's thread."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        async def stop() -> None:
            for socket in list(self.sockets):
                await socket.close()
            if self._runner is not None:
                await self._runner.cleanup()

        self.run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(15)
