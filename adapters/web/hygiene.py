"""What every request passes before any route sees it: a body limit (refused by its declared
``Content-Length`` and again while it streams, before anything parses it), a deadline for the
whole body, and security headers on every response. A refused request is logged in one line:
why, its size and its path, nothing of its content.

Pure ASGI middleware, outside Starlette's own error handling, so that a refusal is an answer
of its own and never a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)


class _Refused(Exception):
    def __init__(self, status: int, reason: str, size: int) -> None:
        super().__init__(reason)
        self.status, self.reason, self.size = status, reason, size


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length; -1 when it is there but not a number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None


class RequestHygiene:
    """Reads the body in full, within ``max_body`` bytes and ``body_timeout`` seconds, before
    the application runs, and hands it on whole; adds the security headers to every response.

    Reading first costs at most ``max_body`` per request in flight (1 MiB by default; Slack's
    payloads are a few kB), and means no route, Bolt's included, ever parses a body that was
    going to be refused."""

    def __init__(self, app: ASGIApp, *, max_body: int, body_timeout: float) -> None:
        self.app, self.max_body, self.body_timeout = app, max_body, body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read_body(scope, receive)
        except _Refused as refused:
            # One line: why, how big, where. Nothing of the headers or the body.
            log.warning(
                "http: refused %s %s: %s (%s bytes)", scope["method"], _path(scope), refused.reason, refused.size
            )
            await _answer(send, refused.status, refused.reason)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, whenever it comes

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", ())}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, replay, with_headers)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        declared = declared_length(scope)
        if declared is not None and declared < 0:
            raise _Refused(400, "malformed Content-Length", 0)
        if declared is not None and declared > self.max_body:
            raise _Refused(413, "body too large", declared)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout):  # one deadline for the whole body
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _Refused(400, "client went away", size)
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body:  # a chunked body, or one longer than it said
                        raise _Refused(413, "body too large", size)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise _Refused(408, "body not received in time", size) from None


def _path(scope: Scope) -> str:
    """The path for a log line, cut short: it is the attacker's text too."""
    path = str(scope.get("path", ""))
    return path[:64] + ("…" if len(path) > 64 else "")


async def _answer(send: Send, status: int, reason: str) -> None:
    body = f'{{"error": "{reason}"}}'.encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # The rest of an unread body is not worth reading: close rather than drain it.
        (b"connection", b"close"),
        *SECURITY_HEADERS,
    ]
    try:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    except OSError:  # the client is gone already
        pass
