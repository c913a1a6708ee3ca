"""uvicorn, in a thread of its own beside the rest of ``cxbot run`` (the adapters, the outbox
drains, the clock), with the limits an internet-facing port needs.

uvicorn gives an idle keep-alive timeout and a cap on connections, but no deadline for a request
head: a connection that opens and sends nothing, or a header a byte at a time, would stay open
forever and count against the cap. ``GuardedH11Protocol`` closes a connection whose next request
head has not arrived ``header_timeout`` seconds after it opened or after its last response.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerLimits:
    header_timeout: float = 10.0
    keep_alive: float = 5.0
    max_connections: int = 2000
    # Seconds SIGTERM waits for requests in flight before cancelling them.
    shutdown_grace: float = 10.0
    max_header_bytes: int = 16 * 1024


class GuardedH11Protocol(H11Protocol):
    header_timeout = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._cancel_header_deadline()  # one timer per connection, however many requests it carries
        waiting_after = self.cycle  # a new request makes a new cycle
        self._header_deadline = self.loop.call_later(self.header_timeout, self._header_deadline_passed, waiting_after)

    def _cancel_header_deadline(self) -> None:
        deadline: asyncio.TimerHandle | None = getattr(self, "_header_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._header_deadline = None

    def _header_deadline_passed(self, waiting_after: Any) -> None:
        if self.cycle is waiting_after and not self.transport.is_closing():
            log.info("http: closed a connection that sent no request head in %.0f s", self.header_timeout)
            self.transport.close()


def _protocol(limits: ServerLimits) -> type[H11Protocol]:
    return type("LimitedH11Protocol", (GuardedH11Protocol,), {"header_timeout": limits.header_timeout})


class WebServer:
    """uvicorn serving one ASGI app on a port, in a daemon thread. ``stop`` is graceful: no new
    connections, requests in flight finish (for up to ``shutdown_grace`` seconds)."""

    def __init__(self, app: Any, host: str, port: int, limits: ServerLimits | None = None) -> None:
        self.limits = limits or ServerLimits()
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http=_protocol(self.limits),
            ws="none",
            lifespan="off",
            interface="asgi3",
            timeout_keep_alive=int(max(1, self.limits.keep_alive)),
            limit_concurrency=self.limits.max_connections,
            timeout_graceful_shutdown=int(max(1, self.limits.shutdown_grace)),
            h11_max_incomplete_event_size=self.limits.max_header_bytes,
            access_log=False,  # request lines carry query strings; our middleware logs refusals
            log_config=None,  # cxbot's logging, not uvicorn's own
            server_header=False,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="web", daemon=True)

    def start(self, timeout: float = 30.0) -> WebServer:
        """Start serving; returns once the port is bound, or raises if it could not be."""
        self._thread.start()
        deadline = threading.Event()
        waited = 0.0
        while not self.server.started and self._thread.is_alive() and waited < timeout:
            deadline.wait(0.02)
            waited += 0.02
        if not self.server.started:
            raise OSError(f"the web server could not listen on port {self.server.config.port}")
        log.info("web: listening on %s:%s", self.server.config.host, self.port)
        return self

    @property
    def port(self) -> int:
        sockets = [s for server in self.server.servers for s in server.sockets]
        return int(sockets[0].getsockname()[1]) if sockets else int(self.server.config.port)

    def stop(self) -> None:
        """Stop accepting, let requests in flight finish (bounded), and wait for the thread."""
        self.server.should_exit = True
        self._thread.join(self.limits.shutdown_grace + 5)
