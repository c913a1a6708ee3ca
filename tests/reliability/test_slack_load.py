"""Load: 1 000 signed `/cx report` requests to the Slack HTTP endpoint from concurrent clients,
each delivered three times as a retrying Slack would. Exactly 1 000 issues, one routed post to
each issue's team channel, every request acknowledged within Slack's 3 seconds.

Loopback only, bounded in count and time (the test stops by itself): the real threaded WSGI
server, the real slack-bolt app, the Slack API stub for the answers.
"""

from __future__ import annotations

import json
import random
import statistics
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adapters.slack.bot import SlackBot, make_client
from adapters.web.runtime import serve_slack
from bot.app import CxApp
from bot.store.models import Issue, Outbox
from tests.slack_stub import SlackStub

REPORTS = 1000
DELIVERIES = 3
CLIENTS = 8
SECRET = "load-secret"
ACK_LIMIT = 3.0
TOUCHPOINTS = ["monthly-invoice", "mobile-app", "chat", "support-phone", "installer-visit", "website", "order-form"]
FIGURES = Path(__file__).parent / "figures"


def body(i: int, response_url: str) -> str:
    chance = random.Random(i)
    words = " ".join("".join(chance.choice("abcdefghijklmnopqrstuvwxyzåäö") for _ in range(8)) for _ in range(6))
    return urlencode(
        {
            "command": "/cx",
            "text": f"report {TOUCHPOINTS[i % len(TOUCHPOINTS)]}: Lasttest {i} {words}",
            "user_id": "U0NLLEIL05",
            "channel_id": "C0NLCXCX007",
            "team_id": "T0NL",
            "trigger_id": f"load-{i}",
            "response_url": response_url,
        }
    )


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> SlackStub:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = SlackStub()
    yield server  # type: ignore[misc]
    server.close()


def test_a_thousand_reports_delivered_three_times_make_a_thousand_issues(
    loaded: sessionmaker[Session], stub: SlackStub
) -> None:
    core = CxApp(loaded, run_later=lambda task: None)
    bot = SlackBot(core, make_client("xoxb-load", stub.api_url), signing_secret=SECRET)
    server = serve_slack(bot.app)
    url = f"http://127.0.0.1:{server.port}/slack/events"
    response_url = f"{stub.base}/respond/load"
    deliveries = [(i, attempt) for i in range(REPORTS) for attempt in range(DELIVERIES)]
    random.Random(7).shuffle(deliveries)  # retries arrive interleaved with first deliveries

    def deliver(item: tuple[int, int]) -> tuple[int, float]:
        i, attempt = item
        raw = body(i, response_url)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=timestamp, body=raw),
        }
        if attempt:
            headers.update({"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_timeout"})
        started = time.perf_counter()
        request = urllib.request.Request(url, data=raw.encode(), headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
            return answer.status, time.perf_counter() - started

    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(deliver, deliveries))
        acked = time.perf_counter() - started
        assert bot.wait_idle(timeout=300), "every acknowledged report was answered"
        done = time.perf_counter() - started
    finally:
        server.stop()
        bot.close()
    latencies = sorted(seconds for _, seconds in results)
    assert {status for status, _ in results} == {200}
    assert latencies[-1] < ACK_LIMIT, f"slowest ack {latencies[-1]:.2f} s"
    with loaded() as session:
        issues = session.scalar(select(func.count()).select_from(Issue)) or 0
        routed = session.execute(
            select(Outbox.topic, func.count())
            .where(Outbox.topic.like("issue:%:routed"), Outbox.platform == "slack", Outbox.target_kind == "channel")
            .group_by(Outbox.topic)
        ).all()
    assert issues == REPORTS
    assert len(routed) == REPORTS and {n for _, n in routed} == {1}  # one post to each issue's team channel
    assert len(stub.called("response_url")) == REPORTS  # each report answered once, retries by nothing
    figures = {
        "database": loaded.kw["bind"].dialect.name,
        "requests": len(results),
        "acks_per_second": round(len(results) / acked, 1),
        "reports_stored_per_second": round(REPORTS / done, 1),
        "ack_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "ack_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        "ack_max_ms": round(latencies[-1] * 1000, 1),
    }
    FIGURES.mkdir(exist_ok=True)
    (FIGURES / f"slack_load_{figures['database']}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))
