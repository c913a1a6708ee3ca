"""The trend chart, read through its artists: one colour and marker per stage everywhere (the
journey picture's), the target a dashed line, the interval a band, small samples hollow, a
week without figures a gap, and small multiples beyond a handful of stages."""

from __future__ import annotations

import math
from typing import Any

import pytest
from matplotlib.colors import to_hex

from bot.domain.kpi import Figure, Metric
from bot.services.chart import HANDFUL, ChartWords, StageTrend, trend_figure, trend_png
from bot.services.picture_style import stage_style

WEEKS = [f"2026-W{w}" for w in range(40, 48)]
WORDS = ChartWords("Org", "target", "interval", "fewer than 30 answers")


def week_figures(metric: Metric, base: float, *, few: int | None = None, gap: int | None = None) -> list[Figure]:
    out = []
    for i in range(len(WEEKS)):
        if i == gap:
            out.append(Figure(metric, None, 0, low_n=True))
        else:
            n = 10 if i == few else 100
            out.append(Figure(metric, base + i, n, base + i - 5, base + i + 5, low_n=n < 30))
    return out


def stages(count: int) -> list[StageTrend]:
    return [
        StageTrend(
            f"s{i}",
            f"Stage {i}",
            i,
            {
                Metric.NPS: week_figures(Metric.NPS, 10 * i, few=2 if i == 1 else None, gap=4 if i == 0 else None),
                Metric.CSAT: week_figures(Metric.CSAT, 70 + i),
            },
            {Metric.NPS: 20.0 + i},
        )
        for i in range(count)
    ]


def by_gid(figure: Any) -> dict[str, Any]:
    return {a.get_gid(): a for a in figure.findobj() if a.get_gid()}


@pytest.mark.parametrize("count", [3, 7])
def test_each_stage_has_one_colour_and_marker_in_every_panel(count: int) -> None:
    figure = trend_figure(WEEKS, stages(count), WORDS, 30)
    artists = by_gid(figure)
    for i in range(count):
        colour, marker = stage_style(i)
        for metric in (Metric.NPS, Metric.CSAT):
            assert to_hex(artists[f"line:s{i}:{metric.value}"].get_color()) == to_hex(colour)
            assert artists[f"solid:s{i}:{metric.value}"].get_marker() == marker
            assert f"band:s{i}:{metric.value}" in artists  # the interval
    # More than a handful of stages: a panel per stage and metric; else a panel per metric.
    assert len(figure.axes) == (count * 2 if count > HANDFUL else 2)


def test_targets_are_lines_small_samples_hollow_and_missing_weeks_gaps() -> None:
    artists = by_gid(trend_figure(WEEKS, stages(3), WORDS, 30))
    target = artists["target:s1:nps"]
    assert target.get_linestyle() == "--" and list(target.get_ydata()) == [21.0, 21.0]
    assert "target:s1:csat" not in artists  # no target, no line
    hollow = list(artists["hollow:s1:nps"].get_ydata())
    solid = list(artists["solid:s1:nps"].get_ydata())
    assert [i for i, y in enumerate(hollow) if not math.isnan(y)] == [2]  # n = 10 < 30
    assert math.isnan(solid[2]) and artists["hollow:s1:nps"].get_markerfacecolor() == "white"
    line = list(artists["line:s0:nps"].get_ydata())
    assert math.isnan(line[4]) and not math.isnan(line[3])  # a gap, not a line drawn through


def test_the_same_figures_draw_the_same_bytes_and_no_figures_draw_nothing() -> None:
    png = trend_png(WEEKS, stages(7), WORDS, 30)
    assert png is not None and png == trend_png(WEEKS, stages(7), WORDS, 30)
    empty = StageTrend("a", "A", 0, {Metric.NPS: [Figure(Metric.NPS, None, 0)] * len(WEEKS)}, {})
    assert trend_png(WEEKS, [empty], WORDS, 30) is None
