"""A loopback stand-in for the Slack Web API (plus file upload URLs and response URLs) that
records every call and can be told to answer 429 or 500, or to do a call's work and then hold
its answer back (as a slow or hung Slack would). The real slack_sdk WebClient talks to
it over HTTP, exactly as it would talk to slack.com."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

Answer = tuple[int, dict[str, str], Any]


class SlackStub:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.overrides: dict[str, list[Answer]] = {}  # method → answers to give first, in order
        self.delays: dict[str, list[float]] = {}  # method → seconds to hold the next answers back
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) → message, for history
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self.clock: Callable[[], float] = time.time  # Slack's clock, for message timestamps
        self._files = itertools.count(1)
        # apps.connections.open's answer: the URL of a Socket Mode server (tests/socket_mode_stub.py)
        self.socket_mode_url: Callable[[], str] | None = None
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                content_type = self.headers.get("Content-Type", "")
                body: Any
                if self.path.startswith("/api/"):
                    method = self.path[len("/api/") :].split("?")[0]
                    if content_type.startswith("application/json"):
                        body = json.loads(raw or b"{}")
                    else:
                        body = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
                elif self.path.startswith("/upload/"):
                    method, body = "upload", raw
                elif self.path.startswith("/respond/"):
                    method, body = "response_url", json.loads(raw or b"{}")
                else:
                    method, body = "unknown", raw
                with stub._lock:
                    stub.calls.append({"method": method, "body": body, "headers": dict(self.headers)})
                    queued = stub.overrides.get(method)
                    override = queued.pop(0) if queued else None
                    waits = stub.delays.get(method)
                    delay = waits.pop(0) if waits else 0.0
                status, headers, answer = override if override is not None else (200, {}, stub.answer(method, body))
                if delay:
                    time.sleep(delay)  # the work is done; only the answer is late
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.api_url = self.base + "/api/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def called(self, method: str) -> list[Any]:
        with self._lock:
            return [c["body"] for c in self.calls if c["method"] == method]

    def fail_next(self, method: str, status: int, headers: dict[str, str] | None = None, error: str = "") -> None:
        body = {"ok": False, "error": error or ("ratelimited" if status == 429 else "internal_error")}
        self.overrides.setdefault(method, []).append((status, headers or {}, body))

    def delay_next(self, method: str, seconds: float) -> None:
        self.delays.setdefault(method, []).append(seconds)

    def posted(self, channel: str | None = None) -> list[dict[str, Any]]:
        """The messages in channels (not thread replies), oldest first."""
        with self._lock:
            found = [m for (c, _), m in self.messages.items() if channel in (None, c) and not m.get("thread_ts")]
        return sorted(found, key=lambda m: m["ts"])

    def answer(self, method: str, body: Any) -> Any:
        if method == "apps.connections.open":  # Socket Mode: called with the app-level token
            if self.socket_mode_url is None:
                return {"ok": False, "error": "invalid_auth"}
            return {"ok": True, "url": self.socket_mode_url()}
        if method == "auth.test":
            return {"ok": True, "team_id": "T0NL", "user_id": "UBOT", "bot_id": "BBOT", "user": "cxbot"}
        if method == "chat.postMessage":
            ts = f"{int(self.clock())}.{next(self._ts):06d}"
            channel = str(body.get("channel"))
            channel = "D" + channel[1:] if channel.startswith("U") else channel  # a user's DM
            metadata = body.get("metadata")
            metadata = json.loads(metadata) if isinstance(metadata, str) else metadata
            self.messages[(channel, ts)] = {
                "ts": ts,
                "channel": channel,
                "text": body.get("text", ""),
                "user": "UBOT",
                **({"metadata": metadata} if metadata else {}),
            }
            return {"ok": True, "channel": channel, "ts": ts, "message": {"ts": ts, "text": body.get("text", "")}}
        if method == "chat.update":
            return {"ok": True, "channel": body.get("channel"), "ts": body.get("ts")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1700000001.{next(self._ts):06d}"}
        if method in ("views.open", "views.publish", "views.update"):
            view = body.get("view")
            return {"ok": True, "view": {"id": "V1", **(json.loads(view) if isinstance(view, str) else view or {})}}
        if method == "conversations.open":
            user = str(body.get("users"))
            return {"ok": True, "channel": {"id": "D" + user[1:]}}
        if method == "conversations.history" and not body.get("latest"):  # newest first, as Slack
            channel, oldest = str(body.get("channel")), str(body.get("oldest") or "0")
            with_metadata = body.get("include_all_metadata") in ("1", "true", True)
            found = [
                {k: v for k, v in m.items() if k != "metadata" or with_metadata}
                for m in reversed(self.posted(channel))
                if float(m["ts"]) > float(oldest)
            ]
            return {"ok": True, "messages": found, "has_more": False}
        if method == "conversations.history":  # the channel's own messages: not those in threads
            found = self.messages.get((str(body.get("channel")), str(body.get("latest"))))
            in_channel = found is not None and not found.get("thread_ts")
            return {"ok": True, "messages": [found] if in_channel else [], "has_more": False}
        if method == "conversations.replies":  # as Slack does: the thread's parent comes first
            found = self.messages.get((str(body.get("channel")), str(body.get("ts"))))
            parent = {"ts": found.get("thread_ts"), "text": "the thread's first message"} if found else None
            return {"ok": True, "messages": [m for m in (parent, found) if m], "has_more": False}
        if method == "chat.getPermalink":
            ts = str(body.get("message_ts", "")).replace(".", "")
            return {"ok": True, "permalink": f"https://nordljus.slack.com/archives/{body.get('channel')}/p{ts}"}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._files):04d}"
            return {"ok": True, "upload_url": f"{self.base}/upload/{file_id}", "file_id": file_id}
        if method == "upload":
            return {"ok": True}
        if method == "files.completeUploadExternal":
            files = json.loads(body["files"])
            parent = self.messages.get((str(body.get("channel_id")), str(body.get("thread_ts"))))
            if parent is not None:  # a file shared into a thread is a reply to it
                parent["reply_count"] = int(parent.get("reply_count") or 0) + 1
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}
        return {"ok": True}
