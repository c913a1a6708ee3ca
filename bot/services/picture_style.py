"""Colours, markers and symbols shared by the journey picture and the trend chart.

Okabe & Ito's palette (2008), which readers with every common colour-vision deficiency can
tell apart; and no colour ever stands alone: each health has a symbol and a word, each stage a
marker. Plain data, no matplotlib: the pictures import it lazily.
"""

from __future__ import annotations

from bot.services.journey_picture import Health

OKABE_ITO = {
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "black": "#000000",
}
FONT = "DejaVu Sans"  # ships with matplotlib: the same glyphs, and so the same bytes, everywhere
INK = "#1A1A1A"
MUTED = "#5A5A5A"
GREY = "#BDBDBD"

# A stage keeps its colour and marker in every picture: the n-th stage of the journey.
STAGE_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442")
STAGE_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def stage_style(index: int) -> tuple[str, str]:
    """(colour, marker) of the stage at ``index``; past eight stages the pairs shift, so no two
    of the first 64 stages share both."""
    colours, markers = len(STAGE_COLOURS), len(STAGE_MARKERS)
    return STAGE_COLOURS[index % colours], STAGE_MARKERS[(index + index // colours) % markers]


# Health: (fill of the card's band, tint of the card, symbol). The word comes from the catalogue.
HEALTH_STYLE: dict[Health, tuple[str, str, str]] = {
    Health.BAD: (OKABE_ITO["vermillion"], "#F8DCCB", "✗"),
    Health.WATCH: (OKABE_ITO["orange"], "#FBEBC6", "!"),
    Health.GOOD: (OKABE_ITO["green"], "#CDEBE1", "✓"),
    Health.FEW: (GREY, "#EEEEEE", "~"),
    Health.NO_TARGET: (OKABE_ITO["sky"], "#E3F1FA", "○"),
    Health.NONE: ("#FFFFFF", "#FFFFFF", "–"),
}
UNOWNED_TAG = OKABE_ITO["yellow"]  # with the words "NO OWNER" and a warning sign
