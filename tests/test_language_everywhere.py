"""Every reply speaks the reader's language: no internal keys, no words from the other catalogue.

Every command that ``/cx help`` lists is run, with its usual sub-forms and its error forms, in
Swedish and in English against the demo data; so are the buttons on the replies, the posts the
bot queued (routed issues, DMs, the journey-load notice), the digest and the journey-load summary
the CLI prints. A reply fails on

* a key-shaped token: the key of a stage, touchpoint, team, theme or subscription kind standing
  as a word where the reader's language has no such word (a key with ``-`` or ``_`` never passes;
  ``chat`` passes only where the reader's catalogue or names use the word ``chat``), and
* an untranslated word: a word that occurs in the other language's catalogue values and in none
  of the reader's (catalogue, tips, names in that language), outside a small allow-list.

What people typed (the demo's reports and observations, echoed back) is not the bot's wording,
so a run of three or more words quoted from it is skipped; so are command examples in backticks
or after a ``/``, and links.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.app import CxApp
from bot.commands import default_registry
from bot.config import REPO_CONTENT
from bot.content import default_content
from bot.domain.classify import THEMES
from bot.domain.journey_map import JourneyMap
from bot.domain.kpi import Figure, Metric, Trend, from_aggregate
from bot.i18n import default_catalogue
from bot.llm import ExtractiveSummariser
from bot.messages import Click, Invocation, Message
from bot.scheduler import run_sla_sweep, run_weekly_digest, run_weekly_tips
from bot.services.demo import (
    DEMO_ISSUES,
    DEMO_OBSERVATIONS,
    seed_demo_answers,
    seed_demo_issues,
    seed_demo_observations,
    subscribe_demo_channel,
)
from bot.services.journey import current_org
from bot.services.kpi import MetricReport
from bot.services.kpi_views import detail_line, metric_line
from bot.services.setup import apply_journey
from bot.services.tips import SUBSCRIPTION_KINDS
from bot.store.db import make_engine, make_session_factory
from bot.store.models import Base, Outbox, Person
from tests.conftest import NOW, Clock

LANGUAGES = ("sv", "en")
OTHER = {"sv": "en", "en": "sv"}

# Words both languages use, or that name things rather than translate (documented exceptions).
SHARED_WORDS = frozenset(
    {
        # metric acronyms and units, the same in both languages
        "nps", "csat", "ces", "fcr", "aht", "cx", "sla", "min", "pp", "it",
        # chat platforms and services, and the product's own name
        "slack", "discord", "openai", "bankid", "cxbot",
    }
)  # fmt: skip

# Words that are the same in Swedish and English catalogues on purpose: real words of both
# languages ("i", "in", "just", "problem"), the units and letters of figures ("h", "m", "w"), and
# terms Swedish uses as they are ("team", "status", "process").
BOTH_LANGUAGES = frozenset(
    {
        "be", "d", "filter", "h", "i", "id", "in", "installation", "just", "m", "n",
        "neutral", "normal", "observation", "p", "partner", "per", "person", "problem", "process",
        "status", "system", "team", "teams", "under", "w",
    }
)  # fmt: skip

# Sub-forms and error forms per command name. Every command `/cx help` lists must have an entry
# (a new command fails the test until its forms are added); the bare command is always run.
# {stage} {touchpoint} stand for a stage's and a touchpoint's name in the reader's language.
FORMS: dict[str, list[str]] = {
    "help": ["blorp"],
    "journey": ["{stage}", "blorp"],
    "whoami": [],
    "lang": ["blorp"],
    "report": [
        "{touchpoint}: Kunden fick vänta i fyrtio minuter på svar",
        "blorp: Kunden fick vänta i fyrtio minuter på svar",
        "Någonting gick snett i går",
        "{touchpoint}:",
    ],
    "issues": [
        "mine",
        "open",
        "overdue",
        "team billing",
        "team blorp",
        "touchpoint {touchpoint}",
        "touchpoint blorp",
        "blorp",
    ],
    "issue": [
        "1",
        "2 ack",
        "3 resolve",
        "3 resolve process: ny rutin för chatten",
        "1 reopen",
        "4 reassign erik",
        "5 reassign billing",
        "4 reassign blorp",
        "1 resolve blorp: ny rutin",
        "999",
        "1 blorp",
        "blorp",
    ],
    "observe": ["Kunden ringde om fakturan igen i dag"],
    "observations": [
        "mine",
        "stage {stage}",
        "stage blorp",
        "touchpoint {touchpoint}",
        "touchpoint blorp",
        "2026-W48",
        "2026-W99",
        "blorp",
    ],
    "observation": [
        "1",
        "1 stage {stage}",
        "1 stage blorp",
        "1 touchpoint {touchpoint}",
        "1 touchpoint blorp",
        "2 report",
        "999",
        "1 blorp",
        "4 delete",
    ],
    "erase": ["blorp"],
    "tip": ["3", "next", "99", "blorp"],
    "subscribe": ["tips", "digest", "all", "blorp"],
    "unsubscribe": ["tips", "all", "blorp"],
    "kpi": [
        "{stage}",
        "blorp",
        "record",
        "record blorp 1",
        "record nps blorp",
        "record nps 30",
        "record nps 30 {stage} n=80",
        "record csat 80 {stage} 2026-W99",
        "record nps 30 blorp",
        "record nps 500 {stage}",
        "record csat 80 {stage} n=abc",
    ],
    "digest": ["preview", "preview 2026-W48", "preview 2026-W99", "blorp"],
}

WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
KEY_SHAPED = re.compile(r"(?<![\w-])[a-z0-9]+(?:[-_][a-z0-9]+)*(?![\w-])")
CODE = re.compile(r"`[^`]*`|(?<![\w/])/[a-z]+(?:[ \t]+(?:[a-z0-9=<>\[\]|…._:-]+|\d+))*|https?://\S+|\{[a-z_]+\}")


def words(text: str) -> list[str]:
    return [w.casefold() for w in WORD.findall(text)]


def catalogue_values(language: str) -> list[str]:
    def flat(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            for value in node.values():
                yield from flat(value)
        elif isinstance(node, str):
            yield node

    data = yaml.safe_load((REPO_CONTENT / "i18n" / f"{language}.yaml").read_text(encoding="utf-8"))
    return list(flat(data))


def catalogue_vocabulary(language: str) -> set[str]:
    return {w for value in catalogue_values(language) for w in words(CODE.sub(" ", value))}


def names(journey: JourneyMap, language: str) -> list[str]:
    things = [*journey.stages, *journey.teams, *(tp for s in journey.stages for tp in s.touchpoints)]
    return [getattr(thing.name, language) for thing in things]


class Judge:
    """The two rules, for one reader's language."""

    def __init__(self, journey: JourneyMap, language: str, typed: Iterable[str]) -> None:
        tips = (REPO_CONTENT / "tips" / f"{language}.md").read_text(encoding="utf-8")
        own = (
            catalogue_vocabulary(language) | set(words(tips)) | {w for n in names(journey, language) for w in words(n)}
        )
        self.foreign = catalogue_vocabulary(OTHER[language]) - own - SHARED_WORDS
        keys = {s.key for s in journey.stages} | {t.key for t in journey.teams}
        keys |= {tp.key for s in journey.stages for tp in s.touchpoints} | set(THEMES) | set(SUBSCRIPTION_KINDS)
        self.forbidden_keys = {k for k in keys if "-" in k or "_" in k or k not in own}
        self.quoted = set()
        for text in typed:
            said = words(text)
            self.quoted |= {tuple(said[i : i + 3]) for i in range(len(said) - 2)}

    def _unquoted(self, text: str) -> str:
        """The text without runs of three or more words that someone typed."""
        spans = [(m.start(), m.end(), m.group().casefold()) for m in WORD.finditer(text)]
        cut = set()
        for i in range(len(spans) - 2):
            if tuple(s[2] for s in spans[i : i + 3]) in self.quoted:
                cut |= {i, i + 1, i + 2}
        for i in sorted(cut, reverse=True):
            start, end, _ = spans[i]
            text = text[:start] + " " + text[end:]
        return text

    def problems(self, text: str) -> list[str]:
        plain = self._unquoted(CODE.sub(" ", text))
        found = [f"key {k!r}" for k in KEY_SHAPED.findall(plain) if k in self.forbidden_keys]
        found += [f"word {w!r}" for w in words(plain) if w in self.foreign]
        return found


def demo_journey() -> JourneyMap:
    from bot.domain.journey_map import load_journey_file

    result = load_journey_file(str(REPO_CONTENT / "journey.example.yaml"))
    assert result.journey is not None
    return result.journey


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    catalogue = default_catalogue()
    with factory.begin() as session:
        org, _ = apply_journey(session, demo_journey(), NOW, catalogue, implicit_platforms=("console",))
        seed_demo_issues(session, org, catalogue, NOW)
        seed_demo_observations(session, org, catalogue, NOW)
        seed_demo_answers(session, org, NOW)
        subscribe_demo_channel(session, org, NOW)
    yield factory
    engine.dispose()


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def message_texts(message: Message) -> list[str]:
    texts = [message.plain_text()]
    texts += [b.label for b in message.buttons]
    return texts


def typed_texts() -> list[str]:
    typed = [text for _, _, _, text, _ in DEMO_ISSUES] + [text for _, _, _, text, _ in DEMO_OBSERVATIONS]
    typed += [arg for *_, steps in DEMO_ISSUES for _, _, arg in steps]
    return typed + [form for forms in FORMS.values() for form in forms]


def test_every_listed_command_has_its_forms() -> None:
    listed = {command.name for command in default_registry().listed()}
    assert listed == set(FORMS), "add the new command's sub-forms and error forms to FORMS"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_command_speaks_only_the_readers_language(demo: sessionmaker[Session], language: str) -> None:
    journey = demo_journey()
    judge = Judge(journey, language, typed_texts())
    app = CxApp(demo, clock=Clock(NOW), default_language="sv")
    with demo.begin() as session:
        elin = session.scalar(select(Person).where(Person.key == "elin"))
        assert elin is not None and elin.is_admin
        elin.chosen_language = language
        first_post = session.scalar(select(Outbox.id).order_by(Outbox.id.desc()).limit(1)) or 0
    stage = getattr(journey.stages[3].name, language)
    touchpoint = getattr(journey.stages[4].touchpoints[0].name, language)
    failures: list[str] = []

    def judge_message(what: str, message: Message) -> None:
        for text in message_texts(message):
            problems = sorted(set(judge.problems(text)))
            if problems:
                failures.append(f"{what}: {', '.join(problems)}\n    in {shorten(text, 300)!r}")

    commands = [f"/cx {c.name}" for c in app.registry.listed()]
    commands += [f"/cx {name} {form}" for name, forms in FORMS.items() for form in forms]
    # Last, as it changes what the others see: erasing a person (a preview first, if one is asked).
    commands += ["/cx blorp", "/cx erase david", "/cx subscribe all"]
    for command in commands:
        text = command.replace("{stage}", stage).replace("{touchpoint}", touchpoint)
        reply = app.dispatch(Invocation("console", "console", "elin", "#cx", text))
        judge_message(text, reply.message)
        for button in reply.message.buttons:
            clicked = app.click(Click("console", "console", "elin", "#cx", button.action_id, button.value))
            judge_message(f"{text} → [{button.label}]", clicked.message)
    # What the clock sends: reminders, escalations and overdue notices, the weekly tip, the digest.
    for later in (timedelta(hours=2), timedelta(days=1), timedelta(days=6)):
        run_sla_sweep(demo, Clock(NOW + later))
    run_weekly_tips(demo, Clock(NOW))
    run_weekly_digest(demo, Clock(NOW + timedelta(days=6)), summariser=ExtractiveSummariser())
    with demo() as session:
        posts = session.scalars(select(Outbox).where(Outbox.id > 0).order_by(Outbox.id)).all()
        for post in posts:
            if post.language != language:
                continue
            new = "new " if post.id > first_post else ""
            judge_message(f"{new}post {post.idempotency_key}", Message.model_validate(post.payload))
        kinds = {post.idempotency_key.split(":")[0] for post in posts if post.id > first_post}
    assert {"remind", "digest", "issue", "tip"} <= kinds, kinds  # the clock did send something
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_digest_and_the_journey_load_summary_speak_the_readers_language(
    demo: sessionmaker[Session], language: str
) -> None:
    from bot.services.digest import build_digest, digest_message

    journey = demo_journey()
    judge = Judge(journey, language, typed_texts())
    catalogue = default_catalogue()
    failures: list[str] = []
    with demo.begin() as session:
        org = current_org(session)
        assert org is not None
        for week in ("2026-W47", "2026-W48"):
            digest = build_digest(session, org, week, catalogue=catalogue, tips=default_content().tips, now=NOW)
            failures += judge.problems(digest_message(catalogue, language, digest).plain_text())
    assert not failures, failures


# --- statistics for non-statisticians ------------------------------------------------------------

SHORTHAND = ("95 %", "KI", "CI", "p.e.", " pp", "±", "✗", "✓", "⚠", "n=", "n okänt", "n unknown", "median")


def report(
    metric: Metric, value: float, n: int, low: float | None, high: float | None, previous: float
) -> MetricReport:
    from bot.domain.kpi import compare, target_met, trend

    current = Figure(metric, value, n, low, high, low_n=n < 30)
    before = Figure(metric, previous, 200, previous - 8, previous + 8)
    return MetricReport(
        metric, current, before, compare(current, before).delta, trend(current, before), 35.0,
        target_met(metric, value, 35.0),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("language", "steady", "few", "unknown_n", "interval", "points"),
    [
        (
            "en",
            "NPS +32.0 (likely between +24.0 and +40.0, from 210 answers) · about the same as last week (+30.0) "
            "· short of the target of +35.0",
            "too few answers to be sure: 12 of the 30 needed",
            "Churn 1.12 % (number of answers not known)",
            "95 % confidence interval +24.0 to +40.0",
            "-9.0 percentage points",
        ),
        (
            "sv",
            "NPS +32.0 (troligen mellan +24.0 och +40.0, utifrån 210 svar) · ungefär som förra veckan (+30.0) "
            "· når inte målet +35.0",
            "för få svar för att vara säker: 12 av 30 som behövs",
            "Kundbortfall 1.12 % (okänt antal svar)",
            "95 % konfidensintervall +24.0 till +40.0",
            "-9.0 procentenheter",
        ),
    ],
)
def test_kpi_lines_say_it_in_plain_words_with_the_exact_figures_one_step_away(
    language: str, steady: str, few: str, unknown_n: str, interval: str, points: str
) -> None:
    catalogue = default_catalogue()
    nps = report(Metric.NPS, 32.0, 210, 24.0, 40.0, 30.0)
    small = report(Metric.NPS, 20.0, 12, -10.0, 50.0, 30.0)
    churn = MetricReport(Metric.CHURN, from_aggregate(Metric.CHURN, 1.12, None), Figure(Metric.CHURN, None, 0),
                         None, Trend.UNKNOWN, None, None)  # fmt: skip
    csat = report(Metric.CSAT, 71.0, 300, 66.0, 76.0, 80.0)
    plain = [metric_line(catalogue, language, r, 30) for r in (nps, small, churn, csat)]
    assert plain[0] == steady
    assert few in plain[1]
    assert plain[2] == unknown_n
    for line in plain:
        assert not [s for s in SHORTHAND if s in line], line
    exact = detail_line(catalogue, language, nps, 30)
    assert interval in exact and "210" in exact
    assert points in detail_line(catalogue, language, csat, 30)


@pytest.mark.parametrize("language", LANGUAGES)
def test_kpi_and_digest_use_no_shorthand_and_details_has_the_figures(
    demo: sessionmaker[Session], language: str
) -> None:
    app = CxApp(demo, clock=Clock(NOW), default_language="sv")
    with demo.begin() as session:
        elin = session.scalar(select(Person).where(Person.key == "elin"))
        assert elin is not None
        elin.chosen_language = language

    def ask(text: str) -> Message:
        return app.dispatch(Invocation("console", "console", "elin", "#cx", text)).message

    plain = ask("/cx kpi")
    routed = ask("/cx issue 5")
    digest = ask("/cx digest preview")
    for message in (plain, routed, digest):
        text = message.plain_text()
        assert not [s for s in SHORTHAND if s in text], text
    assert "30" in plain.plain_text()  # the threshold is still said, in words
    [details] = [b for b in plain.buttons if b.action_id == "kpi:details"]
    exact = app.click(Click("console", "console", "elin", "#cx", details.action_id)).message.plain_text()
    assert exact == ask("/cx kpi details").plain_text()
    assert "95 %" in exact and ("konfidensintervall" if language == "sv" else "confidence interval") in exact


def test_every_theme_and_root_cause_has_a_name_in_both_languages_that_reads_back() -> None:
    from bot.domain.issues import ROOT_CAUSES, match_root_cause

    catalogue = default_catalogue()
    for language in LANGUAGES:
        keys = catalogue.keys(language)
        assert {f"observations.theme.{theme}" for theme in (*THEMES, "other")} <= keys
        for cause in ROOT_CAUSES:
            name = catalogue.text(language, f"issues.cause.{cause}")
            assert match_root_cause(name) == cause, (language, name)  # a listed name can be typed back


def test_the_two_catalogues_share_only_the_documented_words() -> None:
    """A word in both catalogues is either shared by the languages (listed) or a leak."""
    shared = catalogue_vocabulary("sv") & catalogue_vocabulary("en")
    assert shared <= SHARED_WORDS | BOTH_LANGUAGES, sorted(shared - SHARED_WORDS - BOTH_LANGUAGES)
