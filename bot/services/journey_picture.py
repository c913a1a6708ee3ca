"""What the journey picture shows: stages in journey order, each touchpoint as a card with its
owner, its health, its open and overdue issues and the week's observations.

``build_picture`` is a pure function of plain facts, so the rules (health, which cards a big
map shows) are tested without a database or a drawing; ``gather`` reads the facts of one org
and week; ``bot.services.picture_render`` draws the result.

Health, from the week's figures of the touchpoint against its stage's targets:

- a metric counts only with ``n >= min_answers``; a touchpoint whose figures all have fewer
  answers is **few answers** (greyed): a small sample is not called good or bad;
- **bad** (red, ✗): a counted metric misses its target and its 95 % interval does not reach it
  (the miss is beyond the noise);
- **watch** (amber, !): a counted metric misses its target, but the interval reaches it, or
  there is no interval to tell;
- **good** (green, ✓): every counted metric with a target meets it;
- **no target**: counted figures, but the stage sets no target for them;
- **no figures** (white, dashed, –): nothing measured at this touchpoint that week.

The worst metric decides. A big map (more cards than fit) shows each stage's worst touchpoints
first and counts the rest by health: the hidden ones are never the red ones.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from bot.domain.kpi import LOWER_IS_BETTER, Figure, Metric, target_met
from bot.services.journey import active_stages
from bot.services.kpi import METRIC_ORDER, KpiBook, last_complete_week, org_low_n, targets_by_stage
from bot.store.models import Issue, Observation, Org, Stage, Touchpoint

# At most this many cards in one picture: 40 touchpoints stay readable (issue 19); a bigger map
# or stage shows its worst ones and counts the rest.
MAX_CARDS = 40
# In the whole map's picture a stage never gets fewer than this many cards.
MIN_CARDS_PER_STAGE = 3


class Health(StrEnum):
    BAD = "bad"
    WATCH = "watch"
    GOOD = "good"
    FEW = "few"  # figures, all on fewer answers than min_answers
    NO_TARGET = "no_target"
    NONE = "none"  # no figures at all


# Worst first: the order cards are shown in when not all of them fit.
HEALTH_ORDER = (Health.BAD, Health.WATCH, Health.FEW, Health.NONE, Health.NO_TARGET, Health.GOOD)


@dataclass(frozen=True)
class MetricHealth:
    metric: Metric
    value: float
    n: int
    target: float | None
    health: Health


@dataclass(frozen=True)
class TouchpointFacts:
    """One touchpoint's week, names already in the reader's language."""

    key: str
    name: str
    owner: str | None  # the owning person, else team; None: nobody owns it
    figures: Mapping[Metric, Figure] = field(default_factory=dict)
    open_issues: int = 0
    overdue_issues: int = 0
    positive: int = 0
    neutral: int = 0
    negative: int = 0


@dataclass(frozen=True)
class StageFacts:
    key: str
    name: str
    targets: Mapping[Metric, float]
    touchpoints: Sequence[TouchpointFacts]


@dataclass(frozen=True)
class Card:
    key: str
    name: str
    owner: str | None
    health: Health
    metrics: tuple[MetricHealth, ...]
    open_issues: int
    overdue_issues: int
    observations: int
    positive: int
    negative: int

    @property
    def unowned(self) -> bool:
        return self.owner is None

    @property
    def balance(self) -> int:
        """The week's sentiment balance: positive observations minus negative ones."""
        return self.positive - self.negative

    def severity(self) -> tuple[int, int, int, int, int]:
        """Sort key, worst first: health, then overdue and open issues, an unowned card, and
        the observations' balance."""
        return (
            HEALTH_ORDER.index(self.health),
            -self.overdue_issues,
            -self.open_issues,
            0 if self.unowned else 1,
            self.balance,
        )


@dataclass(frozen=True)
class Column:
    key: str
    name: str
    index: int  # the stage's place in the journey (0-based): its colour and marker everywhere
    cards: tuple[Card, ...]
    total: int  # touchpoints in the stage
    hidden: tuple[tuple[Health, int], ...] = ()  # cards left out, counted by health
    worst_first: bool = False  # the cards are in severity order, not journey order

    @property
    def hidden_count(self) -> int:
        return sum(n for _, n in self.hidden)


@dataclass(frozen=True)
class JourneyPicture:
    org: str
    week: str
    language: str
    min_answers: int
    columns: tuple[Column, ...]
    stage: str | None = None  # the one stage shown, or None for the whole map
    all_cards: tuple[Card, ...] = ()  # every touchpoint, shown or not (for alt text and counts)

    @property
    def cards(self) -> list[Card]:
        return [card for column in self.columns for card in column.cards]

    def unowned(self) -> list[Card]:
        return [card for card in self.all_cards if card.unowned]

    def worst(self, count: int = 3) -> list[Card]:
        """The cards most in need of attention: red or amber, or with overdue issues."""
        needing = [
            c for c in self.all_cards if c.health in (Health.BAD, Health.WATCH) or c.overdue_issues or c.open_issues
        ]
        return sorted(needing, key=Card.severity)[:count]

    def health_counts(self) -> dict[Health, int]:
        counts = Counter(card.health for card in self.all_cards)
        return {h: counts[h] for h in HEALTH_ORDER if counts[h]}

    def fingerprint(self) -> str:
        """A short hash of everything drawn: the stored picture is reused while it is unchanged."""
        data = json.dumps(asdict(self), sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(data.encode()).hexdigest()[:16]


def metric_health(metric: Metric, figure: Figure, target: float | None, min_answers: int) -> Health | None:
    """One metric's health; None when it has no figure."""
    if figure.value is None:
        return None
    if figure.n < min_answers:
        return Health.FEW
    if target is None:
        return Health.NO_TARGET
    if target_met(metric, figure.value, target):
        return Health.GOOD
    if figure.ci_low is None or figure.ci_high is None:
        return Health.WATCH
    # The interval reaches the target: the miss may be noise.
    reaches = figure.ci_high >= target if metric not in LOWER_IS_BETTER else figure.ci_low <= target
    return Health.WATCH if reaches else Health.BAD


def touchpoint_health(metrics: Sequence[MetricHealth]) -> Health:
    if not metrics:
        return Health.NONE
    healths = {m.health for m in metrics}
    for judged in (Health.BAD, Health.WATCH, Health.GOOD, Health.NO_TARGET):
        if judged in healths:
            return judged
    return Health.FEW


def card_of(facts: TouchpointFacts, targets: Mapping[Metric, float], min_answers: int) -> Card:
    metrics = []
    for metric in METRIC_ORDER:
        figure = facts.figures.get(metric)
        if figure is None:
            continue
        health = metric_health(metric, figure, targets.get(metric), min_answers)
        if health is not None and figure.value is not None and math.isfinite(figure.value):
            metrics.append(MetricHealth(metric, figure.value, figure.n, targets.get(metric), health))
    return Card(
        key=facts.key,
        name=facts.name,
        owner=facts.owner,
        health=touchpoint_health(metrics),
        metrics=tuple(metrics),
        open_issues=facts.open_issues,
        overdue_issues=facts.overdue_issues,
        observations=facts.positive + facts.neutral + facts.negative,
        positive=facts.positive,
        negative=facts.negative,
    )


def _column(index: int, stage: StageFacts, cards: list[Card], room: int) -> Column:
    if len(cards) <= room:
        return Column(stage.key, stage.name, index, tuple(cards), len(cards))
    shown = sorted(cards, key=Card.severity)[: room - 1]  # one slot says how many more
    rest = Counter(c.health for c in cards if c not in shown)
    hidden = tuple((h, rest[h]) for h in HEALTH_ORDER if rest[h])
    return Column(stage.key, stage.name, index, tuple(shown), len(cards), hidden, worst_first=True)


def build_picture(
    org: str,
    week: str,
    language: str,
    min_answers: int,
    stages: Sequence[StageFacts],
    *,
    stage: str | None = None,
    max_cards: int = MAX_CARDS,
) -> JourneyPicture:
    """The picture of the whole map, or of one stage (``stage``: its key).

    Up to ``max_cards`` touchpoints are all shown in journey order. Beyond that each stage gets
    an equal share of the room (at least ``MIN_CARDS_PER_STAGE``) and shows its worst cards
    first, the rest counted by health; one stage alone gets all the room.
    """
    cards_by_stage = [[card_of(tp, s.targets, min_answers) for tp in s.touchpoints] for s in stages]
    everything = tuple(card for cards in cards_by_stage for card in cards)
    chosen = [(i, s, c) for i, (s, c) in enumerate(zip(stages, cards_by_stage, strict=True)) if stage in (None, s.key)]
    total = sum(len(c) for _, _, c in chosen)
    room = max(max_cards // max(len(chosen), 1), MIN_CARDS_PER_STAGE) if total > max_cards else max_cards
    columns = tuple(_column(i, s, c, room) for i, s, c in chosen)
    shown_all = tuple(card for _, _, cards in chosen for card in cards)
    return JourneyPicture(org, week, language, min_answers, columns, stage, shown_all if stage else everything)


# --- reading the facts -----------------------------------------------------------------------


def _owner(touchpoint: Touchpoint, language: str) -> str | None:
    """Who to go to: the owning person, else the owning team."""
    if touchpoint.owner is not None:
        return touchpoint.owner.name
    return touchpoint.owner_team.name(language) if touchpoint.owner_team is not None else None


def gather(session: Session, org: Org, week: str, language: str, now: datetime) -> list[StageFacts]:
    """The facts of every active stage and touchpoint for ``week``: its figures, the issues open
    (and overdue) now, the observations made that week."""
    from bot.domain.weeks import week_bounds

    stages: list[Stage] = active_stages(session, org)
    book = KpiBook(session, org, [week], org_low_n(org), detail_weeks=[week])
    targets = targets_by_stage(session, [s.id for s in stages])
    overdue = func.sum(case((Issue.resolve_due_at < now, 1), else_=0))
    issues = {
        touchpoint_id: (count, int(late or 0))
        for touchpoint_id, count, late in session.execute(
            select(Issue.touchpoint_id, func.count(), overdue)
            .where(Issue.org_id == org.id, Issue.status != "resolved")
            .group_by(Issue.touchpoint_id)
        )
    }
    start, end = week_bounds(week, ZoneInfo(org.time_zone))
    feelings: dict[int, Counter[str]] = defaultdict(Counter)
    for touchpoint_id, sentiment, count in session.execute(
        select(Observation.touchpoint_id, Observation.sentiment, func.count())
        .where(
            Observation.org_id == org.id,
            Observation.touchpoint_id.is_not(None),
            Observation.created_at >= start,
            Observation.created_at < end,
        )
        .group_by(Observation.touchpoint_id, Observation.sentiment)
    ):
        feelings[touchpoint_id][sentiment or "neutral"] += count
    facts = []
    for stage in stages:
        touchpoints = []
        for tp in sorted((t for t in stage.touchpoints if t.archived_at is None), key=lambda t: t.position):
            figures = {m: book.figure(week, m, stage.id, tp.id) for m in book.metrics_with_data(stage.id, tp.id)}
            open_count, overdue_count = issues.get(tp.id, (0, 0))
            felt = feelings.get(tp.id, Counter())
            touchpoints.append(
                TouchpointFacts(
                    key=tp.key,
                    name=tp.name(language),
                    owner=_owner(tp, language),
                    figures={m: f for m, f in figures.items() if f.value is not None},
                    open_issues=open_count,
                    overdue_issues=overdue_count,
                    positive=felt["positive"],
                    neutral=felt["neutral"],
                    negative=felt["negative"],
                )
            )
        facts.append(StageFacts(stage.key, stage.name(language), targets.get(stage.id, {}), touchpoints))
    return facts


def picture_for(
    session: Session,
    org: Org,
    language: str,
    now: datetime,
    *,
    week: str | None = None,
    stage: str | None = None,
) -> JourneyPicture:
    """The picture of ``week`` (default: the latest complete week) as the database has it now."""
    week = week or last_complete_week(now, ZoneInfo(org.time_zone))
    return build_picture(
        org.name, week, language, org_low_n(org), gather(session, org, week, language, now), stage=stage
    )


def activity_words(card: Card, text: Callable[..., str]) -> str:
    """A card's issues and the week's observations in words: "3 open, 1 overdue · obs +0/−4"."""
    if card.overdue_issues:
        issues = text("picture.issues", open=card.open_issues, overdue=card.overdue_issues)
    elif card.open_issues:
        issues = text("picture.issues_open", open=card.open_issues)
    else:
        issues = text("picture.no_issues")
    if not card.observations:
        return issues
    return f"{issues} · {text('picture.observations', positive=card.positive, negative=card.negative)}"


def alt_text(picture: JourneyPicture, text: Callable[..., str], names_limit: int = 10) -> str:
    """The picture's essentials in words: how many of each health, the touchpoints without an
    owner, and the worst three. What a screen reader and a text-only client get."""
    health = ", ".join(f"{n} {text(f'picture.health.{h.value}')}" for h, n in picture.health_counts().items())
    parts = [text("picture.alt", org=picture.org, week=picture.week, touchpoints=len(picture.all_cards), health=health)]
    unowned = picture.unowned()
    if unowned:
        names = ", ".join(c.name for c in unowned[:names_limit])
        if len(unowned) > names_limit:
            names += ", " + text("picture.more", count=len(unowned) - names_limit)
        parts.append(text("picture.alt_unowned", names=names))
    else:
        parts.append(text("picture.alt_all_owned"))
    worst = picture.worst(3)
    if worst:
        items = "; ".join(
            text(
                "picture.alt_item",
                name=c.name,
                health=text(f"picture.health.{c.health.value}"),
                open=c.open_issues,
                overdue=c.overdue_issues,
            )
            for c in worst
        )
        parts.append(text("picture.alt_worst", items=items))
    else:
        parts.append(text("picture.alt_nothing_worse"))
    return " ".join(parts)
