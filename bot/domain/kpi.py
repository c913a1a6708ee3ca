"""Customer-journey KPIs, computed exactly as ../shared/cx/DOMAIN.md defines them. Pure.

Each function returns a ``Figure``: the value, its n, a 95 % interval where one is defined (NPS
by DOMAIN.md's adjusted Wald; shares such as CSAT, FCR and churn by Agresti–Coull; the CES mean
by the normal approximation), and whether n is below the small-sample threshold (a figure to
show with care, not to celebrate).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

LOW_N = 30  # the default small-sample threshold
Z95 = 1.96


class Metric(StrEnum):
    NPS = "nps"  # 0–10 answers → −100…+100
    CSAT = "csat"  # 1–5 answers → % of 4s and 5s
    CES = "ces"  # 1–7 agreement → the mean (CES 2.0)
    FCR = "fcr"  # % of contacts resolved at first contact
    CHURN = "churn"  # % of customers at the start of the period lost during it
    AHT = "aht"  # average handling time, minutes (arrives aggregated)


# For these a lower value is better; for the rest, higher.
LOWER_IS_BETTER = frozenset({Metric.CHURN, Metric.AHT})
SCALES = {Metric.NPS: (0, 10), Metric.CSAT: (1, 5), Metric.CES: (1, 7)}
# Metrics that are a share of n (customers, contacts, answers): they get a proportion's interval.
SHARES = frozenset({Metric.CSAT, Metric.FCR, Metric.CHURN})


@dataclass(frozen=True)
class Figure:
    metric: Metric
    value: float | None  # None: no data
    n: int
    ci_low: float | None = None
    ci_high: float | None = None
    low_n: bool = False


def _round(value: float) -> float:
    return round(value, 1)


Histogram = Mapping[int, int]  # score → how many answers gave it


def histogram(scores: Sequence[int]) -> Histogram:
    return Counter(scores)


def nps(scores: Sequence[int], low_n: int = LOW_N) -> Figure:
    """%promoters (9–10) − %detractors (0–6), with the adjusted Wald 95 % interval (Rocks 2016)."""
    return nps_of(histogram(scores), low_n)


def nps_of(counts: Histogram, low_n: int = LOW_N) -> Figure:
    """NPS from counts per score: the database groups the answers, Python does the maths."""
    n = sum(counts.values())
    if n == 0:
        return Figure(Metric.NPS, None, 0, low_n=True)
    promoters = sum(c for s, c in counts.items() if s >= 9)
    detractors = sum(c for s, c in counts.items() if s <= 6)
    value = 100 * (promoters - detractors) / n
    p_promoters = (promoters + 0.75) / (n + 3)
    p_detractors = (detractors + 0.75) / (n + 3)
    centre = p_promoters - p_detractors
    se = math.sqrt((p_promoters + p_detractors - centre**2) / (n + 3))
    low = max(-100.0, 100 * (centre - Z95 * se))
    high = min(100.0, 100 * (centre + Z95 * se))
    return Figure(Metric.NPS, _round(value), n, _round(low), _round(high), n < low_n)


def csat(scores: Sequence[int], low_n: int = LOW_N) -> Figure:
    """The share of 4s and 5s among 1–5 answers, in percent (the top-two-box variant)."""
    return csat_of(histogram(scores), low_n)


def ces(scores: Sequence[int], low_n: int = LOW_N) -> Figure:
    """The mean of 1–7 agreement with "it was easy to handle my issue" (CES 2.0, the mean variant)."""
    return ces_of(histogram(scores), low_n)


def proportion_interval(successes: float, n: int, digits: int = 1) -> tuple[float, float]:
    """The adjusted Wald (Agresti–Coull) 95 % interval of a share, in percent: the same family
    as the NPS interval, and sound for small n where the plain Wald interval is not."""
    z2 = Z95**2
    p = (successes + z2 / 2) / (n + z2)
    half = Z95 * math.sqrt(p * (1 - p) / (n + z2))
    return round(max(0.0, 100 * (p - half)), digits), round(min(100.0, 100 * (p + half)), digits)


def csat_of(counts: Histogram, low_n: int = LOW_N) -> Figure:
    n = sum(counts.values())
    if n == 0:
        return Figure(Metric.CSAT, None, 0, low_n=True)
    satisfied = sum(c for s, c in counts.items() if s >= 4)
    low, high = proportion_interval(satisfied, n)
    return Figure(Metric.CSAT, _round(100 * satisfied / n), n, low, high, n < low_n)


def ces_of(counts: Histogram, low_n: int = LOW_N) -> Figure:
    """The mean, with a normal-approximation 95 % interval from the answers' spread (n ≥ 2)."""
    n = sum(counts.values())
    if n == 0:
        return Figure(Metric.CES, None, 0, low_n=True)
    mean = sum(s * c for s, c in counts.items()) / n
    if n < 2:
        return Figure(Metric.CES, round(mean, 2), n, low_n=n < low_n)
    variance = sum(c * (s - mean) ** 2 for s, c in counts.items()) / (n - 1)
    half = Z95 * math.sqrt(variance / n)
    low, high = SCALES[Metric.CES]
    return Figure(
        Metric.CES, round(mean, 2), n, round(max(low, mean - half), 2), round(min(high, mean + half), 2), n < low_n
    )


FROM_ANSWERS = {Metric.NPS: nps_of, Metric.CSAT: csat_of, Metric.CES: ces_of}


def from_answers(metric: Metric, counts: Histogram, low_n: int = LOW_N) -> Figure:
    """The figure of a metric that is computed from raw answers (NPS, CSAT, CES)."""
    return FROM_ANSWERS[metric](counts, low_n)


def from_aggregate(metric: Metric, value: float | None, n: int | None, low_n: int = LOW_N) -> Figure:
    """A figure that arrived computed (churn, FCR, AHT, or any metric recorded by hand). Its n,
    when known, is flagged like any other; an unknown n is not called small."""
    if value is None:
        return Figure(metric, None, 0, low_n=True)
    if n and metric in SHARES and 0 <= value <= 100:
        digits = 2 if metric == Metric.CHURN else 1
        low, high = proportion_interval(value / 100 * n, n, digits)
        return Figure(metric, value, n, low, high, n < low_n)
    return Figure(metric, value, n or 0, low_n=n is not None and n < low_n)


def ces_agree(scores: Sequence[int]) -> float | None:
    """The other CES variant: % of answers that agree (5–7)."""
    return _round(100 * sum(1 for s in scores if s >= 5) / len(scores)) if scores else None


def fcr(resolved_first: int, contacts: int, low_n: int = LOW_N) -> Figure:
    """Contacts resolved at first contact ÷ all contacts, in percent."""
    if contacts <= 0:
        return Figure(Metric.FCR, None, 0, low_n=True)
    return Figure(Metric.FCR, _round(100 * resolved_first / contacts), contacts, low_n=contacts < low_n)


def churn(lost: int, at_start: int) -> Figure:
    """Customers lost in the period ÷ customers at its start × 100. Not (start − end) ÷ start,
    which would let new customers hide the ones who left."""
    if at_start <= 0:
        return Figure(Metric.CHURN, None, 0, low_n=True)
    return Figure(Metric.CHURN, round(100 * lost / at_start, 2), at_start)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile by linear interpolation between closest ranks (q in 0…100)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    below, above = math.floor(position), math.ceil(position)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def median_and_p90(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Times to acknowledge or resolve: the median and the 90th percentile, never the mean."""
    return percentile(values, 50), percentile(values, 90)


@dataclass(frozen=True)
class Change:
    delta: float | None
    changed: bool | None  # None: no interval to tell; False: within the noise


def compare(current: Figure, previous: Figure) -> Change:
    """The week-on-week delta. A change whose 95 % intervals overlap is not called a change."""
    if current.value is None or previous.value is None:
        return Change(None, None)
    delta = round(current.value - previous.value, 2)
    if None in (current.ci_low, current.ci_high, previous.ci_low, previous.ci_high):
        return Change(delta, None)
    overlap = current.ci_low <= previous.ci_high and previous.ci_low <= current.ci_high  # type: ignore[operator]
    return Change(delta, not overlap)


def target_met(metric: Metric, value: float | None, target: float | None) -> bool | None:
    if value is None or target is None:
        return None
    return value <= target if metric in LOWER_IS_BETTER else value >= target


def valid_score(metric: Metric, score: int) -> bool:
    low, high = SCALES[metric]
    return low <= score <= high


class Trend(StrEnum):
    BETTER = "better"
    WORSE = "worse"
    STEADY = "steady"  # no change, or one inside the intervals' overlap
    UNCERTAIN = "uncertain"  # a move, but on too few answers to call it one
    UNKNOWN = "unknown"  # a week without a figure


def trend(current: Figure, previous: Figure) -> Trend:
    """Which way a metric moved, in words a digest can use without celebrating noise."""
    change = compare(current, previous)
    if change.delta is None:
        return Trend.UNKNOWN
    if change.changed is False or change.delta == 0:
        return Trend.STEADY
    if change.changed is None and (current.low_n or previous.low_n or not current.n or not previous.n):
        # No interval to judge by, and a small or unknown n: a move, not yet a change.
        return Trend.UNCERTAIN
    up = change.delta > 0
    return Trend.BETTER if up != (current.metric in LOWER_IS_BETTER) else Trend.WORSE


VALUE_RANGES = {
    Metric.NPS: (-100.0, 100.0),
    Metric.CSAT: (0.0, 100.0),
    Metric.CES: (1.0, 7.0),
    Metric.FCR: (0.0, 100.0),
    Metric.CHURN: (0.0, 100.0),
    Metric.AHT: (0.0, 24 * 60.0),
}


def value_problem(metric: Metric, value: float) -> str | None:
    """Why a recorded or imported figure cannot be right, or None when it can."""
    if not math.isfinite(value):
        return "is not a number"
    low, high = VALUE_RANGES[metric]
    if not low <= value <= high:
        return f"is outside {low:g}…{high:g} for {metric.value}"
    return None
