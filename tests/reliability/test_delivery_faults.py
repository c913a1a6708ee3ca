"""Faults between the outbox and Slack: a send that times out after Slack took the message, and a
process killed (SIGKILL) while it posts the weekly digest. Each post must reach its channel once,
in order, with nothing dropped.

The real slack_sdk WebClient talks to the loopback Slack stub, which can do a call's work and
then hold its answer back, as a slow or hung Slack would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from adapters.slack.bot import make_client
from adapters.slack.sender import SlackSender, post_marker
from bot.content import default_content
from bot.domain.journey_map import JourneyMap
from bot.i18n import default_catalogue
from bot.messages import Message
from bot.outbox import SENDING, SENT, SUPERSEDED, Post, Target, drain, enqueue
from bot.scheduler import run_weekly_digest
from bot.services.journey import current_org
from bot.services.setup import apply_journey
from bot.services.tips import subscribe
from bot.store.db import make_session_factory, upgrade
from bot.store.models import Outbox
from tests.conftest import NOW, Clock
from tests.slack_stub import SlackStub
from tests.test_console import CXBOT, cli_env
from tests.test_digest import import_rows, nps_rows
from tests.test_slack import no_proxy, stub

DIGEST_CHANNELS = ("C0DIGEST01", "C0DIGEST02", "C0DIGEST03")


# test_slack's fixtures: loopback requests bypass any proxy, and the Slack stub.
SLACK_FIXTURES = (no_proxy, stub)


def queue_alone(loaded: sessionmaker[Session], *posts: tuple[Target, str, str]) -> None:
    """Queue (target, text, key) posts, the journey's own notices set aside: not this test's."""
    with loaded.begin() as session:
        session.execute(update(Outbox).values(status=SUPERSEDED))
        for target, text, key in posts:
            enqueue(session, target, Message(text=text), key, NOW)


def fault_sender(stub: SlackStub, loaded: sessionmaker[Session]) -> SlackSender:
    """The real WebClient as `cxbot run` makes the sender's (no retries of its own), with a 1 s
    timeout, so that the stub's late answers are timeouts."""
    return SlackSender(make_client("xoxb-faults", stub.api_url, timeout=1, retries=False), loaded, pace=0)


def marked(stub: SlackStub, channel: str, row: Outbox) -> list[dict[str, Any]]:
    """The messages in ``channel`` that carry the mark of the outbox row ``row``."""
    marker = post_marker(Post(row.id, Target("slack", "channel", channel), Message(), "", 0, queued_at=row.created_at))
    return [
        m for m in stub.posted(channel) if (m.get("metadata") or {}).get("event_payload", {}).get("outbox") == marker
    ]


def rows_by_key(session_factory: sessionmaker[Session]) -> dict[str, Outbox]:
    with session_factory() as session:
        return {row.idempotency_key: row for row in session.scalars(select(Outbox))}


# --- a timeout after Slack took the message -----------------------------------------------


def test_a_post_that_timed_out_after_slack_took_it_is_found_not_sent_again(
    loaded: sessionmaker[Session], stub: SlackStub, clock: Clock
) -> None:
    """The first post's answer comes 2 s late against a 1 s client timeout: Slack has the message
    but the sender cannot know. The retry finds it by its metadata key instead of posting a second
    copy; a 500 where Slack did not post is then posted once; a 429 waits its Retry-After; the
    channel reads its posts in order, and another channel is not held back."""
    channel, other = Target("slack", "channel", "C0FAULTS01"), Target("slack", "channel", "C0FAULTS02")
    queue_alone(loaded, *((channel, f"post {n}", f"fault-{n}") for n in range(3)), (other, "elsewhere", "fault-other"))
    sender = fault_sender(stub, loaded)

    stub.delay_next("chat.postMessage", 2.0)
    delivered = drain(loaded, "slack", sender, clock)
    assert [p.message.text for p in delivered] == ["elsewhere"]  # post 0 timed out; post 1 waits behind it
    row = rows_by_key(loaded)["fault-0"]
    assert (row.status, row.delivery_unknown) == ("pending", True)
    assert [m["text"] for m in stub.posted(channel.ref)] == ["post 0"]  # yet Slack has it

    stub.fail_next("chat.postMessage", 500)  # post 1's first try: a 500 before Slack did anything
    throttled, waits = False, set()
    for _ in range(8):  # rounds of the drain, the clock moving past every backoff
        clock.now += timedelta(minutes=1)
        drain(loaded, "slack", sender, clock)
        state = rows_by_key(loaded)
        if state["fault-2"].last_error == "slack: rate limited" and state["fault-2"].status == "pending":
            waits.add(state["fault-2"].next_attempt_at - clock.now)
        if state["fault-1"].status == SENT and not throttled:
            stub.fail_next("chat.postMessage", 429, {"Retry-After": "90"})  # post 2's first try: slow down
            throttled = True

    assert waits == {timedelta(seconds=90), timedelta(seconds=30)}  # Slack's Retry-After, counting down
    assert [m["text"] for m in stub.posted(channel.ref)] == ["post 0", "post 1", "post 2"]
    assert [m["text"] for m in stub.posted(other.ref)] == ["elsewhere"]
    rows = rows_by_key(loaded)
    assert {key: rows[key].status for key in ("fault-0", "fault-1", "fault-2", "fault-other")} == dict.fromkeys(
        ("fault-0", "fault-1", "fault-2", "fault-other"), SENT
    )
    first = stub.posted(channel.ref)[0]
    assert rows["fault-0"].platform_ref == f"{channel.ref}:{first['ts']}"  # the message Slack already had
    assert len(stub.called("conversations.history")) == 2  # looked up: post 0 (found), post 1 (not there)
    assert len(stub.called("chat.postMessage")) == 6  # 4 posts; one answered 500 once, one 429 once


def test_a_direct_message_that_timed_out_is_looked_up_in_the_dm(loaded: sessionmaker[Session], stub: SlackStub) -> None:
    queue_alone(loaded, (Target("slack", "user", "U0NLLEIL05"), "till dig", "dm-1"))
    sender = fault_sender(stub, loaded)
    clock = Clock()
    stub.delay_next("chat.postMessage", 2.0)
    assert drain(loaded, "slack", sender, clock) == []
    clock.now += timedelta(minutes=1)
    assert len(drain(loaded, "slack", sender, clock)) == 1
    assert stub.called("conversations.open")[-1]["users"] == "U0NLLEIL05"
    assert [m["text"] for m in stub.posted("D0NLLEIL05")] == ["till dig"]


def test_a_lookup_that_cannot_be_made_posts_rather_than_holding_the_post_forever(
    loaded: sessionmaker[Session], stub: SlackStub, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a history scope the sender cannot look: it says so in the log and posts. A second
    copy is possible then; a post that never arrives is worse."""
    queue_alone(loaded, (Target("slack", "channel", "C0FAULTS03"), "en gång", "noscope-1"))
    sender = fault_sender(stub, loaded)
    clock = Clock()
    stub.fail_next("chat.postMessage", 502)
    assert drain(loaded, "slack", sender, clock) == []
    stub.fail_next("conversations.history", 200, error="missing_scope")
    clock.now += timedelta(minutes=1)
    assert len(drain(loaded, "slack", sender, clock)) == 1
    assert [m["text"] for m in stub.posted("C0FAULTS03")] == ["en gång"]
    assert any("cannot check whether outbox" in r.getMessage() for r in caplog.records)


# --- SIGKILL while the digest is being posted -----------------------------------------------


@pytest.fixture
def deployed(bare_engine: Engine, example_journey: JourneyMap) -> sessionmaker[Session]:
    """As `loaded`, but migrated by Alembic, as a running `cxbot` expects its database."""
    upgrade(bare_engine)
    session_factory = make_session_factory(bare_engine)
    with session_factory.begin() as session:
        apply_journey(session, example_journey, NOW, default_catalogue(), implicit_platforms=("console",))
    return session_factory


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_bot(bare_engine: Engine, tmp_path: Path, stub: SlackStub) -> subprocess.Popen[str]:
    """`cxbot run --adapter slack --slack-http --no-clock`: its outbox drain posts what is queued."""
    env = {
        **cli_env(bare_engine, tmp_path),
        "SLACK_BOT_TOKEN": "xoxb-kill",
        "SLACK_SIGNING_SECRET": "kill-test-secret",
        "SLACK_API_BASE_URL": stub.api_url,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    port = free_port()
    log = (tmp_path / "bot.log").open("a")
    return subprocess.Popen(
        [CXBOT, "run", "--adapter", "slack", "--slack-http", "--port", str(port), "--no-clock"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(condition: Any, seconds: float, process: subprocess.Popen[str], what: str, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, f"the bot exited ({process.returncode}) waiting for {what}: {log.read_text()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_bot_killed_while_posting_the_digest_posts_it_once_per_channel_after_a_restart(
    bare_engine: Engine, deployed: sessionmaker[Session], stub: SlackStub, tmp_path: Path
) -> None:
    """Three channels take the digest. Slack takes the second channel's post and the bot is
    killed (SIGKILL) before the answer arrives: channel 1 is recorded as sent, channel 2 is on
    Slack but not recorded, channel 3 never left. After a restart (and the lease running out,
    which is simulated by moving the rows' lease end into the past instead of waiting 2 minutes),
    every channel has the digest exactly once, with its chart once."""
    now = datetime.now(UTC)
    with deployed.begin() as session:
        session.execute(update(Outbox).values(status=SUPERSEDED))  # the journey's own notices
        org = current_org(session)
        assert org is not None
        for channel in DIGEST_CHANNELS:
            subscribe(session, org, "slack", channel, ("digest",), 1, now)
    last_week_day = (now - timedelta(days=7)).date().isoformat()
    import_rows(deployed, nps_rows(last_week_day, 30, 10, 10))
    assert run_weekly_digest(deployed, lambda: now, default_content()) == len(DIGEST_CHANNELS)
    # Each channel also gets the week's journey picture after the digest: this test follows the digests.
    queued = rows_by_key(deployed).items()
    keys = {row.target_ref: key for key, row in queued if row.status == "pending" and key.startswith("digest:")}
    assert set(keys) == set(DIGEST_CHANNELS)

    stub.delay_next("chat.postMessage", 0.0)  # channel 1: answered at once
    stub.delay_next("chat.postMessage", 20.0)  # channel 2: taken, then the answer hangs
    first = start_bot(bare_engine, tmp_path, stub)
    try:
        wait_for(
            lambda: len(stub.called("chat.postMessage")) == 2, 60, first, "the second digest post", tmp_path / "bot.log"
        )
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    rows = rows_by_key(deployed)
    assert [rows[keys[c]].status for c in DIGEST_CHANNELS] == [SENT, SENDING, SENDING]
    assert len(marked(stub, DIGEST_CHANNELS[1], rows[keys[DIGEST_CHANNELS[1]]])) == 1  # on Slack, unrecorded

    with deployed.begin() as session:  # the lease runs out
        session.execute(
            update(Outbox).where(Outbox.status == SENDING).values(next_attempt_at=datetime.now(UTC) - timedelta(1))
        )
    second = start_bot(bare_engine, tmp_path, stub)
    try:
        wait_for(
            lambda: all(row.status == SENT for key, row in rows_by_key(deployed).items() if key in keys.values()),
            60,
            second,
            "every digest post recorded as sent",
            tmp_path / "bot.log",
        )
    finally:
        second.terminate()
        second.wait(20)

    uploads = [c["channel_id"] for c in stub.called("files.completeUploadExternal")]
    rows = rows_by_key(deployed)
    for channel in DIGEST_CHANNELS:
        messages = marked(stub, channel, rows[keys[channel]])
        assert len(messages) == 1, (channel, messages)
        assert rows[keys[channel]].platform_ref == f"{channel}:{messages[0]['ts']}"
        charts = [c for c in stub.called("files.completeUploadExternal") if c.get("thread_ts") == messages[0]["ts"]]
        assert len(charts) == 1, (channel, uploads)  # the chart beside it, once (the picture is a post of its own)
    digest_calls = [
        c
        for c in stub.called("chat.postMessage")
        if any(
            (c.get("metadata") or {}).get("event_payload", {}).get("outbox")
            == post_marker(Post(rows[keys[ch]].id, Target("slack", "channel", ch), Message(), "", 0,
                                queued_at=rows[keys[ch]].created_at))
            for ch in DIGEST_CHANNELS
        )
    ]
    assert len(digest_calls) == 3  # channel 2 was found, not posted again
