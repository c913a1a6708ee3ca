"""A loopback stand-in for Discord's gateway (v10, JSON, written from Discord's gateway docs):
on connect ``Hello`` (op 10, with the heartbeat interval); a ``Heartbeat`` (op 1) is answered
with ``Heartbeat ACK`` (op 11); ``Identify`` (op 2) with the ``READY`` dispatch (op 0) and a
``GUILD_CREATE`` for each guild; anything else is recorded. discord.py asks for
``compress=zlib-stream`` but reads plain text frames as they are, so frames go out uncompressed.
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

from aiohttp import WSMsgType, web

from tests.ws_stub import LoopbackWebsocketServer

HELLO, HEARTBEAT, IDENTIFY, HEARTBEAT_ACK, DISPATCH = 10, 1, 2, 11, 0


class DiscordGatewayStub(LoopbackWebsocketServer):
    def __init__(self, *, app_id: int, bot_user_id: int, guild_ids: tuple[int, ...] = ()) -> None:
        self.app_id, self.bot_user_id, self.guild_ids = app_id, bot_user_id, guild_ids
        self.received: list[dict[str, Any]] = []
        self.closed = 0  # connections that have ended
        self._sequence = itertools.count(1)
        self._changed = threading.Condition()
        super().__init__()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def serve(self, socket: web.WebSocketResponse, request: web.Request) -> None:
        await socket.send_str(json.dumps({"op": HELLO, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}))
        async for frame in socket:
            if frame.type is not WSMsgType.TEXT:
                continue
            payload = json.loads(frame.data)
            with self._changed:
                self.received.append(payload)
                self._changed.notify_all()
            if payload.get("op") == HEARTBEAT:
                await socket.send_str(json.dumps({"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None}))
            elif payload.get("op") == IDENTIFY:
                await self._dispatch(socket, "READY", self._ready())
                for guild_id in self.guild_ids:
                    await self._dispatch(socket, "GUILD_CREATE", guild(guild_id))
        with self._changed:
            self.closed += 1
            self._changed.notify_all()

    async def _dispatch(self, socket: web.WebSocketResponse, event: str, data: dict[str, Any]) -> None:
        await socket.send_str(json.dumps({"op": DISPATCH, "t": event, "s": next(self._sequence), "d": data}))

    def _ready(self) -> dict[str, Any]:
        return {
            "v": 10,
            "user": {
                "id": str(self.bot_user_id),
                "username": "cxbot",
                "discriminator": "0",
                "avatar": None,
                "bot": True,
            },
            "guilds": [{"id": str(g), "unavailable": True} for g in self.guild_ids],
            "session_id": "stub-session",
            "resume_gateway_url": self.url,
            "application": {"id": str(self.app_id), "flags": 0},
        }

    def wait_for_op(self, op: int, timeout: float = 60.0) -> dict[str, Any]:
        with self._changed:
            if not self._changed.wait_for(lambda: any(p.get("op") == op for p in self.received), timeout):
                raise TimeoutError(f"gateway stub: op {op} never came; got {[p.get('op') for p in self.received]}")
            return next(p for p in self.received if p.get("op") == op)

    def wait_closed(self, timeout: float = 30.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self.closed >= 1, timeout):
                raise TimeoutError("gateway stub: the client never closed its connection")


def guild(guild_id: int) -> dict[str, Any]:
    return {
        "id": str(guild_id),
        "name": "Nordljus",
        "icon": None,
        "owner_id": "1",
        "roles": [],
        "emojis": [],
        "features": [],
        "member_count": 1,
        "members": [],
        "channels": [],
        "threads": [],
        "large": False,
        "unavailable": False,
        "joined_at": "2024-01-01T00:00:00+00:00",
        "stickers": [],
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "premium_tier": 0,
        "preferred_locale": "sv-SE",
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "afk_timeout": 300,
        "system_channel_flags": 0,
    }
