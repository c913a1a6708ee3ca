"""Loading the journey map into the database, and reading it back.

Loading is idempotent (a second load of the same file writes nothing) and never deletes what
has history: a stage, touchpoint, team or person that leaves the file is archived, and comes
back unarchived if it returns. Pure configuration (channel ids, identities, targets, team
membership) simply follows the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from rapidfuzz import fuzz, process
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.domain.journey_map import JourneyMap, Severity, SlaRule
from bot.store.models import (
    Identity,
    KpiQuery,
    KpiTarget,
    Org,
    Person,
    Stage,
    Team,
    TeamChannel,
    TeamMember,
    Touchpoint,
    Workspace,
)

ORG_KEY = "default"
# Platforms whose presence the console adapter adds for every person and team at start-up; the
# file does not list them, so a reload must not remove them.
IMPLICIT_PLATFORMS = frozenset({"console"})

M = TypeVar("M")


@dataclass
class LoadReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.archived or self.restored)

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.archived)} archived, {len(self.restored)} restored"
        )


def _sync(obj: Any, values: dict[str, Any]) -> bool:
    """Assign only what differs, so an unchanged load leaves the session clean."""
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


def _sla_seconds(rules: dict[Severity, SlaRule]) -> dict[str, Any]:
    return {
        severity.value: {
            name: int(value.total_seconds())
            for name in ("acknowledge", "resolve")
            if (value := getattr(rule, name)) is not None
        }
        for severity, rule in sorted(rules.items())
    }


class _Upserter:
    """Keyed rows of one kind: update or add what the file has, archive what it lost."""

    def __init__(self, session: Session, report: LoadReport, now: datetime, kind: str) -> None:
        self.session, self.report, self.now, self.kind = session, report, now, kind

    def apply(self, existing: Iterable[Any], wanted: dict[str, dict[str, Any]], model: type) -> dict[str, Any]:
        rows = {row.key: row for row in existing}
        for key, values in wanted.items():
            row = rows.get(key)
            label = f"{self.kind} {key}"
            if row is None:
                row = model(key=key, **values)
                self.session.add(row)
                rows[key] = row
                self.report.added.append(label)
                continue
            if row.archived_at is not None:
                row.archived_at = None
                self.report.restored.append(label)
            if _sync(row, values):
                self.report.updated.append(label)
        for key, row in rows.items():
            if key not in wanted and row.archived_at is None:
                row.archived_at = self.now
                self.report.archived.append(f"{self.kind} {key}")
        self.session.flush()
        return rows


@dataclass(frozen=True)
class OrgDefaults:
    """What the deployment's settings say when the journey file is silent."""

    time_zone: str = "Europe/Stockholm"
    language: str = "sv"


BUILT_IN_DEFAULTS = OrgDefaults()


def load_journey(
    session: Session, journey: JourneyMap, now: datetime, defaults: OrgDefaults = BUILT_IN_DEFAULTS
) -> tuple[Org, LoadReport]:
    report = LoadReport()
    org = session.scalar(select(Org).where(Org.key == ORG_KEY))
    org_values = {
        "name": journey.org.name,
        "time_zone": journey.org.time_zone or defaults.time_zone,
        "language": journey.org.language or defaults.language,
        "sla": _sla_seconds({severity: journey.org_sla(severity) for severity in Severity}),
        "business_hours": journey.org.business_hours.model_dump() if journey.org.business_hours else None,
        "min_answers": journey.org.min_answers,
    }
    if org is None:
        org = Org(key=ORG_KEY, **org_values)
        session.add(org)
        session.flush()
        report.added.append(f"org {journey.org.name}")
    elif _sync(org, org_values):
        report.updated.append(f"org {journey.org.name}")

    teams = _Upserter(session, report, now, "team").apply(
        session.scalars(select(Team).where(Team.org_id == org.id)),
        {t.key: {"org_id": org.id, "name_sv": t.name.sv, "name_en": t.name.en} for t in journey.teams},
        Team,
    )
    admins, lead = set(journey.org.admins), journey.org.cx_lead
    people = _Upserter(session, report, now, "person").apply(
        session.scalars(select(Person).where(Person.org_id == org.id)),
        {
            p.key: {
                "org_id": org.id,
                "name": p.name,
                "is_admin": p.key in admins,
                "is_cx_lead": p.key == lead,
                "file_language": p.language,
                "time_zone": p.time_zone,
            }
            for p in journey.people
        },
        Person,
    )
    for spec in journey.teams:
        _sync_channels(session, teams[spec.key], spec.channels, report)
    for spec in journey.people:
        person = people[spec.key]
        _sync_identities(session, person, spec.identities, report)
        _sync_membership(session, person, {teams[k].id for k in spec.teams}, report)

    def person_id(key: str | None) -> int | None:
        return people[key].id if key else None

    stages = _Upserter(session, report, now, "stage").apply(
        session.scalars(select(Stage).where(Stage.org_id == org.id)),
        {
            s.key: {
                "org_id": org.id,
                "position": position,
                "name_sv": s.name.sv,
                "name_en": s.name.en,
                "owner_id": person_id(s.owner),
                "keywords": list(s.keywords),
            }
            for position, s in enumerate(journey.stages, start=1)
        },
        Stage,
    )
    for spec in journey.stages:
        _sync_targets(session, stages[spec.key], spec.targets, report)
        _sync_queries(session, stages[spec.key], spec.queries, report)

    _Upserter(session, report, now, "touchpoint").apply(
        session.scalars(select(Touchpoint).where(Touchpoint.org_id == org.id)),
        {
            tp.key: {
                "org_id": org.id,
                "stage_id": stages[stage.key].id,
                "position": position,
                "name_sv": tp.name.sv,
                "name_en": tp.name.en,
                "aliases": list(tp.aliases),
                "owner_team_id": teams[tp.owner_team].id if tp.owner_team else None,
                "owner_id": person_id(tp.owner),
                "backup_id": person_id(tp.backup),
                "sla": _sla_seconds(tp.sla),
            }
            for position, (stage, tp) in enumerate(journey.touchpoints(), start=1)
        },
        Touchpoint,
    )
    return org, report


def _follow_file(
    session: Session,
    rows: dict[str, Any],
    wanted: dict[str, Any],
    *,
    make: Callable[[str, Any], Any],
    column: str,
    label: str,
    report: LoadReport,
    keep: frozenset[str] = frozenset(),
) -> None:
    """Rows that are pure configuration follow the file: added, updated, deleted when dropped."""
    for name, value in wanted.items():
        row = rows.get(name)
        if row is None:
            session.add(make(name, value))
            report.added.append(f"{label}/{name}")
        elif _sync(row, {column: value}):
            report.updated.append(f"{label}/{name}")
    for name, row in rows.items():
        if name not in wanted and name not in keep:
            session.delete(row)
            report.updated.append(f"{label}/{name} removed")


def _sync_channels(session: Session, team: Team, wanted: dict[str, str], report: LoadReport) -> None:
    _follow_file(
        session,
        {c.platform: c for c in session.scalars(select(TeamChannel).where(TeamChannel.team_id == team.id))},
        wanted,
        make=lambda platform, ref: TeamChannel(team_id=team.id, platform=platform, channel_ref=ref),
        column="channel_ref",
        label=f"channel {team.key}",
        report=report,
        keep=IMPLICIT_PLATFORMS,
    )


def _sync_identities(session: Session, person: Person, wanted: dict[str, str], report: LoadReport) -> None:
    for platform, external in wanted.items():
        # The id may belong to someone else in the database (the file moved it): move it here.
        holder = session.scalar(
            select(Identity).where(Identity.platform == platform, Identity.external_user_id == external)
        )
        if holder is not None and holder.person_id != person.id:
            session.delete(holder)
            session.flush()
    _follow_file(
        session,
        {i.platform: i for i in session.scalars(select(Identity).where(Identity.person_id == person.id))},
        wanted,
        make=lambda platform, external: Identity(person_id=person.id, platform=platform, external_user_id=external),
        column="external_user_id",
        label=f"identity {person.key}",
        report=report,
        keep=IMPLICIT_PLATFORMS,
    )
    session.flush()


def _sync_membership(session: Session, person: Person, wanted: set[int], report: LoadReport) -> None:
    rows = {m.team_id: m for m in session.scalars(select(TeamMember).where(TeamMember.person_id == person.id))}
    for team_id in wanted - rows.keys():
        session.add(TeamMember(team_id=team_id, person_id=person.id))
    for team_id in rows.keys() - wanted:
        session.delete(rows[team_id])
    # A new person's teams are part of adding them, not a change of its own.
    if wanted != rows.keys() and f"person {person.key}" not in report.added:
        report.updated.append(f"person {person.key} teams")


def _sync_targets(session: Session, stage: Stage, wanted: dict[str, float], report: LoadReport) -> None:
    _follow_file(
        session,
        {t.metric: t for t in session.scalars(select(KpiTarget).where(KpiTarget.stage_id == stage.id))},
        wanted,
        make=lambda metric, value: KpiTarget(stage_id=stage.id, metric=metric, target=value),
        column="target",
        label=f"target {stage.key}",
        report=report,
    )


def _sync_queries(session: Session, stage: Stage, wanted: dict[str, str], report: LoadReport) -> None:
    _follow_file(
        session,
        {q.metric: q for q in session.scalars(select(KpiQuery).where(KpiQuery.stage_id == stage.id))},
        wanted,
        make=lambda metric, sql: KpiQuery(stage_id=stage.id, metric=metric, sql=sql),
        column="sql",
        label=f"query {stage.key}",
        report=report,
    )


# --- reading -------------------------------------------------------------------------------


def current_org(session: Session) -> Org | None:
    return session.scalar(select(Org).where(Org.key == ORG_KEY))


def active_stages(session: Session, org: Org) -> list[Stage]:
    return list(
        session.scalars(
            select(Stage)
            .where(Stage.org_id == org.id, Stage.archived_at.is_(None))
            .order_by(Stage.position)
            .options(
                selectinload(Stage.touchpoints).selectinload(Touchpoint.owner_team),
                selectinload(Stage.touchpoints).selectinload(Touchpoint.owner),
                selectinload(Stage.touchpoints).selectinload(Touchpoint.backup),
                selectinload(Stage.targets),
                selectinload(Stage.owner),
            )
        )
    )


def _closeness(wanted: str, name: str, **_: object) -> float:
    """A part of a name ("lojalitet" for "Förnyelse och lojalitet") or a near spelling of it;
    but text longer than the name is compared whole, so words added to a name ("köp zqxj") are
    not silently dropped."""
    return fuzz.WRatio(wanted, name) if len(wanted) <= len(name) else fuzz.ratio(wanted, name)


def find_stage(stages: list[Stage], text: str) -> Stage | None:
    """A stage by key, Swedish or English name, or a close spelling of one of them."""
    wanted = text.strip().casefold()
    if not wanted:
        return None
    names = {}
    for stage in stages:
        for name in (stage.key, stage.name_sv, stage.name_en):
            names[name.casefold()] = stage
    if wanted in names:
        return names[wanted]
    match = process.extractOne(wanted, list(names), scorer=_closeness, score_cutoff=85)
    return names[match[0]] if match else None


def ensure_platform_presence(session: Session, org: Org, platform: str) -> int:
    """Give every person an identity and every team a channel on a platform that addresses
    them by key (the console). Returns how many rows were added."""
    added = 0
    if (
        session.scalar(select(Workspace).where(Workspace.platform == platform, Workspace.external_id == platform))
        is None
    ):
        session.add(Workspace(org_id=org.id, platform=platform, external_id=platform))
    people = session.scalars(select(Person).where(Person.org_id == org.id))
    for person in people:
        exists = session.scalar(select(Identity).where(Identity.person_id == person.id, Identity.platform == platform))
        if exists is None:
            session.add(Identity(person_id=person.id, platform=platform, external_user_id=person.key))
            added += 1
    for team in session.scalars(select(Team).where(Team.org_id == org.id)):
        exists = session.scalar(
            select(TeamChannel).where(TeamChannel.team_id == team.id, TeamChannel.platform == platform)
        )
        if exists is None:
            session.add(TeamChannel(team_id=team.id, platform=platform, channel_ref=f"#{team.key}"))
            added += 1
    session.flush()
    return added
