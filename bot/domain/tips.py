"""The ten CX-culture tips: reading the tips files, and choosing the week's tip. Pure.

A tips file (content/tips/<lang>.md) is Markdown a CX lead can edit::

    ## 4. Every touchpoint needs an owner
    <body, at most 120 words>

    **Discuss:** <a question for the team>

    **Try this week:** <one concrete action>
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

TIP_COUNT = 10
MAX_BODY_WORDS = 120
LABELS = {
    "en": ("**Discuss:**", "**Try this week:**"),
    "sv": ("**Diskutera:**", "**Prova den här veckan:**"),
}
_HEADING = re.compile(r"^## (\d+)\.\s+(.+?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Tip:
    number: int
    title: str
    body: str
    question: str
    action: str


class TipsFileError(Exception):
    """A tips file that cannot be used; the message names the file, the line and the problem."""


def parse_tips(text: str, language: str, file: str) -> dict[int, Tip]:
    discuss, try_label = LABELS[language]
    headings = list(_HEADING.finditer(text))
    if not headings:
        raise TipsFileError(f"{file}:1: no tips found; each tip starts with a line like '## 1. Title'")
    tips: dict[int, Tip] = {}
    for index, heading in enumerate(headings):
        line = text.count("\n", 0, heading.start()) + 1
        number, title = int(heading.group(1)), heading.group(2)
        end = headings[index + 1].start() if index + 1 < len(headings) else len(text)
        block = text[heading.end() : end]
        where = f"{file}:{line}: tip {number}"
        if number in tips:
            raise TipsFileError(f"{where}: tip {number} appears twice")
        if block.count(discuss) != 1 or block.count(try_label) != 1:
            raise TipsFileError(f"{where}: needs exactly one '{discuss}' and one '{try_label}' line")
        if block.index(discuss) > block.index(try_label):
            raise TipsFileError(f"{where}: '{discuss}' must come before '{try_label}'")
        body, _, rest = block.partition(discuss)
        question, _, action = rest.partition(try_label)
        body, question, action = body.strip(), question.strip(), action.strip()
        if not body or not question or not action:
            raise TipsFileError(f"{where}: the body, the question and the action must all have text")
        words = len(body.split())
        if words > MAX_BODY_WORDS:
            raise TipsFileError(f"{where}: the body has {words} words; at most {MAX_BODY_WORDS}")
        tips[number] = Tip(number, title, body, question, action)
    if sorted(tips) != list(range(1, TIP_COUNT + 1)):
        raise TipsFileError(
            f"{file}:1: expected tips 1 to {TIP_COUNT}, found {', '.join(map(str, sorted(tips))) or 'none'}"
        )
    return tips


def load_tips(directory: Path, languages: Iterable[str] = ("sv", "en")) -> dict[str, dict[int, Tip]]:
    loaded = {}
    for language in languages:
        file = directory / f"{language}.md"
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise TipsFileError(f"{file}: cannot read the tips file ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise TipsFileError(f"{file}: the tips file is not valid UTF-8") from None
        loaded[language] = parse_tips(text, language, str(file))
    return loaded


# --- choosing the week's tip -------------------------------------------------------------------


class Signal(StrEnum):
    """A weak spot in the week's data, and the tip that speaks to it."""

    UNOWNED_TOUCHPOINTS = "unowned_touchpoints"
    MISSED_ACKNOWLEDGEMENTS = "missed_acknowledgements"
    FALLING_KPI = "falling_kpi"
    NOBODY_SPEAKING_UP = "nobody_speaking_up"
    REOPENED_ISSUES = "reopened_issues"
    RESOLVED_ISSUES = "resolved_issues"


# Which tip answers which signal; the first of a signal's tips not yet used in the cycle wins.
TIPS_FOR_SIGNAL: Mapping[Signal, tuple[int, ...]] = {
    Signal.UNOWNED_TOUCHPOINTS: (4, 1),
    Signal.MISSED_ACKNOWLEDGEMENTS: (4, 2),
    Signal.FALLING_KPI: (10, 6),
    Signal.NOBODY_SPEAKING_UP: (8, 3),
    Signal.REOPENED_ISSUES: (7, 5),
    Signal.RESOLVED_ISSUES: (9,),
}


class Order(StrEnum):
    ROTATION = "rotation"
    ADAPTIVE = "adaptive"


@dataclass(frozen=True)
class Choice:
    number: int
    signal: Signal | None  # why; None when the tip simply came next in the rotation
    new_cycle: bool


def choose_tip(used: Iterable[int], signals: Iterable[Signal], order: Order) -> Choice:
    """The next tip for a channel: never one already used in this cycle of ten.

    ``signals`` are the week's weak spots, most pressing first. In adaptive order the first
    signal with an unused tip decides; otherwise (or in rotation order) the lowest unused number.
    """
    used_now = set(used)
    new_cycle = len(used_now & set(range(1, TIP_COUNT + 1))) >= TIP_COUNT
    if new_cycle:
        used_now = set()
    if order is Order.ADAPTIVE:
        for signal in signals:
            for number in TIPS_FOR_SIGNAL[signal]:
                if number not in used_now:
                    return Choice(number, signal, new_cycle)
    number = min(n for n in range(1, TIP_COUNT + 1) if n not in used_now)
    return Choice(number, None, new_cycle)
