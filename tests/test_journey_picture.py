"""The journey picture: its rules (health, big maps, alt text) on plain facts, and the drawing
read back through its artists' gids, never through pixels; golden bytes for the example week.

Regenerate the golden hash after an intended change of the drawing:

    CXBOT_REGENERATE_GOLDEN=1 .venv/bin/pytest tests/test_journey_picture.py -k golden
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure as MplFigure

from bot.domain.kpi import Figure, Metric
from bot.i18n import default_catalogue
from bot.services.journey_picture import (
    Health,
    JourneyPicture,
    StageFacts,
    TouchpointFacts,
    alt_text,
    build_picture,
    metric_health,
)
from bot.services.picture_render import draw, render_png
from bot.services.picture_style import HEALTH_STYLE, UNOWNED_TAG
from tests.picture_example import WEEK, example_facts

GOLDEN = Path(__file__).parent / "data" / "journey_picture.sha256"


def words(language: str) -> Callable[..., str]:
    catalogue = default_catalogue()
    return lambda key, **values: catalogue.text(language, key, **values)


def example(language: str = "en", stage: str | None = None) -> JourneyPicture:
    return build_picture("Nordljus Energi AB", WEEK, language, 30, example_facts(language), stage=stage)


def by_gid(figure: MplFigure) -> dict[str, Any]:
    return {a.get_gid(): a for a in figure.findobj() if a.get_gid()}


# --- the rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("figure", "target", "health"),
    [
        (Figure(Metric.CSAT, 86, 90, 79, 93), 85, Health.GOOD),
        (Figure(Metric.NPS, 12, 80, 0, 24), 20, Health.WATCH),  # the interval reaches the target
        (Figure(Metric.CSAT, 62, 150, 54, 70), 80, Health.BAD),  # beyond the noise
        (Figure(Metric.AHT, 7.5, 500), 6, Health.WATCH),  # a miss with no interval to judge it by
        (Figure(Metric.CHURN, 2.1, 1500, 1.6, 2.6), 1.5, Health.BAD),  # lower is better
        (Figure(Metric.CHURN, 1.1, 1500, 0.7, 1.6), 1.2, Health.GOOD),
        (Figure(Metric.CSAT, 20, 12, 5, 40), 85, Health.FEW),  # n < min_answers: not judged
        (Figure(Metric.FCR, 70, 60, 58, 81), None, Health.NO_TARGET),
    ],
)
def test_health_follows_the_documented_rule(figure: Figure, target: float | None, health: Health) -> None:
    assert metric_health(figure.metric, figure, target, 30) is health


def test_the_worst_metric_decides_and_no_figures_is_its_own_state() -> None:
    stage = StageFacts(
        "s",
        "S",
        {Metric.NPS: 20, Metric.CSAT: 80},
        [
            TouchpointFacts(
                "mixed",
                "Mixed",
                "Ann",
                {Metric.NPS: Figure(Metric.NPS, 30, 100, 20, 40), Metric.CSAT: Figure(Metric.CSAT, 60, 100, 50, 70)},
            ),
            TouchpointFacts("empty", "Empty", None),
        ],
    )
    picture = build_picture("Org", WEEK, "en", 30, [stage])
    assert [(c.key, c.health) for c in picture.cards] == [("mixed", Health.BAD), ("empty", Health.NONE)]
    assert [c.key for c in picture.unowned()] == ["empty"]


def test_a_big_map_shows_each_stages_worst_first_and_counts_the_rest() -> None:
    def tp(stage: int, i: int) -> TouchpointFacts:
        value = 50 if i % 7 == 0 else 90  # every seventh is red
        figure = Figure(Metric.CSAT, value, 100, value - 5, value + 5)
        return TouchpointFacts(
            f"tp-{stage}-{i}",
            f"Touchpoint {stage}.{i}",
            None if i % 5 == 0 else "Owner",
            {Metric.CSAT: figure},
            open_issues=i % 3,
        )

    stages = [StageFacts(f"s{s}", f"Stage {s}", {Metric.CSAT: 80}, [tp(s, i) for i in range(100)]) for s in range(10)]
    picture = build_picture("Big", WEEK, "en", 30, stages)
    assert len(picture.all_cards) == 1000 and len(picture.cards) <= 40
    for column in picture.columns:
        assert column.worst_first and column.total == 100
        assert len(column.cards) + column.hidden_count == 100
        # Every red card that fits is shown before any other: 15 red per stage, 3 slots.
        assert all(c.health is Health.BAD for c in column.cards)
    one = build_picture("Big", WEEK, "en", 30, stages, stage="s3")
    # Red first; among them more open issues first, an unowned one before an owned one.
    assert [c.name for c in one.cards[:3]] == ["Touchpoint 3.35", "Touchpoint 3.14", "Touchpoint 3.56"]
    assert len(one.cards) == 39 and dict(one.columns[0].hidden) == {Health.GOOD: 61}


def test_forty_touchpoints_are_all_shown_in_journey_order() -> None:
    stages = [
        StageFacts(f"s{s}", f"Stage {s}", {}, [TouchpointFacts(f"t{s}-{i}", f"T {s}.{i}", "O") for i in range(8)])
        for s in range(5)
    ]
    picture = build_picture("Org", WEEK, "en", 30, stages)
    assert [c.key for c in picture.cards] == [f"t{s}-{i}" for s in range(5) for i in range(8)]
    assert not any(column.hidden for column in picture.columns)


@pytest.mark.parametrize("language", ["en", "sv"])
def test_the_alt_text_says_the_unowned_touchpoints_and_the_worst_three(language: str) -> None:
    alt = alt_text(example(language), words(language))
    unowned = "Price comparison sites" if language == "en" else "Prisjämförelsesajter"
    assert (f"Without an owner: {unowned}." if language == "en" else f"Utan ägare: {unowned}.") in alt
    worst = ["Equipment delivery", "First invoice", "Quote and solar calculator"]
    if language == "sv":
        worst = ["Leverans av utrustning", "Första fakturan", "Offert- och solkalkylator"]
    positions = [alt.index(name) for name in worst]
    assert positions == sorted(positions)
    assert "27" in alt


# --- the drawing ----------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "sv"])
def test_every_touchpoint_owner_and_unowned_mark_is_drawn_in_its_rule_colour(language: str) -> None:
    picture = example(language)
    artists = by_gid(draw(picture, words(language)))
    assert len(picture.cards) == 27
    for card in picture.cards:
        band, _tint, symbol = HEALTH_STYLE[card.health]
        assert to_hex(artists[f"band:{card.key}"].get_facecolor()) == to_hex(band)
        assert artists[f"symbol:{card.key}"].get_text() == symbol  # never colour alone
        assert artists[f"name:{card.key}"].get_text().replace("\n", " ").startswith(card.name[:15])
        if card.unowned:
            mark = artists[f"unowned:{card.key}"]
            assert words(language)("picture.no_owner") in mark.get_text()
            assert to_hex(mark.get_bbox_patch().get_facecolor()) == to_hex(UNOWNED_TAG)
            assert f"owner:{card.key}" not in artists
        else:
            assert card.owner.split()[0] in artists[f"owner:{card.key}"].get_text()
        assert words(language)(f"picture.health.{card.health.value}") in artists[f"health:{card.key}"].get_text()
        dashed = artists[f"card:{card.key}"].get_linestyle() in ("--", "dashed")
        assert dashed == (card.health is Health.NONE)
    unowned = [c.key for c in picture.cards if c.unowned]
    assert unowned == ["price-comparison"]
    for health in Health:
        assert f"legend:{health.value}" in artists
    assert artists["title"].get_text() == words(language)("picture.title", org="Nordljus Energi AB", week=WEEK)


def test_a_stage_picture_shows_that_stage_only() -> None:
    picture = example("en", stage="support")
    artists = by_gid(draw(picture, words("en")))
    assert [c.key for c in picture.cards] == ["support-phone", "chat", "email-support", "complaints", "moving-house"]
    assert "stage:support" in artists and "stage:usage" not in artists
    assert "Support" in artists["title"].get_text()


def test_the_png_has_no_date_or_software_and_draws_the_same_bytes_twice() -> None:
    first = render_png(example("en"), words("en"))
    assert first == render_png(example("en"), words("en"))
    assert first.startswith(b"\x89PNG\r\n\x1a\n")
    for chunk in (b"tIME", b"Software", b"matplotlib", b"Creation"):
        assert chunk not in first


@pytest.mark.parametrize("language", ["en", "sv"])
def test_golden_bytes_of_the_example_week(language: str) -> None:
    """Another matplotlib or FreeType draws other pixels: regenerate (see the module's doc)."""
    digest = hashlib.sha256(render_png(example(language), words(language))).hexdigest()
    lines = dict(line.split(" ", 1) for line in GOLDEN.read_text().splitlines()) if GOLDEN.exists() else {}
    if os.environ.get("CXBOT_REGENERATE_GOLDEN"):
        import matplotlib

        lines[language] = f"{digest} matplotlib-{matplotlib.__version__}"
        GOLDEN.write_text("".join(f"{k} {v}\n" for k, v in sorted(lines.items())))
    assert language in lines, "no golden hash yet: run with CXBOT_REGENERATE_GOLDEN=1"
    assert lines[language].split()[0] == digest
