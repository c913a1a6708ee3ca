"""A loopback stand-in for Slack's Socket Mode websocket server, written from Slack's Socket Mode
docs: the client asks the Web API (``apps.connections.open``, answered by tests/slack_stub.py)
for a ``wss://`` URL, connects, and gets ``{"type": "hello", …}``. Slack sends each event,
command or interaction as an envelope (``{"envelope_id", "type", "payload",
"accepts_response_payload"}``) that the client must acknowledge within 3 seconds by sending
``{"envelope_id": …}`` back on the same socket. Slack asks a client to reconnect with
``{"type": "disconnect", "reason": "refresh_requested" | "warning" | "link_disabled"}``; it keeps
the old socket open for a while (a few seconds) so the client can open a new one first.

This stub serves plain ``ws://`` on 127.0.0.1 (tests/ws_stub.py), records every connection and
what each received, and lets a test send any frame on any connection and wait for acks.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.ws_stub import LoopbackWebsocketServer


@dataclass
class Connection:
    number: int
    socket: web.WebSocketResponse
    opened_at: float
    received: list[tuple[float, Any]] = field(default_factory=list)  # (monotonic time, parsed frame)
    closed_at: float | None = None


class SocketModeStub(LoopbackWebsocketServer):
    path = "/link/"

    def __init__(self, *, send_hello: bool = True) -> None:
        self.send_hello = send_hello
        self.connections: list[Connection] = []
        self._tickets = itertools.count(1)
        self._envelopes = itertools.count(1)
        self._changed = threading.Condition()
        super().__init__()

    async def serve(self, socket: web.WebSocketResponse, request: web.Request) -> None:
        number = len(self.connections) + 1
        if self.send_hello:  # hello first: a connection a test sees is one Slack would send on
            await socket.send_str(json.dumps(hello(number)))
        with self._changed:
            connection = Connection(number, socket, time.monotonic())
            self.connections.append(connection)
            self._changed.notify_all()
        async for frame in socket:
            if frame.type is not WSMsgType.TEXT:
                continue
            try:
                parsed: Any = json.loads(frame.data)
            except ValueError:
                parsed = frame.data
            with self._changed:
                connection.received.append((time.monotonic(), parsed))
                self._changed.notify_all()
        with self._changed:
            connection.closed_at = time.monotonic()
            self._changed.notify_all()

    def url(self) -> str:
        """What ``apps.connections.open`` answers: a new ticket each time, as Slack's URLs are."""
        return f"ws://127.0.0.1:{self.port}/link/?ticket={next(self._tickets)}"

    # --- what a test does -----------------------------------------------------------------

    def send(self, connection: Connection, frame: dict[str, Any]) -> float:
        """Send a frame on one connection; returns when it was sent (monotonic)."""

        async def send() -> float:
            await connection.socket.send_str(json.dumps(frame))
            return time.monotonic()

        return float(self.run(send()))

    def envelope(self, connection: Connection, kind: str, payload: dict[str, Any]) -> tuple[str, float]:
        """Send an envelope; returns its id and when it was sent."""
        envelope_id = f"env-{next(self._envelopes)}"
        frame = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": 0,
            "retry_reason": "",
        }
        return envelope_id, self.send(connection, frame)

    def wait_for_connection(self, number: int, timeout: float = 30.0) -> Connection:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.connections) >= number, timeout):
                raise TimeoutError(f"socket mode stub: connection {number} never came")
            return self.connections[number - 1]

    def wait_for_ack(self, envelope_id: str, timeout: float = 30.0) -> tuple[Connection, float]:
        """The connection an envelope was acknowledged on, and when (monotonic)."""

        def found() -> tuple[Connection, float] | None:
            for connection in self.connections:
                for at, frame in connection.received:
                    if isinstance(frame, dict) and frame.get("envelope_id") == envelope_id:
                        return connection, at
            return None

        with self._changed:
            if not self._changed.wait_for(lambda: found() is not None, timeout):
                raise TimeoutError(f"socket mode stub: {envelope_id} was never acknowledged")
            acked = found()
            assert acked is not None
            return acked


def hello(number: int) -> dict[str, Any]:
    return {
        "type": "hello",
        "num_connections": number,
        "debug_info": {"host": "applink-stub", "approximate_connection_time": 18060},
        "connection_info": {"app_id": "A0NLCXBOT1"},
    }


def disconnect(reason: str = "refresh_requested") -> dict[str, Any]:
    return {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-stub"}}


def slash_command(text: str, user: str = "U0NLANNA01", channel: str = "C0NLCXCX007") -> dict[str, Any]:
    """A ``/cx`` command as Socket Mode delivers it (the form fields, as a JSON object)."""
    return {
        "token": "legacy-verification-token",
        "team_id": "T0NL",
        "team_domain": "nordljus",
        "channel_id": channel,
        "channel_name": "cx",
        "user_id": user,
        "user_name": "anna",
        "command": "/cx",
        "text": text,
        "api_app_id": "A0NLCXBOT1",
        "is_enterprise_install": "false",
        "response_url": "",
        "trigger_id": f"trig-sm-{time.monotonic_ns()}",
    }
