"""The outbox: one row per post, never twice, retried with backoff, recovered after a crash."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot import outbox
from bot.messages import Button, Message
from bot.outbox import DeliveryError, Post, Target, claim, drain, enqueue
from bot.store.models import Outbox, Person, Team
from tests.conftest import NOW, Clock

HELLO = Message(header="Hello", text="world", buttons=[Button(action_id="x:1", label="X")])
CHANNEL = Target("console", "channel", "#web")


class RecordingSender:
    def __init__(self, fail_with: DeliveryError | Exception | None = None) -> None:
        self.sent: list[Post] = []
        self.fail_with = fail_with

    def send(self, post: Post) -> str | None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(post)
        return f"ref-{post.id}"


def rows(session_factory: sessionmaker[Session]) -> list[Outbox]:
    with session_factory() as session:
        return list(session.scalars(select(Outbox).order_by(Outbox.id)))


def test_same_key_is_queued_once(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        assert enqueue(session, CHANNEL, HELLO, "k1", NOW) is True
        assert enqueue(session, CHANNEL, HELLO, "k1", NOW) is False
    with session_factory.begin() as session:
        assert enqueue(session, CHANNEL, HELLO, "k1", NOW) is False
    assert len(rows(session_factory)) == 1


def test_drain_delivers_and_records_the_reference(session_factory: sessionmaker[Session], clock: Clock) -> None:
    with session_factory.begin() as session:
        enqueue(session, CHANNEL, HELLO, "k1", NOW)
        enqueue(session, Target("slack", "channel", "C1"), HELLO, "k2", NOW)
    sender = RecordingSender()
    delivered = drain(session_factory, "console", sender, clock)
    assert [p.idempotency_key for p in delivered] == ["k1"]
    assert sender.sent[0].message == HELLO  # the payload survives the JSON round trip
    [console_row, slack_row] = rows(session_factory)
    assert (console_row.status, console_row.platform_ref, console_row.sent_at) == (
        "sent",
        f"ref-{console_row.id}",
        NOW,
    )
    assert slack_row.status == "pending"
    assert drain(session_factory, "console", sender, clock) == []


def test_retryable_failure_backs_off_then_succeeds(session_factory: sessionmaker[Session], clock: Clock) -> None:
    with session_factory.begin() as session:
        enqueue(session, CHANNEL, HELLO, "k1", NOW)
    failing = RecordingSender(DeliveryError("429 rate limited", retryable=True, retry_after=30))
    assert drain(session_factory, "console", failing, clock) == []
    [row] = rows(session_factory)
    assert (row.status, row.attempts, row.next_attempt_at, row.last_error) == (
        "pending",
        1,
        NOW + timedelta(seconds=30),
        "429 rate limited",
    )
    ok = RecordingSender()
    assert drain(session_factory, "console", ok, clock) == []  # not due yet
    clock.now = NOW + timedelta(seconds=31)
    assert len(drain(session_factory, "console", ok, clock)) == 1
    assert rows(session_factory)[0].status == "sent"


def test_permanent_failure_and_exhausted_retries_end_failed(
    session_factory: sessionmaker[Session], clock: Clock
) -> None:
    with session_factory.begin() as session:
        enqueue(session, CHANNEL, HELLO, "permanent", NOW)
    drain(
        session_factory,
        "console",
        RecordingSender(DeliveryError("channel_not_found", retryable=False)),
        clock,
    )
    assert rows(session_factory)[0].status == "failed"

    with session_factory.begin() as session:
        enqueue(session, CHANNEL, HELLO, "flaky", NOW)
    broken = RecordingSender(RuntimeError("sender bug"))
    for _ in range(outbox.MAX_ATTEMPTS):
        clock.now += timedelta(hours=1)
        drain(session_factory, "console", broken, clock)
    flaky = rows(session_factory)[1]
    assert (flaky.status, flaky.attempts) == ("failed", outbox.MAX_ATTEMPTS)
    assert "sender bug" in (flaky.last_error or "")


def test_backoff_grows_and_is_capped() -> None:
    waits = [outbox.backoff(n).total_seconds() for n in range(1, 10)]
    assert waits[:4] == [5, 10, 20, 40]
    assert max(waits) == 600


def test_a_sender_that_died_mid_post_is_retried_after_the_lease(
    session_factory: sessionmaker[Session], clock: Clock
) -> None:
    with session_factory.begin() as session:
        enqueue(session, CHANNEL, HELLO, "k1", NOW)
    [claimed] = claim(session_factory, "console", NOW)  # ...and the process dies here
    assert claim(session_factory, "console", NOW + timedelta(seconds=30)) == []
    clock.now = NOW + outbox.LEASE + timedelta(seconds=1)
    sender = RecordingSender()
    drain(session_factory, "console", sender, clock)
    assert [p.id for p in sender.sent] == [claimed.id]
    assert rows(session_factory)[0].attempts == 2


def test_posts_fan_out_to_every_identity_and_channel(loaded: sessionmaker[Session]) -> None:
    with loaded.begin() as session:
        anna = session.scalar(select(Person).where(Person.key == "anna"))
        web = session.scalar(select(Team).where(Team.key == "web"))
        assert anna is not None and web is not None
        people = outbox.post_to_person(session, anna, lambda lang: HELLO, "sv", "dm:1", NOW)
        teams = outbox.post_to_team(session, web, lambda lang: HELLO, "sv", "team:1", NOW)
        again = outbox.post_to_person(session, anna, lambda lang: HELLO, "sv", "dm:1", NOW)
        assert (people, teams, again) == (3, 3, 0)  # slack, discord, console each
        targets = session.execute(
            select(Outbox.platform, Outbox.target_kind).where(Outbox.idempotency_key.like("dm:1:%"))
        ).all()
        assert sorted(targets) == [("console", "user"), ("discord", "user"), ("slack", "user")]


@pytest.mark.postgres
def test_concurrent_senders_never_claim_the_same_row(pg_session_factory: sessionmaker[Session]) -> None:
    session_factory = pg_session_factory
    with session_factory.begin() as session:
        for n in range(200):  # 200 places: posts to one place go one at a time, in order
            enqueue(session, Target("console", "channel", f"#c{n}"), HELLO, f"k{n}", NOW)
    claimed: list[list[int]] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        mine: list[int] = []
        while batch := claim(session_factory, "console", NOW, limit=7):
            mine += [p.id for p in batch]
        claimed.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    everything = [i for mine in claimed for i in mine]
    assert len(everything) == 200
    assert len(set(everything)) == 200
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Outbox).where(Outbox.attempts != 1)) == 0


def test_a_late_result_does_not_undo_a_later_senders_delivery(
    session_factory: sessionmaker[Session], clock: Clock
) -> None:
    with session_factory.begin() as session:
        enqueue(session, CHANNEL, HELLO, "k1", NOW)
    [slow] = claim(session_factory, "console", NOW)  # sender A stalls past its lease
    clock.now = NOW + outbox.LEASE + timedelta(seconds=1)
    delivered = drain(session_factory, "console", RecordingSender(), clock)  # sender B delivers it
    assert len(delivered) == 1
    outbox.record_failure(session_factory, slow, DeliveryError("timeout", retryable=True), clock())  # A wakes up
    outbox.record_sent(session_factory, slow, "late-ref", clock())
    [row] = rows(session_factory)
    assert (row.status, row.platform_ref, row.attempts) == ("sent", f"ref-{row.id}", 2)
    assert drain(session_factory, "console", RecordingSender(), clock) == []  # never posted a third time


def test_a_post_whose_senders_keep_dying_is_given_up(session_factory: sessionmaker[Session], clock: Clock) -> None:
    with session_factory.begin() as session:
        enqueue(session, CHANNEL, HELLO, "k1", NOW)
    for _ in range(outbox.MAX_ATTEMPTS):
        assert len(claim(session_factory, "console", clock())) == 1  # ...and the sender dies each time
        clock.now += outbox.LEASE + timedelta(seconds=1)
    assert claim(session_factory, "console", clock()) == []
    [row] = rows(session_factory)
    assert (row.status, row.attempts) == ("failed", outbox.MAX_ATTEMPTS)


def test_edits_wait_for_their_post_and_only_the_newest_is_shown(
    session_factory: sessionmaker[Session], clock: Clock
) -> None:
    with session_factory.begin() as session:
        enqueue(session, CHANNEL, HELLO, "post", NOW, topic="t")
        outbox.edit_posts(session, "t", lambda lang: HELLO.model_copy(update={"text": "v2"}), "sv", "v2", NOW)
    sender = RecordingSender()
    # The edit waits: the post it edits has no reference yet, so only the post goes out.
    first = claim(session_factory, "console", NOW)
    assert [p.idempotency_key for p in first] == ["post"]
    outbox.record_sent(session_factory, first[0], "ref-post", NOW)
    with session_factory.begin() as session:
        outbox.edit_posts(session, "t", lambda lang: HELLO.model_copy(update={"text": "v3"}), "sv", "v3", NOW)
    drain(session_factory, "console", sender, clock)
    assert [(p.edit_ref, p.message.text) for p in sender.sent] == [("ref-post", "v3")]
    assert [r.status for r in rows(session_factory)] == ["sent", "superseded", "sent"]


def test_an_edit_of_a_failed_post_fails_too(session_factory: sessionmaker[Session], clock: Clock) -> None:
    with session_factory.begin() as session:
        enqueue(session, CHANNEL, HELLO, "post", NOW, topic="t")
    drain(session_factory, "console", RecordingSender(DeliveryError("channel_not_found", retryable=False)), clock)
    with session_factory.begin() as session:
        outbox.edit_posts(session, "t", lambda lang: HELLO, "sv", "v2", NOW)
    assert drain(session_factory, "console", RecordingSender(), clock) == []
    assert [r.status for r in rows(session_factory)] == ["failed", "failed"]
    with session_factory() as session:
        assert outbox.pending_count(session, "console") == 0


def test_posts_to_one_place_keep_their_order_through_failures(
    session_factory: sessionmaker[Session], clock: Clock
) -> None:
    """A post that fails (429, 500, a timeout) holds back the ones queued behind it for the same
    place, so a channel reads its posts in the order they were written; other places go on."""
    with session_factory.begin() as session:
        for n in range(6):
            enqueue(session, CHANNEL, Message(text=f"post {n}"), f"order-{n}", NOW)
        enqueue(session, Target("console", "channel", "#other"), Message(text="elsewhere"), "other", NOW)

    class Flaky:
        def __init__(self) -> None:
            self.sent: list[str] = []
            self.failures = {"post 1": 2, "post 4": 1}  # post 1 fails twice, post 4 once

        def send(self, post: Post) -> str:
            text = post.message.text or ""
            if self.failures.get(text):
                self.failures[text] -= 1
                raise DeliveryError("HTTP 500", retryable=True)
            self.sent.append(text)
            return f"ref-{post.id}"

    sender = Flaky()
    for _ in range(40):  # rounds of the drain, the clock moving past every backoff
        drain(session_factory, "console", sender, clock)
        clock.now += timedelta(minutes=5)
    assert [t for t in sender.sent if t != "elsewhere"] == [f"post {n}" for n in range(6)]
    assert sender.sent.index("elsewhere") < sender.sent.index("post 2")  # not held back by #cx
    assert all(row.status == "sent" for row in rows(session_factory))


def test_a_batch_that_outlives_most_of_its_lease_hands_the_rest_back(
    session_factory: sessionmaker[Session], clock: Clock
) -> None:
    """Slow answers (a minute each) use up the batch's two-minute lease: what is left is handed
    back unsent, attempt not counted, rather than sent when another sender may have it."""
    with session_factory.begin() as session:
        for n in range(4):
            enqueue(session, Target("console", "channel", f"#c{n}"), Message(text=f"post {n}"), f"slow-{n}", NOW)

    class Slow:
        def __init__(self) -> None:
            self.sent: list[str] = []

        def send(self, post: Post) -> str:
            clock.now += timedelta(minutes=1)
            self.sent.append(post.message.text or "")
            return f"ref-{post.id}"

    sender = Slow()
    assert len(drain(session_factory, "console", sender, clock)) == 2  # at 2 minutes, 75 % is gone
    state = {row.idempotency_key: (row.status, row.attempts) for row in rows(session_factory)}
    assert [state[f"slow-{n}"] for n in range(4)] == [("sent", 1), ("sent", 1), ("pending", 0), ("pending", 0)]
    assert len(drain(session_factory, "console", sender, clock)) == 2
    assert sender.sent == [f"post {n}" for n in range(4)]


def test_a_drain_told_to_stop_finishes_its_current_post_and_hands_the_rest_back(
    session_factory: sessionmaker[Session], clock: Clock
) -> None:
    """SIGTERM mid-batch: the post being sent is finished and recorded; the rest of the batch is
    handed back, due at once, its attempt not counted, for the next process."""
    with session_factory.begin() as session:
        for n in range(4):
            enqueue(session, Target("console", "channel", f"#c{n}"), Message(text=f"post {n}"), f"stop-{n}", NOW)
    stop = threading.Event()

    class StoppedWhileSending:
        def __init__(self) -> None:
            self.sent: list[str] = []

        def send(self, post: Post) -> str:
            stop.set()  # the signal arrives while the first post is on its way
            self.sent.append(post.message.text or "")
            return f"ref-{post.id}"

    sender = StoppedWhileSending()
    assert len(drain(session_factory, "console", sender, clock, stop=stop)) == 1
    state = {row.idempotency_key: (row.status, row.attempts) for row in rows(session_factory)}
    assert [state[f"stop-{n}"] for n in range(4)] == [("sent", 1), ("pending", 0), ("pending", 0), ("pending", 0)]
    assert sender.sent == ["post 0"]


def test_the_delivery_loop_outlasts_a_very_long_outage(clock: Clock) -> None:
    """Thousands of failed rounds in a row (a database down for hours): the wait between rounds
    stays capped and the loop keeps going, until the database answers again."""
    stop = threading.Event()

    class Down:
        rounds = 0

        def begin(self) -> None:
            Down.rounds += 1
            if Down.rounds >= 1_500:
                stop.set()
            raise ConnectionError("the database is away")

    loop = threading.Thread(
        target=outbox.drain_until, args=(Down(), "console", None, clock, stop, 0.0, 0.0), daemon=True
    )
    loop.start()
    loop.join(30)
    assert not loop.is_alive() and Down.rounds >= 1_500  # it stopped because it was told to, not by a crash
