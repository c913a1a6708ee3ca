"""How long does the right to erasure take on a big org, and how long does a command wait behind it?

`/cx erase <person>` (bot/commands/observations.py) runs bot.services.erasure.erase_person in the
command's one transaction. This times it on the org of benchmarks/kpi_digest.py, whose builders it
imports: a journey map of 10 stages × 100 touchpoints, 20 teams and 200 people (each with a Slack
identity, a tenth preferring English), 20 000 issues with their followers and 100 000 observations
over ten weeks (with the seer rows the app writes). It adds what kpi_digest.py does not make: the
issues' timelines (reported, joined, acknowledged, resolved, reopened, and the clock's reminded,
escalated and overdue events whose data names a person: nearly 4 per issue), three digest
subscriptions, and 100 000 outbox rows as the bot would have queued them, rendered by the app's own
views: routed issue posts to the owner team's channel and the owner (edited once acknowledged or
resolved), outcome notices to followers, reminders and escalations to people, and each week's
digest (topic "digest:<week>"). Posts are sent with a platform reference, but those of the last six
hours and 1 % kept back by rate limits are pending. Free text (observations, descriptions, impacts,
actions) mixes real and made-up words, so that five words in a row repeat across people no more
than in real writing: kpi_digest.py's phrase templates would make every post "quote" everyone.

Everyone erased has the same made footprint (by default 100 observations, about one in seven
anonymous as among all typed ones, 50 reported issues, 20 +1s) besides owning touchpoints like
everyone else (which makes them the assignee of about 100 issues); the table shows what that comes
to in events and outbox rows. Erasure is destructive: each run erases another such person. It
measures:

* one erasure as the command runs it (find the person, erase_person, commit), best of --runs, and
  where the time goes: the steps of erase_person (timed by wrapping them), the SQL statements;
* what it changed in the outbox: rows rewritten (payload, key or error), posts to the person
  deleted, edits queued (routed issue posts re-rendered; other delivered posts edited);
* one more erasure while another thread sends `/cx whoami` through CxApp, as an adapter would,
  half a second after the erasure's transaction began: how long the command took and whether it
  was answered. On SQLite every transaction begins with BEGIN IMMEDIATE (a write lock on the file)
  and waits at most its 5 s busy timeout.

    .venv/bin/python benchmarks/erasure.py                   # both databases, full size (about 4 minutes)
    .venv/bin/python benchmarks/erasure.py --issues 2000 --observations 10000 --outbox 10000 --db sqlite
    .venv/bin/python benchmarks/erasure.py --db postgresql --profile   # and cProfile one more erasure

SQLite is a file in a temporary directory; PostgreSQL is read from CXBOT_TEST_POSTGRES_URL (default:
the local test database), in a throwaway schema that is dropped at the end, and VACUUM ANALYZEd
after loading. It prints a table, then the results as one JSON line.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import inspect
import io
import json
import logging
import pstats
import random
import shlex
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Text, cast, event, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.kpi_digest import (
    DETAILS,
    LABELS,
    NOW,
    PG_URL,
    PROBLEMS,
    SUBJECTS,
    ZONE,
    Size,
    build_journey,
    bulk_insert,
    follower_rows,
    issue_rows,
    ms,
    observation_rows,
    read_org,
    window,
)
from bot.app import CxApp
from bot.content import Content, default_content
from bot.domain.weeks import week_start
from bot.i18n import Catalogue
from bot.messages import Invocation, Message
from bot.outbox import PENDING, SENT
from bot.services import erasure as erasure_module
from bot.services.digest import build_digest, chart_key, digest_message
from bot.services.erasure import erase_person
from bot.services.issue_views import (
    RoutedFacts,
    escalation_message,
    follower_notice,
    reminder_message,
    routed_message,
)
from bot.services.journey import load_journey
from bot.services.kpi import last_complete_week
from bot.store.db import make_engine, make_session_factory, upgrade
from bot.store.models import (
    Identity,
    Issue,
    IssueEvent,
    IssueFollower,
    Observation,
    ObservationSeer,
    Org,
    Outbox,
    Person,
    Stage,
    Subscription,
    Team,
    Touchpoint,
)

REPO = Path(__file__).resolve().parent.parent
REAL_WORDS = sorted({word.casefold() for phrase in (*SUBJECTS, *PROBLEMS, *DETAILS) for word in phrase.split()})
ONSETS = [*"bdfghjklmnprstv", "bl", "br", "dr", "fl", "fr", "gr", "kl", "kr", "pl", "pr", "sk", "sl", "sp", "st", "tr"]
CODAS = ["", "", "n", "r", "s", "t", "k", "l", "m", "ng", "st"]
PENDING_AGE = timedelta(hours=6)  # posts younger than this are still waiting for the sender
STUCK = 0.01  # and this share of older ones is held back (rate limited, retrying)
DIGEST_CHANNELS = ("C0DIGEST01", "C0DIGEST02", "C0DIGEST03")
WHOAMI_DELAY = 0.5  # seconds after the erasure's transaction began
# Full size, as flags: kpi_digest.py's org (its Size, bar the survey answers) and the outbox.
SIZE = {
    "observations": 100_000,
    "issues": 20_000,
    "outbox": 100_000,
    "touchpoints": 1_000,
    "stages": 10,
    "teams": 20,
    "people": 200,
    "weeks": 10,
    "seed": 7,
}
# The steps of erase_person are _Erasure's methods, found when it runs (the erasure changes);
# these say what the known ones do. Helpers called once per row or per post are not steps.
STEP_NAMES = {
    "of": "read what names them",
    "replace_words": "their words in issues",
    "unname_in_others_words": "their name in others' words",
    "forget_observations": "delete their observations",
    "forget_person": "unlink and delete the person",
    "_scrub_events": "scrub issue events",
    "clean_outbox": "rewrite posts naming them",
    "_delete_posts_to_them": "delete posts to them",
    "_refresh_routed": "re-render routed issue posts",
    "_digest": "rebuild digests",
    "_edit": "queue edits of delivered posts",
}
ROW_HELPERS = frozenset({"text", "_markers", "_clean", "_traced", "_scrub_row", "_scrubbed", "_candidate_roots"})


def slack_user(person_id: int) -> str:
    return f"U{(person_id * 2654435761) % 16**9:09X}"  # a bijection: ids stay unique


def slack_channel(team_id: int) -> str:
    return f"C{(team_id * 40503) % 16**9:09X}"


class Prose:
    """Free text as people write it: real words and made-up ones, so that no five words in a row
    repeat by chance (the erasure takes a post holding five of a person's words in a row for a quote)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        made: set[str] = set()
        while len(made) < 4000:
            syllables = rng.choice((1, 2, 2, 3))
            made.add(
                "".join(rng.choice(ONSETS) + rng.choice("aeiouyåäö") + rng.choice(CODAS) for _ in range(syllables))
            )
        self.made = sorted(made)

    def __call__(self, shortest: int, longest: int) -> str:
        rng = self.rng
        count = rng.randint(shortest, longest)
        words = [rng.choice(REAL_WORDS) if rng.random() < 0.45 else rng.choice(self.made) for _ in range(count)]
        return " ".join(words).capitalize()


# --- the org: kpi_digest.py's, with victims, timelines and the outbox ---------------------------


def pick_victims(people: list[int], count: int) -> list[int]:
    """People to erase, spread over the org: not the admin, the CX lead or a stage owner."""
    first = min(12, len(people) - count)
    step = max(1, (len(people) - first) // count)
    return [people[first + k * step] for k in range(count)]


def give_issues(
    followers: list[dict[str, Any]], victims: list[int], reports: int, plus_ones: int, rng: random.Random
) -> None:
    """Each victim becomes the reporter of ``reports`` issues and a +1 on ``plus_ones`` others, in
    place of whoever follower_rows put there (who was drawn among everyone else)."""
    by_issue: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in followers:
        by_issue[row["issue_id"]].append(row)
    reported = rng.sample(sorted(by_issue), len(victims) * reports)
    taken = set(reported)
    shared = [number for number, rows in by_issue.items() if len(rows) > 1 and number not in taken]
    joined = rng.sample(shared, min(len(shared), len(victims) * plus_ones))
    for n, victim in enumerate(victims):
        for number in reported[n * reports : (n + 1) * reports]:
            by_issue[number][0]["person_id"] = victim  # the reporter row comes first
        for number in joined[n * plus_ones : (n + 1) * plus_ones]:
            by_issue[number][1]["person_id"] = victim


def give_observations(
    observations: list[dict[str, Any]], others: list[int], victims: list[int], each: int, prose: Prose
) -> list[dict[str, Any]]:
    """Numbers and free text for observation_rows' rows, authors drawn among everyone else, ``each``
    typed observations per victim (anonymous ones too), and the seer rows the app writes: the
    author of a typed observation (however anonymous), the capturer of a chat message."""
    rng = prose.rng
    seen_by = []
    for number, row in enumerate(observations, 1):
        row["id"], row["text"] = number, prose(6, 40)
        if row["author_id"] is not None:
            row["author_id"] = rng.choice(others)
        if row["captured_by_id"] is not None:
            row["captured_by_id"] = rng.choice(others)
        seen_by.append(row["captured_by_id"] or row["author_id"] or rng.choice(others))
    typed = [n for n, row in enumerate(observations) if row["source"] == "command"]
    for k, n in enumerate(rng.sample(typed, len(victims) * each)):
        seen_by[n] = victims[k // each]
        if not observations[n]["anonymous"]:
            observations[n]["author_id"] = victims[k // each]
    return [
        {"observation_id": row["id"], "person_id": person, "seen_at": row["created_at"]}
        for row, person in zip(observations, seen_by, strict=True)
    ]


@dataclass(frozen=True)
class Roles:
    """Who stands where around an issue, read from the journey and the follower rows."""

    followers: dict[int, list[dict[str, Any]]]  # issue → its follower rows, the reporter first
    owners: dict[int, int]  # touchpoint → owner
    backups: dict[int, int]  # touchpoint → backup
    names: dict[int, str]
    lead: int  # the CX lead and the admin hear of what nobody owns
    admin: int

    def owner(self, touchpoint_id: int) -> int:
        return self.owners.get(touchpoint_id) or self.lead

    def backup(self, touchpoint_id: int) -> int:
        return self.backups.get(touchpoint_id) or self.lead

    def doer(self, assignee_id: int | None) -> int:
        """Who acknowledged and resolved an issue: its assignee."""
        return assignee_id or self.lead


def event_rows(issues: list[dict[str, Any]], roles: Roles) -> list[dict[str, Any]]:
    """Each issue's timeline as IssueService and the SLA sweep write it."""
    rows: list[dict[str, Any]] = []

    def add(issue: dict[str, Any], kind: str, actor: int | None, at: datetime, **data: Any) -> None:
        rows.append({"issue_id": issue["id"], "kind": kind, "actor_id": actor, "at": at, "data": data})

    for issue in issues:
        reporter, *plus_ones = roles.followers[issue["id"]]
        shown = None if reporter["anonymous"] else reporter["person_id"]
        doer = roles.doer(issue["assignee_id"])
        add(issue, "reported", shown, issue["reported_at"], severity=issue["severity"])
        for count, follower in enumerate(plus_ones, 2):
            add(issue, "joined", follower["person_id"], follower["joined_at"], affected=count)
        if issue["reminded_at"] is not None:
            add(issue, "reminded", None, issue["reminded_at"], to=roles.names[roles.owner(issue["touchpoint_id"])])
        if issue["escalation_level"]:
            backup = roles.names[roles.backup(issue["touchpoint_id"])]
            add(issue, "escalated", None, issue["ack_due_at"] + timedelta(hours=2), to=backup, step=1)
        if issue["acknowledged_at"] is not None:
            add(issue, "acknowledged", doer, issue["acknowledged_at"])
        if issue["resolved_at"] is not None:
            how = {"root_cause": issue["root_cause"], "action": issue["action_taken"]}
            add(issue, "resolved", doer, issue["resolved_at"], **how)
            if issue["reopen_count"]:
                add(issue, "reopened", shown, issue["resolved_at"] + timedelta(hours=1))
                if issue["last_resolved_at"] not in (None, issue["resolved_at"]):
                    add(issue, "resolved", doer, issue["last_resolved_at"], **how)
        if issue["resolve_breach_noted_at"] is not None:
            add(issue, "overdue", None, issue["resolve_breach_noted_at"], to=roles.names[doer], step=1)
    return rows


def by_language(render: Callable[[str], Message]) -> Callable[[str], Message]:
    """A composer that renders each language once."""
    cache: dict[str, Message] = {}

    def compose(language: str) -> Message:
        if language not in cache:
            cache[language] = render(language)
        return cache[language]

    return compose


@dataclass
class Posts:
    """The outbox as the bot would have filled it, each post rendered by the app's own views."""

    catalogue: Catalogue
    org: Org
    people: dict[int, Person]
    rng: random.Random
    rows: list[dict[str, Any]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # each row's kind

    def add(
        self,
        kind: str,
        message: Message,
        target: tuple[str, str],  # target kind and ref
        key: str,
        at: datetime,
        language: str,
        topic: str | None = None,
        original: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        young = at > NOW - PENDING_AGE
        held = young or (original["status"] == PENDING if original else self.rng.random() < STUCK)
        ref = None if held else original["platform_ref"] if original else f"{at.timestamp():.6f}"
        self.kinds.append(kind)
        row = {
            "id": len(self.rows) + 1,
            "idempotency_key": key,
            "platform": "slack",
            "target_kind": target[0],
            "target_ref": target[1],
            "payload": message.model_dump(mode="json", exclude_defaults=True),
            "status": PENDING if held else SENT,
            "attempts": 0 if young else 1,
            "next_attempt_at": at if young else NOW + timedelta(minutes=1),
            "last_error": "ratelimited" if held and not young else None,
            "platform_ref": ref,
            "created_at": at,
            "sent_at": None if held else at + timedelta(seconds=1),
            "topic": topic,
            "language": language,
            "update_of_id": original["id"] if original else None,
            "delivery_unknown": False,
        }
        self.rows.append(row)
        return row

    def to_person(
        self,
        kind: str,
        person_id: int,
        compose: Callable[[str], Message],
        key: str,
        at: datetime,
        topic: str | None = None,
    ) -> dict[str, Any]:
        person, target = self.people[person_id], ("user", slack_user(person_id))
        language = person.chosen_language or self.org.language
        return self.add(kind, compose(language), target, f"{key}:slack:user:{target[1]}", at, language, topic)

    def issue(self, issue: Issue, facts: RoutedFacts, roles: Roles, channel: str | None) -> None:
        """One issue's posts: routed when reported, the clock's reminder and escalation while it
        waited, an edit of each routed post once acknowledged or resolved, and the notice of a
        missed resolve deadline."""
        catalogue, org, people, topic = self.catalogue, self.org, self.people, f"issue:{issue.id}:routed"
        final = (issue.status, issue.assignee, issue.root_cause, issue.action_taken)
        issue.status, issue.assignee, issue.root_cause, issue.action_taken = "open", None, None, None
        routed = by_language(lambda language: routed_message(catalogue, language, issue, org, facts))
        originals = []
        if channel is not None:
            key = f"{topic}:team:slack:channel:{channel}"
            target = ("channel", channel)
            originals.append(
                self.add("routed", routed(org.language), target, key, issue.reported_at, org.language, topic)
            )
        owner = roles.owners.get(issue.touchpoint_id)
        for person in [owner] if owner else [roles.lead, roles.admin]:
            originals.append(
                self.to_person("routed", person, routed, f"{topic}:dm:{people[person].key}", issue.reported_at, topic)
            )
        if issue.reminded_at is not None:
            person = roles.owner(issue.touchpoint_id)
            remind = by_language(lambda language: reminder_message(catalogue, language, [issue], org))
            digest = hashlib.sha256(f"{issue.id}r0".encode()).hexdigest()[:20]
            self.to_person("reminder", person, remind, f"remind:{people[person].key}:{digest}", issue.reminded_at)
        if issue.escalation_level:
            person = roles.backup(issue.touchpoint_id)
            escalate = by_language(lambda language: escalation_message(catalogue, language, issue, org, "acknowledge"))
            key = f"issue:{issue.id}:r0:escalated:1:{people[person].key}"
            self.to_person("escalation", person, escalate, key, issue.ack_due_at + timedelta(hours=2))
        issue.status, issue.assignee, issue.root_cause, issue.action_taken = final
        changed = issue.last_resolved_at or issue.acknowledged_at
        if changed is not None:
            updated = by_language(lambda language: routed_message(catalogue, language, issue, org, facts))
            for original in originals:
                target = (original["target_kind"], original["target_ref"])
                key = f"{topic}:v{issue.version}:edit:{original['id']}"
                message = updated(original["language"])
                self.add("routed edit", message, target, key, changed, original["language"], topic, original)
        if issue.resolve_breach_noted_at is not None:
            person = roles.doer(issue.assignee_id)
            overdue = by_language(lambda language: escalation_message(catalogue, language, issue, org, "resolve"))
            key = f"issue:{issue.id}:r{issue.reopen_count}:overdue:1:{people[person].key}"
            self.to_person("escalation", person, overdue, key, issue.resolve_breach_noted_at)

    def tell_followers(
        self, issue: Issue, roles: Roles, notice: Callable[[str], Message], what: str, at: datetime
    ) -> None:
        for follower in roles.followers[issue.id]:
            person = follower["person_id"]
            if person != issue.assignee_id:
                key = f"issue:{issue.id}:{what}:{self.people[person].key}"
                self.to_person("outcome notice", person, notice, key, at)

    def resolved(self, issue: Issue, roles: Roles) -> None:
        """The followers told how the issue was resolved (after every issue's routed posts, in
        what room the row count leaves)."""
        if issue.resolved_at is not None:
            notice = by_language(
                lambda language: follower_notice(self.catalogue, language, issue, "resolve", issue.assignee)
            )
            self.tell_followers(issue, roles, notice, f"resolve:v{issue.version}", issue.resolved_at)

    def acknowledged(self, issue: Issue, roles: Roles) -> None:
        """The followers told that someone took the issue: filled in last, up to the row count."""
        if issue.acknowledged_at is not None:
            notice = by_language(
                lambda language: follower_notice(self.catalogue, language, issue, "ack", issue.assignee)
            )
            self.tell_followers(issue, roles, notice, "ack:v2", issue.acknowledged_at)


def outbox_rows(
    session: Session,
    org_id: int,
    issues: list[dict[str, Any]],
    roles: Roles,
    weeks: list[str],
    budget: int,
    content: Content,
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """``budget`` posts: each issue's routed posts, edits, reminders and escalations (while they
    fit), outcome notices to followers in the room left, then acknowledgement notices, and each
    week's digest to three channels (built from what is stored, with the key of a chart)."""
    zone = ZoneInfo(ZONE)
    org = session.get_one(Org, org_id)
    digests = []
    for week in weeks:
        digest = build_digest(session, org, week, catalogue=content.catalogue, tips=content.tips, now=NOW)
        digests.append((week, digest_message(content.catalogue, org.language, digest, chart_key(digest, org.language))))
    touchpoints = {t.id: t for t in session.scalars(select(Touchpoint))}
    stages = {s.id: s for s in session.scalars(select(Stage))}
    teams = {t.id: t for t in session.scalars(select(Team))}
    people = {p.id: p for p in session.scalars(select(Person))}
    session.expunge_all()  # the issues below are drawn, never stored: keep them apart from the session
    posts = Posts(content.catalogue, org, people, random.Random(budget))
    room = budget - len(digests) * len(DIGEST_CHANNELS)
    unresolved = Counter(row["stage_id"] for row in issues if row["status"] != "resolved")
    latest = last_complete_week(NOW, zone)
    drawn = []
    for row in issues:
        if len(posts.rows) >= room:
            break
        issue = Issue(**row)
        touchpoint = touchpoints[row["touchpoint_id"]]
        issue.touchpoint, issue.stage = touchpoint, stages[row["stage_id"]]
        issue.assignee_team = teams.get(row["assignee_team_id"] or 0)
        issue.assignee = people.get(row["assignee_id"] or 0)
        reporter = roles.followers[row["id"]][0]["person_id"]
        facts = RoutedFacts(
            None if row["anonymous"] else people[reporter].name, unresolved[row["stage_id"]], latest, ()
        )
        team = touchpoint.owner_team_id
        posts.issue(issue, facts, roles, slack_channel(team) if team else None)
        drawn.append(issue)
    for tell in (posts.resolved, posts.acknowledged):
        for issue in drawn:
            if len(posts.rows) >= room:
                break
            tell(issue, roles)
    del posts.rows[room:], posts.kinds[room:]
    for week, message in digests:
        at = week_start(week, zone) + timedelta(days=7, hours=8)
        for channel in DIGEST_CHANNELS:
            target, key = ("channel", channel), f"digest:{week}:slack:{channel}"  # as post_digest keys it
            posts.add("digest", message, target, key, at, org.language, f"digest:{week}")
    return posts.rows, Counter(posts.kinds) | Counter({"issues with posts": len(drawn)})


class Victim(NamedTuple):
    """Someone to erase, or to send /cx whoami."""

    id: int
    key: str
    name: str


@dataclass(frozen=True)
class Loaded:
    """The org as loaded: whom to erase, who asks, what is there, and how long loading took."""

    org_id: int
    victims: list[Victim]
    asker: Victim  # who sends /cx whoami
    counts: dict[str, int]
    posts: dict[str, int]  # outbox rows by kind
    load_s: float


def load(engine: Engine, session_factory: sessionmaker[Session], size: Size, args: argparse.Namespace) -> Loaded:
    """kpi_digest.py's org with this benchmark's additions, in bulk; people to erase picked."""
    rng, zone, content = random.Random(size.seed), ZoneInfo(ZONE), default_content()
    started = time.perf_counter()
    with session_factory.begin() as session:
        load_journey(session, build_journey(size), NOW)
    with session_factory() as session:
        org = read_org(session)
        backups = {tp: backup for tp, backup in session.execute(select(Touchpoint.id, Touchpoint.backup_id))}
        people = {p.id: p for p in session.scalars(select(Person))}
    weeks, start = window(size, zone)
    victims = pick_victims(org.people, args.runs + 1 + int(args.profile))
    others = [p for p in org.people if p not in victims]
    prose = Prose(rng)
    issues = issue_rows(size, org, start, rng)
    for number, row in enumerate(issues, 1):
        row.update(id=number, description=prose(8, 30))
        for column, shortest, longest in (("customer_impact", 5, 15), ("action_taken", 6, 20)):
            row[column] = prose(shortest, longest) if row[column] else None
    followers = follower_rows(
        [(r["id"], r["affected_count"], r["reported_at"], r["anonymous"]) for r in issues], others, rng
    )
    give_issues(followers, victims, args.victim_reports, args.victim_plus_ones, rng)
    by_touchpoint: dict[int, list[int]] = defaultdict(list)
    for row in issues:
        by_touchpoint[row["touchpoint_id"]].append(row["id"])
    observations = observation_rows(size, org, start, by_touchpoint, rng)
    seers = give_observations(observations, others, victims, args.victim_observations, prose)
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for follower in followers:
        grouped[follower["issue_id"]].append(follower)
    owners = {tp_id: owner for tp_id, _, _, _, owner in org.touchpoints if owner is not None}
    names = {p.id: p.name for p in people.values()}
    roles = Roles(grouped, owners, {k: v for k, v in backups.items() if v}, names, org.people[1], org.people[0])
    with session_factory.begin() as session:
        session.execute(update(Person).where(Person.id.in_(org.people[3::10])).values(chosen_language="en"))
        identities = [{"person_id": p, "platform": "slack", "external_user_id": slack_user(p)} for p in org.people]
        bulk_insert(session, Identity, identities)
        for model, rows in (
            (Issue, issues),
            (IssueFollower, followers),
            (IssueEvent, event_rows(issues, roles)),
            (Observation, observations),
            (ObservationSeer, seers),
        ):
            bulk_insert(session, model, rows)
        subscribed_by = org.people[4]
        channels = [
            {"org_id": org.org_id, "platform": "slack", "channel_ref": channel, "kind": "digest"}
            | {"created_by_id": subscribed_by, "created_at": start}
            for channel in DIGEST_CHANNELS
        ]
        bulk_insert(session, Subscription, channels)
    with session_factory.begin() as session:
        posts, kinds = outbox_rows(session, org.org_id, issues, roles, weeks, args.outbox, content)
        bulk_insert(session, Outbox, posts)
        if engine.dialect.name == "postgresql":  # rows came with their ids: move the sequences on
            for table in ("issue", "observation", "outbox"):
                sequence = f"pg_get_serial_sequence('{table}', 'id')"
                session.execute(text(f"SELECT setval({sequence}, (SELECT max(id) FROM {table}))"))
    if engine.dialect.name == "postgresql":  # what autovacuum would have done by now; this schema only
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    load_s = time.perf_counter() - started
    with session_factory() as session:
        counts = {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Person, Touchpoint, Issue, IssueFollower, IssueEvent, Observation, ObservationSeer, Outbox)
        }
        counts["pending"] = session.scalar(select(func.count()).where(Outbox.status == PENDING)) or 0
    victim = [Victim(p, people[p].key, people[p].name) for p in victims]
    asker = people[org.people[2]]
    return Loaded(org.org_id, victim, Victim(asker.id, asker.key, asker.name), counts, dict(kinds), load_s)


def footprints(session: Session, victims: list[Victim]) -> list[dict[str, int]]:
    """What names each person to erase, before anything is erased."""
    outbox = [
        (ref, key, json.dumps(payload, ensure_ascii=False))
        for ref, key, payload in session.execute(select(Outbox.target_ref, Outbox.idempotency_key, Outbox.payload))
    ]
    found = []
    for victim in victims:
        chat_id = slack_user(victim.id)
        seen = select(ObservationSeer.observation_id).where(ObservationSeer.person_id == victim.id)
        wrote = (Observation.author_id == victim.id) | (
            Observation.anonymous & (Observation.source == "command") & Observation.id.in_(seen)
        )
        role = {
            role: session.scalar(
                select(func.count()).where(IssueFollower.person_id == victim.id, IssueFollower.role == role)
            )
            or 0
            for role in ("reporter", "affected")
        }
        addressed = sum(1 for ref, _, _ in outbox if ref == chat_id)
        named = sum(
            1
            for ref, key, payload in outbox
            if ref != chat_id and (victim.name in payload or chat_id in payload or f":{victim.key}:" in f"{key}:")
        )
        found.append(
            {
                "observations": session.scalar(select(func.count()).where(wrote)) or 0,
                "anonymous": session.scalar(select(func.count()).where(wrote, Observation.anonymous)) or 0,
                "reported": role["reporter"],
                "plus_ones": role["affected"],
                "assigned": session.scalar(select(func.count()).where(Issue.assignee_id == victim.id)) or 0,
                "events_by": session.scalar(select(func.count()).where(IssueEvent.actor_id == victim.id)) or 0,
                "events_naming": session.scalar(
                    select(func.count()).where(cast(IssueEvent.data, Text).contains(victim.name))
                )
                or 0,
                "outbox_to": addressed,
                "outbox_naming": named,
            }
        )
    return found


# --- measuring -------------------------------------------------------------------------------


@contextmanager
def step_clock() -> Iterator[dict[str, float]]:
    """Seconds in each step of erase_person while the block runs: _Erasure's methods, wrapped
    meanwhile, keyed by the steps they were called in ("forget_person/_scrub_events")."""
    steps = getattr(erasure_module, "_Erasure", object)  # gone or renamed: no steps, the rest still measured
    spent: dict[str, float] = {}
    stack: list[str] = []
    kept = {
        name: member
        for name, member in (vars(steps).items() if steps is not object else ())
        if not name.startswith("__")
        and name not in ROW_HELPERS
        and (callable(member) or isinstance(member, classmethod))
    }

    def timed(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            stack.append(name)
            path = "/".join(stack)
            spent.setdefault(path, 0.0)  # in the order first called
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent[path] += time.perf_counter() - started
                stack.pop()

        return wrapper

    for name, member in kept.items():
        wrapped = classmethod(timed(name, member.__func__)) if isinstance(member, classmethod) else timed(name, member)
        setattr(steps, name, wrapped)
    try:
        yield spent
    finally:
        for name, member in kept.items():
            setattr(steps, name, member)


class SqlClock:
    """Every statement a block runs, with the time spent inside the driver's execute (on
    PostgreSQL that includes fetching; SQLite steps through a query as its rows are read)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.timed: list[tuple[float, str]] = []

    def _before(self, connection: Any, *_: Any) -> None:
        connection.info["erasure_bench_started"] = time.perf_counter()

    def _after(self, connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.timed.append((time.perf_counter() - connection.info.pop("erasure_bench_started"), statement))

    def __enter__(self) -> SqlClock:
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)

    def slowest(self, count: int) -> list[tuple[float, str]]:
        return [(seconds, " ".join(sql.split())[:130]) for seconds, sql in sorted(self.timed, reverse=True)[:count]]


class Logged(logging.Handler):
    """The app's log records: the erasure's count line, and what went wrong for a command."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[logging.LogRecord]:
        taken, self.records = self.records, []
        return taken


LOGGED = Logged()


def quiet_app_logs() -> None:
    """The app's records come here, not to stderr; the erasure's info line too."""
    logger = logging.getLogger("bot")
    if LOGGED not in logger.handlers:
        logger.addHandler(LOGGED)
        logger.propagate = False
    logging.getLogger(erasure_module.__name__).setLevel(logging.INFO)


def erase_once(
    session_factory: sessionmaker[Session],
    org_id: int,
    victim: Victim,
    content: Content,
    began: threading.Event | None = None,
) -> dict[str, float]:
    """What `/cx erase <key>` does in its transaction: find the person, erase, commit."""
    # The tips went from erase_person's parameters as digests stopped being rebuilt: pass what it takes.
    extra = {"tips": content.tips} if "tips" in inspect.signature(erase_person).parameters else {}
    with session_factory() as session:
        started = time.perf_counter()
        with session.begin():
            person = session.scalar(select(Person).where(Person.org_id == org_id, Person.key == victim.key))
            assert person is not None, victim
            if began is not None:
                began.set()  # the transaction holds its locks now (SQLite: the whole file)
            erase_person(session, person, NOW, content.catalogue, **extra)
            erased = time.perf_counter()
        committed = time.perf_counter()
    return {"total_s": committed - started, "call_s": erased - started, "commit_s": committed - erased, "at": committed}


def outbox_state(session: Session) -> dict[int, int]:
    """A fingerprint of every outbox row: what could be rewritten (payload, key, error)."""
    return {
        row_id: hash((json.dumps(payload, sort_keys=True), key, error))
        for row_id, payload, key, error in session.execute(
            select(Outbox.id, Outbox.payload, Outbox.idempotency_key, Outbox.last_error)
        )
    }


def measured_erasure(
    engine: Engine, session_factory: sessionmaker[Session], org_id: int, victim: Victim, content: Content
) -> dict[str, Any]:
    with session_factory() as session:
        before = outbox_state(session)
    LOGGED.take()
    with step_clock() as steps, SqlClock(engine) as sql:
        timing = erase_once(session_factory, org_id, victim, content)
    counted = [r.args for r in LOGGED.take() if r.name == erasure_module.__name__ and isinstance(r.args, tuple)]
    with session_factory() as session:
        after = outbox_state(session)
        new_keys = list(session.scalars(select(Outbox.idempotency_key).where(Outbox.id > max(before))))
    touched, edited = counted[-1] if counted else (None, None)
    return {
        **timing,
        "steps": dict(steps),
        "statements": len(sql.timed),
        "sql_s": sum(seconds for seconds, _ in sql.timed),
        "slowest_sql": sql.slowest(5),
        "rewritten": sum(1 for row_id, print_ in before.items() if row_id in after and after[row_id] != print_),
        "deleted": len(before.keys() - after.keys()),
        "queued": len(new_keys),
        "queued_routed": sum(":routed:v" in key for key in new_keys),
        "queued_edits": sum(key.startswith("erasure:") for key in new_keys),
        "touched_issues": touched,
        "edited_posts": edited,
    }


def whoami(app: CxApp, asker: Victim) -> tuple[float, bool, str]:
    """`/cx whoami` as an adapter sends it: seconds, answered (not an error), what came back."""
    started = time.perf_counter()
    reply = app.dispatch(Invocation("slack", "T0BENCH", slack_user(asker.id), "C0BENCH", "/cx whoami"))
    seconds = time.perf_counter() - started
    return seconds, reply.message.header == asker.name, reply.message.header or reply.message.text or ""


def whoami_meanwhile(
    app: CxApp, session_factory: sessionmaker[Session], org_id: int, victim: Victim, asker: Victim, content: Content
) -> dict[str, Any]:
    """One more erasure in a thread of its own; `/cx whoami` from this one while it runs."""
    began, done = threading.Event(), {}

    def erase() -> None:
        try:
            done.update(erase_once(session_factory, org_id, victim, content, began))
        except BaseException as error:  # shown below, in this thread
            done["error"] = error
            began.set()

    worker = threading.Thread(target=erase, name="erasure", daemon=True)
    worker.start()
    if not began.wait(timeout=300):
        raise SystemExit("the erasure did not begin within 5 minutes")
    time.sleep(WHOAMI_DELAY)
    asked = time.perf_counter()
    seconds, answered, said = whoami(app, asker)
    worker.join(timeout=1800)
    if worker.is_alive() or "error" in done:
        raise SystemExit(f"the erasure beside /cx whoami failed: {done.get('error', 'still running after 30 min')}")
    problems = [r.getMessage() for r in LOGGED.take() if r.levelno >= logging.WARNING]
    return {
        "whoami_s": seconds,
        "answered": answered,
        "reply": " ".join(said.split())[:90],
        "app_log": problems[-1][-120:] if problems else "",
        "erasure_s": done["total_s"],
        "erasure_left_s": done["at"] - asked,  # negative: it had finished before whoami answered
    }


def profile_report(profile: cProfile.Profile, title: str) -> str:
    """The app's functions by cumulative time (where the time goes), then everything by own time
    (what is hot), with paths from the repository or site-packages."""
    out = []
    for order, only, what in (
        ("cumulative", r"bot[/\\]", "the app's functions by cumulative time"),
        ("tottime", "", "own time"),
    ):
        buffer = io.StringIO()
        pstats.Stats(profile, stream=buffer).sort_stats(order).print_stats(only, 22)
        text_ = buffer.getvalue().replace(str(REPO) + "/", "")
        text_ = text_.replace(
            f"{sys.prefix}/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages/", ""
        )
        out.append(f"\n--- cProfile: {title}: {what} ---")
        out += [line for line in text_.splitlines() if line.strip() and not line.startswith(("   Ordered", "   List"))]
    return "\n".join(out)


def run(url: str, label: str, size: Size, args: argparse.Namespace) -> dict[str, Any]:
    quiet_app_logs()
    engine = make_engine(url)
    upgrade(engine)
    session_factory = make_session_factory(engine)
    content = default_content()
    loaded = load(engine, session_factory, size, args)
    results: dict[str, Any] = {"database": label, "load_s": loaded.load_s, **loaded.counts, "posts": loaded.posts}
    print(f"  {label}: loaded in {loaded.load_s:,.0f} s: {loaded.counts}", flush=True)
    with session_factory() as session:
        results["footprints"] = footprints(session, loaded.victims)
    app = CxApp(session_factory, clock=lambda: NOW, content=content)
    try:
        whoami(app, loaded.asker)  # connections, imports
        idle = [whoami(app, loaded.asker) for _ in range(3)]
        results["whoami_idle_s"] = min(seconds for seconds, _, _ in idle)
        results["whoami_idle_answered"] = all(answered for _, answered, _ in idle)
        results["runs"] = []
        for victim in loaded.victims[: args.runs]:
            results["runs"].append(measured_erasure(engine, session_factory, loaded.org_id, victim, content))
            print(f"  {label}: erased {victim.key} in {ms(results['runs'][-1]['total_s'])}", flush=True)
        results["meanwhile"] = whoami_meanwhile(
            app, session_factory, loaded.org_id, loaded.victims[args.runs], loaded.asker, content
        )
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(erase_once, session_factory, loaded.org_id, loaded.victims[-1], content)
            print(profile_report(profile, f"one more erasure ({loaded.victims[-1].key}), {label}"), flush=True)
    finally:
        app.close()
        engine.dispose()
    return results


# --- printing --------------------------------------------------------------------------------


def spread(values: list[float], render: Callable[[float], str] = lambda v: f"{v:,.0f}") -> str:
    """One value, or the lowest–highest of several."""
    low, high = min(values), max(values)
    return render(low) if low == high else f"{render(low)}–{render(high)}"


def best_run(result: dict[str, Any]) -> dict[str, Any]:
    return min(result["runs"], key=lambda run: run["total_s"])


def summary(results: list[dict[str, Any]], runs: int) -> str:
    def of_victims(*names: str) -> Callable[[dict[str, Any]], str]:
        return lambda r: " / ".join(spread([f[name] for f in r["footprints"][:runs]]) for name in names)

    def of_best(name: str, render: Callable[[Any], str] = str) -> Callable[[dict[str, Any]], str]:
        return lambda r: render(best_run(r)[name])

    def step(path: str, own: bool = False) -> Callable[[dict[str, Any]], str]:
        def render(r: dict[str, Any]) -> str:
            steps = best_run(r)["steps"]
            if path not in steps:
                return "–"
            inner = sum(t for p, t in steps.items() if own and p.rsplit("/", 1)[0] == path and "/" in p)
            return ms(steps[path] - inner)

        return render

    lines: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("people / touchpoints / issues", lambda r: f"{r['person']:,} / {r['touchpoint']:,} / {r['issue']:,}"),
        ("followers / issue events", lambda r: f"{r['issue_follower']:,} / {r['issue_event']:,}"),
        ("observations / seer rows", lambda r: f"{r['observation']:,} / {r['observation_seer']:,}"),
        ("outbox rows (pending)", lambda r: f"{r['outbox']:,} ({r['pending']:,})"),
        ("load, untimed", lambda r: ms(r["load_s"])),
        ("each erased: observations (anonymous)", of_victims("observations", "anonymous")),
        ("  reported / +1s / assigned issues", of_victims("reported", "plus_ones", "assigned")),
        ("  events by them / naming them", of_victims("events_by", "events_naming")),
        ("  outbox rows to them / naming them", of_victims("outbox_to", "outbox_naming")),
        (f"erasure, best of {runs} (find+erase+commit)", of_best("total_s", ms)),
        ("  every run", lambda r: ", ".join(ms(run["total_s"]) for run in r["runs"])),
        ("  erase_person / commit", lambda r: f"{ms(best_run(r)['call_s'])} / {ms(best_run(r)['commit_s'])}"),
    ]
    paths = list(dict.fromkeys(path for r in results for path in best_run(r)["steps"]))
    for path in paths:
        depth, name = path.count("/"), path.rsplit("/", 1)[-1]
        label = f"{name}: {STEP_NAMES[name]}" if name in STEP_NAMES else name
        lines.append(("  " * (depth + 1) + label, step(path)))
    for path in paths:  # a step that calls others: what it does itself
        if any(p.startswith(path + "/") for p in paths):
            lines.append((f"  {path.rsplit('/', 1)[-1]}: its own work beside the steps in it", step(path, own=True)))
    lines += [
        ("  SQL statements / time in execute", lambda r: f"{best_run(r)['statements']:,} / {ms(best_run(r)['sql_s'])}"),
        ("issues re-rendered (touched)", of_best("touched_issues")),
        ("outbox rows rewritten", of_best("rewritten", lambda v: f"{v:,}")),
        ("outbox rows deleted (posts to them)", of_best("deleted", lambda v: f"{v:,}")),
        (
            "edits queued: routed / other delivered",
            lambda r: f"{best_run(r)['queued_routed']:,} / {best_run(r)['queued_edits']:,}",
        ),
        ("/cx whoami idle, best of 3", lambda r: ms(r["whoami_idle_s"])),
        (f"/cx whoami {WHOAMI_DELAY:g} s into an erasure", lambda r: ms(r["meanwhile"]["whoami_s"])),
        (
            "  answered / erasure still had",
            lambda r: (
                f"{'yes' if r['meanwhile']['answered'] else 'NO'} / {ms(max(0.0, r['meanwhile']['erasure_left_s']))}"
            ),
        ),
        ("  that erasure took", lambda r: ms(r["meanwhile"]["erasure_s"])),
    ]
    table = [["", *(r["database"] for r in results)]]
    table += [[label, *(render(r) for r in results)] for label, render in lines]
    widths = [max(len(row[column]) for row in table) + 2 for column in range(len(table[0]))]
    out = [
        row[0].ljust(widths[0]) + "".join(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True))
        for row in table
    ]
    for r in results:
        said = r["meanwhile"]
        out.append(f"\n{r['database']}: outbox rows by kind: {', '.join(f'{k} {v:,}' for k, v in r['posts'].items())}")
        out.append(
            f"  /cx whoami during the erasure replied {said['reply']!r}"
            + (f"; the app logged: {said['app_log']}" if said["app_log"] else "")
        )
        out.append("  slowest statements of the best erasure (time in execute):")
        out += [f"    {ms(seconds):>9}  {sql}" for seconds, sql in best_run(r)["slowest_sql"]]
    return "\n".join(out)


@contextmanager
def database(kind: str) -> Iterator[str]:
    """A temporary SQLite file, or a throwaway PostgreSQL schema (dropped afterwards)."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/erasure.db"
        return
    schema = f"erasure_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            try:
                yield f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
            finally:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    for name, default in SIZE.items():
        parser.add_argument(f"--{name}", type=int, default=default, help="outbox rows" if name == "outbox" else None)
    parser.add_argument("--runs", type=int, default=3, help="erasures timed (each of another person)")
    parser.add_argument("--victim-observations", type=int, default=100, help="observations each erased person wrote")
    parser.add_argument("--victim-reports", type=int, default=50, help="issues each erased person reported")
    parser.add_argument("--victim-plus-ones", type=int, default=20, help="issues each erased person +1'd")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--profile", action="store_true", help="cProfile one more erasure (not among the timed)")
    args = parser.parse_args()
    size = Size(answers=0, **{name: getattr(args, name) for name in SIZE if name != "outbox"})
    started = time.perf_counter()
    results = []
    for kind in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
        print(f"{LABELS[kind]}: {json.dumps(asdict(size) | {'outbox': args.outbox})}", flush=True)
        with database(kind) as url:
            results.append(run(url, LABELS[kind], size, args))
    elapsed = time.perf_counter() - started
    print(f"\n{shlex.join([sys.executable, *sys.argv])}  ({elapsed / 60:.1f} min)\n{summary(results, args.runs)}")
    print(
        json.dumps(
            {
                "benchmark": "erasure",
                "size": asdict(size),
                "args": vars(args),
                "elapsed_s": elapsed,
                "results": results,
            },
            default=str,
        )
    )


if __name__ == "__main__":
    main()
