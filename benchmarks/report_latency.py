"""How fast is `/cx report`? Reports per second and p50/p99 latency, in process, on SQLite and PostgreSQL.

Each report goes through the whole core path a chat platform would use: CxApp.dispatch parses it,
matches the touchpoint, checks for a similar open issue, stores the issue, its follower and its
event, and queues the routed posts (the owner team's channel and the owner, on three platforms)
in one transaction. The database starts with the example journey map and fills as it runs, so
later reports also pay for the duplicate check against the open issues already there.

    .venv/bin/python benchmarks/report_latency.py                 # both databases, 2 000 reports each
    .venv/bin/python benchmarks/report_latency.py --reports 500 --only sqlite

PostgreSQL is read from CXBOT_TEST_POSTGRES_URL (default: the local test database); the script
works in a schema of its own and drops it afterwards. Target: p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import CxApp
from bot.config import REPO_CONTENT
from bot.domain.journey_map import load_journey_file
from bot.i18n import default_catalogue
from bot.messages import Invocation
from bot.services.setup import apply_journey
from bot.store.db import make_engine, make_session_factory, upgrade
from bot.store.models import Issue, Outbox

PG_URL = os.environ.get("CXBOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
TOUCHPOINTS = ["faktura", "app", "chatt", "kassa", "leverans", "telefon", "webbplatsen", "bankid", "flytt", "avbrott"]
SUBJECTS = ["kunden", "en kund", "kunderna", "en äldre kund", "företagskunden", "en ny kund", "grannen"]
PROBLEMS = [
    "väntade länge",
    "fick fel belopp",
    "kunde inte logga in",
    "fick ingen bekräftelse",
    "blev dubbeldebiterad",
    "fick ett otrevligt svar",
    "hittade inte priset",
    "fick leveransen sent",
    "fick fel produkt",
    "kom inte fram",
    "tappade uppkopplingen",
    "fick ett felmeddelande",
    "blev felkopplad",
    "fick vänta på återkoppling",
]
DETAILS = [
    "i tre dagar",
    "trots två påminnelser",
    "efter flytten",
    "på mobilen",
    "i november",
    "vid betalningen",
    "med BankID",
    "i chatten",
    "på fakturan",
    "på kvällen",
    "under helgen",
    "efter uppdateringen",
]
REPORTERS = ["anna", "erik", "sara", "jonas", "leila", "mikael", "fatima", "oskar", "elin", "david"]


def report_texts(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for n in range(count):
        words = f"{rng.choice(SUBJECTS)} {rng.choice(PROBLEMS)} {rng.choice(DETAILS)}"
        texts.append(f"/cx report {rng.choice(TOUCHPOINTS)}: {words} (case {n} {uuid.UUID(int=rng.getrandbits(128))})")
    return texts


def run(url: str, reports: int, label: str) -> dict[str, float]:
    engine = make_engine(url)
    upgrade(engine)
    session_factory = make_session_factory(engine)
    journey = load_journey_file(str(REPO_CONTENT / "journey.example.yaml")).journey
    assert journey is not None
    with session_factory.begin() as session:
        apply_journey(session, journey, NOW, default_catalogue(), implicit_platforms=("console",))
    app = CxApp(session_factory, clock=lambda: NOW, default_language="sv")
    texts = report_texts(reports)
    for warm in texts[:20]:  # connections, statement caches, imports
        app.dispatch(Invocation("console", "console", "anna", "#cx", warm))
    latencies = []
    offers = 0
    started = time.perf_counter()
    for n, line in enumerate(texts[20:]):
        before = time.perf_counter()
        reply = app.dispatch(Invocation("console", "console", REPORTERS[n % len(REPORTERS)], "#cx", line))
        latencies.append((time.perf_counter() - before) * 1000)
        answer = reply.message.text or ""
        # A report that repeats an open issue gets "+1 to #N?" instead: the same path, also counted.
        if answer.startswith(("Det här liknar ärende", "This looks like issue")):
            offers += 1
        elif not answer.startswith(("Tack! Ärende", "Thank you! Issue")):
            raise SystemExit(f"{label}: a report was neither created nor offered as +1: {reply.message}")
    elapsed = time.perf_counter() - started
    with session_factory() as session:
        issues = session.scalar(select(func.count()).select_from(Issue))
        posts = session.scalar(select(func.count()).select_from(Outbox).where(Outbox.topic.is_not(None)))
    engine.dispose()
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "reports": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50": statistics.median(latencies),
        "p99": quantiles[98],
        "max": max(latencies),
        "issues": issues or 0,
        "offers": offers,
        "routed_posts": posts or 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    results: list[tuple[str, dict[str, float]]] = []
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as folder:
            results.append(("SQLite (file, WAL)", run(f"sqlite:///{folder}/bench.db", args.reports, "sqlite")))
    if args.only in (None, "postgresql"):
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = make_engine(PG_URL)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = PG_URL + ("&" if "?" in PG_URL else "?") + f"options=-csearch_path%3D{schema}"
            results.append(("PostgreSQL 127.0.0.1", run(url, args.reports, "postgresql")))
        finally:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    print(f"{'database':<22}{'reports':>9}{'reports/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'routed posts':>14}")
    for name, r in results:
        print(
            f"{name:<22}{r['reports']:>9.0f}{r['per_second']:>11.1f}{r['p50']:>9.2f}{r['p99']:>9.2f}"
            f"{r['max']:>9.2f}{r['routed_posts']:>14.0f}"
        )
        verdict = "meets" if r["p99"] < 50 else "MISSES"
        print(
            f"  {verdict} the p99 < 50 ms target; {r['issues']:.0f} issues created, "
            f'{r["offers"]:.0f} reports answered with "+1 to #N?"'
        )


if __name__ == "__main__":
    main()
