"""Slack's HTTP mode under load: the web server cxbot ships against the one it replaced, and
cxbot's `/cx report` against a bare slack-bolt app whose `/cx` only acknowledges, in one run.

Three servers, each serving both apps on 127.0.0.1:
- **wsgiref** (the old server: the standard library's threaded WSGI server with Bolt's WSGI
  adapter; its code lives here now, and only here),
- **uvicorn + Starlette, Bolt's handler**: ``slack_bolt.adapter.starlette.SlackRequestHandler``
  as shipped, which calls the synchronous ``App.dispatch`` on the event loop,
- **uvicorn + Starlette, cxbot's**: the same adapter with dispatch in the thread pool (what
  ``cxbot run`` serves, adapters/web).

The load generator runs in a process of its own (no GIL shared with the servers): signed
requests, as Slack sends them, from ``--clients`` threads, each on a keep-alive connection where
the server allows one. The time measured is what Slack waits for: request sent → ack received.
Then ``/healthz`` alone, and the idle memory of a real ``cxbot run`` with Slack and Discord
pointed at the loopback stubs.

    .venv/bin/python benchmarks/slack_http.py --requests 1000 --clients 16 [--db postgresql]

Targets: cxbot ≥ 85 % of the bare app's throughput on the same server, p99 ack < 50 ms with 16
clients; /healthz ≥ 2 000 requests/s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import CollectorRegistry
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import SlackRequestHandler as BoltStarletteHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler as BoltWsgiHandler
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.routing import Route

from adapters.slack.bot import SlackBot, make_client
from adapters.web.app import WebParts, build_app
from adapters.web.runtime import DEFAULTS, serve_slack
from adapters.web.server import WebServer
from bot.app import CxApp
from bot.domain.journey_map import load_journey_file
from bot.i18n import default_catalogue
from bot.services.setup import apply_journey
from bot.store.db import make_engine, make_session_factory, upgrade
from bot.store.models import Issue
from tests.slack_stub import SlackStub

SECRET = "bench-secret"
EXAMPLE = Path(__file__).resolve().parent.parent / "content" / "journey.example.yaml"
TOUCHPOINTS = ["faktura", "app", "chatt", "kundtjänst", "installatörsbesök", "webbplats", "offert", "avtal"]


WORDS = (
    "kunden",
    "fakturan",
    "appen",
    "chatten",
    "telefonkön",
    "installatören",
    "avtalet",
    "priset",
    "leveransen",
    "mätaren",
    "sms",
    "inloggningen",
    "kvittot",
    "beställningen",
    "offerten",
    "avbrottet",
    "solpanelerna",
    "betalningen",
    "påminnelsen",
    "webbplatsen",
    "kundtjänst",
    "väntetid",
    "fel",
    "dubbel",
    "saknas",
    "långsam",
    "otydlig",
    "trasig",
    "försenad",
    "glömd",
)


def report_body(i: int, response_url: str) -> str:
    """Distinct descriptions, so that each report is a new issue (not a "+1 to #N?" draft)."""
    chance = random.Random(i)
    description = " ".join(chance.choice(WORDS) for _ in range(8)) + f" (fall {i})"
    return urlencode(
        {
            "command": "/cx",
            "text": f"report {TOUCHPOINTS[i % len(TOUCHPOINTS)]}: {description}",
            "user_id": "U0NLLEIL05",
            "channel_id": "C0NLCXCX007",
            "team_id": "T0NL",
            "trigger_id": f"t{i}",
            "response_url": response_url,
        }
    )


# --- the load generator, in a process of its own ---------------------------------------------


def _client_run(
    port: int, path: str, bodies: list[str] | None, count: int, clients: int
) -> tuple[float, list[float], int]:
    """POST the signed bodies (or GET ``path`` ``count`` times) from ``clients`` threads."""
    jobs = list(range(len(bodies) if bodies is not None else count))
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    resets: list[str] = []

    def worker() -> None:
        connection: http.client.HTTPConnection | None = None
        while True:
            with lock:
                if not jobs:
                    break
                job = jobs.pop()
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            headers: dict[str, str] = {}
            raw = None
            if bodies is not None:
                raw = bodies[job].encode()
                timestamp = str(int(time.time()))
                signature = SignatureVerifier(SECRET).generate_signature(timestamp=timestamp, body=bodies[job])
                headers = {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Slack-Request-Timestamp": timestamp,
                    "X-Slack-Signature": signature,
                }
            started = time.perf_counter()
            try:
                connection.request("POST" if raw is not None else "GET", path, body=raw, headers=headers)
                answer = connection.getresponse()
                answer.read()
                status = answer.status
                closing = answer.getheader("connection", "").lower() == "close" or answer.version == 10
            except (OSError, http.client.HTTPException) as exc:
                # wsgiref's listen backlog is 5: with more clients, connections are reset. Slack
                # would retry; so does this client, and the retries are reported.
                connection.close()
                connection = None
                with lock:
                    resets.append(type(exc).__name__)
                    if len(resets) > 1000:
                        errors.append(type(exc).__name__)
                        break
                    jobs.append(job)
                continue
            took = time.perf_counter() - started
            if status != 200:
                errors.append(f"HTTP {status}")
            with lock:
                latencies.append(took)
            if closing:
                connection.close()
                connection = None

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. {errors[:3]}")
    return wall, latencies, len(resets)


# --- the three servers ---------------------------------------------------------------------


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class OldWsgiServer:
    """The server cxbot shipped until the web server: wsgiref, a thread per connection."""

    def __init__(self, app: App) -> None:
        self.server = make_server(
            "127.0.0.1",
            0,
            BoltWsgiHandler(app, path="/slack/events"),
            server_class=_ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def bolt_on_the_loop(app: App) -> WebServer:
    """uvicorn + Starlette with Bolt's Starlette handler as shipped (dispatch on the event loop)."""
    handler = BoltStarletteHandler(app)

    async def events(request: Request) -> Any:
        return await handler.handle(request)

    parts = WebParts(
        registry=CollectorRegistry(), checks={}, extra_routes=[Route("/slack/events", events, methods=["POST"])]
    )
    asgi = build_app(parts, max_body=DEFAULTS.web_max_body, body_timeout=DEFAULTS.web_body_timeout)
    return WebServer(asgi, "127.0.0.1", 0).start()


SERVERS: dict[str, Callable[[App], Any]] = {
    "wsgiref (old)": OldWsgiServer,
    "uvicorn+starlette, Bolt's handler on the loop": bolt_on_the_loop,
    "uvicorn+starlette, cxbot (thread pool)": serve_slack,
}


def settle(bot: SlackBot) -> float:
    """Wait until every acknowledged command has been answered; returns the seconds waited."""
    started = time.perf_counter()
    bot.wait_idle(timeout=600)
    return time.perf_counter() - started


def summary(name: str, wall: float, latencies: list[float]) -> dict[str, float | str]:
    ordered = sorted(latencies)
    return {
        "app": name,
        "requests/s": round(len(latencies) / wall, 1),
        "p50 ms": round(statistics.median(ordered) * 1000, 1),
        "p99 ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
    }


def idle_rss_of_cxbot_run(scratch: str, stub: SlackStub) -> dict[str, Any]:
    """Start a real `cxbot run` with Slack (HTTP mode) and Discord, both pointed at loopback stubs,
    wait until it serves /readyz's database check, let it settle, and read its resident memory."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.discord_stub import DiscordStub

    discord_stub = DiscordStub().start()
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CXBOT_", "SLACK_", "DISCORD_"))},
        "CXBOT_DATABASE_URL": f"sqlite:///{scratch}/idle.db",
        "SLACK_BOT_TOKEN": "xoxb-idle",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_BASE_URL": stub.api_url,
        "DISCORD_TOKEN": "idle.discord.token",
        "NO_PROXY": "127.0.0.1,localhost",
        "CXBOT_LOG_LEVEL": "WARNING",
    }
    cxbot = str(Path(sys.executable).with_name("cxbot"))
    subprocess.run([cxbot, "journey", "load", str(EXAMPLE)], env=env, cwd=scratch, check=True, capture_output=True)
    # discord.py has no setting for its API's address: point it at the stub before cxbot starts.
    boot = (
        "import sys, discord.http; discord.http.Route.BASE = sys.argv.pop(1); "
        "from bot.cli import main; sys.argv[0] = 'cxbot'; main()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", boot, discord_stub.api_base, "run", "--slack-http", "--port", str(port), "--no-clock"],
        env=env,
        cwd=str(Path(__file__).resolve().parent.parent),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("cxbot run never answered /healthz")
        time.sleep(5)  # idle: the drains poll, the Discord client waits
        status = Path(f"/proc/{process.pid}/status").read_text()
        rss = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
        threads = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))
        return {"idle_rss_mib": round(rss / 1024, 1), "threads": threads}
    finally:
        process.terminate()
        process.wait(60)
        discord_stub.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--health-requests", type=int, default=10000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--no-idle", action="store_true", help="Skip the idle memory of `cxbot run`.")
    args = parser.parse_args()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(name, None)
    os.environ["NO_PROXY"] = "127.0.0.1"

    scratch = tempfile.mkdtemp(prefix="cxbot-bench-")
    url = (
        f"sqlite:///{scratch}/bench.db"
        if args.db == "sqlite"
        else os.environ.get("CXBOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    )
    engine = make_engine(url)
    if args.db == "postgresql":
        from sqlalchemy import text

        schema = f"bench_{os.getpid()}"
        with engine.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        engine = make_engine(f"{url}?options=-csearch_path%3D{schema}")
    upgrade(engine)
    sessions = make_session_factory(engine)
    journey = load_journey_file(str(EXAMPLE)).journey
    assert journey is not None
    with sessions.begin() as session:
        apply_journey(session, journey, datetime.now(UTC), default_catalogue(), ())

    stub = SlackStub()  # answers the one auth.test each app makes on its first request
    client = WebClient(token="xoxb-bench", base_url=stub.api_url)
    core = CxApp(sessions, run_later=lambda task: None)  # classification etc. off the measured path
    cxbot = SlackBot(core, make_client("xoxb-bench", stub.api_url), signing_secret=SECRET)
    bare = App(client=client, signing_secret=SECRET, token_verification_enabled=False)
    bare.command("/cx")(lambda ack: ack())

    response_url = f"{stub.base}/respond/bench"
    pool = multiprocessing.get_context("spawn").Pool(1)
    first = 0
    rows: list[dict[str, Any]] = []
    ends: dict[str, float] = {}
    health: dict[str, Any] = {}
    try:
        for server_name, serve in SERVERS.items():
            for app_name, bolt in (("bare slack-bolt (ack only)", bare), ("cxbot /cx report", cxbot.app)):
                server = serve(bolt)
                try:
                    warm = [report_body(10_000_000 + first + i, response_url) for i in range(min(50, args.requests))]
                    _ = pool.apply(_client_run, (server.port, "/slack/events", warm, 0, args.clients))
                    first += len(warm)
                    if bolt is cxbot.app:
                        settle(cxbot)
                    bodies = [report_body(first + i, response_url) for i in range(args.requests)]
                    first += args.requests
                    wall, latencies, resets = pool.apply(
                        _client_run, (server.port, "/slack/events", bodies, 0, args.clients)
                    )
                    if bolt is cxbot.app:  # the answers follow the acks: time until the last is sent
                        ends[server_name] = wall + settle(cxbot)
                    if serve is serve_slack and bolt is bare:
                        pool.apply(_client_run, (server.port, "/healthz", None, 500, args.clients))  # warm
                        h_wall, h_lat, _ = pool.apply(
                            _client_run, (server.port, "/healthz", None, args.health_requests, args.clients)
                        )
                        health = summary("/healthz (cxbot's server)", h_wall, h_lat)
                finally:
                    server.stop()
                rows.append({"server": server_name, **summary(app_name, wall, latencies), "resets": resets})
    finally:
        pool.close()
    idle = {} if args.no_idle else idle_rss_of_cxbot_run(scratch, stub)
    stub.close()
    with sessions() as session:
        issues = session.scalar(select(func.count()).select_from(Issue)) or 0
    if args.db == "postgresql":
        from sqlalchemy import text

        with make_engine(url).begin() as connection:
            connection.execute(text(f"DROP SCHEMA bench_{os.getpid()} CASCADE"))
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"database: {args.db}; {args.requests} requests from {args.clients} clients; {os.cpu_count()} cores")
    print(f"issues stored: {issues}")
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
    for server_name in SERVERS:
        bare_row, cx_row = [r for r in rows if r["server"] == server_name]
        ratio = float(cx_row["requests/s"]) / float(bare_row["requests/s"])
        print(
            f"{server_name}: cxbot = {ratio:.0%} of bare (target ≥ 85 %), cxbot p99 {cx_row['p99 ms']} ms "
            f"(target < 50 ms); all reports stored and answered after {ends[server_name]:.1f} s"
        )
    print(json.dumps(health), "(target ≥ 2000 requests/s)")
    if idle:
        print(json.dumps({"cxbot run, Slack HTTP + Discord, idle": idle}))


if __name__ == "__main__":
    main()
