"""The digest's trend chart: one panel per answer metric, one line per stage, eight weeks.

Drawn with matplotlib's object API on the Agg canvas, never pyplot: no display, no global
figure state, safe from the clock's worker threads. The PNG carries no timestamp, so the same
figures draw the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

from bot.domain.kpi import Metric

PANEL_TITLES = {Metric.NPS: "NPS", Metric.CSAT: "CSAT %", Metric.CES: "CES (1–7)"}
Series = Mapping[str, Sequence[float | None]]  # line label → one value (or a gap) per week


def load_matplotlib() -> None:
    """Import matplotlib now. A long-running bot calls this at start: its first chart is drawn
    inside a transaction (on SQLite, holding the write lock), which must not also wait for a
    second of imports while every other command waits for it."""
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401


def trend_png(weeks: Sequence[str], panels: Mapping[Metric, Series], title: str) -> bytes | None:
    """None when no panel has a single value: no empty chart is ever drawn."""
    drawn = {m: s for m, s in panels.items() if any(v is not None for line in s.values() for v in line)}
    if not drawn:
        return None
    # matplotlib costs a second of start-up: only a drawn chart pays for it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 2.8 * len(drawn) + 0.6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(drawn), 1, squeeze=False, sharex=True)[:, 0]
    labels = [w.split("-")[1] for w in weeks]  # "W47": the year is in the title
    positions = list(range(len(weeks)))
    for ax, (metric, series) in zip(axes, drawn.items(), strict=True):
        for label, values in series.items():
            if all(v is None for v in values):
                continue
            ys = [float("nan") if v is None else v for v in values]
            ax.plot(positions, ys, marker="o", linewidth=1.6, markersize=3.5, label=label)
        ax.set_title(PANEL_TITLES.get(metric, metric.value.upper()), loc="left", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    axes[-1].set_xticks(positions, labels)
    figure.suptitle(title, fontsize=11)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
