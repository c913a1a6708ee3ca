"""Touchpoint issues: the lifecycle, the report's syntax, root causes. Pure rules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from rapidfuzz import fuzz, process

from bot.domain.journey_map import Severity

MAX_DESCRIPTION = 3000
MAX_IMPACT = 500
MAX_ACTION = 2000


class IssueStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class IssueAction(StrEnum):
    ACKNOWLEDGE = "ack"
    RESOLVE = "resolve"
    REOPEN = "reopen"


_TRANSITIONS = {
    (IssueStatus.OPEN, IssueAction.ACKNOWLEDGE): IssueStatus.ACKNOWLEDGED,
    (IssueStatus.OPEN, IssueAction.RESOLVE): IssueStatus.RESOLVED,
    (IssueStatus.ACKNOWLEDGED, IssueAction.RESOLVE): IssueStatus.RESOLVED,
    (IssueStatus.RESOLVED, IssueAction.REOPEN): IssueStatus.OPEN,
}


class InvalidTransition(Exception):
    def __init__(self, status: IssueStatus, action: IssueAction) -> None:
        super().__init__(f"cannot {action.value} an issue that is {status.value}")
        self.status, self.action = status, action


def next_status(status: IssueStatus, action: IssueAction) -> IssueStatus:
    try:
        return _TRANSITIONS[(status, action)]
    except KeyError:
        raise InvalidTransition(status, action) from None


# Root-cause categories, so that the outer loop can group recurring causes. The words include
# each cause's name in the catalogue (issues.cause.*), which is how replies list them.
ROOT_CAUSES: dict[str, tuple[str, ...]] = {
    "process": ("process", "rutin", "arbetssätt"),
    "product": ("product", "produkt", "bug", "bugg", "feature"),
    "communication": ("communication", "kommunikation", "information", "text"),
    "training": (
        "training",
        "kompetens",
        "utbildning",
        "knowledge",
        "training and knowledge",
        "kompetens och utbildning",
    ),
    "system": ("system", "it", "outage", "avbrott", "integration", "system or it", "system eller it"),
    "partner": (
        "partner",
        "supplier",
        "leverantör",
        "underleverantör",
        "partner or supplier",
        "partner eller leverantör",
    ),
    "policy": (
        "policy",
        "regel",
        "regelverk",
        "rules",
        "terms",
        "policy or terms",
        "regler eller villkor",
        "regler",
        "villkor",
    ),
    "capacity": ("capacity", "kapacitet", "staffing", "bemanning", "capacity or staffing", "kapacitet eller bemanning"),
    "other": ("other", "annat", "övrigt"),
}


def match_root_cause(text: str) -> str | None:
    wanted = text.strip().casefold()
    if not wanted:
        return None
    names = {name: key for key, aliases in ROOT_CAUSES.items() for name in aliases}
    if wanted in names:
        return names[wanted]
    found = process.extractOne(wanted, list(names), scorer=fuzz.ratio, score_cutoff=80)
    return names[found[0]] if found else None


_SEVERITY_WORDS = {
    "low": Severity.LOW,
    "låg": Severity.LOW,
    "normal": Severity.NORMAL,
    "high": Severity.HIGH,
    "hög": Severity.HIGH,
    "critical": Severity.CRITICAL,
    "kritisk": Severity.CRITICAL,
}
_ANONYMOUS_WORDS = {"anonymous", "anonymt", "anonym", "anon"}
_IMPACT = re.compile(r"\s*\|\s*(?:impact|påverkan|kundpåverkan)\s*:\s*", re.IGNORECASE)
# A touchpoint name before the colon is short; a longer prefix is part of the description.
_MAX_NAME = 60
# The colon after a touchpoint's name; one between digits is a time of day ("10:30"), and one
# before "//" belongs to a link ("https://…").
_SEPARATOR = re.compile(r"(?:(?<!\d):|:(?!\d))(?!//)")


@dataclass(frozen=True)
class ReportRequest:
    """``/cx report [severity] [anonymous] [<touchpoint>:] <what happened> [| impact: <text>]``"""

    touchpoint: str | None
    description: str
    severity: Severity = Severity.NORMAL
    anonymous: bool = False
    impact: str | None = None


def parse_report(text: str) -> ReportRequest:
    words = text.strip().split(" ")
    severity, anonymous = Severity.NORMAL, False
    while words and (words[0].casefold() in _SEVERITY_WORDS or words[0].casefold() in _ANONYMOUS_WORDS):
        word = words.pop(0).casefold()
        if word in _ANONYMOUS_WORDS:
            anonymous = True
        else:
            severity = _SEVERITY_WORDS[word]
    rest = " ".join(words).strip()
    impact = None
    parts = _IMPACT.split(rest, maxsplit=1)
    if len(parts) == 2:
        rest, impact = parts[0].strip(), parts[1].strip() or None
    touchpoint = None
    separator = _SEPARATOR.search(rest)
    if separator is not None:
        head, tail = rest[: separator.start()], rest[separator.end() :]
        if 0 < len(head.strip()) <= _MAX_NAME and "\n" not in head and "://" not in head:
            touchpoint, rest = head.strip(), tail.strip()
    return ReportRequest(touchpoint, rest, severity, anonymous, impact)


# @everyone / @here / @channel as typed; Slack's <!channel>, <!here>, <!everyone> and user-group
# mentions <!subteam^S123|@team>; Discord's role mentions <@&123>.
_MASS_MENTIONS = re.compile(
    r"@(everyone|here|channel)\b|<!(everyone|here|channel|subteam\^)[^>]*>|<@&\d+>", re.IGNORECASE
)


def shorten(text: str, limit: int) -> str:
    """On one line and at most ``limit`` characters, an ellipsis marking a cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def defuse_mentions(text: str) -> str:
    """User text echoed by the bot must never ping a crowd: break @everyone, @here, <!channel>,
    user groups and roles.

    A zero-width space after the first character keeps the text readable while no platform parses
    it as a mention. Adapters also disable mentions when posting; this holds even if one forgets.
    """
    return _MASS_MENTIONS.sub(lambda m: m.group(0)[0] + "\u200b" + m.group(0)[1:], text)
