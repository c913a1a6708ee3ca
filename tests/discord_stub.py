"""Loopback stub of the Discord REST API (v10) for offline discord.py tests.

Stdlib only (http.server.ThreadingHTTPServer), runs in a daemon thread, records
every request, and answers with payloads that discord.py 2.7.x can parse.

Usage:
    stub = DiscordStub().start()
    discord.http.Route.BASE = stub.api_base        # "http://127.0.0.1:PORT/api/v10"
    ...
    stub.queue("POST", r"/channels/\\d+/messages", 429, {"retry_after": 0.05, "global": False, "message": "rl"},
               headers={"Via": "1.1 google"})      # one-shot override, consumed FIFO
    stub.calls                                      # list[Call]
    stub.wait_for(lambda c: c.method == "POST" and c.path.endswith("/callback"))
    stub.stop()

Facts this stub relies on (verified against discord.py 2.7.1 source):
* discord/http.py json_or_text() only decodes JSON when the response header
  content-type == 'application/json' EXACTLY (no "; charset=..."), otherwise
  the body is returned as str.  So we always send exactly that header.
* A 429 is only retried if the response has a 'Via' header and a JSON body with
  'retry_after'; otherwise HTTPException is raised immediately ("Cloudflare ban").
* If a non-429 response carries 'X-RateLimit-Remaining', discord.py also needs
  'X-RateLimit-Reset-After' (or 'X-RateLimit-Reset'), otherwise KeyError.
* POST /interactions/{id}/{token}/callback is called with ?with_response=1 and
  the response JSON must contain {"interaction": {"id": ...}} (resource optional).
"""

from __future__ import annotations

import datetime as _dt
import email.parser
import email.policy
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

DISCORD_EPOCH_MS = 1420070400000
_counter = itertools.count(1)


def snowflake() -> int:
    ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
    return (ms << 22) | (next(_counter) & 0x3FFFFF)


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat()


@dataclass
class Call:
    method: str
    path: str  # path after /api/v10, url-decoded, e.g. "/channels/1/messages"
    query: dict[str, list[str]]
    headers: dict[str, str]
    content_type: str
    json: Any = None  # parsed JSON body, or payload_json for multipart
    files: list[dict[str, Any]] = field(default_factory=list)  # [{name, filename, content_type, data}]
    raw: bytes = b""
    status: int = 0  # status we answered with
    response: Any = None

    @property
    def is_multipart(self) -> bool:
        return self.content_type.startswith("multipart/")


Responder = Callable[["DiscordStub", Call, "re.Match[str]"], tuple[int, Any, dict[str, str]]]


class DiscordStub:
    def __init__(
        self, *, app_id: int = 1100000000000000001, bot_user_id: int | None = None, bot_name: str = "stubbot"
    ) -> None:
        self.app_id = app_id
        self.bot_user_id = bot_user_id or app_id
        self.bot_name = bot_name
        self.calls: list[Call] = []
        self.messages: dict[int, dict[str, Any]] = {}
        self.commands: dict[int | None, list[dict[str, Any]]] = {}
        self._overrides: list[tuple[str, re.Pattern[str], int, Any, dict[str, str]]] = []
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._routes: list[tuple[str, re.Pattern[str], Responder]] = [
            ("GET", re.compile(r"/users/@me"), DiscordStub._r_me),
            ("GET", re.compile(r"/oauth2/applications/@me"), DiscordStub._r_app),
            ("POST", re.compile(r"/interactions/(?P<iid>\d+)/(?P<tok>[^/]+)/callback"), DiscordStub._r_callback),
            ("POST", re.compile(r"/webhooks/(?P<app>\d+)/(?P<tok>[^/]+)"), DiscordStub._r_followup),
            (
                "GET",
                re.compile(r"/webhooks/(?P<app>\d+)/(?P<tok>[^/]+)/messages/(?P<mid>@original|\d+)"),
                DiscordStub._r_wh_get,
            ),
            (
                "PATCH",
                re.compile(r"/webhooks/(?P<app>\d+)/(?P<tok>[^/]+)/messages/(?P<mid>@original|\d+)"),
                DiscordStub._r_wh_edit,
            ),
            (
                "DELETE",
                re.compile(r"/webhooks/(?P<app>\d+)/(?P<tok>[^/]+)/messages/(?P<mid>@original|\d+)"),
                DiscordStub._r_204,
            ),
            ("POST", re.compile(r"/channels/(?P<cid>\d+)/messages"), DiscordStub._r_send),
            ("GET", re.compile(r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)"), DiscordStub._r_get_message),
            ("PATCH", re.compile(r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)"), DiscordStub._r_edit),
            ("DELETE", re.compile(r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)"), DiscordStub._r_204),
            ("PUT", re.compile(r"/channels/\d+/messages/\d+/reactions/[^/]+/@me"), DiscordStub._r_204),
            ("DELETE", re.compile(r"/channels/\d+/messages/\d+/reactions/[^/]+/@me"), DiscordStub._r_204),
            ("POST", re.compile(r"/users/@me/channels"), DiscordStub._r_dm),
            ("PUT", re.compile(r"/applications/(?P<app>\d+)(?:/guilds/(?P<gid>\d+))?/commands"), DiscordStub._r_sync),
            (
                "GET",
                re.compile(r"/applications/(?P<app>\d+)(?:/guilds/(?P<gid>\d+))?/commands"),
                DiscordStub._r_list_cmds,
            ),
        ]

    # ------------------------------------------------------------------ lifecycle
    def start(self, host: str = "127.0.0.1", port: int = 0) -> DiscordStub:
        stub = self

        class Handler(_Handler):
            pass

        Handler.stub = stub
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="discord-stub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def port(self) -> int:
        assert self._server
        return self._server.server_address[1]

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    # ------------------------------------------------------------------ test API
    def queue(
        self,
        method: str,
        path_regex: str,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """One-shot canned response(s) taking priority over the default routes (FIFO)."""
        with self._lock:
            for _ in range(times):
                self._overrides.append((method.upper(), re.compile(path_regex), status, body, dict(headers or {})))

    def add_route(self, method: str, path_regex: str, responder: Responder) -> None:
        self._routes.insert(0, (method.upper(), re.compile(path_regex), responder))

    def find(self, method: str | None = None, path_regex: str | None = None) -> list[Call]:
        with self._lock:
            return [
                c
                for c in self.calls
                if (method is None or c.method == method.upper())
                and (path_regex is None or re.fullmatch(path_regex, c.path))
            ]

    def wait_for(self, pred: Callable[[Call], bool], timeout: float = 5.0, count: int = 1) -> list[Call]:
        """Block (call from a thread, or via asyncio.to_thread) until `count` calls match."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                hits = [c for c in self.calls if pred(c)]
                if len(hits) >= count:
                    return hits
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"stub: expected {count} matching call(s), got {len(hits)}: "
                        f"{[(c.method, c.path) for c in self.calls]}"
                    )
                self._cond.wait(left)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    # ------------------------------------------------------------------ payload builders
    def user(self, uid: int | None = None, name: str | None = None, bot: bool = True) -> dict[str, Any]:
        uid = uid or self.bot_user_id
        return {
            "id": str(uid),
            "username": name or self.bot_name,
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": bot,
            "public_flags": 0,
            "flags": 0,
        }

    def message(
        self,
        *,
        channel_id: int,
        body: dict[str, Any] | None = None,
        files: list[dict[str, Any]] | None = None,
        mid: int | None = None,
        webhook_id: int | None = None,
    ) -> dict[str, Any]:
        body = body or {}
        mid = mid or snowflake()
        atts = []
        for f in files or []:
            aid = snowflake()
            atts.append(
                {
                    "id": str(aid),
                    "filename": f["filename"],
                    "size": len(f["data"]),
                    "url": f"https://cdn.discordapp.com/attachments/{channel_id}/{aid}/{f['filename']}",
                    "proxy_url": f"https://media.discordapp.net/attachments/{channel_id}/{aid}/{f['filename']}",
                    "content_type": f.get("content_type"),
                }
            )
        msg = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "type": 0,
            "author": self.user(webhook_id or self.bot_user_id),
            "content": body.get("content") or "",
            "timestamp": now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": atts,
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "pinned": False,
            "flags": int(body.get("flags") or 0),
        }
        if webhook_id:
            msg["webhook_id"] = str(webhook_id)
            msg["application_id"] = str(self.app_id)
        with self._lock:
            self.messages[mid] = msg
        return msg

    # ------------------------------------------------------------------ default responders
    @staticmethod
    def _r_me(self: DiscordStub, call: Call, m: re.Match[str]):
        return 200, self.user(), {}

    @staticmethod
    def _r_app(self: DiscordStub, call: Call, m):
        return (
            200,
            {
                "id": str(self.app_id),
                "name": self.bot_name,
                "description": "",
                "icon": None,
                "bot_public": False,
                "bot_require_code_grant": False,
                "verify_key": "00" * 32,
                "owner": self.user(1, "owner", bot=False),
                "flags": 0,
            },
            {},
        )

    @staticmethod
    def _r_204(self: DiscordStub, call: Call, m):
        return 204, None, {}

    @staticmethod
    def _r_callback(self: DiscordStub, call: Call, m):
        body = call.json or {}
        rtype = int(body.get("type", 0))
        data = body.get("data") or {}
        flags = int(data.get("flags") or 0)
        inter: dict[str, Any] = {"id": m["iid"], "type": 2}
        resp: dict[str, Any] = {"interaction": inter}
        if rtype in (4, 5, 7):  # channel message / deferred channel message / update message
            msg = self.message(
                channel_id=0,
                body=data if rtype != 5 else {"flags": flags | 128},
                files=call.files,
                webhook_id=self.app_id,
            )
            inter.update(
                response_message_id=msg["id"],
                response_message_loading=(rtype == 5),
                response_message_ephemeral=bool(flags & 64),
            )
            resp["resource"] = {"type": rtype, "message": msg}
            with self._lock:
                self.messages[("original", m["tok"])] = msg  # type: ignore[index]
        elif rtype:
            resp["resource"] = {"type": rtype}
        return 200, resp, {}

    @staticmethod
    def _r_followup(self: DiscordStub, call: Call, m):
        return 200, self.message(channel_id=0, body=call.json, files=call.files, webhook_id=int(m["app"])), {}

    @staticmethod
    def _r_wh_get(self: DiscordStub, call: Call, m):
        with self._lock:
            msg = (
                self.messages.get(("original", m["tok"]))
                if m["mid"] == "@original"
                else self.messages.get(int(m["mid"]))
            )  # type: ignore[call-overload]
        if msg is None:
            return 404, {"message": "Unknown Message", "code": 10008}, {}
        return 200, msg, {}

    @staticmethod
    def _r_wh_edit(self: DiscordStub, call: Call, m):
        with self._lock:
            key = ("original", m["tok"]) if m["mid"] == "@original" else int(m["mid"])
            old = self.messages.get(key)  # type: ignore[call-overload]
        base_id = int(old["id"]) if old else None
        msg = self.message(channel_id=0, body=call.json, files=call.files, mid=base_id, webhook_id=int(m["app"]))
        msg["edited_timestamp"] = now_iso()
        with self._lock:
            self.messages[key] = msg  # type: ignore[index]
        return 200, msg, {}

    @staticmethod
    def _r_send(self: DiscordStub, call: Call, m):
        body = call.json or {}
        nonce = body.get("nonce") if body.get("enforce_nonce") else None
        if nonce is not None:  # as Discord does: the same author and nonce get the message made before
            with self._lock:
                for made in self.messages.values():
                    if made.get("nonce") == nonce and made.get("channel_id") == m["cid"]:
                        return 200, made, {}
        msg = self.message(channel_id=int(m["cid"]), body=body, files=call.files)
        if nonce is not None:
            msg["nonce"] = nonce
        return 200, msg, {}

    @staticmethod
    def _r_get_message(self: DiscordStub, call: Call, m):
        with self._lock:
            msg = self.messages.get(int(m["mid"]))
        if msg is None:
            return 404, {"message": "Unknown Message", "code": 10008}, {}
        return 200, msg, {}

    @staticmethod
    def _r_edit(self: DiscordStub, call: Call, m):
        msg = self.message(channel_id=int(m["cid"]), body=call.json, files=call.files, mid=int(m["mid"]))
        msg["edited_timestamp"] = now_iso()
        return 200, msg, {}

    @staticmethod
    def _r_dm(self: DiscordStub, call: Call, m):
        rid = int((call.json or {})["recipient_id"])
        return (
            200,
            {
                "id": str(snowflake()),
                "type": 1,
                "last_message_id": None,
                "recipients": [self.user(rid, f"user{rid}", bot=False)],
            },
            {},
        )

    @staticmethod
    def _r_sync(self: DiscordStub, call: Call, m):
        gid = int(m["gid"]) if m["gid"] else None
        out = []
        for cmd in call.json or []:
            c = dict(cmd)
            c.setdefault("type", 1)
            c.setdefault("description", "")
            c.update(id=str(snowflake()), application_id=m["app"], version=str(snowflake()))
            if gid:
                c["guild_id"] = str(gid)
            out.append(c)
        with self._lock:
            self.commands[gid] = out
        return 200, out, {}

    @staticmethod
    def _r_list_cmds(self: DiscordStub, call: Call, m):
        gid = int(m["gid"]) if m["gid"] else None
        with self._lock:
            return 200, list(self.commands.get(gid, [])), {}

    # ------------------------------------------------------------------ dispatch
    def _handle(self, call: Call) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            for i, (meth, rx, status, body, headers) in enumerate(self._overrides):
                if meth == call.method and rx.fullmatch(call.path):
                    del self._overrides[i]
                    return status, body, headers
        for meth, rx, fn in self._routes:
            mm = rx.fullmatch(call.path)
            if meth == call.method and mm:
                return fn(self, call, mm)
        return 404, {"message": "404: Not Found", "code": 0}, {}

    def _record(self, call: Call) -> None:
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()


class _Handler(BaseHTTPRequestHandler):
    stub: DiscordStub
    protocol_version = "HTTP/1.1"  # keep-alive; we always send Content-Length

    def log_message(self, fmt: str, *args: Any) -> None:  # silence
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        if path.startswith("/api/v10"):
            path = path[len("/api/v10") :]
        raw = self._read_body()
        ctype = self.headers.get("Content-Type", "")
        call = Call(
            method=self.command,
            path=path,
            query=parse_qs(url.query),
            headers=dict(self.headers.items()),
            content_type=ctype,
            raw=raw,
        )
        if ctype.startswith("application/json") and raw:
            call.json = json.loads(raw)
        elif ctype.startswith("multipart/"):
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw
            )
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                data = part.get_payload(decode=True) or b""
                if name == "payload_json":
                    call.json = json.loads(data)
                else:
                    call.files.append(
                        {
                            "name": name,
                            "filename": part.get_filename(),
                            "content_type": part.get_content_type(),
                            "data": data,
                        }
                    )
        try:
            status, body, headers = self.stub._handle(call)
        except Exception as e:  # surface stub bugs as 500 with text
            status, body, headers = 599, {"message": f"stub error: {e!r}", "code": 0}, {}
        call.status, call.response = status, body
        self.stub._record(call)
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")  # exactly; no charset (see module doc)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch
