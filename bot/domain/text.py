"""Free text as people send it, made safe to store and to show: one function for every path.

Chat platforms, forms and files can carry what no keyboard types: NUL and other control
characters (PostgreSQL refuses NUL in text), lone surrogates (not encodable as UTF-8), the same
letter in two Unicode spellings, and "words" made only of zero-width or bidi characters that
look like nothing. ``clean_text`` removes the first two, composes (NFC), and drops words that
are invisible, so that text which shows nothing is empty and gets the polite "please write
something" reply of whatever command it was for.
"""

from __future__ import annotations

import re
import unicodedata

from bot.domain.issues import defuse_mentions, shorten

# Letters that render as blank though Unicode calls them letters or symbols (Hangul fillers,
# the blank Braille pattern); everything in category Cf (zero-width, bidi controls, BOM, soft
# hyphen) is invisible as well.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_KEPT_CONTROLS = frozenset("\n\t")


def invisible(char: str) -> bool:
    """Shows nothing on its own: whitespace, a format character, or a blank letter."""
    return char.isspace() or unicodedata.category(char) == "Cf" or char in _BLANK_LETTERS


def _unwanted(char: str) -> bool:
    category = unicodedata.category(char)
    return (category == "Cc" and char not in _KEPT_CONTROLS) or category == "Cs"


_WORD = re.compile(r"\S+")


def clean_text(text: str) -> str:
    """Control characters (but newline and tab) and lone surrogates removed, line ends as
    ``\\n``, NFC, words that show nothing removed, and stripped. Text with nothing visible
    comes back empty."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if any(_unwanted(c) for c in text):
        text = "".join(c for c in text if not _unwanted(c))
    text = unicodedata.normalize("NFC", text)
    if any(invisible(c) and not c.isspace() for c in text):
        # A word of zero-width or bidi characters alone is no word; inside a visible word they
        # stay (a zero-width joiner holds an emoji together, a bidi mark orders a name).
        text = _WORD.sub(lambda m: "" if all(invisible(c) for c in m.group(0)) else m.group(0), text)
    return text.strip()


# The same characters as _unwanted, as one pattern: files are checked by the million rows.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def control_character(text: str) -> str | None:
    """The first control character (but newline and tab) or lone surrogate, as ``U+0000``;
    None when there is none. For files, where a row with one is refused rather than mended."""
    found = _CONTROL.search(text)
    return None if found is None else f"U+{ord(found.group(0)):04X}"


def excerpt(text: str, limit: int = 40) -> str:
    """Echo user input safely: short, on one line, and unable to ping anyone."""
    return defuse_mentions(shorten(text, limit))
