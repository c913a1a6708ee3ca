"""The customer-journey map file: its schema, and validation that points at file and line.

The YAML file is the organisation's source of truth (stages → touchpoints → owners, teams,
people, SLAs, KPI targets). Everything here is pure: text in, a ``JourneyMap`` or a list of
``Problem`` out. Loading it into the database lives in ``bot.services.journey``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from bot.domain.durations import parse_duration

KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
Key = Annotated[str, Field(pattern=KEY_PATTERN)]
Language = Literal["sv", "en"]
PLATFORMS = ("slack", "discord", "console")
Platform = Literal["slack", "discord", "console"]
# Metrics a stage may carry a target for. The KPI maths lives in bot.domain.kpi (issue 5).
KNOWN_METRICS = ("nps", "csat", "ces", "fcr", "churn", "aht")
MetricName = Literal["nps", "csat", "ces", "fcr", "churn", "aht"]


class Severity(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration; write e.g. 30m, 4h, 1d")
    return parse_duration(value)


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def _time_zone(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a time zone is a name such as Europe/Stockholm")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}; use a name such as Europe/Stockholm") from None
    return value


TimeZone = Annotated[str, BeforeValidator(_time_zone)]


def _warehouse_sql(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a query is one SQL SELECT statement")
    sql = value.strip().rstrip(";").strip()
    if not re.match(r"(?is)^(select|with)\b", sql):
        raise ValueError("a query must start with SELECT or WITH: it only reads the warehouse")
    if ";" in sql:
        raise ValueError("a query is one statement; remove the ';' inside it")
    return sql


WarehouseSql = Annotated[str, BeforeValidator(_warehouse_sql)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalizedText(_Strict):
    sv: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, language: str) -> str:
        return self.sv if language == "sv" else self.en


class SlaRule(_Strict):
    acknowledge: Duration | None = None
    resolve: Duration | None = None


DEFAULT_SLA: dict[Severity, SlaRule] = {
    Severity.CRITICAL: SlaRule(acknowledge=timedelta(hours=1), resolve=timedelta(days=1)),
    Severity.HIGH: SlaRule(acknowledge=timedelta(hours=4), resolve=timedelta(days=3)),
    Severity.NORMAL: SlaRule(acknowledge=timedelta(days=1), resolve=timedelta(days=5)),
    Severity.LOW: SlaRule(acknowledge=timedelta(days=3), resolve=timedelta(days=14)),
}


class BusinessHours(_Strict):
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"], min_length=1
    )
    start: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(default="17:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")

    @model_validator(mode="after")
    def _opens_before_it_closes(self) -> BusinessHours:
        if self.start >= self.end:
            raise ValueError(f"business hours must start before they end ({self.start}–{self.end})")
        return self


class OrgSpec(_Strict):
    name: str = Field(min_length=1)
    # Left out, they come from the deployment's settings (CXBOT_TIME_ZONE, CXBOT_LANGUAGE).
    time_zone: TimeZone | None = None
    language: Language | None = None
    admins: list[Key] = Field(default_factory=list)
    cx_lead: Key | None = None
    business_hours: BusinessHours | None = None
    # KPI figures on fewer answers than this are flagged as small samples.
    min_answers: int = Field(default=30, ge=1, le=1_000_000)


class TeamSpec(_Strict):
    key: Key
    name: LocalizedText
    channels: dict[Platform, str] = Field(default_factory=dict)


class PersonSpec(_Strict):
    key: Key
    name: str = Field(min_length=1)
    teams: list[Key] = Field(default_factory=list)
    identities: dict[Platform, str] = Field(default_factory=dict)
    language: Language | None = None
    time_zone: TimeZone | None = None


class TouchpointSpec(_Strict):
    key: Key
    name: LocalizedText
    aliases: list[str] = Field(default_factory=list)
    owner_team: Key | None = None
    owner: Key | None = None
    backup: Key | None = None
    sla: dict[Severity, SlaRule] = Field(default_factory=dict)


class StageSpec(_Strict):
    key: Key
    name: LocalizedText
    owner: Key | None = None
    # Words (sv and en) that place an observation in this stage when it names no touchpoint.
    keywords: list[str] = Field(default_factory=list)
    targets: dict[MetricName, float] = Field(default_factory=dict)
    # SQL run weekly against the warehouse (CXBOT_WAREHOUSE_URL) to measure a metric of this
    # stage; it receives :week, :week_start and :week_end and returns a value and maybe n.
    queries: dict[MetricName, WarehouseSql] = Field(default_factory=dict)
    touchpoints: list[TouchpointSpec] = Field(default_factory=list)


def _layer(base: SlaRule, override: SlaRule | None) -> SlaRule:
    if override is None:
        return base
    return SlaRule(acknowledge=override.acknowledge or base.acknowledge, resolve=override.resolve or base.resolve)


class JourneyMap(_Strict):
    org: OrgSpec
    sla: dict[Severity, SlaRule] = Field(default_factory=dict)
    teams: list[TeamSpec] = Field(default_factory=list)
    people: list[PersonSpec] = Field(default_factory=list)
    stages: list[StageSpec] = Field(min_length=1)

    def org_sla(self, severity: Severity) -> SlaRule:
        """The file's rule for a severity, each field falling back to the built-in default."""
        return _layer(DEFAULT_SLA[severity], self.sla.get(severity))

    def sla_for(self, touchpoint: TouchpointSpec, severity: Severity) -> SlaRule:
        """The touchpoint's override, else the file's default, else the built-in default."""
        return _layer(self.org_sla(severity), touchpoint.sla.get(severity))

    def touchpoints(self) -> Iterable[tuple[StageSpec, TouchpointSpec]]:
        for stage in self.stages:
            for touchpoint in stage.touchpoints:
                yield stage, touchpoint


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: {self.message}"


@dataclass(frozen=True)
class ParseResult:
    journey: JourneyMap | None
    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


Path_ = tuple[str | int, ...]


class _Recursive(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


def _read_yaml(text: str, file: str) -> tuple[Any, dict[Path_, int], list[Problem]]:
    """Parse YAML keeping the line of every key and item, and reporting duplicate keys.

    PyYAML silently keeps the last of two equal keys; for a hand-edited map that hides mistakes,
    so the node tree is walked before it is turned into Python objects.
    """
    try:
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:  # a character YAML does not allow (a control character)
        line = text[: getattr(exc, "position", 0)].count("\n") + 1
        return None, {}, [Problem(file, line, f"malformed YAML: {str(exc).splitlines()[0]}")]
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}, [Problem(file, 1, "the file is empty")]
        positions: dict[Path_, int] = {}
        problems: list[Problem] = []
        walked: set[int] = set()

        def walk(n: yaml.Node, path: Path_, ancestors: frozenset[int] = frozenset()) -> None:
            positions.setdefault(path, n.start_mark.line + 1)
            if id(n) in ancestors:
                raise _Recursive(n.start_mark.line + 1)
            if id(n) in walked:  # an alias of a node already walked: once is enough
                return
            walked.add(id(n))
            ancestors = ancestors | {id(n)}
            if isinstance(n, yaml.MappingNode):
                seen: dict[Any, int] = {}
                for key_node, value_node in n.value:
                    key = key_node.value
                    line = key_node.start_mark.line + 1
                    if key in seen:
                        problems.append(Problem(file, line, f"duplicate key {key!r} (first at line {seen[key]})"))
                    seen.setdefault(key, line)
                    positions[(*path, key)] = line
                    walk(value_node, (*path, key), ancestors)
            elif isinstance(n, yaml.SequenceNode):
                for index, item in enumerate(n.value):
                    walk(item, (*path, index), ancestors)

        try:
            walk(node, ())
        except _Recursive as recursive:
            return None, {}, [Problem(file, recursive.line, "an anchor refers to itself (a recursive alias)")]
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        return None, {}, [Problem(file, line, f"malformed YAML: {reason}")]
    finally:
        loader.dispose()
    return data, positions, problems


def _line_for(positions: dict[Path_, int], loc: Iterable[str | int]) -> int:
    path = tuple(loc)
    while path and path not in positions:
        path = path[:-1]
    return positions.get(path, 1)


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown key {error['loc'][-1]!r} at {where}"
    if kind == "missing":
        return f"missing key {error['loc'][-1]!r} at {where}"
    if kind == "string_pattern_mismatch" and "pattern" in error.get("ctx", {}):
        return (
            f"{where}: {error['input']!r} is not a valid key "
            "(lower-case letters, digits, '-' and '_', starting with a letter or digit)"
        )
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}"


def parse_journey(text: str, file: str = "<journey>") -> ParseResult:
    """Parse and validate a journey file; never raises for bad content."""
    data, positions, problems = _read_yaml(text, file)
    if data is None:  # no document, or one that is only `null` or `~`
        return ParseResult(None, problems or [Problem(file, 1, "the file is empty")])
    if not isinstance(data, dict):
        return ParseResult(None, [*problems, Problem(file, 1, "the top level must be a mapping")])
    try:
        journey = JourneyMap.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            problems.append(Problem(file, _line_for(positions, error["loc"]), _describe(error)))
        return ParseResult(None, problems)
    problems.extend(_cross_check(journey, positions, file))
    ok = not any(p.severity == "error" for p in problems)
    return ParseResult(journey if ok else None, sorted(problems, key=lambda p: p.line))


def _cross_check(journey: JourneyMap, positions: dict[Path_, int], file: str) -> list[Problem]:
    problems: list[Problem] = []

    def add(loc: Path_, message: str, severity: Literal["error", "warning"] = "error") -> None:
        problems.append(Problem(file, _line_for(positions, loc), message, severity))

    def unique(kind: str, items: Iterable[tuple[Path_, str]]) -> set[str]:
        first: dict[str, Path_] = {}
        for loc, key in items:
            if key in first:
                line = _line_for(positions, first[key])
                add(loc, f"duplicate {kind} key {key!r} (first at line {line})")
            first.setdefault(key, loc)
        return set(first)

    teams = unique("team", (((("teams", i, "key")), t.key) for i, t in enumerate(journey.teams)))
    people = unique("person", ((("people", i, "key"), p.key) for i, p in enumerate(journey.people)))
    unique("stage", ((("stages", i, "key"), s.key) for i, s in enumerate(journey.stages)))
    unique(
        "touchpoint",
        (
            (("stages", i, "touchpoints", j, "key"), t.key)
            for i, s in enumerate(journey.stages)
            for j, t in enumerate(s.touchpoints)
        ),
    )

    def person_ref(loc: Path_, key: str | None, role: str) -> None:
        if key is not None and key not in people:
            add(loc, f"{role} {key!r} is not a person in 'people'")

    for i, admin in enumerate(journey.org.admins):
        person_ref(("org", "admins", i), admin, "admin")
    person_ref(("org", "cx_lead"), journey.org.cx_lead, "cx_lead")

    owners: dict[tuple[str, str], str] = {}
    for i, person in enumerate(journey.people):
        for j, team in enumerate(person.teams):
            if team not in teams:
                add(("people", i, "teams", j), f"team {team!r} of {person.key!r} does not exist")
        for platform, external in person.identities.items():
            other = owners.setdefault((platform, external), person.key)
            if other != person.key:
                add(
                    ("people", i, "identities", platform),
                    f"{platform} identity {external!r} belongs to both {other!r} and {person.key!r}",
                )

    alias_owner: dict[str, str] = {}
    for i, stage in enumerate(journey.stages):
        person_ref(("stages", i, "owner"), stage.owner, "stage owner")
        if not stage.touchpoints:
            add(("stages", i), f"stage {stage.key!r} has no touchpoints", "warning")
        for j, tp in enumerate(stage.touchpoints):
            loc: Path_ = ("stages", i, "touchpoints", j)
            if tp.owner_team is not None and tp.owner_team not in teams:
                add((*loc, "owner_team"), f"owner_team {tp.owner_team!r} does not exist")
            person_ref((*loc, "owner"), tp.owner, "owner")
            person_ref((*loc, "backup"), tp.backup, "backup")
            if tp.owner_team is None and tp.owner is None:
                add(loc, f"touchpoint {tp.key!r} has no owner (set owner_team or owner)", "warning")
            for k, alias in enumerate(tp.aliases):
                folded = alias.casefold()
                previous = alias_owner.setdefault(folded, tp.key)
                if previous != tp.key:
                    add(
                        (*loc, "aliases", k),
                        f"alias {alias!r} is used by {previous!r} and {tp.key!r}; reports naming it will ask which one",
                        "warning",
                    )
    return problems


def load_journey_file(path: str) -> ParseResult:
    """Read a journey file from disk; unreadable files become a Problem, not an exception."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        return ParseResult(None, [Problem(path, 1, f"cannot read the file: {exc.strerror}")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return ParseResult(None, [Problem(path, line, "the file is not valid UTF-8")])
    return parse_journey(text, path)
