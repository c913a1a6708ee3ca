"""Which touchpoint does a person mean? Fuzzy matching over keys, names and aliases."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from rapidfuzz import fuzz, utils

# A name this close to one touchpoint, and clearly closer than to any other, is that touchpoint.
SURE = 90
# Below this a touchpoint is not even offered as a choice.
PLAUSIBLE = 75
# How much the best must lead the runner-up to count as the one meant.
LEAD = 8
# A name found inside free text must be this close: partial matches of long texts are generous.
SUGGEST = 85


@dataclass(frozen=True)
class Candidate:
    key: str
    names: tuple[str, ...]  # key, Swedish and English name, aliases


@dataclass(frozen=True)
class Scored:
    key: str
    score: float


class MatchKind(StrEnum):
    EXACT = "exact"
    AMBIGUOUS = "ambiguous"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Match:
    kind: MatchKind
    ranked: tuple[Scored, ...]  # best first

    @property
    def best(self) -> str | None:
        return self.ranked[0].key if self.kind is MatchKind.EXACT else None


def _normalise(text: str) -> str:
    return utils.default_process(text.replace("-", " ").replace("_", " "))


def _best_per_key(query: str, candidates: Iterable[Candidate], scorer: object) -> list[Scored]:
    ranked = []
    for candidate in candidates:
        score = max(scorer(query, _normalise(name)) for name in candidate.names)  # type: ignore[operator]
        ranked.append(Scored(candidate.key, float(score)))
    ranked.sort(key=lambda s: (-s.score, s.key))
    return ranked


def match_touchpoint(query: str, candidates: Sequence[Candidate]) -> Match:
    """A touchpoint named by the user, e.g. the part before the colon in ``invoice: …``."""
    wanted = _normalise(query)
    if not wanted:
        return Match(MatchKind.UNKNOWN, ())
    for candidate in candidates:
        if any(_normalise(name) == wanted for name in candidate.names):
            return Match(MatchKind.EXACT, (Scored(candidate.key, 100.0),))
    ranked = _best_per_key(wanted, candidates, fuzz.WRatio)
    plausible = tuple(s for s in ranked if s.score >= PLAUSIBLE)
    if not plausible:
        return Match(MatchKind.UNKNOWN, tuple(ranked[:3]))
    best = plausible[0]
    runner_up = plausible[1].score if len(plausible) > 1 else 0.0
    if best.score >= SURE and best.score - runner_up >= LEAD:
        return Match(MatchKind.EXACT, (best,))
    return Match(MatchKind.AMBIGUOUS, plausible[:5])


def rank_while_typing(typed: str, candidates: Sequence[Candidate]) -> list[str]:
    """The keys someone still typing a touchpoint may mean, best first (autocomplete): what
    ``match_touchpoint`` makes of it (so an alias the command accepts is offered), then names
    that start with it, then close spellings, then names that contain it."""
    wanted = _normalise(typed)
    if not wanted:
        return [c.key for c in candidates]
    match = match_touchpoint(typed, candidates)
    matched = [s.key for s in match.ranked] if match.kind is not MatchKind.UNKNOWN else []
    starts = [c.key for c in candidates if any(_normalise(n).startswith(wanted) for n in c.names)]
    within = [c.key for c in candidates if any(wanted in _normalise(n) for n in c.names)]
    ranked = matched[:1] + starts + matched[1:] + within
    return list(dict.fromkeys(ranked))


_WORD = re.compile(r"\w+", re.UNICODE)


def suggest_touchpoints(text: str, candidates: Sequence[Candidate], limit: int = 3) -> list[Scored]:
    """Touchpoints a free-text description seems to be about, best first.

    Each name is looked for inside the text (``partial_ratio``), so "the invoice had the wrong
    VAT" finds the touchpoint whose alias is "invoice" even though the text says much more.
    """
    words = _normalise(text)
    if not _WORD.search(words):
        return []
    ranked = []
    specificity: dict[str, int] = {}
    for candidate in candidates:
        score, longest = 0.0, 0
        for name in candidate.names:
            normal = _normalise(name)
            if len(normal) < 3:
                continue
            # Short names must match a whole word; "app" should not match "happy".
            if len(normal) <= 4:
                hit = 100.0 if re.search(rf"\b{re.escape(normal)}\b", words) else 0.0
            else:
                hit = fuzz.partial_ratio(normal, words)
            if hit >= SUGGEST:
                longest = max(longest, len(normal))
            score = max(score, hit)
        if score >= SUGGEST:
            ranked.append(Scored(candidate.key, score))
            specificity[candidate.key] = longest
    # Equal scores: the longer name found is the more specific one ("order confirmation email"
    # is about the order confirmation, not about email support).
    ranked.sort(key=lambda s: (-s.score, -specificity[s.key], s.key))
    return ranked[:limit]
