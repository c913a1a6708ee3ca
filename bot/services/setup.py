"""Putting a journey map and demo data into a database, and telling the admins."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.app import language_for
from bot.domain.journey_map import JourneyMap, Problem, load_journey_file
from bot.i18n import Catalogue
from bot.messages import Message
from bot.outbox import post_to_person
from bot.services.journey import (
    BUILT_IN_DEFAULTS,
    LoadReport,
    OrgDefaults,
    ensure_platform_presence,
    load_journey,
)
from bot.store.models import Org, Person


class JourneyFileError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def read_journey(path: Path) -> JourneyMap:
    result = load_journey_file(str(path))
    if result.journey is None:
        raise JourneyFileError(result.errors or result.problems)
    return result.journey


def load_summary(catalogue: Catalogue, language: str, org_name: str, report: LoadReport) -> str:
    """ "The journey map for Acme was loaded: 104 added, …" in the reader's language."""
    counts = catalogue.text(
        language,
        "admin.journey_counts",
        added=len(report.added),
        updated=len(report.updated),
        archived=len(report.archived),
        restored=len(report.restored),
    )
    return catalogue.text(language, "admin.journey_loaded", org=org_name, summary=counts)


def apply_journey(
    session: Session,
    journey: JourneyMap,
    now: datetime,
    catalogue: Catalogue,
    implicit_platforms: tuple[str, ...] = (),
    defaults: OrgDefaults = BUILT_IN_DEFAULTS,
) -> tuple[Org, LoadReport]:
    """Load the map and, when anything changed, tell every admin once per distinct change.

    ``implicit_platforms`` (the console) address people and teams by key; their presence is
    added before the admins are told, so the notice reaches them there too.
    """
    org, report = load_journey(session, journey, now, defaults)
    for platform in implicit_platforms:
        ensure_platform_presence(session, org, platform)
    if report.changed:
        fingerprint = hashlib.sha256(
            "\n".join(report.added + report.updated + report.archived + report.restored).encode()
        ).hexdigest()[:16]
        admins = session.scalars(
            select(Person).where(Person.org_id == org.id, Person.is_admin, Person.archived_at.is_(None))
        )
        for admin in admins:
            language = language_for(admin, org, org.language)
            post_to_person(
                session,
                admin,
                lambda lang: Message(
                    header=catalogue.text(lang, "admin.journey_loaded_header"),
                    text=load_summary(catalogue, lang, org.name, report),
                ),
                language,
                f"journey-loaded:{org.id}:{fingerprint}:{admin.key}",
                now,
            )
    return org, report
