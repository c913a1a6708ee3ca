"""Every outgoing post is a row first; adapters drain the rows of their platform.

A use case enqueues in the same transaction as its state change, so a crash either loses both
or keeps both. The idempotency key makes a repeated job or a retried event a no-op. A sender
claims rows with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), posts, and records the
platform's reference; a row whose sender died mid-post is claimed again when its lease runs out.
Such a row, or one whose send timed out, may already be on the platform: it is marked, and the
sender looks for it (by a key it posted with) before posting again, so a post is made once.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from bot.messages import Message
from bot.store.db import driver_reason, insert_for
from bot.store.models import Identity, Outbox, Person, Team, TeamChannel
from bot.telemetry import error_class, telemetry

log = logging.getLogger(__name__)

PENDING, SENDING, SENT, FAILED, SUPERSEDED = "pending", "sending", "sent", "failed", "superseded"
MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=2)


@dataclass(frozen=True)
class Target:
    platform: str
    kind: str  # "channel" | "user"
    ref: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.kind}:{self.ref}"

    @property
    def for_log(self) -> str:
        """A channel by its id; a person not by their chat id (no log line says who someone is:
        the right to erasure cannot reach log files). The outbox row's id tells the rest."""
        return str(self) if self.kind == "channel" else f"{self.platform}:{self.kind}"


@dataclass(frozen=True)
class Post:
    """A claimed row, handed to a sender."""

    id: int
    target: Target
    message: Message
    idempotency_key: str
    attempts: int
    # Set when this post edits an earlier one: that post's platform reference.
    edit_ref: str | None = None
    # An earlier attempt may have reached the platform: look for it before posting again.
    maybe_delivered: bool = False
    queued_at: datetime | None = None

    @property
    def mark(self) -> str:
        """What a sender posts with so that a retry can find (or the platform can refuse) an
        earlier attempt: the outbox row, hashed. The row, not its key: an erasure may rewrite a
        key that named the person, and the post must still be found."""
        queued = self.queued_at.isoformat() if self.queued_at else ""
        return hashlib.sha256(f"cxbot-outbox:{self.id}:{queued}".encode()).hexdigest()


class DeliveryError(Exception):
    """``maybe_delivered``: the platform may have taken the post before the failure showed (a
    timeout waiting for its answer, a dropped connection, a 5xx), so a retry must look first."""

    def __init__(
        self, reason: str, *, retryable: bool, retry_after: float | None = None, maybe_delivered: bool = False
    ) -> None:
        super().__init__(reason)
        self.retryable = retryable
        self.retry_after = retry_after
        self.maybe_delivered = maybe_delivered


class Sender(Protocol):
    """The one-method seam between the outbox and a platform."""

    def send(self, post: Post) -> str | None:
        """Deliver the post; return the platform's message reference, or raise DeliveryError."""
        ...


@dataclass(frozen=True)
class Queued:
    """One post to queue: where, what, and the key that makes it happen once."""

    target: Target
    message: Message
    key: str
    topic: str | None = None
    update_of: int | None = None
    language: str | None = None


def enqueue_many(session: Session, posts: Sequence[Queued], now: datetime) -> int:
    """Queue posts in one statement; those whose key was queued before are skipped.

    Returns how many were new. One multi-row INSERT … ON CONFLICT DO NOTHING keeps a routed
    issue (a channel and a person on three platforms) at one round trip to the database.
    """
    if not posts:
        return 0
    rows = [
        {
            "topic": post.topic,
            "language": post.language,
            "update_of_id": post.update_of,
            "idempotency_key": post.key,
            "platform": post.target.platform,
            "target_kind": post.target.kind,
            "target_ref": post.target.ref,
            "payload": post.message.model_dump(mode="json", exclude_defaults=True),
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for post in posts
    ]
    statement = (
        insert_for(session, Outbox)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        # rowcount after ON CONFLICT is not dependable across drivers; returned ids are.
        .returning(Outbox.id)
    )
    return len(session.execute(statement).all())


def enqueue(
    session: Session,
    target: Target,
    message: Message,
    key: str,
    now: datetime,
    *,
    topic: str | None = None,
    update_of: int | None = None,
    language: str | None = None,
) -> bool:
    """Queue one post; False when the key was queued before (nothing is written then)."""
    return enqueue_many(session, [Queued(target, message, key, topic, update_of, language)], now) == 1


def person_targets(session: Session, person: Person) -> list[Target]:
    identities = session.scalars(select(Identity).where(Identity.person_id == person.id).order_by(Identity.platform))
    return [Target(i.platform, "user", i.external_user_id) for i in identities]


def team_targets(session: Session, team: Team) -> list[Target]:
    channels = session.scalars(select(TeamChannel).where(TeamChannel.team_id == team.id).order_by(TeamChannel.platform))
    return [Target(c.platform, "channel", c.channel_ref) for c in channels]


def post_to_targets(
    session: Session,
    targets: Sequence[Target],
    compose: Callable[[str], Message],
    language: str,
    key: str,
    now: datetime,
    topic: str | None = None,
) -> int:
    """Queue one message, written in ``language``, to each target; returns how many were new."""
    message = compose(language)
    return enqueue_many(session, [Queued(t, message, f"{key}:{t}", topic, None, language) for t in targets], now)


def without_post_about(session: Session, topic: str, targets: Sequence[Target]) -> list[Target]:
    """The targets that hold no post about ``topic`` yet. A routed post is made once per place
    (a person's DM, a team's channel) and edited in place after: a second one would show the
    same issue twice, and every later change would edit both."""
    held = {
        Target(platform, kind, ref)
        for platform, kind, ref in session.execute(
            select(Outbox.platform, Outbox.target_kind, Outbox.target_ref).where(
                Outbox.topic == topic, Outbox.update_of_id.is_(None)
            )
        )
    }
    return [target for target in targets if target not in held]


def post_to_person(
    session: Session,
    person: Person,
    compose: Callable[[str], Message],
    language: str,
    key: str,
    now: datetime,
    topic: str | None = None,
) -> int:
    """Queue a direct message on every platform where the person has an identity."""
    return post_to_targets(session, person_targets(session, person), compose, language, key, now, topic)


def post_to_team(
    session: Session,
    team: Team,
    compose: Callable[[str], Message],
    language: str,
    key: str,
    now: datetime,
    topic: str | None = None,
) -> int:
    """Queue a post in the team's channel on every platform where it has one."""
    return post_to_targets(session, team_targets(session, team), compose, language, key, now, topic)


def edit_posts(
    session: Session,
    topic: str,
    compose: Callable[[str], Message],
    fallback_language: str,
    key: str,
    now: datetime,
) -> int:
    """Queue an edit of every post about ``topic`` (not of earlier edits), each in its language."""
    originals = session.scalars(
        select(Outbox).where(Outbox.topic == topic, Outbox.update_of_id.is_(None)).order_by(Outbox.id)
    ).all()
    messages: dict[str, Message] = {}
    posts = []
    for row in originals:
        language = row.language or fallback_language
        if language not in messages:
            messages[language] = compose(language)
        posts.append(
            Queued(
                Target(row.platform, row.target_kind, row.target_ref),
                messages[language],
                f"{key}:edit:{row.id}",
                topic,
                row.id,
                language,
            )
        )
    return enqueue_many(session, posts, now)


def claim(session_factory: sessionmaker[Session], platform: str, now: datetime, limit: int = 50) -> list[Post]:
    """Take up to ``limit`` due rows for one platform under a lease, in their own transaction."""
    original, earlier = aliased(Outbox), aliased(Outbox)
    with session_factory.begin() as session:
        # An edit of a post that could not be delivered has nothing to edit: it fails with it.
        session.execute(
            update(Outbox)
            .where(
                Outbox.platform == platform,
                Outbox.status == PENDING,
                Outbox.update_of_id.in_(select(original.id).where(original.status.in_((FAILED, SUPERSEDED)))),
            )
            .values(status=FAILED, last_error="the post it edits was never delivered")
            .execution_options(synchronize_session=False)
        )
        due = (
            select(Outbox)
            .outerjoin(original, Outbox.update_of_id == original.id)
            .where(
                Outbox.platform == platform,
                Outbox.status.in_((PENDING, SENDING)),
                Outbox.next_attempt_at <= now,
                # An edit waits until the post it edits has been delivered.
                or_(Outbox.update_of_id.is_(None), original.status == SENT),
                # New posts to one place go out in order: none overtakes an earlier one still
                # waiting (a retry after 429 or 500 holds back what was queued behind it). Edits
                # only wait for the post they edit.
                or_(
                    Outbox.update_of_id.is_not(None),
                    ~exists().where(
                        earlier.platform == Outbox.platform,
                        earlier.target_kind == Outbox.target_kind,
                        earlier.target_ref == Outbox.target_ref,
                        earlier.id < Outbox.id,
                        earlier.update_of_id.is_(None),
                        earlier.status.in_((PENDING, SENDING)),
                    ),
                ),
            )
            .order_by(Outbox.id)
            .limit(limit)
            .with_for_update(of=Outbox, skip_locked=True)
        )
        rows = session.scalars(due).all()
        edit_targets = {r.update_of_id for r in rows if r.update_of_id}
        edited = {
            row.id: row.platform_ref for row in session.scalars(select(Outbox).where(Outbox.id.in_(edit_targets)))
        }
        newest_edit = dict(
            session.execute(
                select(Outbox.update_of_id, func.max(Outbox.id))
                .where(Outbox.update_of_id.in_(edit_targets))
                .group_by(Outbox.update_of_id)
            ).all()
        )
        posts = []
        for row in rows:
            if row.update_of_id and row.id < newest_edit.get(row.update_of_id, row.id):
                # A later edit shows a later state; this one would only overwrite it with an older one.
                row.status, row.last_error = SUPERSEDED, None
                continue
            if row.attempts >= MAX_ATTEMPTS:
                # Its senders kept dying mid-post (nobody recorded a result): stop trying.
                row.status, row.last_error = FAILED, row.last_error or "no sender finished delivering it"
                continue
            if row.status == SENDING:
                # Its lease ran out: the sender that held it died or hung, perhaps after posting.
                row.delivery_unknown = True
            row.status = SENDING
            row.attempts += 1
            # While sending, next_attempt_at is the lease's end: past it, another sender may retry.
            row.next_attempt_at = now + LEASE
            posts.append(
                Post(
                    id=row.id,
                    target=Target(row.platform, row.target_kind, row.target_ref),
                    message=Message.model_validate(row.payload),
                    idempotency_key=row.idempotency_key,
                    attempts=row.attempts,
                    edit_ref=edited.get(row.update_of_id) if row.update_of_id else None,
                    maybe_delivered=row.delivery_unknown,
                    queued_at=row.created_at,
                )
            )
        return posts


def backoff(attempts: int) -> timedelta:
    """Exponential from 5 s, capped at 10 minutes."""
    return timedelta(seconds=min(600, 5 * 2 ** max(0, attempts - 1)))


def _still_ours(session: Session, post: Post) -> Outbox | None:
    """The row, if this sender's claim still holds. After a lease ran out another sender may
    have claimed it again (and even delivered it); a late result must not overwrite that."""
    row = session.get(Outbox, post.id, with_for_update=True)
    if row is None or row.status != SENDING or row.attempts != post.attempts:
        log.warning("outbox %s: result of attempt %s came after the lease; ignored", post.id, post.attempts)
        return None
    return row


def record_sent(session_factory: sessionmaker[Session], post: Post, platform_ref: str | None, now: datetime) -> None:
    with session_factory.begin() as session:
        row = _still_ours(session, post)
        if row is not None:
            row.status, row.platform_ref, row.sent_at, row.last_error = SENT, platform_ref, now, None
    if row is not None:
        telemetry().delivery(post.target.platform, "sent", "")


def record_failure(session_factory: sessionmaker[Session], post: Post, error: DeliveryError, now: datetime) -> None:
    with session_factory.begin() as session:
        row = _still_ours(session, post)
        if row is None:
            return
        row.last_error = str(error)[:2000]
        row.delivery_unknown = row.delivery_unknown or error.maybe_delivered
        if error.retryable and row.attempts < MAX_ATTEMPTS:
            wait = timedelta(seconds=error.retry_after) if error.retry_after else backoff(row.attempts)
            row.status, row.next_attempt_at = PENDING, now + wait
        else:
            row.status = FAILED
    outcome = "retried" if row.status == PENDING else "given_up"
    telemetry().delivery(post.target.platform, outcome, error_class(str(error)))


def release(session_factory: sessionmaker[Session], posts: Sequence[Post], now: datetime) -> None:
    """Hand claimed posts back unsent: due again at once, the attempt not counted."""
    with session_factory.begin() as session:
        for post in posts:
            row = _still_ours(session, post)
            if row is not None:
                row.status, row.attempts, row.next_attempt_at = PENDING, row.attempts - 1, now


def drain(
    session_factory: sessionmaker[Session],
    platform: str,
    sender: Sender,
    clock: Callable[[], datetime],
    limit: int = 50,
    stop: threading.Event | None = None,
) -> Sequence[Post]:
    """Deliver what is due for one platform; returns the posts that were delivered.

    The batch's lease covers all of it: once most of the lease is used up (slow answers, long
    waits for a channel's turn), what is left is handed back rather than sent late, when another
    sender may already have claimed it again."""
    delivered: list[Post] = []
    claimed_at = clock()
    posts = claim(session_factory, platform, claimed_at, limit)
    for index, post in enumerate(posts):
        # Shutting down: the post being sent was finished; the rest go back, due at once.
        if clock() - claimed_at > LEASE * 0.75 or (stop is not None and stop.is_set()):
            release(session_factory, posts[index:], clock())
            break
        try:
            reference = sender.send(post)
        except DeliveryError as exc:
            log.warning("outbox %s to %s failed (attempt %s): %s", post.id, post.target.for_log, post.attempts, exc)
            record_failure(session_factory, post, exc, clock())
            continue
        except Exception as exc:  # a sender bug must not stop the queue; retry later
            log.exception("outbox %s to %s: sender raised", post.id, post.target.for_log)
            failure = DeliveryError(repr(exc), retryable=True, maybe_delivered=True)
            record_failure(session_factory, post, failure, clock())
            continue
        record_sent(session_factory, post, reference, clock())
        delivered.append(post)
    return delivered


def drain_until(
    session_factory: sessionmaker[Session],
    platform: str,
    sender: Sender,
    clock: Callable[[], datetime],
    stop: threading.Event,
    interval: float = 1.0,
    max_pause: float = 30.0,
) -> None:
    """An adapter's delivery loop: drain until ``stop`` is set, resting ``interval`` seconds when
    nothing was due. A failing round (the database gone away) is logged, not fatal: the loop
    waits longer after each failure in a row, up to ``max_pause``, and says when it works again."""
    failures = 0
    while not stop.is_set():
        try:
            delivered = drain(session_factory, platform, sender, clock, stop=stop)
        except Exception as exc:
            failures += 1
            if failures == 1:
                log.exception("outbox: draining %s failed; trying again", platform)
            else:
                log.warning("outbox: draining %s failed %s times in a row: %s", platform, failures, driver_reason(exc))
            stop.wait(min(interval * 2 ** min(failures, 16), max_pause))
            continue
        if failures:
            log.info("outbox: draining %s works again after %s failed rounds", platform, failures)
            failures = 0
        if not delivered:
            stop.wait(interval)


def pending_count(session: Session, platform: str | None = None) -> int:
    query = select(func.count()).select_from(Outbox).where(Outbox.status.in_((PENDING, SENDING)))
    if platform is not None:
        query = query.where(Outbox.platform == platform)
    return session.scalar(query) or 0
