"""The web server of a real `cxbot run --adapter slack --slack-http` process, probed as anyone on
the internet could: unsigned, stale and forged requests, huge bodies, slow and idle connections,
what a refused request leaves in the log, the database away, and SIGTERM in a burst of traffic.

Every test waits on conditions with generous deadlines, except where the deadline is the thing
tested (a refusal that must come before the body is read; a probe that must answer within its
timeout)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.i18n import default_catalogue
from bot.store.db import make_engine, make_session_factory
from bot.store.models import Issue, Outbox
from tests.slack_stub import SlackStub
from tests.test_cli import cxbot
from tests.test_console import CXBOT, cli_env

SECRET = "web-test-secret"
LEILA, TEAM = "U0NLLEIL05", "T0NL"
EXAMPLE = Path(__file__).parent.parent.parent / "content" / "journey.example.yaml"
UNAVAILABLE = default_catalogue().text("sv", "common.database_unavailable")
# Test settings: short timeouts, so that the tests that wait for them end soon.
LIMITS = {
    "CXBOT_WEB_HEADER_TIMEOUT": "3",
    "CXBOT_WEB_BODY_TIMEOUT": "3",
    "CXBOT_WEB_MAX_BODY": str(1024 * 1024),
}


def words(i: int) -> str:
    """Distinct descriptions, so that no report is taken for a +1 to another."""
    chance = random.Random(i)
    return " ".join("".join(chance.choice("abcdefghijklmnopqrstuvwxyzåäö") for _ in range(8)) for _ in range(6))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@dataclass
class Bot:
    process: subprocess.Popen[str]
    port: int
    log: Path
    stub: SlackStub
    sessions: sessionmaker[Session]
    response_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.response_url = f"{self.stub.base}/respond/web"

    def connect(self, timeout: float = 30) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = self.connect()
        try:
            connection.request(method, path, body=body, headers=headers or {})
            answer = connection.getresponse()
            return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
        finally:
            connection.close()

    def command_body(self, text: str, i: int = 0) -> bytes:
        fields = {
            "command": "/cx",
            "text": text,
            "user_id": LEILA,
            "channel_id": "C0NLCXCX007",
            "team_id": TEAM,
            "trigger_id": f"trigger-{i}-{time.monotonic_ns()}",
            "response_url": self.response_url,
            "token": "verification-token-xyz",
        }
        return urlencode(fields).encode()

    def slack(self, raw: bytes, *, secret: str = SECRET, at: int | None = None, sign: bool = True) -> int:
        timestamp = str(at if at is not None else int(time.time()))
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if sign:
            headers["X-Slack-Request-Timestamp"] = timestamp
            headers["X-Slack-Signature"] = SignatureVerifier(secret).generate_signature(
                timestamp=timestamp, body=raw.decode()
            )
        return self.request("POST", "/slack/events", raw, headers)[0]

    def rss_peak_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))

    def count(self, model: type) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0


def start_bot(
    bare_engine: Engine, tmp_path: Path, stub: SlackStub, extra: dict[str, str] | None = None, url: str | None = None
) -> Bot:
    env = {
        **cli_env(bare_engine, tmp_path),
        "SLACK_BOT_TOKEN": "xoxb-web",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_BASE_URL": stub.api_url,
        "NO_PROXY": "127.0.0.1,localhost",
        "CXBOT_LOG_LEVEL": "INFO",
        "CXBOT_DATABASE_WAIT": "5",
        **LIMITS,
        **(extra or {}),
    }
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    assert cxbot("journey", "load", str(EXAMPLE), env=env, cwd=tmp_path).returncode == 0
    if url is not None:
        env["CXBOT_DATABASE_URL"] = url
    port = free_port()
    log = tmp_path / "bot.log"
    process = subprocess.Popen(
        [CXBOT, "run", "--adapter", "slack", "--slack-http", "--port", str(port), "--no-clock"],
        cwd=tmp_path,
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    bot = Bot(process, port, log, stub, make_session_factory(bare_engine))

    def answers() -> bool:
        assert process.poll() is None, f"the bot exited ({process.returncode}): {log.read_text()}"
        with contextlib.suppress(OSError):
            return bot.request("GET", "/healthz")[0] == 200
        return False

    wait_until(answers, 90, "the web server")
    return bot


def stop_bot(bot: Bot) -> int:
    if bot.process.poll() is None:
        bot.process.send_signal(signal.SIGTERM)
        try:
            bot.process.wait(60)
        except subprocess.TimeoutExpired:
            bot.process.kill()
            bot.process.wait()
    return int(bot.process.returncode)


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStub]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = SlackStub()
    yield server
    server.close()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """What the web server refuses does not depend on the database: these run on SQLite."""
    engine = make_engine(f"sqlite:///{tmp_path}/web.db")
    yield engine
    engine.dispose()


@pytest.fixture
def bot(sqlite_engine: Engine, tmp_path: Path, stub: SlackStub) -> Iterator[Bot]:
    running = start_bot(sqlite_engine, tmp_path, stub)
    try:
        yield running
    finally:
        stop_bot(running)


# --- health, readiness, metrics, headers ----------------------------------------------------


def test_health_readiness_and_metrics_answer_with_security_headers(bot: Bot) -> None:
    status, headers, body = bot.request("GET", "/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, headers, body = bot.request("GET", "/readyz")
    assert status == 200, body
    assert json.loads(body)["checks"] == {"database": True, "migrations": True, "platform:slack": True}
    assert bot.slack(bot.command_body("help")) == 200
    wait_until(lambda: bot.stub.called("response_url"), 30, "the answer to /cx help")
    status, headers, body = bot.request("GET", "/metrics")
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert 'cxbot_commands_total{command="help",outcome="ok"} 1.0' in text
    assert "cxbot_command_seconds_bucket" in text and "cxbot_outbox_rows" in text
    assert "cxbot_database_up 1.0" in text
    for path in ("/healthz", "/readyz", "/metrics", "/nowhere", "/slack/events"):
        method = "POST" if path == "/slack/events" else "GET"
        status, headers, _ = bot.request(method, path, b"" if method == "POST" else None)
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["referrer-policy"] == "no-referrer" and headers["cache-control"] == "no-store"
        assert "server" not in headers


# --- before the signature is checked --------------------------------------------------------


def test_unsigned_stale_and_forged_requests_are_refused_and_their_log_holds_none_of_their_fields(bot: Bot) -> None:
    raw = bot.command_body("report anonymous faktura: hemlig text om kunden")
    assert bot.slack(raw, sign=False) == 401
    assert bot.slack(raw, at=int(time.time()) - 600) == 401
    assert bot.slack(raw, secret="not-the-secret") == 401
    assert bot.count(Issue) == 0
    assert bot.stub.called("auth.test") == [] and bot.stub.called("response_url") == []
    log = bot.log.read_text()
    refusals = [line for line in log.splitlines() if "refused a request" in line]
    assert len(refusals) == 3 and all(f"({len(raw)} bytes)" in line for line in refusals)
    for secret_part in (LEILA, "hemlig", "respond/web", "verification-token-xyz", "C0NLCXCX007", "trigger-"):
        assert secret_part not in log, secret_part


def test_a_10_mb_body_is_refused_before_it_is_read(bot: Bot) -> None:
    with socket.create_connection(("127.0.0.1", bot.port), timeout=30) as conn:
        started = time.monotonic()
        conn.sendall(
            b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 10485760\r\n\r\n" + b"a" * 1000
        )
        answer = conn.recv(4096)
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert elapsed < 5, f"413 after {elapsed:.1f} s: the body must not be waited for"
    assert "body too large (10485760 bytes)" in bot.log.read_text()


def send_chunked(port: int, total: int, chunk: int = 1024 * 1024) -> bytes:
    """Stream ``total`` bytes as a chunked body (no Content-Length), reading the answer on
    another thread, as it may come while the body is still being sent."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=60)
    answer = bytearray()

    def read() -> None:
        with contextlib.suppress(OSError):
            while part := conn.recv(65536):
                answer.extend(part)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        conn.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        block = f"{chunk:x}\r\n".encode() + b"p" * chunk + b"\r\n"
        for _ in range(total // chunk):
            conn.sendall(block)
        conn.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # refused and closed while sending: the answer came first
    reader.join(60)
    conn.close()
    return bytes(answer)


def test_a_64_mib_streamed_body_is_refused_with_memory_bounded(bot: Bot) -> None:
    before = max(bot.rss_peak_kib(), bot.rss_kib())
    started = time.monotonic()
    answer = send_chunked(bot.port, 64 * 1024 * 1024)
    elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    grown_mib = (bot.rss_peak_kib() - before) / 1024
    assert grown_mib < 32, f"peak memory grew by {grown_mib:.0f} MiB for a refused 64 MiB body"
    assert bot.count(Issue) == 0
    print(json.dumps({"body_mib": 64, "answer": 413, "seconds": round(elapsed, 2), "peak_growth_mib": grown_mib}))


def test_a_client_sending_a_byte_a_second_is_dropped_while_a_signed_command_answers(bot: Bot) -> None:
    slow = socket.create_connection(("127.0.0.1", bot.port), timeout=60)
    slow.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
    dropped = threading.Event()
    answer = bytearray()

    def trickle() -> None:
        try:
            for _ in range(100):
                slow.sendall(b"a")
                time.sleep(1)
        except OSError:
            pass

    def read() -> None:
        with contextlib.suppress(OSError):
            while part := slow.recv(4096):
                answer.extend(part)
        dropped.set()

    started = time.monotonic()
    threading.Thread(target=trickle, daemon=True).start()
    threading.Thread(target=read, daemon=True).start()
    time.sleep(1)  # the trickle has begun
    before = len(bot.stub.called("response_url"))
    asked = time.monotonic()
    assert bot.slack(bot.command_body("help")) == 200
    assert time.monotonic() - asked < 2.5, "a signed command is answered while the slow client trickles"
    wait_until(lambda: len(bot.stub.called("response_url")) > before, 30, "the answer to /cx help")
    assert dropped.wait(30), "the slow client is dropped"
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert time.monotonic() - started < 30
    slow.close()


def test_a_thousand_idle_connections_do_not_stop_a_signed_command_and_the_cap_holds(
    sqlite_engine: Engine, tmp_path: Path, stub: SlackStub
) -> None:
    bot = start_bot(sqlite_engine, tmp_path, stub, {"CXBOT_WEB_MAX_CONNECTIONS": "1100"})
    idle: list[socket.socket] = []
    try:
        for i in range(1000):
            conn = socket.create_connection(("127.0.0.1", bot.port), timeout=30)
            if i % 2:  # half send a request head that never ends, half send nothing
                conn.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\n")
            idle.append(conn)
        asked = time.monotonic()
        assert bot.slack(bot.command_body("help")) == 200
        took = time.monotonic() - asked
        wait_until(lambda: bot.stub.called("response_url"), 30, "the answer to /cx help")
        # The cap: past 1 100 connections a request is refused at once, not left waiting.
        for _ in range(150):
            idle.append(socket.create_connection(("127.0.0.1", bot.port), timeout=30))
        assert bot.request("GET", "/healthz")[0] == 503
        # The header timeout frees them all: the server closes every idle connection.
        for conn in idle:
            conn.settimeout(30)
            with contextlib.suppress(ConnectionResetError):
                assert conn.recv(1) == b""
        assert bot.request("GET", "/healthz")[0] == 200
        print(json.dumps({"idle_connections": 1000, "signed_command_ack_seconds": round(took, 3)}))
    finally:
        for conn in idle:
            conn.close()
        assert stop_bot(bot) == 0


# --- the database away ------------------------------------------------------------------------


def test_with_the_database_away_readyz_says_so_healthz_answers_and_a_command_hears_nothing_was_saved(
    tmp_path: Path, stub: SlackStub
) -> None:
    from tests.conftest import postgres_engine_in_fresh_schema, require_postgres
    from tests.reliability.test_database_outage import proxied_url
    from tests.tcp_proxy import TcpProxy

    require_postgres()
    direct, drop = postgres_engine_in_fresh_schema()
    with direct.connect() as connection:
        schema = str(connection.exec_driver_sql("select current_schema()").scalar())
    proxy = TcpProxy(str(direct.url.host or "127.0.0.1"), int(direct.url.port or 5432))
    bot = None
    try:
        bot = start_bot(direct, tmp_path, stub, url=proxied_url(schema, proxy.port))
        assert bot.request("GET", "/readyz")[0] == 200
        proxy.cut()
        asked = time.monotonic()
        status, _, body = bot.request("GET", "/readyz")
        took = time.monotonic() - asked
        assert status == 503 and "database" in json.loads(body)["not_ready"]
        assert took < 4, f"/readyz took {took:.1f} s; its timeout is 2 s"
        assert b"127.0.0.1" not in body and b"postgres" not in body
        assert bot.request("GET", "/healthz")[0] == 200
        assert bot.slack(bot.command_body("report faktura: Dubbla fakturor")) == 200
        wait_until(lambda: bot.stub.called("response_url"), 60, "the answer")
        answer = json.dumps(bot.stub.called("response_url")[-1], ensure_ascii=False)
        assert UNAVAILABLE in answer
        proxy.restore()
        wait_until(lambda: bot.request("GET", "/readyz")[0] == 200, 60, "ready again")
        assert bot.count(Issue) == 0
    finally:
        if bot is not None:
            stop_bot(bot)
        proxy.close()
        direct.dispose()
        drop()


# --- SIGTERM ------------------------------------------------------------------------------------


def test_sigterm_in_a_burst_of_200_reports_acknowledges_or_refuses_each_and_half_writes_nothing(
    bare_engine: Engine, tmp_path: Path, stub: SlackStub
) -> None:
    bot = start_bot(bare_engine, tmp_path, stub)
    try:
        _burst_and_sigterm(bot)
    finally:
        stop_bot(bot)


def _burst_and_sigterm(bot: Bot) -> None:
    outcomes: list[str] = []
    acked = threading.Semaphore(0)

    def one(i: int) -> str:
        raw = bot.command_body(f"report faktura: Skur {i} {words(i)}", i)
        try:
            status = bot.slack(raw)
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            return f"refused:{type(exc).__name__}"
        if status == 200:
            acked.release()
        return str(status)

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(one, i) for i in range(200)]
        for _ in range(40):
            assert acked.acquire(timeout=120), "the burst started"
        os.kill(bot.process.pid, signal.SIGTERM)
        outcomes = [f.result(timeout=120) for f in futures]
    assert bot.process.wait(60) == 0, bot.log.read_text()[-3000:]
    assert set(outcomes) <= {"200", "503"} | {o for o in outcomes if o.startswith("refused:")}, set(outcomes)
    ok = outcomes.count("200")
    assert ok >= 40
    with bot.sessions() as session:
        issues = session.scalars(select(Issue.id)).all()
        routed = set(session.scalars(select(Outbox.topic).where(Outbox.topic.like("issue:%:routed"))).all())
        sending = session.scalar(select(func.count()).select_from(Outbox).where(Outbox.status == "sending"))
    assert len(issues) == ok, "every acknowledged report was stored, and nothing else"
    assert all(f"issue:{n}:routed" in routed for n in issues), "each issue has its routed posts"
    assert sending == 0, "the drain finished or handed back what it was sending"
    assert "Traceback" not in bot.log.read_text()
    print(json.dumps({"requests": 200, "acknowledged": ok, "refused": 200 - ok}))
