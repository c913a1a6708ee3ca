"""Two `cxbot run` processes on one PostgreSQL, as two `bot` dynos behind a load balancer would
be: reports reach either, some twice (one delivery to each process), both drain the outbox to
Slack and both run the clock. No report is stored twice, no post is sent twice, and only one
clock leads. PostgreSQL only: SQLite is one machine's database."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine, func, select

from bot.store.db import make_session_factory
from bot.store.models import Issue, Outbox
from tests.slack_stub import SlackStub

SECRET = "two-process-secret"
REPORTS = 200
TWICE = 50  # of them delivered to both processes
TOUCHPOINTS = ["monthly-invoice", "mobile-app", "chat", "support-phone", "installer-visit", "website"]
FIGURES = Path(__file__).parent / "figures"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[str], deadline: float) -> None:
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None:
                raise AssertionError(process.communicate()) from None
            time.sleep(0.2)
    raise AssertionError(f"port {port} never opened")


def words(i: int) -> str:
    """Distinct descriptions, so that no report is taken for a +1 to another."""
    chance = random.Random(i)
    return " ".join("".join(chance.choice("abcdefghijklmnopqrstuvwxyzåäö") for _ in range(8)) for _ in range(6))


def signed(i: int, response_url: str) -> tuple[bytes, dict[str, str]]:
    raw = urlencode(
        {
            "command": "/cx",
            "text": f"report {TOUCHPOINTS[i % len(TOUCHPOINTS)]}: Tvåprocess {i} {words(i)}",
            "user_id": "U0NLLEIL05",
            "channel_id": "C0NLCXCX007",
            "team_id": "T0NL",
            "trigger_id": f"two-{i}",
            "response_url": response_url,
        }
    )
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=timestamp, body=raw)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
    }
    return raw.encode(), headers


@pytest.mark.postgres
def test_two_bot_processes_on_one_postgresql_post_nothing_twice(
    bare_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_cli import cxbot
    from tests.test_console import CXBOT, cli_env

    if bare_engine.dialect.name != "postgresql":
        pytest.skip("two processes share a PostgreSQL")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    stub = SlackStub()
    env = {
        **cli_env(bare_engine, tmp_path),
        "SLACK_BOT_TOKEN": "xoxb-two",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_BASE_URL": stub.api_url,
        "NO_PROXY": "127.0.0.1,localhost",
        "CXBOT_LOG_LEVEL": "INFO",
    }
    example = Path(__file__).parent.parent.parent / "content" / "journey.example.yaml"
    assert cxbot("journey", "load", str(example), env=env, cwd=tmp_path).returncode == 0
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [CXBOT, "run", "--adapter", "slack", "--slack-http", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for port in ports
    ]
    outputs: list[str] = []
    try:
        deadline = time.time() + 90
        for port, process in zip(ports, processes, strict=True):
            wait_for_port(port, process, deadline)
        response_url = f"{stub.base}/respond/two"
        deliveries = [(i, ports[i % 2]) for i in range(REPORTS)]
        deliveries += [(i, ports[(i + 1) % 2]) for i in range(TWICE)]  # the same request, to the other process

        def deliver(item: tuple[int, int]) -> float:
            i, port = item
            raw, headers = signed(i, response_url)
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/slack/events", data=raw, headers=headers, method="POST"
            )
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=30) as answer:
                assert answer.status == 200
            return time.perf_counter() - started

        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            latencies = sorted(pool.map(deliver, deliveries))
        acked = time.perf_counter() - started
        sessions = make_session_factory(bare_engine)

        def outbox_settled() -> bool:
            with sessions() as session:
                waiting = session.scalar(
                    select(func.count())
                    .select_from(Outbox)
                    .where(Outbox.platform == "slack", Outbox.status.in_(("pending", "sending")))
                )
                issues = session.scalar(select(func.count()).select_from(Issue))
            return waiting == 0 and issues == REPORTS and len(stub.called("response_url")) >= REPORTS

        while time.time() < deadline + 120 and not outbox_settled():
            time.sleep(0.5)
        delivered = time.perf_counter() - started
        with sessions() as session:
            state = {
                "issues": session.scalar(select(func.count()).select_from(Issue)),
                "waiting": session.execute(
                    select(Outbox.status, func.count()).where(Outbox.platform == "slack").group_by(Outbox.status)
                ).all(),
                "answers": len(stub.called("response_url")),
            }
        assert outbox_settled(), f"every report stored and answered, every post delivered: {state}"
        with sessions() as session:
            sent_rows = session.scalar(
                select(func.count()).select_from(Outbox).where(Outbox.platform == "slack", Outbox.status == "sent")
            )
            routed = session.execute(
                select(Outbox.topic, func.count())
                .where(Outbox.topic.like("issue:%:routed"), Outbox.platform == "slack", Outbox.target_kind == "channel")
                .group_by(Outbox.topic)
            ).all()
        posts = stub.called("chat.postMessage")
        assert len(posts) == sent_rows, (len(posts), sent_rows)  # each row posted once, by one process
        assert len(routed) == REPORTS and {n for _, n in routed} == {1}
        answers = Counter(json.dumps(a.get("blocks"), sort_keys=True) for a in stub.called("response_url"))
        assert len(stub.called("response_url")) == REPORTS and max(answers.values()) == 1
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                outputs.append(process.communicate(timeout=20)[1])
            except subprocess.TimeoutExpired:
                process.kill()
                outputs.append(process.communicate()[1])
        stub.close()
    leaders = sum(output.count("clock: this process leads") for output in outputs)
    assert leaders == 1, "one clock leads; the other waits for the lease"
    figures: dict[str, Any] = {
        "processes": 2,
        "reports": REPORTS,
        "deliveries": len(deliveries),
        "acks_per_second": round(len(deliveries) / acked, 1),
        "ack_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        "stored_answered_and_posted_per_second": round(REPORTS / delivered, 1),
        "slack_posts": len(posts),
    }
    FIGURES.mkdir(exist_ok=True)
    (FIGURES / "two_processes_postgresql.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))
