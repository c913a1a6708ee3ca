"""What a platform can offer while someone types a command's argument (Discord's autocomplete):
stages, touchpoints, people, issue and observation numbers, the words a command knows."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.models import Issue, Observation, Org, Person, Stage, Touchpoint

LIMIT = 25
FIXED = {
    "lang": ("sv", "en"),
    "subscribe": ("tips", "digest", "all"),
    "unsubscribe": ("tips", "digest", "all"),
    "tip": ("next", *(str(n) for n in range(1, 11))),
    "issues": ("open", "mine", "overdue"),
    "digest": ("preview",),
}


def suggestions(session: Session, org: Org, language: str, command: str, current: str) -> list[tuple[str, str]]:
    """(label, value) pairs for what has been typed so far; at most 25, best first."""
    typed = current.strip().casefold()

    def keep(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        starts = [p for p in pairs if p[0].casefold().startswith(typed) or p[1].casefold().startswith(typed)]
        within = [p for p in pairs if p not in starts and (typed in p[0].casefold() or typed in p[1].casefold())]
        return (starts + within)[:LIMIT]

    if command in FIXED:
        return keep([(word, word) for word in FIXED[command]])
    if command in ("journey", "kpi"):
        stages = session.scalars(
            select(Stage).where(Stage.org_id == org.id, Stage.archived_at.is_(None)).order_by(Stage.position)
        )
        return keep([(s.name(language), s.key) for s in stages])
    if command == "report":
        touchpoints = session.scalars(
            select(Touchpoint)
            .where(Touchpoint.org_id == org.id, Touchpoint.archived_at.is_(None))
            .order_by(Touchpoint.position)
        )
        return keep([(f"{t.name(language)}: …", f"{t.key}: ") for t in touchpoints])
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
