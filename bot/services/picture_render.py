"""The journey picture drawn: stages as columns, touchpoints as cards, a legend, the week.

matplotlib is imported inside the functions (``cxbot --help`` stays fast) and only its object
API on the Agg canvas is used: no pyplot, no global figure state, safe from worker threads.
The PNG carries no date or software version, and every text uses DejaVu Sans (shipped with
matplotlib), so the same picture draws the same bytes.

Every artist that carries meaning has a gid (``card:KEY``, ``owner:KEY``, ``unowned:KEY``,
``health:KEY``, ``stage:KEY``, ``more:KEY``, ``legend:HEALTH``): the tests read the drawing
through them instead of through pixels.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.services.journey_picture import HEALTH_ORDER, Card, Column, Health, JourneyPicture, activity_words
from bot.services.kpi_views import format_value
from bot.services.picture_style import FONT, GREY, HEALTH_STYLE, INK, MUTED, UNOWNED_TAG, stage_style

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.text import Text as MplText

OVERDUE = "#A33F00"  # a darker vermillion: dark enough for small text on the card's tint

Text = Callable[..., str]  # a catalogue key and values → the words, in the picture's language

DPI = 100
CARD_W, CARD_H = 2.9, 1.4  # inches
GAP_X, GAP_Y = 0.22, 0.14
MARGIN = 0.3
TITLE_H = 0.75
HEADER_H = 0.62
LEGEND_H = 0.95
ROWS_PER_COLUMN = 10  # a single stage's cards wrap into more columns beyond this
# The whole map wraps after this many stages, like lines of text: a picture much wider than tall
# shrinks to nothing in a chat preview (about 400 px wide).
COLUMNS_PER_BAND = 4
NAME_CHARS = 19  # a name wraps at this many characters, on at most two lines
LINE_CHARS = 30  # the detail lines, cut beyond this (the owner's full name is in the alt text's source)


class Canvas:
    """The figure in inches from its top-left corner. Artists go straight onto the figure: an
    Axes would clip every text to itself, which costs more than drawing it."""

    def __init__(self, figure: Figure, width: float, height: float) -> None:
        from matplotlib.transforms import Affine2D

        self.figure, self.width = figure, width
        self.transform = Affine2D().scale(1, -1).translate(0, height) + figure.dpi_scale_trans

    def text(self, x: float, y: float, s: str, **kwargs: object) -> MplText:
        return self.figure.text(x, y, s, transform=self.transform, **kwargs)

    def add_patch(self, patch: Patch) -> Patch:
        patch.set_transform(self.transform)
        self.figure.add_artist(patch)
        return patch

    def plot(self, xs: list[float], ys: list[float], **kwargs: object) -> None:
        from matplotlib.lines import Line2D

        self.figure.add_artist(Line2D(xs, ys, transform=self.transform, **kwargs))


def wrap(text: str, width: int, lines: int) -> list[str]:
    """``text`` on at most ``lines`` lines of ``width`` characters, the last one cut with "…"."""
    wrapped = textwrap.wrap(text, width, break_long_words=True) or [""]
    if len(wrapped) > lines:
        wrapped = [*wrapped[: lines - 1], textwrap.shorten(" ".join(wrapped[lines - 1 :]), width, placeholder="…")]
    return wrapped


def _slots(picture: JourneyPicture) -> list[tuple[Column, int, list[Card | None]]]:
    """(column, stage column index, cards) per drawn column; None is the "more" slot. One stage
    alone spreads over columns of ROWS_PER_COLUMN cards."""
    slots: list[tuple[Column, int, list[Card | None]]] = []
    for column in picture.columns:
        cards: list[Card | None] = list(column.cards)
        if column.hidden:
            cards.append(None)
        if picture.stage is None:
            slots.append((column, 0, cards))
        else:
            # At least three columns (as wide as the legend), at most ROWS_PER_COLUMN cards down.
            across = max(min(3, len(cards)), math.ceil(len(cards) / ROWS_PER_COLUMN), 1)
            down = max(math.ceil(len(cards) / across), 1)
            for start in range(0, max(len(cards), 1), down):
                slots.append((column, start // down, cards[start : start + down]))
    return slots


def draw(picture: JourneyPicture, text: Text) -> Figure:
    """The picture as a matplotlib Figure (not yet saved)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    slots = _slots(picture)
    per_band = COLUMNS_PER_BAND if picture.stage is None else max(len(slots), 1)
    bands = [slots[i : i + per_band] for i in range(0, max(len(slots), 1), per_band)]
    band_rows = [max((len(cards) for _, _, cards in band), default=1) or 1 for band in bands]
    across = min(len(slots), per_band) or 1
    width = max(2 * MARGIN + across * CARD_W + (across - 1) * GAP_X, 7.5)
    height = TITLE_H + sum(HEADER_H + rows * (CARD_H + GAP_Y) for rows in band_rows) + LEGEND_H + MARGIN
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    ax = Canvas(figure, width, height)

    title_key = "picture.title" if picture.stage is None else "picture.title_stage"
    stage_name = picture.columns[0].name if picture.columns and picture.stage else ""
    ax.text(
        MARGIN,
        0.3,
        text(title_key, org=picture.org, week=picture.week, stage=stage_name),
        fontsize=19,
        fontweight="bold",
        color=INK,
        family=FONT,
        va="center",
        gid="title",
    )
    ax.text(MARGIN, 0.6, _summary(picture, text), fontsize=12, color=MUTED, family=FONT, va="center", gid="summary")

    top = TITLE_H
    for band, rows in zip(bands, band_rows, strict=True):
        for slot, (column, part, cards) in enumerate(band):
            x = MARGIN + slot * (CARD_W + GAP_X)
            if part == 0:
                _stage_header(ax, column, x, top, text)
            for row, card in enumerate(cards):
                y = top + HEADER_H + row * (CARD_H + GAP_Y)
                if card is None:
                    _more(ax, column, x, y, text)
                else:
                    _card(ax, card, x, y, text, picture.min_answers)
        top += HEADER_H + rows * (CARD_H + GAP_Y)
    _legend(ax, picture, height - LEGEND_H - MARGIN / 2, text)
    return figure


def render_png(picture: JourneyPicture, text: Text) -> bytes:
    figure = draw(picture, text)
    buffer = io.BytesIO()
    # No "Software" chunk and no date: the bytes depend on the picture only.
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _summary(picture: JourneyPicture, text: Text) -> str:
    counts = picture.health_counts()
    parts = [f"{HEALTH_STYLE[h][2]} {n} {text(f'picture.health.{h.value}')}" for h, n in counts.items()]
    unowned = len(picture.unowned())
    if unowned:
        parts.append(text("picture.unowned_count", count=unowned))
    return text("picture.summary", touchpoints=len(picture.all_cards)) + "   " + "   ".join(parts)


def _stage_header(ax: Canvas, column: Column, x: float, top: float, text: Text) -> None:
    colour, marker = stage_style(column.index)
    ax.plot([x + 0.16], [top + 0.2], marker=marker, color=colour, markersize=13, gid=f"marker:{column.key}")
    name = wrap(column.name, 28, 1)[0]
    ax.text(
        x + 0.36,
        top + 0.2,
        name,
        fontsize=15 if len(name) <= 20 else 12.5,
        fontweight="bold",
        color=INK,
        family=FONT,
        va="center",
        gid=f"stage:{column.key}",
    )
    note = text("picture.stage_count", count=column.total)
    if column.worst_first:
        note += " · " + text("picture.worst_first")
    ax.text(x + 0.36, top + 0.46, note, fontsize=10, color=MUTED, family=FONT, va="center")
    ax.plot([x, x + CARD_W], [top + 0.58, top + 0.58], color=colour, linewidth=3, solid_capstyle="butt")


def _box(ax: Canvas, x: float, y: float, face: str, edge: str, width: float, style: str, gid: str) -> None:
    """A card's rounded box."""
    from matplotlib.patches import FancyBboxPatch

    box = FancyBboxPatch(
        (x, y),
        CARD_W,
        CARD_H,
        boxstyle="round,pad=0,rounding_size=0.06",
        facecolor=face,
        edgecolor=edge,
        linewidth=width,
        linestyle=style,
        gid=gid,
    )
    ax.add_patch(box)


def _card(ax: Canvas, card: Card, x: float, y: float, text: Text, min_answers: int) -> None:
    from matplotlib.patches import Rectangle

    band, tint, symbol = HEALTH_STYLE[card.health]
    no_figures = card.health is Health.NONE
    _box(ax, x, y, tint, MUTED if no_figures else band, 1.4, "--" if no_figures else "-", f"card:{card.key}")
    ax.add_patch(Rectangle((x, y), 0.42, CARD_H, facecolor=band, edgecolor="none", gid=f"band:{card.key}"))
    ax.text(
        x + 0.21,
        y + 0.36,
        symbol,
        fontsize=21,
        fontweight="bold",
        family=FONT,
        ha="center",
        va="center",
        color="white" if card.health in (Health.BAD, Health.GOOD) else INK,
        gid=f"symbol:{card.key}",
    )
    left = x + 0.52
    # A word too long for the line (Swedish compounds) makes the name smaller, not broken.
    long_word = max((len(word) for word in card.name.split()), default=0) > NAME_CHARS
    name = wrap(card.name, NAME_CHARS + 4 if long_word else NAME_CHARS, 2)
    ax.text(
        left,
        y + 0.07,
        "\n".join(name),
        fontsize=11.5 if long_word else 13.5,
        fontweight="bold",
        color=INK,
        family=FONT,
        va="top",
        linespacing=1.05,
        gid=f"name:{card.key}",
    )
    line = y + (0.68 if len(name) > 1 else 0.45)
    below = 0.25 if card.owner is None else 0.23  # the NO OWNER tag is taller than a line
    if card.owner is None:
        ax.text(
            left,
            line,
            "⚠ " + text("picture.no_owner"),
            fontsize=10.5,
            fontweight="bold",
            color=INK,
            family=FONT,
            va="center",
            gid=f"unowned:{card.key}",
            bbox={"boxstyle": "round,pad=0.18", "facecolor": UNOWNED_TAG, "edgecolor": INK, "linewidth": 0.8},
        )
    else:
        owner = wrap(text("picture.owner", name=card.owner), LINE_CHARS, 1)[0]
        ax.text(left, line, owner, fontsize=10, color=INK, family=FONT, va="center", gid=f"owner:{card.key}")
    ax.text(
        left,
        line + below,
        wrap(_health_line(card, text, min_answers), LINE_CHARS, 1)[0],
        fontsize=10,
        color=INK,
        family=FONT,
        va="center",
        gid=f"health:{card.key}",
    )
    ax.text(
        left,
        line + below + 0.22,
        wrap(activity_words(card, text), LINE_CHARS, 1)[0],
        fontsize=10,
        color=OVERDUE if card.overdue_issues else INK,  # beside the word "overdue", never instead of it
        family=FONT,
        va="center",
        gid=f"activity:{card.key}",
    )


def _health_line(card: Card, text: Text, min_answers: int) -> str:
    word = text(f"picture.health.{card.health.value}")
    shown = [m for m in card.metrics if m.health is card.health] or list(card.metrics)
    if not shown:
        return word
    first = shown[0]
    value = format_value(first.metric, first.value).replace(" ", "")
    label = text(f"kpi.metric.{first.metric.value}")
    if card.health is Health.FEW:
        return f"{word}: {label} {value} n={first.n}"
    if first.target is None:
        return f"{word}: {label} {value}"
    return f"{word}: {label} {value} / {first.target:g}"


def _more(ax: Canvas, column: Column, x: float, y: float, text: Text) -> None:
    _box(ax, x, y, "#F4F4F4", GREY, 1.0, "-", f"more:{column.key}")
    ax.text(
        x + 0.15,
        y + 0.3,
        text("picture.more", count=column.hidden_count),
        fontsize=12.5,
        fontweight="bold",
        color=INK,
        family=FONT,
        va="center",
    )
    counts = [f"{HEALTH_STYLE[h][2]} {n} {text(f'picture.health.{h.value}')}" for h, n in column.hidden]
    for i, chunk in enumerate(counts[:3]):
        ax.text(x + 0.15, y + 0.62 + i * 0.24, chunk, fontsize=10.5, color=INK, family=FONT, va="center")


def _legend(ax: Canvas, picture: JourneyPicture, y: float, text: Text) -> None:
    from matplotlib.patches import Rectangle

    x = MARGIN
    for health in HEALTH_ORDER:
        band, _tint, symbol = HEALTH_STYLE[health]
        ax.add_patch(
            Rectangle(
                (x, y + 0.08),
                0.3,
                0.3,
                facecolor=band,
                edgecolor=MUTED,
                linewidth=0.8,
                linestyle="--" if health is Health.NONE else "-",
                gid=f"legend:{health.value}",
            )
        )
        ax.text(
            x + 0.15,
            y + 0.23,
            symbol,
            fontsize=12,
            fontweight="bold",
            ha="center",
            va="center",
            family=FONT,
            color="white" if health in (Health.BAD, Health.GOOD) else INK,
        )
        label = text(f"picture.health.{health.value}")
        ax.text(x + 0.4, y + 0.23, label, fontsize=10.5, color=INK, family=FONT, va="center")
        x += 0.62 + 0.085 * len(label)
    ax.text(
        MARGIN,
        y + 0.62,
        "⚠ " + text("picture.no_owner"),
        fontsize=10,
        fontweight="bold",
        color=INK,
        family=FONT,
        va="center",
        bbox={"boxstyle": "round,pad=0.18", "facecolor": UNOWNED_TAG, "edgecolor": INK, "linewidth": 0.8},
    )
    left = MARGIN + 0.25 + 0.09 * len(text("picture.no_owner")) + 0.3
    chars = int((ax.width - left - MARGIN) / 0.075)
    sentence = "\n".join(wrap(text("picture.legend", n=picture.min_answers), chars, 2))
    ax.text(left, y + 0.66, sentence, fontsize=10, color=MUTED, family=FONT, va="center", linespacing=1.1)
