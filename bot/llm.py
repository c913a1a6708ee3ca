"""Classifiers and summarisers behind small protocols: offline by default, OpenAI when a key is
configured.

The OpenAI classifier asks for structured output under a JSON schema built from the journey map,
validates the answer, and on any error, timeout, refusal or malformed answer falls back to the
offline classifier, recording why. It never raises: an observation always ends classified.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.domain.classify import Classification, JourneyIndex, Sentiment, classify_offline
from bot.domain.issues import shorten
from bot.telemetry import telemetry

if TYPE_CHECKING:  # openai costs a second of start-up: imported only when a key is configured
    import openai

log = logging.getLogger(__name__)


class Classifier(Protocol):
    def classify(self, text: str, index: JourneyIndex) -> Classification: ...


class OfflineClassifier:
    def classify(self, text: str, index: JourneyIndex) -> Classification:
        return classify_offline(text, index)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: str | None
    touchpoint: str | None
    sentiment: Literal["positive", "neutral", "negative"]
    themes: list[str]


def answer_schema(index: JourneyIndex) -> dict[str, Any]:
    stages = [s.key for s in index.stages]
    touchpoints = [t.key for t in index.touchpoints]
    return {
        "type": "object",
        "properties": {
            "stage": {"type": ["string", "null"], "enum": [*stages, None]},
            "touchpoint": {"type": ["string", "null"], "enum": [*touchpoints, None]},
            "sentiment": {"type": "string", "enum": [s.value for s in Sentiment]},
            # No maxLength: not every model or gateway accepts it in strict mode; cut client-side.
            "themes": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["stage", "touchpoint", "sentiment", "themes"],
        "additionalProperties": False,
    }


def _prompt(index: JourneyIndex) -> str:
    stages = "\n".join(f"- {s.key}: {', '.join(s.words[:6])}" for s in index.stages)
    touchpoints = "\n".join(
        f"- {t.key} (stage {index.stage_of.get(t.key)}): {', '.join(t.names[1:6])}" for t in index.touchpoints
    )
    return (
        "You classify employees' observations of the customer experience (Swedish or English) to a "
        "company's customer journey. Answer with the stage and touchpoint keys below (null when none fits), "
        "the customer's sentiment, and 1-3 short theme tags in English.\n"
        f"Stages:\n{stages}\nTouchpoints:\n{touchpoints}"
    )


class _Unusable(Exception):
    pass


def failure_reason(exc: Exception) -> str:
    """Why an OpenAI call gave nothing usable, in a few words for the log and the record."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.RateLimitError):
        return "rate limited (429)"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    if isinstance(exc, openai.APIError):
        return f"API error: {type(exc).__name__}"
    if isinstance(exc, _Unusable | ValidationError | json.JSONDecodeError | ValueError):
        lines = str(exc).splitlines() or [type(exc).__name__]
        return f"unusable answer: {lines[0][:200]}"
    return f"unexpected {type(exc).__name__}"


def _answer_message(response: Any) -> Any:
    """The answer's message, or _Unusable when there is none or the model refused."""
    if not response.choices:
        raise _Unusable("no choices")
    message = response.choices[0].message
    if getattr(message, "refusal", None):
        raise _Unusable(f"refused: {message.refusal}")
    return message


class OpenAIClassifier:
    def __init__(
        self, client: openai.OpenAI, model: str, timeout: float = 2.0, fallback: Classifier | None = None
    ) -> None:
        self.client = client
        self.model = model
        self.timeout = timeout
        self.fallback = fallback or OfflineClassifier()

    def classify(self, text: str, index: JourneyIndex) -> Classification:
        try:
            return self._ask(text, index)
        except Exception as exc:  # whatever a compatible gateway does: never fail the caller
            reason = failure_reason(exc)
        log.warning("OpenAI classification failed (%s); using the offline classifier", reason)
        telemetry().classifier_fallback("classify")
        offline = self.fallback.classify(text, index)
        return dataclasses.replace(offline, note=f"OpenAI failed ({reason}); classified offline")

    def _ask(self, text: str, index: JourneyIndex) -> Classification:
        response = self.client.chat.completions.create(
            model=self.model,
            messages=[{"role": "system", "content": _prompt(index)}, {"role": "user", "content": text}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "observation", "strict": True, "schema": answer_schema(index)},
            },
            timeout=self.timeout,
        )
        message = _answer_message(response)
        answer = _Answer.model_validate_json(message.content or "")
        stages = {s.key for s in index.stages}
        if answer.stage is not None and answer.stage not in stages:
            raise _Unusable(f"unknown stage {answer.stage!r}")
        if answer.touchpoint is not None:
            if answer.touchpoint not in index.stage_of:
                raise _Unusable(f"unknown touchpoint {answer.touchpoint!r}")
            # The touchpoint decides the stage: the two must agree.
            answer.stage = index.stage_of[answer.touchpoint]
        themes = tuple(t.strip()[:40] for t in answer.themes if t.strip())[:3]
        if not themes:  # 1–3 tags, always: the offline lexicon's, else "other"
            themes = classify_offline(text, index).themes
        return Classification(answer.stage, answer.touchpoint, Sentiment(answer.sentiment), themes, classifier="openai")


def build_classifier(
    api_key: str | None, base_url: str | None, model: str, timeout: float = 10.0, retries: int = 2
) -> Classifier:
    """OpenAI when a key is configured, otherwise offline. Classification runs in the background,
    so it can afford a patient timeout and a couple of retries before it falls back."""
    if not api_key:
        return OfflineClassifier()
    import openai

    client = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=retries, timeout=timeout)
    return OpenAIClassifier(client, model, timeout)


# --- summaries of a week's observations (the digest) ---------------------------------------


@dataclass(frozen=True)
class ThemeQuote:
    """One line of the offline summary: a theme (its key), how many carried it, and a quote."""

    theme: str
    count: int
    quote: str


@dataclass(frozen=True)
class Summary:
    text: str
    by: Literal["offline", "openai"]
    note: str | None = None  # why OpenAI was not used, when it was configured
    # The offline summary's lines, so that each reader sees the themes named in their language.
    quotes: tuple[ThemeQuote, ...] = ()


@dataclass(frozen=True)
class ObservationText:
    text: str
    themes: tuple[str, ...]


class Summariser(Protocol):
    def summarise(self, observations: Sequence[ObservationText], language: str) -> Summary: ...


QUOTE_CHARS = 160


ThemeNamer = Callable[[str, str], str]  # (theme key, language) → the theme's name


def catalogue_theme_name(theme: str, language: str) -> str:
    """A theme by its name in the catalogue (observations.theme.*); a free-form tag as it is."""
    from bot.i18n import default_catalogue

    return default_catalogue().text_or(language, f"observations.theme.{theme}", theme)


def quote_line(name: str, quote: ThemeQuote) -> str:
    return f"{name} ({quote.count}): “{quote.quote}”"


class ExtractiveSummariser:
    """Offline: for each of the three commonest themes, the shortest observation that carries
    it, quoted. Nothing is invented; every word is an employee's."""

    def __init__(self, theme_name: ThemeNamer | None = None) -> None:
        self.theme_name = theme_name or catalogue_theme_name

    def summarise(self, observations: Sequence[ObservationText], language: str) -> Summary:
        counts = Counter(theme for o in observations for theme in o.themes if theme != "other")
        quotes, quoted = [], set()
        for theme, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]:
            candidates = [o.text for o in observations if theme in o.themes and o.text not in quoted]
            if candidates:
                chosen = min(candidates, key=lambda text: (len(text), text))
                quoted.add(chosen)
                quotes.append(ThemeQuote(theme, count, shorten(chosen, QUOTE_CHARS)))
        text = "\n".join(quote_line(self.theme_name(q.theme, language), q) for q in quotes)
        return Summary(text, "offline", quotes=tuple(quotes))


SUMMARY_PROMPT = (
    "You summarise employees' observations of the customer experience for a weekly digest that the "
    "whole company reads. Write two or three plain sentences in {language}: the recurring themes and "
    "what customers ran into. Do not name people, do not invent facts, no lists, no markdown."
)
MAX_SUMMARY_INPUT = 120  # observations sent; a week with more is summarised from the newest


class OpenAISummariser:
    def __init__(
        self, client: openai.OpenAI, model: str, timeout: float = 20.0, fallback: Summariser | None = None
    ) -> None:
        self.client, self.model, self.timeout = client, model, timeout
        self.fallback = fallback or ExtractiveSummariser()

    def summarise(self, observations: Sequence[ObservationText], language: str) -> Summary:
        try:
            return Summary(self._ask(observations, language), "openai")
        except Exception as exc:  # the digest goes out with the offline summary instead
            reason = failure_reason(exc)
        log.warning("OpenAI summary failed (%s); using the extractive summary", reason)
        telemetry().classifier_fallback("summarise")
        offline = self.fallback.summarise(observations, language)
        return dataclasses.replace(offline, note=f"OpenAI failed ({reason})")

    def _ask(self, observations: Sequence[ObservationText], language: str) -> str:
        listing = "\n".join(f"- {shorten(o.text, QUOTE_CHARS)}" for o in observations[-MAX_SUMMARY_INPUT:])
        response = self.client.chat.completions.create(
            model=self.model,
            messages=[
                {
                    "role": "system",
                    "content": SUMMARY_PROMPT.format(language="Swedish" if language == "sv" else "English"),
                },
                {"role": "user", "content": listing},
            ],
            timeout=self.timeout,
        )
        message = _answer_message(response)
        text = " ".join((message.content or "").split())
        if not text:
            raise _Unusable("empty summary")
        return text[:800]


def build_summariser(
    api_key: str | None, base_url: str | None, model: str, timeout: float = 20.0, retries: int = 2
) -> Summariser:
    if not api_key:
        return ExtractiveSummariser()
    import openai

    client = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=retries, timeout=timeout)
    return OpenAISummariser(client, model, timeout)
