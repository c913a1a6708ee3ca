"""Classifying an observation to the journey, offline, in Swedish and English. Pure.

Stage and touchpoint come from the journey map itself: touchpoint names and aliases found in
the text (fuzzy, see ``matching``), else stage names and the stages' ``keywords``. Sentiment and
themes come from small lexicons below. Words are matched by prefix so that Swedish inflections
("fakturan", "fakturorna") find "faktura".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from bot.domain.matching import Candidate, suggest_touchpoints

OFFLINE = "offline"


class Sentiment(StrEnum):
    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"


@dataclass(frozen=True)
class StageInfo:
    key: str
    words: tuple[str, ...]  # names and keywords, lower case


@dataclass(frozen=True)
class JourneyIndex:
    stages: tuple[StageInfo, ...]
    touchpoints: tuple[Candidate, ...]
    stage_of: dict[str, str] = field(default_factory=dict)  # touchpoint key → stage key


@dataclass(frozen=True)
class Classification:
    stage: str | None
    touchpoint: str | None
    sentiment: Sentiment
    themes: tuple[str, ...]
    classifier: str = OFFLINE
    note: str | None = None  # why a fallback happened, for example


_WORD = re.compile(r"[\w-]+", re.UNICODE)
_NEGATIONS = {"inte", "ej", "icke", "aldrig", "not", "no", "never", "isn't", "wasn't", "don't", "didn't", "ingen"}

# Stems: a word matches a stem when it starts with it (stems of three letters must match whole).
_POSITIVE = (
    "bra",
    "tack",
    "nöjd",
    "glad",
    "smidig",
    "snabb",
    "enkel",
    "enkelt",
    "lätt",
    "perfekt",
    "utmärkt",
    "fantastisk",
    "uppskatt",
    "beröm",
    "älsk",
    "toppen",
    "proffsig",
    "trevlig",
    "hjälpsam",
    "positiv",
    "good",
    "great",
    "thank",
    "happy",
    "pleased",
    "smooth",
    "quick",
    "fast",
    "easy",
    "perfect",
    "excellent",
    "love",
    "praise",
    "impress",
    "helpful",
    "friendly",
    "nice",
    "appreciat",
    "delight",
    "recommend",
    "rekommend",
    "wonderful",
    "superb",
    "kind",
    "thrill",
    "gilla",
    "like",
    "enjoy",
    "smidigt",
    "tackade",
    "berömde",
    "imponer",
    "proud",
    "stolt",
    "fine",
    "satisf",
    "relieved",
    "lättad",
    "glada",
)
_NEGATIVE = (
    "fel",
    "dålig",
    "långsam",
    "krångl",
    "arg",
    "irriter",
    "klag",
    "vänta",
    "väntade",
    "krasch",
    "saknas",
    "saknade",
    "otrevlig",
    "förvirr",
    "missnöj",
    "besvik",
    "problem",
    "strul",
    "dubbel",
    "försen",
    "stäng",
    "hängde",
    "fungerar",
    "frustr",
    "orolig",
    "upprör",
    "svårt",
    "svår",
    "glömt",
    "wrong",
    "bad",
    "slow",
    "angry",
    "annoy",
    "complain",
    "waited",
    "waiting",
    "wait",
    "crash",
    "missing",
    "rude",
    "confus",
    "unhappy",
    "disappoint",
    "broken",
    "error",
    "fail",
    "twice",
    "late",
    "frustrat",
    "upset",
    "worried",
    "stuck",
    "forgot",
    "lost",
    "cancel",
    "hard",
    "difficult",
    "unclear",
    "double",
    "rant",
    "kräver",
    "ersättning",
    "couldn't",
    "can't",
    "cannot",
    "automatsvar",
    "oroliga",
    "missade",
    "missed",
    "spun",
    "forever",
    "ignored",
    "nobody",
    "ingen",
    "utan",
    "without",
    "again",
    "igen",
    "borrade",
    "damage",
    "skada",
    "expensive",
    "dyr",
)
# "fungerar" is negative only after a negation ("fungerar inte"); positive stems after a negation
# flip to negative. Words that are negative on their own ("fel") stay negative.
_NEEDS_NEGATION = {"fungerar"}

THEMES: dict[str, tuple[str, ...]] = {
    "billing": (
        "faktur",
        "räkning",
        "debiter",
        "moms",
        "belopp",
        "betal",
        "invoice",
        "bill",
        "charge",
        "payment",
        "vat",
    ),
    "price": (
        "pris",
        "kostnad",
        "dyr",
        "rabatt",
        "erbjud",
        "price",
        "cost",
        "expensive",
        "discount",
        "offer",
        "tariff",
    ),
    "waiting": ("vänta", "väntade", "kö", "köer", "dröj", "försen", "wait", "queue", "delay", "late", "slow"),
    "app": ("app", "appen", "inlogg", "logga", "login", "log in", "crash", "krasch", "update", "uppdater"),
    "communication": (
        "information",
        "förvirr",
        "otydlig",
        "mejl",
        "sms",
        "meddel",
        "unclear",
        "confus",
        "email",
        "message",
        "letter",
        "brev",
    ),
    "staff": (
        "otrevlig",
        "trevlig",
        "bemöt",
        "personal",
        "agent",
        "installatör",
        "rude",
        "friendly",
        "polite",
        "staff",
        "installer",
    ),
    "delivery": ("leverans", "levere", "paket", "delivery", "deliver", "parcel", "shipment"),
    "installation": ("install", "montör", "montering", "fäst", "panel", "fitting", "mount"),
    "outage": ("avbrott", "strömavbrott", "ström", "outage", "power cut", "blackout"),
    "contract": ("avtal", "bankid", "signer", "villkor", "kontrakt", "contract", "sign", "terms"),
    "self-service": ("själv", "webben", "hemsida", "formulär", "self-service", "website", "form", "online"),
}


def words_of(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text)]


def _matches(word: str, stem: str) -> bool:
    return word == stem if len(stem) <= 3 else word.startswith(stem)


def _has(words: Sequence[str], text: str, stem: str) -> bool:
    if " " in stem:
        return stem in text
    return any(_matches(w, stem) for w in words)


def sentiment_of(text: str) -> Sentiment:
    words = words_of(text)
    score = 0
    for index, word in enumerate(words):
        negated = any(w in _NEGATIONS for w in words[max(0, index - 3) : index]) or (
            index + 1 < len(words) and words[index + 1] in ("inte", "not")
        )
        if any(_matches(word, stem) for stem in _POSITIVE):
            score += -1 if negated else 1
        elif any(_matches(word, stem) for stem in _NEGATIVE):
            if word in _NEEDS_NEGATION and not negated:
                continue
            score -= 1
    if score > 0:
        return Sentiment.POSITIVE
    if score < 0:
        return Sentiment.NEGATIVE
    return Sentiment.NEUTRAL


def themes_of(text: str, limit: int = 3) -> tuple[str, ...]:
    """1–3 theme tags; "other" when no theme's words occur."""
    words = words_of(text)
    lowered = text.casefold()
    counts = Counter({theme: sum(_has(words, lowered, stem) for stem in stems) for theme, stems in THEMES.items()})
    return tuple(theme for theme, n in counts.most_common() if n > 0)[:limit] or ("other",)


def stage_by_words(text: str, stages: Sequence[StageInfo]) -> dict[str, int]:
    """How many of each stage's names and keywords the text contains."""
    words = words_of(text)
    lowered = text.casefold()
    return {stage.key: sum(_has(words, lowered, w) for w in stage.words) for stage in stages}


# A touchpoint named in the text is strong evidence for its stage; keywords add up beside it.
TOUCHPOINT_WEIGHT = (3, 1)


def classify_offline(text: str, index: JourneyIndex) -> Classification:
    suggested = suggest_touchpoints(text, index.touchpoints, limit=3)
    scores = stage_by_words(text, index.stages)
    for weight, hit in zip(TOUCHPOINT_WEIGHT, suggested, strict=False):
        stage = index.stage_of.get(hit.key)
        if stage is not None:
            scores[stage] = scores.get(stage, 0) + weight
    order = {s.key: i for i, s in enumerate(index.stages)}
    best = max(scores.items(), key=lambda item: (item[1], -order.get(item[0], 0)), default=(None, 0))
    stage = best[0] if best[1] > 0 else None
    # The touchpoint must belong to the stage the evidence chose.
    touchpoint = next((hit.key for hit in suggested if index.stage_of.get(hit.key) == stage), None)
    return Classification(stage, touchpoint, sentiment_of(text), themes_of(text))
