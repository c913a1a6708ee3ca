"""`/cx report` through Slack's HTTP mode, against a bare slack-bolt app that only acknowledges.

Both apps are served by the same threaded WSGI server (adapters.slack.runtime.serve_http's kind)
on 127.0.0.1 and driven by the same load generator: signed requests, as Slack sends them, from a
few concurrent clients. The time measured is what Slack waits for: request sent → ack received.
cxbot's ack carries the reply, after the issue, its event and its routed posts are committed.

    .venv/bin/python benchmarks/slack_http.py --requests 1000 --clients 4 [--db postgresql]

Target: cxbot reaches at least 70 % of the bare app's throughput, with p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import func, select

from adapters.slack.bot import SlackBot, make_client
from adapters.slack.runtime import serve_http
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


def signed_headers(raw: str) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=timestamp, body=raw),
    }


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


def drive(url: str, requests: int, clients: int, response_url: str, first: int = 0) -> tuple[float, list[float]]:
    """Send the requests from ``clients`` threads; returns (wall seconds, per-request seconds)."""
    bodies = [report_body(first + i, response_url) for i in range(requests)]

    def one(raw: str) -> float:
        request = urllib.request.Request(url, data=raw.encode(), headers=signed_headers(raw), method="POST")
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
            if answer.status != 200:
                raise RuntimeError(f"HTTP {answer.status}")
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(one, bodies))
    return time.perf_counter() - started, latencies


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
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

    results = []
    response_url = f"{stub.base}/respond/bench"
    warmup = min(50, args.requests)
    done_wall = 0.0
    for name, bolt in (("bare slack-bolt (ack only)", bare), ("cxbot /cx report", cxbot.app)):
        server, _ = serve_http(bolt, host="127.0.0.1", port=0)
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/slack/events"
        try:
            drive(endpoint, warmup, args.clients, response_url, first=10_000_000)  # warm up both alike
            if bolt is cxbot.app:
                settle(cxbot)
            wall, latencies = drive(endpoint, args.requests, args.clients, response_url)
            if bolt is cxbot.app:  # the answers follow the acks: time until the last is sent
                done_wall = wall + settle(cxbot)
        finally:
            server.shutdown()
            server.server_close()
        results.append(summary(name, wall, latencies))
    stub.close()
    with sessions() as session:
        issues = session.scalar(select(func.count()).select_from(Issue)) or 0
    answered = len(stub.called("response_url"))
    print(f"issues stored: {issues} of {args.requests + warmup} reports; answers sent: {answered}")
    print(
        f"cxbot: all {args.requests} reports stored and answered in {done_wall:.2f} s = "
        f"{args.requests / done_wall:.1f} reports/s end to end"
    )
    if args.db == "postgresql":
        from sqlalchemy import text

        with make_engine(url).begin() as connection:
            connection.execute(text(f"DROP SCHEMA bench_{os.getpid()} CASCADE"))
    ratio = float(results[1]["requests/s"]) / float(results[0]["requests/s"])
    print(f"database: {args.db}; {args.requests} requests from {args.clients} clients; {os.cpu_count()} cores")
    for row in results:
        print(json.dumps(row, ensure_ascii=False))
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"cxbot throughput = {ratio:.0%} of the bare app's (target ≥ 70 %); p99 target < 100 ms")


if __name__ == "__main__":
    main()
