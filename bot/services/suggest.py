"""What a platform can offer while someone types a command's argument (Discord's autocomplete):
stages, touchpoints, people, issue and observation numbers, the words a command knows.

Suggestions are an answer like any other: someone the core does not know gets none, and nobody
gets more than the command itself would show them (an admin command's suggestions are for
admins only). Touchpoints are ranked by the same matcher the command uses, aliases included.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.domain.issues import parse_report
from bot.domain.matching import Candidate, rank_while_typing
from bot.services.journey import active_stages, find_stage
from bot.store.models import Issue, Observation, Org, Person, Touchpoint

LIMIT = 25
VALUE_LIMIT = 100  # Discord's longest choice value
FIXED = {
    "lang": ("sv", "en"),
    "subscribe": ("tips", "digest", "all"),
    "unsubscribe": ("tips", "digest", "all"),
    "tip": ("next", *(str(n) for n in range(1, 11))),
    "issues": ("open", "mine", "overdue"),
    "digest": ("preview",),
}


def suggestions(
    session: Session,
    org: Org,
    viewer: Person | None,
    language: str,
    command: str,
    current: str,
    *,
    admin_command: bool,
) -> list[tuple[str, str]]:
    """(label, value) pairs for what ``viewer`` has typed so far; at most 25, best first."""
    if viewer is None or (admin_command and not viewer.is_admin):
        return []
    typed = current.strip().casefold()

    def keep(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        starts = [p for p in pairs if p[0].casefold().startswith(typed) or p[1].casefold().startswith(typed)]
        within = [p for p in pairs if p not in starts and (typed in p[0].casefold() or typed in p[1].casefold())]
        return (starts + within)[:LIMIT]

    if command in FIXED:
        return keep([(word, word) for word in FIXED[command]])
    if command in ("journey", "kpi"):
        stages = active_stages(session, org)
        meant = find_stage(stages, current)  # what the command would take (a near spelling too) first
        pairs = [(s.name(language), s.key) for s in stages]
        first = [(meant.name(language), meant.key)] if meant is not None else []
        return list(dict.fromkeys(first + keep(pairs)))[:LIMIT]
    if command == "report":
        return touchpoint_suggestions(session, org, language, current)
    if command == "erase":
        people = session.scalars(
            select(Person).where(Person.org_id == org.id, Person.archived_at.is_(None)).order_by(Person.name)
        )
        return keep([(f"{p.name} ({p.key})", p.key) for p in people])
    if command == "issue":
        issues = session.execute(
            select(Issue.id, Issue.description).where(Issue.org_id == org.id).order_by(Issue.id.desc()).limit(200)
        )
        return keep([(f"#{number} {' '.join(text.split())[:80]}", str(number)) for number, text in issues])
    if command == "observation":
        observations = session.execute(
            select(Observation.id, Observation.text)
            .where(Observation.org_id == org.id)
            .order_by(Observation.id.desc())
            .limit(200)
        )
        return keep([(f"#{number} {' '.join(text.split())[:80]}", str(number)) for number, text in observations])
    return []


def touchpoint_suggestions(session: Session, org: Org, language: str, current: str) -> list[tuple[str, str]]:
    """``/cx report [severity] [anonymous] <touchpoint>: <text>``, read by the command's own
    parser: the touchpoints the name typed so far may mean, each choice keeping everything else
    that was typed (a choice replaces the whole text, and Discord keeps 100 characters of it)."""
    request = parse_report(current)
    named = request.touchpoint if request.touchpoint is not None else request.description
    start = current.find(named) if named else len(current.rstrip())
    start = start if start >= 0 else len(current)
    before = current[:start]
    after = current[start + len(named) :] if request.touchpoint is not None else ": "
    touchpoints = {
        t.key: t
        for t in session.scalars(
            select(Touchpoint)
            .where(Touchpoint.org_id == org.id, Touchpoint.archived_at.is_(None))
            .order_by(Touchpoint.position)
        )
    }
    ranked = rank_while_typing(named, [Candidate(t.key, t.spellings()) for t in touchpoints.values()])
    said = request.description if request.touchpoint is not None else ""
    choices = [(f"{touchpoints[key].name(language)}: {said or '…'}", f"{before}{key}{after}") for key in ranked]
    return [(label, value) for label, value in choices if len(value) <= VALUE_LIMIT][:LIMIT]
