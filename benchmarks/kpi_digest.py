"""How fast are KPI imports and the weekly digest on a big org? Answers/s, a full aggregate scan and digest time.

Each database gets a synthetic org: a journey map of 10 stages × 100 touchpoints with teams and
people as owners (loaded with bot.services.journey.load_journey), 20 000 issues with their
followers and 100 000 observations spread over ten weeks (bulk inserts: acknowledged, resolved,
reopened and still-open issues, themes, anonymous and captured observations), then 1 000 000
survey answers imported from CSV bytes through bot.services.kpi_import.import_answers, exactly as
`cxbot kpi import` does (one transaction, commit included). The answers (NPS, CSAT, CES) spread
over the ten ISO weeks that end with the last complete one; most times carry no offset (the
org's zone), a tenth are UTC with Z, three quarters name a touchpoint and a tenth have no id
(known by their hash). Then it measures:

* the import rate, and that importing the same bytes again adds nothing;
* one full aggregate scan of the answers (count and sum per metric and stage), best of 3;
* the digest of the last complete week: cold (the first call in the process, which imports
  matplotlib), and warm (best of 3) as data only (build_digest) and with the message rendered
  and the trend chart drawn; the slowest SQL statements of a warm build_digest are listed.

    .venv/bin/python benchmarks/kpi_digest.py                   # both databases, full size (several minutes)
    .venv/bin/python benchmarks/kpi_digest.py --answers 50000 --observations 10000 --issues 2000 --db sqlite
    .venv/bin/python benchmarks/kpi_digest.py --db postgresql --profile   # cProfile of the import and the digest
    .venv/bin/python benchmarks/kpi_digest.py --explain        # and the plan of the digest's slowest statement

With ``--db both`` each database runs in a child process of its own, so that both get a truly
cold digest. SQLite is a file in a temporary directory; PostgreSQL is read from
CXBOT_TEST_POSTGRES_URL (default: the local test database), and the script works in a throwaway
schema that it drops at the end. PostgreSQL is VACUUM ANALYZEd after loading (what autovacuum
does before a weekly digest runs); SQLite is left as the app leaves it (no ANALYZE).

Targets: import ≥ 50 000 answers/s; digest < 2 s and ≤ 3 × the aggregate scan of the same run.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import io
import json
import math
import os
import pstats
import random
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, event, func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.content import Content, default_content
from bot.domain.classify import OFFLINE, THEMES
from bot.domain.journey_map import JourneyMap
from bot.domain.weeks import week_start
from bot.services.journey import current_org, load_journey
from bot.services.kpi import last_complete_week, weeks_ending
from bot.services.kpi_import import import_answers
from bot.store.db import make_engine, make_session_factory, upgrade
from bot.store.models import (
    Base,
    Issue,
    IssueFollower,
    Observation,
    Org,
    Person,
    Stage,
    SurveyResponse,
    Team,
    Touchpoint,
)

PG_URL = os.environ.get("CXBOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)  # a Tuesday: the last complete week is 2026-W47
ZONE = "Europe/Stockholm"
IMPORT_TARGET = 50_000  # answers per second
DIGEST_TARGET = 2.0  # seconds
SCAN_FACTOR = 3.0  # the digest may take this many full aggregate scans
SCAN_SQL = "SELECT metric, stage_id, count(*), sum(score) FROM survey_response GROUP BY metric, stage_id"
INSERT_CHUNK = 5000
LABELS = {"sqlite": "SQLite (file, WAL)", "postgresql": "PostgreSQL 127.0.0.1"}

SUBJECTS = ["kunden", "en kund", "kunderna", "en äldre kund", "företagskunden", "en ny kund", "the customer"]
PROBLEMS = [
    "väntade länge",
    "fick fel belopp",
    "kunde inte logga in",
    "fick ingen bekräftelse",
    "blev dubbeldebiterad",
    "fick ett otrevligt svar",
    "hittade inte priset",
    "fick leveransen sent",
    "tappade uppkopplingen",
    "fick ett felmeddelande i appen",
    "blev felkopplad",
    "was charged twice",
    "tyckte att det gick smidigt",
    "berömde personalen",
]
DETAILS = ["i tre dagar", "trots två påminnelser", "efter flytten", "på mobilen", "vid betalningen", "i chatten", ""]
ROOT_CAUSES = ["process", "product", "communication", "training", "system", "partner", "policy", "capacity", "other"]
SEVERITIES = [("low", 0.2), ("normal", 0.55), ("high", 0.2), ("critical", 0.05)]
PLATFORMS = ["slack", "slack", "discord", "console"]
# Score weights per metric (index = score − lowest score); stages and weeks shift them a little.
SCORE_WEIGHTS = {
    "nps": [3, 1, 1, 2, 2, 4, 5, 9, 14, 22, 18],
    "csat": [5, 7, 14, 38, 36],
    "ces": [4, 5, 8, 12, 22, 28, 21],
}
LOWEST = {"nps": 0, "csat": 1, "ces": 1}
METRIC_WEIGHTS = [("nps", 0.4), ("csat", 0.35), ("ces", 0.25)]


@dataclass(frozen=True)
class Size:
    answers: int
    observations: int
    issues: int
    touchpoints: int
    stages: int
    teams: int
    people: int
    weeks: int
    seed: int


@dataclass
class Synthetic:
    """What the row generators need to know of the loaded journey."""

    org_id: int
    sla: dict[str, dict[str, int]]
    stage_keys: dict[int, str]
    touchpoints: list[tuple[int, str, int, int | None, int | None]]  # id, key, stage id, owner team, owner
    people: list[int]


# --- the synthetic org ---------------------------------------------------------------------


def build_journey(size: Size) -> JourneyMap:
    """10 stages × 100 touchpoints (by default), owned by teams and people; a few unowned."""
    teams = [{"key": f"team-{t:02d}", "name": {"sv": f"Team {t}", "en": f"Team {t}"}} for t in range(size.teams)]
    people = [
        {"key": f"p{n:04d}", "name": f"Person {n:04d}", "teams": [teams[n % size.teams]["key"]]}
        for n in range(size.people)
    ]
    stages: list[dict[str, Any]] = []
    per_stage, extra = divmod(size.touchpoints, size.stages)
    count = 0
    for s in range(size.stages):
        touchpoints = []
        for i in range(per_stage + (1 if s < extra else 0)):
            owned = count % 31 != 7  # about 3 % have no owner: the digest lists them
            touchpoints.append(
                {
                    "key": f"s{s + 1:02d}-tp{i + 1:03d}",
                    "name": {"sv": f"Kontaktpunkt {s + 1}.{i + 1}", "en": f"Touchpoint {s + 1}.{i + 1}"},
                    "aliases": [f"kp{s + 1}x{i + 1}"],
                    "owner_team": teams[count % size.teams]["key"] if owned else None,
                    "owner": people[count % size.people]["key"] if owned else None,
                    "backup": people[(count + 1) % size.people]["key"] if owned else None,
                }
            )
            count += 1
        stages.append(
            {
                "key": f"stage-{s + 1:02d}",
                "name": {"sv": f"Steg {s + 1}", "en": f"Stage {s + 1}"},
                "owner": people[s % size.people]["key"],
                "keywords": [f"steg{s + 1}", f"stage{s + 1}"],
                "targets": {"nps": 20, "csat": 80, "ces": 5.5},
                "touchpoints": touchpoints,
            }
        )
    return JourneyMap.model_validate(
        {
            "org": {
                "name": "Benchmark AB",
                "time_zone": ZONE,
                "language": "sv",
                "admins": [people[0]["key"]],
                "cx_lead": people[1]["key"],
                "min_answers": 30,
            },
            "teams": teams,
            "people": people,
            "stages": stages,
        }
    )


def read_org(session: Session) -> Synthetic:
    org = current_org(session)
    assert org is not None
    touchpoints = [
        (r.id, r.key, r.stage_id, r.owner_team_id, r.owner_id)
        for r in session.execute(
            select(
                Touchpoint.id, Touchpoint.key, Touchpoint.stage_id, Touchpoint.owner_team_id, Touchpoint.owner_id
            ).where(Touchpoint.org_id == org.id)
        )
    ]
    stage_keys = dict(session.execute(select(Stage.id, Stage.key).where(Stage.org_id == org.id)).all())
    people = list(session.scalars(select(Person.id).where(Person.org_id == org.id).order_by(Person.id)))
    return Synthetic(org.id, dict(org.sla), stage_keys, touchpoints, people)


def window(size: Size, zone: ZoneInfo) -> tuple[list[str], datetime]:
    """The ten ISO weeks that end with the last complete one, and the first one's start (UTC)."""
    weeks = weeks_ending(last_complete_week(NOW, zone), size.weeks, zone)
    return weeks, week_start(weeks[0], zone).astimezone(UTC)


def issue_rows(size: Size, org: Synthetic, start: datetime, rng: random.Random) -> list[dict[str, Any]]:
    span = (NOW - start).total_seconds() - 3600
    severities, weights = zip(*SEVERITIES, strict=True)
    rows = []
    for n in range(size.issues):
        tp_id, tp_key, stage_id, team_id, owner_id = rng.choice(org.touchpoints)
        severity = rng.choices(severities, weights)[0]
        rule = org.sla[severity]
        reported = start + timedelta(seconds=rng.uniform(0, span))
        ack_due = reported + timedelta(seconds=rule["acknowledge"])
        resolve_due = reported + timedelta(seconds=rule["resolve"])
        acknowledged = resolved = last_resolved = None
        reopens, version, root_cause, action = 0, 1, None, None
        if rng.random() < 0.9:
            at = reported + timedelta(seconds=rng.lognormvariate(math.log(rule["acknowledge"] * 0.4), 1.0))
            acknowledged = at if at < NOW else None
        if acknowledged is not None and rng.random() < 0.85:
            at = acknowledged + timedelta(seconds=rng.lognormvariate(math.log(rule["resolve"] * 0.3), 1.0))
            resolved = last_resolved = at if at < NOW else None
        status = "resolved" if resolved else "acknowledged" if acknowledged else "open"
        if resolved is not None:
            version += 2
            root_cause = rng.choice(ROOT_CAUSES)
            action = f"Åtgärdat: {rng.choice(PROBLEMS)} ska inte hända igen ({tp_key})"
            if rng.random() < 0.06:  # reopened; half of them resolved again since
                reopens, version = 1, version + 1
                again = resolved + timedelta(hours=rng.uniform(2, 120))
                if rng.random() < 0.5 and again < NOW:
                    last_resolved, version = again, version + 1
                else:
                    status = "acknowledged"
        elif acknowledged is not None:
            version += 1
        overdue_ack = acknowledged is None and ack_due < NOW
        rows.append(
            {
                "org_id": org.org_id,
                "touchpoint_id": tp_id,
                "stage_id": stage_id,
                "description": f"{rng.choice(SUBJECTS)} {rng.choice(PROBLEMS)} {rng.choice(DETAILS)} (#{n})",
                "severity": severity,
                "customer_impact": rng.choice([None, "Kunden kunde inte betala", "Fördröjd leverans"]),
                "anonymous": rng.random() < 0.1,
                "status": status,
                "assignee_id": owner_id if acknowledged else None,
                "assignee_team_id": team_id,
                "affected_count": 1 + min(int(rng.expovariate(0.8)), 12),
                "reported_at": reported,
                "source_platform": rng.choice(PLATFORMS),
                "ack_due_at": ack_due,
                "resolve_due_at": resolve_due,
                "acknowledged_at": acknowledged,
                "resolved_at": resolved,
                "last_resolved_at": last_resolved,
                "root_cause": root_cause,
                "action_taken": action,
                "reminded_at": ack_due if overdue_ack else None,
                "escalation_level": 1 if overdue_ack else 0,
                "resolve_breach_noted_at": resolve_due if resolved is None and resolve_due < NOW else None,
                "reopen_count": reopens,
                "version": version,
            }
        )
    return rows


def follower_rows(
    issues: list[tuple[int, int, datetime, bool]], people: list[int], rng: random.Random
) -> list[dict[str, Any]]:
    """The reporter of every issue, and everyone who added a +1."""
    rows = []
    for issue_id, affected, reported, anonymous in issues:
        for k, person in enumerate(rng.sample(people, min(affected, len(people)))):
            rows.append(
                {
                    "issue_id": issue_id,
                    "person_id": person,
                    "role": "reporter" if k == 0 else "affected",
                    "anonymous": anonymous and k == 0,
                    "joined_at": reported + timedelta(minutes=k * 17),
                }
            )
    return rows


def observation_rows(
    size: Size, org: Synthetic, start: datetime, issues_by_touchpoint: dict[int, list[int]], rng: random.Random
) -> list[dict[str, Any]]:
    span = (NOW - start).total_seconds() - 60
    themes = list(THEMES)
    rows = []
    for n in range(size.observations):
        created = start + timedelta(seconds=rng.uniform(0, span))
        tp_id, _, stage_id, _, _ = rng.choice(org.touchpoints)
        place = rng.random()
        touchpoint_id: int | None = tp_id if place < 0.85 else None
        stage: int | None = stage_id if place < 0.95 else None  # 5 % could not be placed
        anonymous = rng.random() < 0.1
        captured = not anonymous and rng.random() < 0.3  # a chat message someone captured
        picked = ["other"] if rng.random() < 0.1 else rng.sample(themes, rng.choice([1, 1, 2, 3]))
        linked = issues_by_touchpoint.get(tp_id) if touchpoint_id is not None and rng.random() < 0.08 else None
        platform = rng.choice(PLATFORMS)
        rows.append(
            {
                "org_id": org.org_id,
                "text": f"{rng.choice(SUBJECTS)} {rng.choice(PROBLEMS)} {rng.choice(DETAILS)}".strip(),
                "author_id": None if anonymous else rng.choice(org.people),
                "anonymous": anonymous,
                "source": "message" if captured else "command",
                "source_platform": platform,
                "source_channel": "#kundservice" if captured else None,
                "source_message_ref": f"m{n}" if captured else None,
                "source_link": f"https://chat.example/m{n}" if captured else None,
                "captured_by_id": rng.choice(org.people) if captured else None,
                "created_at": created,
                "stage_id": stage,
                "touchpoint_id": touchpoint_id,
                "sentiment": rng.choice(["negative", "negative", "neutral", "positive"]),
                "themes": picked,
                "classifier": OFFLINE,
                "classifier_note": None,
                "classified_at": created + timedelta(seconds=30),
                "issue_id": rng.choice(linked) if linked else None,
            }
        )
    return rows


def bulk_insert(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """Core executemany on the table: the ORM's bulk insert would split the rows into small
    batches wherever the set of None columns changes."""
    table = model.__table__
    for begin in range(0, len(rows), INSERT_CHUNK):
        session.execute(insert(table), rows[begin : begin + INSERT_CHUNK])


def answers_csv(size: Size, org: Synthetic, zone: ZoneInfo, rng: random.Random) -> bytes:
    """``answered_at,metric,score,stage,touchpoint,id``: local times without an offset, a tenth in
    UTC with Z; three quarters name a touchpoint; a tenth have no id (known by their hash)."""
    weeks, _ = window(size, zone)
    first_day = week_start(weeks[0], zone).date()
    days = [(first_day + timedelta(days=d)).isoformat() for d in range(7 * size.weeks)]
    clock = [f"T{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]
    seconds = [f"{s:02d}" for s in range(60)]
    stage_ids = sorted(org.stage_keys)
    by_stage: dict[int, list[str]] = {s: [] for s in stage_ids}
    for _, key, stage_id, _, _ in org.touchpoints:
        by_stage[stage_id].append(key)
    # Touchpoints are not equally popular (a few have small samples); stages differ in quality
    # and drift over the weeks, so the digest has trends to show.
    tp_weights = {s: [1 / (1 + i) ** 0.6 for i in range(len(keys))] for s, keys in by_stage.items()}
    cumulative: dict[tuple[str, int, int], list[int]] = {}
    for metric, base in SCORE_WEIGHTS.items():
        for position in range(len(stage_ids)):
            for week in range(size.weeks):
                tilt = 1 + 0.08 * ((position % 5) - 2) + 0.02 * (week - size.weeks / 2) * (1 if position % 2 else -1)
                weights = [w * (tilt ** (i / len(base))) for i, w in enumerate(base)]
                running, total = [], 0.0
                for w in weights:
                    total += w
                    running.append(total)
                cumulative[(metric, position, week)] = [round(r / total * 1_000_000) for r in running]
    metrics, metric_weights = zip(*METRIC_WEIGHTS, strict=True)
    out = io.StringIO()
    out.write("answered_at,metric,score,stage,touchpoint,id\n")
    write, randrange, random_ = out.write, rng.randrange, rng.random
    hashed: set[str] = set()  # rows without an id must differ, or the import counts them once
    for n in range(size.answers):
        day = randrange(len(days))
        minute = randrange(1440)
        metric = rng.choices(metrics, metric_weights)[0]
        position = randrange(len(stage_ids))
        stage_id = stage_ids[position]
        draw = randrange(1_000_000)
        steps = cumulative[(metric, position, day // 7)]
        score = LOWEST[metric] + next(i for i, edge in enumerate(steps) if draw < edge)
        touchpoint = rng.choices(by_stage[stage_id], tp_weights[stage_id])[0] if random_() < 0.75 else ""
        zulu = "Z" if random_() < 0.1 else ""
        at = f"{days[day]}{clock[minute]}{seconds[randrange(60)]}{zulu}"
        row = f"{at},{metric},{score},{org.stage_keys[stage_id]},{touchpoint},"
        identity = f"resp-{n:08d}" if random_() < 0.9 or row in hashed else ""
        if not identity:
            hashed.add(row)
        write(f"{row}{identity}\n")
    return out.getvalue().encode()


# --- measuring -----------------------------------------------------------------------------


@contextmanager
def profiled(enabled: bool, title: str, limit: int = 25) -> Iterator[None]:
    if not enabled:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        buffer = io.StringIO()
        pstats.Stats(profile, stream=buffer).sort_stats("tottime").print_stats(limit)
        print(f"\n--- cProfile: {title} (by own time) ---")
        print("\n".join(line for line in buffer.getvalue().splitlines() if line.strip())[:12000])


class StatementTimer:
    """The SQL statements a block runs. The driver fetches rows lazily (SQLite steps through the
    query while the rows are read), so the time of the execute call says little; ``replay`` runs
    each statement again on the raw driver connection and fetches all its rows."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.statements: list[tuple[str, Any]] = []

    def _before(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        self.statements.append((statement, parameters))

    def __enter__(self) -> StatementTimer:
        event.listen(self.engine, "before_cursor_execute", self._before)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)

    def explain(self, statement: str, parameters: Any) -> list[str]:
        """The plan PostgreSQL ran (EXPLAIN ANALYZE), or the one SQLite would run."""
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            if self.engine.dialect.name == "postgresql":
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                return [row[0] for row in cursor.fetchall()]
            cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            return [" ".join(str(value) for value in row) for row in cursor.fetchall()]
        finally:
            connection.rollback()
            connection.close()

    def replay(self) -> list[tuple[float, int, str, Any]]:
        """(seconds, rows, statement, parameters) per statement, execute and fetch, in the order run."""
        timed = []
        connection = self.engine.raw_connection()
        try:
            for statement, parameters in self.statements:
                cursor = connection.cursor()
                started = time.perf_counter()
                cursor.execute(statement, parameters)
                rows = cursor.fetchall()
                timed.append((time.perf_counter() - started, len(rows), statement, parameters))
                cursor.close()
            connection.rollback()
        finally:
            connection.close()
        return timed


def best_of(count: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def digest_call(
    session_factory: sessionmaker[Session], org_id: int, week: str, content: Content, chart: bool
) -> dict[str, Any]:
    """One digest as the clock makes it: a fresh session, build, then (with chart) draw and render."""
    digest_module = importlib.import_module("bot.services.digest")
    timings: dict[str, Any] = {}
    with session_factory() as session:
        org = session.get(Org, org_id)
        assert org is not None
        started = time.perf_counter()
        digest = digest_module.build_digest(session, org, week, catalogue=content.catalogue, tips=content.tips, now=NOW)
        timings["build"] = time.perf_counter() - started
        if chart:
            started = time.perf_counter()
            png = digest_module.digest_chart(digest, "sv")
            timings["chart"] = time.perf_counter() - started
            started = time.perf_counter()
            message = digest_module.digest_message(
                content.catalogue, "sv", digest, digest_module.chart_key(digest, "sv") if png else None
            )
            timings["message"] = time.perf_counter() - started
            timings["png_bytes"] = len(png or b"")
            timings["message_chars"] = len(message.text or "")
        timings["digest"] = digest
    return timings


def run(url: str, size: Size, label: str, profile: bool, explain: bool) -> dict[str, Any]:
    results: dict[str, Any] = {"database": label}
    zone = ZoneInfo(ZONE)
    rng = random.Random(size.seed)
    engine = make_engine(url)
    upgrade(engine)
    session_factory = make_session_factory(engine)
    content = default_content()

    # 1. The org: the journey map, then issues, followers and observations in bulk.
    journey = build_journey(size)
    started = time.perf_counter()
    with session_factory.begin() as session:
        load_journey(session, journey, NOW)
    results["journey_load_s"] = time.perf_counter() - started
    with session_factory() as session:
        org = read_org(session)
    weeks, start = window(size, zone)
    week = weeks[-1]
    started = time.perf_counter()
    issues = issue_rows(size, org, start, rng)
    with session_factory.begin() as session:
        bulk_insert(session, Issue, issues)
        stored = session.execute(
            select(Issue.id, Issue.touchpoint_id, Issue.affected_count, Issue.reported_at, Issue.anonymous).order_by(
                Issue.id
            )
        ).all()
        bulk_insert(
            session, IssueFollower, follower_rows([(i, a, r, an) for i, _, a, r, an in stored], org.people, rng)
        )
        by_touchpoint: dict[int, list[int]] = {}
        for issue_id, tp_id, *_ in stored:
            by_touchpoint.setdefault(tp_id, []).append(issue_id)
        bulk_insert(session, Observation, observation_rows(size, org, start, by_touchpoint, rng))
    results["org_insert_s"] = time.perf_counter() - started
    del issues, stored

    # 2. The import, then the same bytes again.
    started = time.perf_counter()
    raw = answers_csv(size, org, zone, rng)
    results["csv_generate_s"] = time.perf_counter() - started
    results["csv_mb"] = len(raw) / 1e6
    progressed = [0]
    started = time.perf_counter()
    with profiled(profile, f"import_answers of {size.answers:,} answers, {label}"), session_factory.begin() as session:
        first = import_answers(
            session,
            session.get_one(Org, org.org_id),
            raw,
            "bench.csv",
            progress=lambda n: progressed.__setitem__(0, progressed[0] + n),
        )
    results["import_s"] = time.perf_counter() - started
    results["import_profiled"] = profile
    results["imported"], results["import_already_there"] = first.imported, first.already_there
    results["import_errors"], results["progress_total"] = len(first.errors), progressed[0]
    started = time.perf_counter()
    with session_factory.begin() as session:
        again = import_answers(session, session.get_one(Org, org.org_id), raw, "bench.csv")
    results["reimport_s"] = time.perf_counter() - started
    results["reimport_added"], results["reimport_already_there"] = again.imported, again.already_there
    del raw
    with session_factory() as session:
        results["answers_stored"] = session.scalar(select(func.count()).select_from(SurveyResponse))
        results["teams"] = session.scalar(select(func.count()).select_from(Team))
        results["touchpoints"] = len(org.touchpoints)
        results["issues"] = session.scalar(select(func.count()).select_from(Issue))
        results["observations"] = session.scalar(select(func.count()).select_from(Observation))
    if engine.dialect.name == "postgresql":  # this schema's tables only: the database is shared
        tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f"VACUUM ANALYZE {tables}"))

    # 3. One full aggregate scan of the answers.
    with engine.connect() as connection:
        results["scan_s"] = best_of(3, lambda: connection.execute(text(SCAN_SQL)).all())

    # 4. The digest: cold (matplotlib is imported by the first call), then warm.
    started = time.perf_counter()
    importlib.import_module("bot.services.digest")
    results["cold_import_s"] = time.perf_counter() - started
    cold = digest_call(session_factory, org.org_id, week, content, chart=True)
    results["cold_total_s"] = time.perf_counter() - started
    results["cold_build_s"], results["cold_chart_s"], results["cold_message_s"] = (
        cold["build"],
        cold["chart"],
        cold["message"],
    )
    results["warm_data_s"] = min(
        digest_call(session_factory, org.org_id, week, content, False)["build"] for _ in range(3)
    )
    full = [digest_call(session_factory, org.org_id, week, content, True) for _ in range(3)]
    best = min(full, key=lambda t: t["build"] + t["chart"] + t["message"])
    results["warm_full_s"] = best["build"] + best["chart"] + best["message"]
    results["warm_full_parts"] = {k: best[k] for k in ("build", "chart", "message")}
    digest = best["digest"]
    results["week"] = week
    results["digest_facts"] = {
        "stages with KPIs": len(digest.kpis),
        "touchpoints with KPIs": sum(len(s.touchpoints) for s in digest.kpis),
        "issues opened/resolved": f"{digest.issues.opened}/{digest.issues.resolved}",
        "observations": digest.observations.count,
        "unowned touchpoints": len(digest.unowned),
        "chart PNG bytes": best["png_bytes"],
        "message chars": best["message_chars"],
    }
    with StatementTimer(engine) as timer:
        built = digest_call(session_factory, org.org_id, week, content, False)["build"]
    replayed = timer.replay()
    sql_time = sum(t for t, *_ in replayed)
    results["build_statements"] = len(replayed)
    results["build_sql_s"], results["build_python_s"] = sql_time, built - sql_time
    slowest = sorted(replayed, key=lambda timed: -timed[0])
    results["slowest_sql"] = [(t, n, " ".join(sql.split())[:150]) for t, n, sql, _ in slowest[:4]]
    results["slowest_plan"] = timer.explain(slowest[0][2], slowest[0][3]) if explain and slowest else []
    if profile:
        with profiled(True, f"warm build_digest, {label}"):
            digest_call(session_factory, org.org_id, week, content, False)
    engine.dispose()
    return results


# --- printing ------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def summary(results: list[dict[str, Any]]) -> str:
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, render: Callable[[dict[str, Any]], str]) -> None:
        rows.append((label, [render(r) for r in results]))

    row("org: touchpoints/issues/observations", lambda r: f"{r['touchpoints']:,}/{r['issues']:,}/{r['observations']:,}")
    row("journey load (load_journey)", lambda r: ms(r["journey_load_s"]))
    row("issues+followers+observations insert", lambda r: ms(r["org_insert_s"]))
    row("CSV generated (untimed), MB", lambda r: f"{r['csv_mb']:,.1f}")
    row(
        "import_answers, commit included",
        lambda r: f"{ms(r['import_s'])}{' (profiled)' if r['import_profiled'] else ''}",
    )
    row("  answers/s", lambda r: f"{r['imported'] / r['import_s']:,.0f}")
    row(
        "  imported/already there/invalid",
        lambda r: f"{r['imported']:,}/{r['import_already_there']:,}/{r['import_errors']}",
    )
    row("re-import of the same bytes", lambda r: ms(r["reimport_s"]))
    row("  added/already there", lambda r: f"{r['reimport_added']:,}/{r['reimport_already_there']:,}")
    row("answers in the table", lambda r: f"{r['answers_stored']:,}")
    row("aggregate scan, best of 3", lambda r: ms(r["scan_s"]))
    row("digest cold: total", lambda r: ms(r["cold_total_s"]))
    row("  import bot.services.digest+matplotlib", lambda r: ms(r["cold_import_s"]))
    row(
        "  build / chart / message",
        lambda r: f"{ms(r['cold_build_s'])} / {ms(r['cold_chart_s'])} / {ms(r['cold_message_s'])}",
    )
    row("digest warm, data only (build), best of 3", lambda r: ms(r["warm_data_s"]))
    row(
        "  SQL (replayed, fetched) / the rest",
        lambda r: f"{r['build_statements']} stmts {ms(r['build_sql_s'])} / {ms(r['build_python_s'])}",
    )
    row("digest warm, with chart+message, best of 3", lambda r: ms(r["warm_full_s"]))
    row(
        "  build / chart / message",
        lambda r: " / ".join(ms(r["warm_full_parts"][k]) for k in ("build", "chart", "message")),
    )
    row("ratio digest/scan, data only", lambda r: f"{r['warm_data_s'] / r['scan_s']:.1f}×")
    row("ratio digest/scan, with chart", lambda r: f"{r['warm_full_s'] / r['scan_s']:.1f}×")
    width = max(len(label) for label, _ in rows) + 2
    columns = [max(len(r["database"]), *(len(values[i]) for _, values in rows)) + 2 for i, r in enumerate(results)]
    lines = [f"{'':<{width}}" + "".join(f"{r['database']:>{c}}" for r, c in zip(results, columns, strict=True))]
    lines += [
        f"{label:<{width}}" + "".join(f"{v:>{c}}" for v, c in zip(values, columns, strict=True))
        for label, values in rows
    ]
    for r in results:
        rate = r["imported"] / r["import_s"]
        checks = [
            f"import {rate:,.0f}/s {'meets' if rate >= IMPORT_TARGET else 'MISSES'} the ≥ {IMPORT_TARGET:,}/s target",
            f"re-import added {r['reimport_added']}{'' if r['reimport_added'] == 0 else ' (SHOULD BE 0)'}",
            f"progress reported {r['progress_total']:,} answers",
            f"warm digest {ms(r['warm_full_s'])} {'meets' if r['warm_full_s'] < DIGEST_TARGET else 'MISSES'} "
            f"the < {DIGEST_TARGET:g} s target",
            f"{r['warm_full_s'] / r['scan_s']:.1f}× the aggregate scan "
            f"{'meets' if r['warm_full_s'] <= SCAN_FACTOR * r['scan_s'] else 'MISSES'} the ≤ {SCAN_FACTOR:g}× target",
        ]
        lines.append(f"\n{r['database']} ({r['week']}): " + "; ".join(checks))
        lines.append("  digest: " + ", ".join(f"{k} {v}" for k, v in r["digest_facts"].items()))
        lines.append("  slowest statements of a warm build_digest:")
        lines += [f"    {ms(t):>9} {n:>7,} rows  {sql}" for t, n, sql in r["slowest_sql"]]
        if r["slowest_plan"]:
            lines.append("  its plan:")
            lines += [f"    {line}" for line in r["slowest_plan"]]
    return "\n".join(lines)


def run_one(database: str, size: Size, profile: bool, explain: bool) -> dict[str, Any]:
    if database == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            return run(f"sqlite:///{folder}/bench.db", size, LABELS["sqlite"], profile, explain)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = PG_URL + ("&" if "?" in PG_URL else "?") + f"options=-csearch_path%3D{schema}"
        return run(url, size, LABELS["postgresql"], profile, explain)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--answers", type=int, default=1_000_000)
    parser.add_argument("--observations", type=int, default=100_000)
    parser.add_argument("--issues", type=int, default=20_000)
    parser.add_argument("--touchpoints", type=int, default=1_000)
    parser.add_argument("--stages", type=int, default=10)
    parser.add_argument("--teams", type=int, default=20)
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--weeks", type=int, default=10, help="ISO weeks of data, ending with the last complete one")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--profile", action="store_true", help="cProfile the import and a warm build_digest")
    parser.add_argument("--explain", action="store_true", help="the plan of the digest's slowest statement")
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)  # a child's results, for --db both
    args = parser.parse_args()
    size = Size(
        args.answers,
        args.observations,
        args.issues,
        args.touchpoints,
        args.stages,
        args.teams,
        args.people,
        args.weeks,
        args.seed,
    )
    command = shlex.join([sys.executable, *sys.argv])
    if args.db != "both":
        print(f"{LABELS[args.db]}: {json.dumps(asdict(size))}", flush=True)
        result = run_one(args.db, size, args.profile, args.explain)
        if args.json is not None:
            args.json.write_text(json.dumps(result, default=str))
            return
        print(f"\n{command}\n{summary([result])}")
        return
    # One child process per database, so that each gets a cold digest of its own.
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for database in ("sqlite", "postgresql"):
            out = Path(folder) / f"{database}.json"
            child = [f"--{name}={value}" for name, value in asdict(size).items()]
            child += ["--profile"] if args.profile else []
            child += ["--explain"] if args.explain else []
            subprocess.run([sys.executable, __file__, *child, f"--db={database}", f"--json={out}"], check=True)
            results.append(json.loads(out.read_text()))
    print(f"\n{command}\n{summary(results)}")


if __name__ == "__main__":
    main()
