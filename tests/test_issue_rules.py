"""Pure rules for issues: working time, SLA, escalation, matching, parsing, transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain.issues import (
    InvalidTransition,
    IssueAction,
    IssueStatus,
    defuse_mentions,
    match_root_cause,
    next_status,
    parse_report,
)
from bot.domain.journey_map import JourneyMap, Severity
from bot.domain.matching import Candidate, MatchKind, match_touchpoint, suggest_touchpoints
from bot.domain.sla import (
    OFFICE_HOURS,
    WorkingHours,
    add_working_time,
    deadlines,
    escalation_level,
    escalation_times,
    reminder_due,
    within_working_hours,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")
HOURS = WorkingHours.from_spec({"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "17:00"})


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=STOCKHOLM)


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        (local(2026, 11, 24, 10, 0), timedelta(days=1), local(2026, 11, 25, 10, 0)),  # Tue → Wed
        (local(2026, 11, 27, 10, 0), timedelta(days=1), local(2026, 11, 30, 10, 0)),  # Fri → Mon
        (local(2026, 11, 24, 21, 55), timedelta(days=1), local(2026, 11, 26, 8, 0)),  # after hours
        (local(2026, 11, 28, 12, 0), timedelta(hours=2), local(2026, 11, 30, 10, 0)),  # Saturday
        (local(2026, 11, 24, 15, 0), timedelta(hours=4), local(2026, 11, 25, 10, 0)),  # spills over
        (local(2026, 11, 24, 10, 0), timedelta(days=5), local(2026, 12, 1, 10, 0)),  # a week
        (local(2026, 11, 24, 16, 59), timedelta(minutes=1), local(2026, 11, 24, 17, 0)),  # to the minute
        # Across the October change to winter time (25 Oct 2026): local clock time is kept.
        (local(2026, 10, 23, 10, 0), timedelta(days=1), local(2026, 10, 26, 10, 0)),
        # And across the March change to summer time (29 Mar 2026).
        (local(2026, 3, 27, 16, 0), timedelta(hours=2), local(2026, 3, 30, 9, 0)),
    ],
)
def test_working_time(start: datetime, duration: timedelta, expected: datetime) -> None:
    assert add_working_time(start, duration, STOCKHOLM, HOURS) == expected


def test_without_working_hours_time_is_wall_clock() -> None:
    start = local(2026, 10, 24, 12, 0)  # a day before the DST change: 25 real hours to 12:00
    assert add_working_time(start, timedelta(days=1), STOCKHOLM, None) == start + timedelta(days=1)


def test_critical_runs_on_the_wall_clock_others_in_working_time() -> None:
    friday_evening = local(2026, 11, 27, 18, 0).astimezone(UTC)
    critical = deadlines(
        friday_evening, timedelta(hours=1), timedelta(days=1), critical=True, zone=STOCKHOLM, hours=HOURS
    )
    normal = deadlines(
        friday_evening, timedelta(days=1), timedelta(days=5), critical=False, zone=STOCKHOLM, hours=HOURS
    )
    assert critical == (friday_evening + timedelta(hours=1), friday_evening + timedelta(days=1))
    assert normal == (local(2026, 12, 1, 8, 0), local(2026, 12, 7, 8, 0))


def test_working_hours_in_a_persons_time_zone() -> None:
    moment = local(2026, 11, 24, 17, 30)  # 16:30 in London
    assert not within_working_hours(moment, STOCKHOLM, OFFICE_HOURS)
    assert within_working_hours(moment, ZoneInfo("Europe/London"), OFFICE_HOURS)
    assert not within_working_hours(local(2026, 11, 28, 10, 0), STOCKHOLM, OFFICE_HOURS)  # Saturday


def test_reminder_window_is_a_quarter_but_at_least_15_minutes() -> None:
    due = local(2026, 11, 24, 12, 0)
    assert not reminder_due(due - timedelta(hours=6, minutes=1), due, timedelta(days=1))
    assert reminder_due(due - timedelta(hours=6), due, timedelta(days=1))
    assert reminder_due(due - timedelta(minutes=15), due, timedelta(hours=1))
    assert not reminder_due(due - timedelta(minutes=16), due, timedelta(hours=1))
    # A reminder held outside working hours still goes at the next opening, past the deadline.
    assert reminder_due(due + timedelta(hours=3), due, timedelta(hours=1))


def test_escalation_steps_are_one_window_apart_in_working_time() -> None:
    friday = local(2026, 11, 27, 10, 30)
    steps = escalation_times(friday, timedelta(days=1), 3, zone=STOCKHOLM, hours=HOURS)
    # Not Saturday and Sunday: Monday and Tuesday.
    assert steps == [friday, local(2026, 11, 30, 10, 30), local(2026, 12, 1, 10, 30)]
    wall = escalation_times(friday, timedelta(hours=1), 3, zone=STOCKHOLM, hours=None)
    assert wall == [friday, friday + timedelta(hours=1), friday + timedelta(hours=2)]


@pytest.mark.parametrize(("after", "level"), [(-1, 0), (0, 1), (59, 1), (60, 2), (130, 3), (10_000, 3)])
def test_escalation_climbs_one_step_per_window(after: int, level: int) -> None:
    due = local(2026, 11, 24, 12, 0)
    steps = escalation_times(due, timedelta(hours=1), 3, zone=STOCKHOLM, hours=None)
    assert escalation_level(due + timedelta(minutes=after), steps) == level


def test_escalation_with_an_empty_chain() -> None:
    due = local(2026, 11, 24, 12, 0)
    assert (
        escalation_level(
            due + timedelta(days=3), escalation_times(due, timedelta(hours=1), 0, zone=STOCKHOLM, hours=None)
        )
        == 0
    )


# --- matching --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def candidates(example_journey: JourneyMap) -> list[Candidate]:
    return [Candidate(tp.key, (tp.key, tp.name.sv, tp.name.en, *tp.aliases)) for _, tp in example_journey.touchpoints()]


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("monthly-invoice", "monthly-invoice"),
        ("Månadsfaktura", "monthly-invoice"),
        ("faktura", "monthly-invoice"),
        ("CHATT", "chat"),
        ("app", "mobile-app"),
        ("kassa", "order-form"),
        ("the website", "website"),
        ("installation", "installer-visit"),
    ],
)
def test_a_touchpoint_named_exactly_or_nearly(candidates: list[Candidate], query: str, key: str) -> None:
    match = match_touchpoint(query, candidates)
    assert (match.kind, match.best) == (MatchKind.EXACT, key)


def test_an_ambiguous_name_offers_choices(candidates: list[Candidate]) -> None:
    match = match_touchpoint("invoice", candidates)
    assert match.kind is MatchKind.AMBIGUOUS
    assert {s.key for s in match.ranked[:2]} == {"first-invoice", "monthly-invoice"}


def test_an_unknown_name_offers_the_closest(candidates: list[Candidate]) -> None:
    match = match_touchpoint("xyzzy", candidates)
    assert match.kind is MatchKind.UNKNOWN and match.best is None
    assert len(match.ranked) == 3
    assert match_touchpoint("", candidates).kind is MatchKind.UNKNOWN


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Fakturan hade fel moms för alla kunder", ["monthly-invoice"]),
        ("Kunden väntade 40 minuter i telefonkön", ["support-phone"]),
        ("chat bot gave a wrong answer about prices", ["chat"]),
        ("a happy customer called to say thanks", []),
    ],
)
def test_suggestions_from_free_text(candidates: list[Candidate], text: str, expected: list[str]) -> None:
    assert [s.key for s in suggest_touchpoints(text, candidates)][: len(expected) or 1] == (expected or [])


def test_short_aliases_match_whole_words_only(candidates: list[Candidate]) -> None:
    assert "mobile-app" not in [s.key for s in suggest_touchpoints("she was happy with everything", candidates)]
    assert "mobile-app" in [s.key for s in suggest_touchpoints("the app froze", candidates)]


# --- the report's syntax, transitions, causes, mentions ---------------------------------------


@pytest.mark.parametrize(
    ("text", "touchpoint", "description", "severity", "anonymous", "impact"),
    [
        ("faktura: fel moms", "faktura", "fel moms", Severity.NORMAL, False, None),
        ("high anonymous chat: rude answer", "chat", "rude answer", Severity.HIGH, True, None),
        ("anonymt kritisk app: kraschar", "app", "kraschar", Severity.CRITICAL, True, None),
        ("the app crashes on login", None, "the app crashes on login", Severity.NORMAL, False, None),
        (
            "checkout: card payments fail | impact: 200 customers could not pay",
            "checkout",
            "card payments fail",
            Severity.NORMAL,
            False,
            "200 customers could not pay",
        ),
        (
            "kassa: betalningen nekas | påverkan: alla",
            "kassa",
            "betalningen nekas",
            Severity.NORMAL,
            False,
            "alla",
        ),
        ("at 10:30 the site was down", None, "at 10:30 the site was down", Severity.NORMAL, False, None),
        (
            "website: down from 10:30 to 11:00",
            "website",
            "down from 10:30 to 11:00",
            Severity.NORMAL,
            False,
            None,
        ),
        ("low", None, "", Severity.LOW, False, None),
        ("", None, "", Severity.NORMAL, False, None),
    ],
)
def test_parse_report(
    text: str,
    touchpoint: str | None,
    description: str,
    severity: Severity,
    anonymous: bool,
    impact: str | None,
) -> None:
    request = parse_report(text)
    assert (request.touchpoint, request.description, request.severity, request.anonymous, request.impact) == (
        touchpoint,
        description,
        severity,
        anonymous,
        impact,
    )


def test_a_long_prefix_before_a_colon_is_description() -> None:
    text = "When the customer tried to pay with a card at the very end of a long checkout flow: it failed"
    assert parse_report(text).touchpoint is None


def test_transitions() -> None:
    assert next_status(IssueStatus.OPEN, IssueAction.ACKNOWLEDGE) is IssueStatus.ACKNOWLEDGED
    assert next_status(IssueStatus.OPEN, IssueAction.RESOLVE) is IssueStatus.RESOLVED
    assert next_status(IssueStatus.ACKNOWLEDGED, IssueAction.RESOLVE) is IssueStatus.RESOLVED
    assert next_status(IssueStatus.RESOLVED, IssueAction.REOPEN) is IssueStatus.OPEN
    for status, action in [
        (IssueStatus.ACKNOWLEDGED, IssueAction.ACKNOWLEDGE),
        (IssueStatus.RESOLVED, IssueAction.RESOLVE),
        (IssueStatus.RESOLVED, IssueAction.ACKNOWLEDGE),
        (IssueStatus.OPEN, IssueAction.REOPEN),
    ]:
        with pytest.raises(InvalidTransition):
            next_status(status, action)


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("process", "process"),
        ("Produkt", "product"),
        ("bugg", "product"),
        ("proccess", "process"),
        ("weather", None),
        ("", None),
    ],
)
def test_root_causes(text: str, cause: str | None) -> None:
    assert match_root_cause(text) == cause


@pytest.mark.parametrize(
    "raw", ["@everyone look", "@here now", "hey <!channel>", "<!here|here> and <!everyone>", "@Channel"]
)
def test_mass_mentions_are_defused(raw: str) -> None:
    safe = defuse_mentions(raw)
    for mention in ("@everyone", "@here", "@channel", "<!channel", "<!here", "<!everyone", "<!subteam", "<@&"):
        assert mention not in safe.lower()
    assert safe.replace("\u200b", "") == raw


def test_ordinary_text_is_untouched() -> None:
    text = "mail anna@example.com about <https://example.com|the page> @erik"
    assert defuse_mentions(text) == text
