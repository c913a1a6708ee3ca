"""The digest's trend chart: eight weeks of each stage's figures, readable in five seconds.

Every stage keeps the colour and marker it has in the journey picture (``stage_style``), in
every panel. A target is a dashed line, the 95 % interval a band, a week on fewer answers than
``min_answers`` a hollow point, and a week without figures a gap. Up to ``HANDFUL`` stages share
one panel per metric; more get small multiples (a row per metric, a column per stage, the same
scale along a row), so no panel is a tangle of lines.

Drawn with matplotlib's object API on the Agg canvas, never pyplot: no display, no global figure
state, safe from the clock's worker threads. matplotlib is imported inside the function. The PNG
carries no timestamp, so the same figures draw the same bytes.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.domain.kpi import Figure, Metric
from bot.services.picture_style import FONT, INK, MUTED, stage_style

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

PANEL_TITLES = {
    Metric.NPS: "NPS",
    Metric.CSAT: "CSAT %",
    Metric.CES: "CES (1–7)",
    Metric.FCR: "FCR %",
    Metric.CHURN: "Churn %",
    Metric.AHT: "AHT min",
}
HANDFUL = 4  # more stages than this: one small panel per stage and metric


def load_matplotlib() -> None:
    """Import matplotlib now. A long-running bot calls this at start: its first chart is drawn
    inside a transaction (on SQLite, holding the write lock), which must not also wait for a
    second of imports while every other command waits for it."""
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401


@dataclass(frozen=True)
class StageTrend:
    """One stage's weeks: ``index`` is its place in the journey (its colour and marker)."""

    key: str
    name: str
    index: int
    figures: Mapping[Metric, Sequence[Figure]]  # one per week, oldest first
    targets: Mapping[Metric, float]


@dataclass(frozen=True)
class ChartWords:
    title: str
    target: str
    interval: str
    few: str  # "fewer than {n} answers", already filled in


def _values(figures: Sequence[Figure]) -> tuple[list[float], list[float], list[float]]:
    nan = float("nan")
    ys = [nan if f.value is None else f.value for f in figures]
    lows = [nan if f.value is None or f.ci_low is None else f.ci_low for f in figures]
    highs = [nan if f.value is None or f.ci_high is None else f.ci_high for f in figures]
    return ys, lows, highs


def _draw_stage(ax, stage: StageTrend, metric: Metric, min_answers: int, *, own_target: bool) -> None:
    figures = stage.figures[metric]
    colour, marker = stage_style(stage.index)
    xs = list(range(len(figures)))
    ys, lows, highs = _values(figures)
    ax.fill_between(xs, lows, highs, color=colour, alpha=0.13, linewidth=0, gid=f"band:{stage.key}:{metric.value}")
    ax.plot(xs, ys, color=colour, linewidth=2.2, gid=f"line:{stage.key}:{metric.value}")
    few = [f.value is not None and f.n < min_answers for f in figures]
    solid = [y if not f else math.nan for y, f in zip(ys, few, strict=True)]
    hollow = [y if f else math.nan for y, f in zip(ys, few, strict=True)]
    ax.plot(
        xs, solid, linestyle="none", marker=marker, markersize=7, color=colour, gid=f"solid:{stage.key}:{metric.value}"
    )
    ax.plot(
        xs,
        hollow,
        linestyle="none",
        marker=marker,
        markersize=7,
        markerfacecolor="white",
        markeredgecolor=colour,
        markeredgewidth=1.6,
        gid=f"hollow:{stage.key}:{metric.value}",
    )
    target = stage.targets.get(metric)
    if target is not None:
        ax.axhline(
            target,
            color=colour if not own_target else INK,
            linestyle="--",
            linewidth=1.3,
            gid=f"target:{stage.key}:{metric.value}",
        )


def trend_png(weeks: Sequence[str], stages: Sequence[StageTrend], words: ChartWords, min_answers: int) -> bytes | None:
    """None when no stage has a single figure: no empty chart is ever drawn."""
    figure = trend_figure(weeks, stages, words, min_answers)
    if figure is None:
        return None
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def trend_figure(
    weeks: Sequence[str], stages: Sequence[StageTrend], words: ChartWords, min_answers: int
) -> MplFigure | None:
    """The chart as a matplotlib Figure (its artists carry gids such as ``line:STAGE:METRIC``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    metrics = [m for m in PANEL_TITLES if any(any(f.value is not None for f in s.figures.get(m, ())) for s in stages)]
    drawn = [s for s in stages if any(f.value is not None for fs in s.figures.values() for f in fs)]
    if not metrics or not drawn:
        return None
    labels = [w.split("-")[1] for w in weeks]  # "W47": the year is in the title
    small_multiples = len(drawn) > HANDFUL
    # Small multiples: a row per stage (its name, colour and marker at the left), a column per
    # metric, one scale down each column; narrow enough to survive a chat preview.
    rows = len(drawn) if small_multiples else len(metrics)
    columns = len(metrics) if small_multiples else 1
    width = max(3.6 * columns + 1.6, 9.0) if small_multiples else 9.0
    height = (1.45 if small_multiples else 2.8) * rows + 1.6
    figure = MplFigure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey="col" if small_multiples else False)
    for row in range(rows):
        for column in range(columns):
            ax = axes[row][column]
            metric = metrics[column] if small_multiples else metrics[row]
            chosen = [drawn[row]] if small_multiples else drawn
            for stage in chosen:
                if metric in stage.figures:
                    _draw_stage(ax, stage, metric, min_answers, own_target=small_multiples)
            ax.grid(True, alpha=0.3)
            ax.tick_params(labelsize=10)
            ax.set_xticks(list(range(len(weeks))), labels, fontsize=10)
            if not small_multiples:
                ax.set_ylabel(PANEL_TITLES[metric], fontsize=12, fontweight="bold", family=FONT)
                continue
            if row == 0:
                ax.set_title(PANEL_TITLES[metric], fontsize=13, fontweight="bold", color=INK, family=FONT)
            if column == 0:
                colour, marker = stage_style(drawn[row].index)
                name = textwrap.fill(drawn[row].name, 16)
                ax.set_ylabel(
                    name,
                    fontsize=11,
                    fontweight="bold",
                    color=INK,
                    family=FONT,
                    rotation=0,
                    ha="right",
                    va="center",
                    labelpad=26,
                )
                ax.plot(
                    [-0.1], [0.5], marker=marker, color=colour, markersize=11, transform=ax.transAxes, clip_on=False
                )
    legend = (
        []
        if small_multiples
        else [
            Line2D(
                [],
                [],
                color=stage_style(s.index)[0],
                marker=stage_style(s.index)[1],
                linewidth=2.2,
                markersize=7,
                label=s.name,
            )
            for s in drawn
        ]
    )
    legend += [
        Line2D([], [], color=INK if small_multiples else MUTED, linestyle="--", label=words.target),
        Patch(facecolor=MUTED, alpha=0.25, label=words.interval),
        Line2D(
            [],
            [],
            linestyle="none",
            marker="o",
            markerfacecolor="white",
            markeredgecolor=MUTED,
            markersize=7,
            label=words.few,
        ),
    ]
    figure.legend(handles=legend, loc="outside lower center", ncols=min(len(legend), 4), fontsize=10, frameon=False)
    figure.suptitle(words.title, fontsize=14, fontweight="bold", family=FONT)
    return figure
