"""Every number a person types goes through here: plain ASCII digits, in range, or a refusal.

``str.isdigit()`` is true for ``²`` and ``③``, which ``int()`` cannot read, and ``int()`` and
``float()`` read fullwidth and Arabic-Indic digits, ``1_000``, ``1e3``, ``nan`` and ``inf``,
which nobody means as a tip, an issue or a KPI value. So a number is what a person writes on a
keyboard in any locale: ``42``, ``-3``, ``1.8`` or ``1,8``, nothing else.
"""

from __future__ import annotations

import math
import re

from bot.domain.errors import UserError
from bot.domain.text import excerpt

# Issues and observations are numbered by the database: a 32-bit integer in PostgreSQL.
ID_MAX = 2_147_483_647
_WHOLE = re.compile(r"[+-]?[0-9]{1,15}", re.ASCII)
_DECIMAL = re.compile(r"[+-]?[0-9]{1,15}(?:[.,][0-9]{1,15})?", re.ASCII)


def _shown(text: str) -> str:
    return excerpt(text)  # echoed to chat: short, and unable to ping anyone


class NotANumber(UserError, ValueError):
    """Not a plain number in the range asked for. A polite refusal in chat (its key), and an
    English sentence for the command line and import files (``str()``)."""

    def __init__(self, text: str, low: float | None, high: float | None, *, too_big: bool = False) -> None:
        shown = _shown(text)
        if too_big and (high is None or high >= ID_MAX):  # "from 1 to 2147483647" helps nobody
            super().__init__("common.number_too_big", given=shown)
            self.sentence = f"{shown!r} is too big a number"
        elif low is not None and high is not None and high < ID_MAX:
            super().__init__("common.number_range", given=shown, low=_plain(low), high=_plain(high))
            self.sentence = f"{shown!r} is not a number from {_plain(low)} to {_plain(high)}"
        elif low is not None:
            super().__init__("common.number_min", given=shown, low=_plain(low))
            self.sentence = f"{shown!r} is not a number of at least {_plain(low)}"
        else:
            super().__init__("common.not_a_number", given=shown)
            self.sentence = f"{shown!r} is not a number"
        self.text, self.low, self.high = text, low, high

    def __str__(self) -> str:
        return self.sentence


def _plain(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def whole_number(text: str, low: int | None = None, high: int | None = None) -> int:
    """A whole number written with ASCII digits (an optional sign), within [low, high]."""
    cleaned = text.strip()
    if _WHOLE.fullmatch(cleaned) is None:
        raise NotANumber(text, low, high)
    value = int(cleaned)
    if low is not None and value < low:
        raise NotANumber(text, low, high)
    if high is not None and value > high:
        raise NotANumber(text, low, high, too_big=True)
    return value


def decimal_number(text: str, low: float | None = None, high: float | None = None) -> float:
    """A number like ``42``, ``-3``, ``1.8`` or ``1,8`` (ASCII digits), within [low, high]."""
    cleaned = text.strip()
    if _DECIMAL.fullmatch(cleaned) is None:
        raise NotANumber(text, low, high)
    value = float(cleaned.replace(",", "."))
    if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        raise NotANumber(text, low, high)
    return value


def identifier(text: str) -> int:
    """An issue's or an observation's number, as people write it: ``12`` or ``#12``."""
    cleaned = text.strip()
    return whole_number(cleaned[1:] if cleaned.startswith("#") else cleaned, 1, ID_MAX)
