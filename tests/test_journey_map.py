"""The journey file: schema, cross-references and problems reported with their line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.domain.durations import format_duration, parse_duration
from bot.domain.journey_map import Severity, load_journey_file, parse_journey
from tests.conftest import EXAMPLE

MINIMAL = """\
org:
  name: Acme
  admins: [ann]
teams:
  - key: web
    name: {sv: Webb, en: Web}
people:
  - key: ann
    name: Ann Andersson
    identities: {slack: U1}
  - key: bo
    name: Bo Berg
stages:
  - key: buy
    name: {sv: Köp, en: Buy}
    touchpoints:
      - key: checkout
        name: {sv: Kassa, en: Checkout}
        owner_team: web
        owner: ann
"""


def problems_of(text: str) -> list[str]:
    return [str(p) for p in parse_journey(text, "j.yaml").problems]


def test_example_file_is_valid_with_one_unowned_warning() -> None:
    result = load_journey_file(str(EXAMPLE))
    assert result.journey is not None
    assert result.errors == []
    assert [p.message for p in result.warnings] == [
        "touchpoint 'price-comparison' has no owner (set owner_team or owner)"
    ]
    stages = result.journey.stages
    touchpoints = [tp for _, tp in result.journey.touchpoints()]
    assert 6 <= len(stages) <= 8
    assert 20 <= len(touchpoints) <= 30


def test_minimal_file_parses() -> None:
    result = parse_journey(MINIMAL, "j.yaml")
    assert result.problems == []
    assert result.journey is not None
    assert (result.journey.org.time_zone, result.journey.org.language) == (None, None)  # from settings


def test_malformed_yaml_reports_its_line() -> None:
    assert problems_of("org:\n  name: [unclosed\nstages: []\n") == [
        "j.yaml:3: error: malformed YAML: expected ',' or ']', but got ':'"
    ]


def test_unknown_key_is_reported_at_its_line() -> None:
    text = MINIMAL.replace("        owner_team: web\n", "        owner_teem: web\n")
    assert problems_of(text) == ["j.yaml:19: error: unknown key 'owner_teem' at stages.0.touchpoints.0.owner_teem"]


def test_duplicate_key_in_a_mapping_is_reported() -> None:
    text = MINIMAL.replace("  name: Acme\n", "  name: Acme\n  name: Acme Two\n")
    assert "j.yaml:3: error: duplicate key 'name' (first at line 2)" in problems_of(text)


def test_duplicate_touchpoint_key_across_stages() -> None:
    text = MINIMAL + (
        "  - key: use\n    name: {sv: Använda, en: Use}\n    touchpoints:\n"
        "      - key: checkout\n        name: {sv: X, en: X}\n        owner: bo\n"
    )
    assert problems_of(text) == ["j.yaml:24: error: duplicate touchpoint key 'checkout' (first at line 17)"]


def test_owner_team_that_does_not_exist() -> None:
    text = MINIMAL.replace("owner_team: web", "owner_team: webb")
    assert problems_of(text) == ["j.yaml:19: error: owner_team 'webb' does not exist"]


def test_unknown_people_in_roles() -> None:
    text = MINIMAL.replace("admins: [ann]", "admins: [ann, zed]").replace("owner: ann", "owner: nobody")
    assert problems_of(text) == [
        "j.yaml:3: error: admin 'zed' is not a person in 'people'",
        "j.yaml:20: error: owner 'nobody' is not a person in 'people'",
    ]


def test_bad_duration_is_reported_with_its_line() -> None:
    text = MINIMAL + "sla:\n  critical: {acknowledge: soon}\n"
    [problem] = problems_of(text)
    assert problem.startswith("j.yaml:22: error: sla.critical.acknowledge: 'soon' is not a duration")


def test_bad_time_zone_and_language() -> None:
    text = MINIMAL.replace("  name: Acme\n", "  name: Acme\n  time_zone: Mars/Olympus\n  language: fi\n")
    found = problems_of(text)
    assert any("line" not in p and "j.yaml:3:" in p and "unknown time zone 'Mars/Olympus'" in p for p in found)
    assert any(p.startswith("j.yaml:4: error: org.language:") for p in found)


def test_bad_key_format() -> None:
    text = MINIMAL.replace("key: checkout", "key: Check Out")
    [problem] = problems_of(text)
    assert problem.startswith("j.yaml:17: error: stages.0.touchpoints.0.key: 'Check Out' is not a valid key")


def test_missing_required_key() -> None:
    text = MINIMAL.replace("    name: {sv: Köp, en: Buy}\n", "")
    assert problems_of(text) == ["j.yaml:14: error: missing key 'name' at stages.0.name"]


def test_missing_english_name() -> None:
    text = MINIMAL.replace("{sv: Kassa, en: Checkout}", "{sv: Kassa}")
    assert problems_of(text) == ["j.yaml:18: error: missing key 'en' at stages.0.touchpoints.0.name.en"]


def test_shared_identity_is_an_error() -> None:
    text = MINIMAL.replace("    name: Bo Berg\n", "    name: Bo Berg\n    identities: {slack: U1}\n")
    assert problems_of(text) == ["j.yaml:13: error: slack identity 'U1' belongs to both 'ann' and 'bo'"]


def test_touchpoint_without_owner_is_only_a_warning() -> None:
    text = MINIMAL.replace("        owner_team: web\n        owner: ann\n", "")
    result = parse_journey(text, "j.yaml")
    assert result.journey is not None
    assert [str(p) for p in result.problems] == [
        "j.yaml:17: warning: touchpoint 'checkout' has no owner (set owner_team or owner)"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "j.yaml:1: error: the file is empty"),
        ("- a\n- b\n", "j.yaml:1: error: the top level must be a mapping"),
        ("org: {name: A}\n", "j.yaml:1: error: missing key 'stages' at stages"),
    ],
)
def test_degenerate_files(text: str, expected: str) -> None:
    assert problems_of(text) == [expected]


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    missing = load_journey_file(str(tmp_path / "nope.yaml"))
    assert missing.journey is None
    assert "cannot read the file: No such file or directory" in str(missing.problems[0])
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes(MINIMAL.replace("Köp", "K\xf6p").encode("latin-1"))
    [problem] = load_journey_file(str(latin)).problems
    assert (problem.line, problem.message) == (15, "the file is not valid UTF-8")


def test_sla_layers_builtin_file_and_touchpoint() -> None:
    text = MINIMAL + "sla:\n  critical: {acknowledge: 2h}\n"
    text = text.replace("        owner: ann\n", "        owner: ann\n        sla: {critical: {resolve: 12h}}\n")
    journey = parse_journey(text, "j.yaml").journey
    assert journey is not None
    tp = journey.stages[0].touchpoints[0]
    rule = journey.sla_for(tp, Severity.CRITICAL)
    assert (rule.acknowledge, rule.resolve) == (timedelta(hours=2), timedelta(hours=12))
    low = journey.sla_for(tp, Severity.LOW)
    assert (low.acknowledge, low.resolve) == (timedelta(days=3), timedelta(days=14))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("4h", 14400), ("1d12h", 129600), ("2w", 1209600), (" 90 m ", 5400)],
)
def test_durations_round_trip(text: str, seconds: int) -> None:
    value = parse_duration(text)
    assert value == timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize("bad", ["", "soon", "4", "h4", "-1h", "0m", "1.5h"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ("{days: [], start: '08:00', end: '17:00'}", "List should have at least 1 item"),
        ("{start: '17:00', end: '08:00'}", "business hours must start before they end (17:00–08:00)"),
    ],
)
def test_business_hours_must_leave_some_time(hours: str, message: str) -> None:
    text = MINIMAL.replace("  admins: [ann]\n", f"  admins: [ann]\n  business_hours: {hours}\n")
    [problem] = problems_of(text)
    assert problem.startswith("j.yaml:4: error: org.business_hours") and message in problem


def test_recursive_anchors_and_huge_durations_are_problems_not_crashes() -> None:
    recursive = problems_of("org: &o {name: X, admins: *o}\nstages: []\n")
    assert recursive and recursive[0].startswith("j.yaml:1: error:")
    huge = problems_of(MINIMAL + "sla:\n  low: {acknowledge: 9999999999w}\n")
    assert len(huge) == 1 and "too long" in huge[0]
