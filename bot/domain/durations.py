"""Human durations used in the journey file: ``30m``, ``4h``, ``1d``, ``1d12h``, ``2w``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"([0-9]+)\s*([smhdw])")
MAX_SECONDS = 520 * 604800  # ten years: beyond any deadline, and far from datetime's limits
_WHOLE = re.compile(r"^\s*(?:[0-9]+\s*[smhdw]\s*)+$")


def parse_duration(text: str) -> timedelta:
    """Parse ``"1d12h"`` into a timedelta; raise ValueError with a readable reason."""
    if not isinstance(text, str) or not _WHOLE.match(text.lower()):
        raise ValueError(f"{text!r} is not a duration; write a number and a unit, e.g. 30m, 4h, 1d, 1d12h, 2w")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text.lower()))
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    if seconds > MAX_SECONDS:
        raise ValueError(f"{text!r} is too long; at most 520w (ten years)")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The inverse of parse_duration, largest units first (``timedelta(hours=36)`` → ``1d12h``)."""
    seconds = int(value.total_seconds())
    parts: list[str] = []
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"
