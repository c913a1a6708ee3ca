"""The weekly digest: what happened to the customer journey in one ISO week, for every team.

``build_digest`` gathers the week's data (KPIs per stage, the trend, issues, observations,
shout-outs, unowned touchpoints, the tip, "you said, we did") into a ``Digest``; ``as_json`` is
its documented schema (README, "The digest as JSON"); ``digest_message`` renders it in one
language and leaves out every section without data. ``post_digest`` queues it once per
subscribed channel and week: the outbox key is the channel and the week, so a rerun, a restart
or a second clock posts nothing twice.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.app import excerpt
from bot.domain.issues import defuse_mentions
from bot.domain.kpi import SCALES, Figure, Metric, median_and_p90
from bot.domain.tips import Tip
from bot.domain.weeks import previous_week, week_bounds
from bot.i18n import Catalogue
from bot.llm import ExtractiveSummariser, ObservationText, Summariser, Summary, ThemeQuote, quote_line
from bot.messages import Image, Message
from bot.outbox import Target, enqueue
from bot.services.chart import ChartWords, StageTrend, trend_png
from bot.services.journey import active_stages, current_org
from bot.services.kpi import METRIC_ORDER, KpiBook, MetricReport, PlaceReport, org_low_n, stage_reports, weeks_ending
from bot.services.kpi_views import metric_name, place_lines
from bot.services.tips import TipService, subscriptions
from bot.store.db import insert_for
from bot.store.models import (
    Attachment,
    Issue,
    IssueFollower,
    Observation,
    Org,
    Person,
    Stage,
    Team,
    TipPost,
    Touchpoint,
)

log = logging.getLogger(__name__)

SCHEMA = "cxbot.digest/1"
TREND_WEEKS = 8
TOP = 5
QUOTE_CHARS = 160
WE_DID_LIMIT = 5


@dataclass(frozen=True)
class Timing:
    median_hours: float | None
    p90_hours: float | None
    n: int

    def as_json(self) -> dict[str, object]:
        return {"median_hours": self.median_hours, "p90_hours": self.p90_hours, "n": self.n}


@dataclass(frozen=True)
class IssueStats:
    opened: int
    resolved: int
    overdue_by_team: dict[str, int]  # team key ("" for issues no team owns) → open past due at week's end
    to_acknowledge: Timing
    to_resolve: Timing

    @property
    def empty(self) -> bool:
        return not (self.opened or self.resolved or self.overdue_by_team or self.to_acknowledge.n)


@dataclass(frozen=True)
class ObservationStats:
    count: int
    by_stage: dict[str, int]  # stage key ("" unclassified) → count
    top_touchpoints: list[tuple[str, int]]
    themes: list[tuple[str, int]]
    summary: str
    summary_by: str
    quotes: tuple[ThemeQuote, ...] = ()  # the offline summary's lines, named in each reader's language


@dataclass(frozen=True)
class ShoutOut:
    person: str
    name: str
    observations: int


@dataclass(frozen=True)
class WeDid:
    """An issue resolved in the week, beside what raised it."""

    issue: int
    touchpoint: str
    description: str
    root_cause: str | None
    action: str
    observations: list[str]
    raised_by: int  # the reporter and everyone who added a +1 (never who)


@dataclass(frozen=True)
class TipOfWeek:
    number: int
    title_sv: str
    title_en: str
    reactions: int
    replies: int


@dataclass
class Digest:
    org: str
    week: str
    previous_week: str
    starts: datetime
    ends: datetime
    low_n: int
    kpis: list[PlaceReport]
    trend_weeks: list[str]
    trend: dict[str, dict[Metric, list[float | None]]]  # stage key → metric → value per week
    stage_names: dict[str, tuple[str, str]]
    touchpoint_names: dict[str, tuple[str, str]]
    team_names: dict[str, tuple[str, str]]
    issues: IssueStats
    observations: ObservationStats
    shout_outs: list[ShoutOut]
    unowned: list[str]  # touchpoint keys
    tip: TipOfWeek | None
    we_did: list[WeDid]
    notes: list[str] = field(default_factory=list)
    # The trend's figures with their n and interval, and each stage's targets: what the chart draws.
    trend_figures: dict[str, dict[Metric, list[Figure]]] = field(default_factory=dict)
    targets: dict[str, dict[Metric, float]] = field(default_factory=dict)

    @property
    def has_kpis(self) -> bool:
        return any(m.current.value is not None for s in self.kpis for m in s.metrics)

    @property
    def empty(self) -> bool:
        """Nothing happened that week: no figures, no issues, no observations."""
        return not self.has_kpis and self.issues.empty and not self.observations.count and not self.we_did

    def as_json(self) -> dict[str, object]:
        return {
            "schema": SCHEMA,
            "org": self.org,
            "week": self.week,
            "previous_week": self.previous_week,
            "starts": self.starts.isoformat(),
            "ends": self.ends.isoformat(),
            "empty": self.empty,
            "low_n_threshold": self.low_n,
            "kpis": {
                stage.key: {
                    "name": {"sv": stage.name_sv, "en": stage.name_en},
                    "metrics": {m.metric.value: m.as_json() for m in stage.metrics},
                    "touchpoints": {
                        tp.key: {m.metric.value: m.as_json() for m in tp.metrics} for tp in stage.touchpoints
                    },
                }
                for stage in self.kpis
            },
            "trend": {
                "weeks": self.trend_weeks,
                "stages": {
                    stage: {metric.value: values for metric, values in metrics.items()}
                    for stage, metrics in self.trend.items()
                },
            },
            "issues": {
                "opened": self.issues.opened,
                "resolved": self.issues.resolved,
                "overdue_by_team": self.issues.overdue_by_team,
                "time_to_acknowledge": self.issues.to_acknowledge.as_json(),
                "time_to_resolve": self.issues.to_resolve.as_json(),
            },
            "observations": {
                "count": self.observations.count,
                "by_stage": self.observations.by_stage,
                "top_touchpoints": [{"touchpoint": k, "count": n} for k, n in self.observations.top_touchpoints],
                "themes": [{"theme": k, "count": n} for k, n in self.observations.themes],
                "summary": self.observations.summary,
                "summary_by": self.observations.summary_by,
            },
            "shout_outs": [
                {"person": s.person, "name": s.name, "observations": s.observations} for s in self.shout_outs
            ],
            "unowned_touchpoints": self.unowned,
            "tip": None
            if self.tip is None
            else {
                "number": self.tip.number,
                "title": {"sv": self.tip.title_sv, "en": self.tip.title_en},
                "reactions": self.tip.reactions,
                "replies": self.tip.replies,
            },
            "you_said_we_did": [
                {
                    "issue": w.issue,
                    "touchpoint": w.touchpoint,
                    "description": w.description,
                    "root_cause": w.root_cause,
                    "action": w.action,
                    "observations": w.observations,
                    "raised_by": w.raised_by,
                }
                for w in self.we_did
            ],
        }


def _hours(values: list[float]) -> Timing:
    median, p90 = median_and_p90(values)
    return Timing(None if median is None else round(median, 1), None if p90 is None else round(p90, 1), len(values))


def issue_stats(session: Session, org: Org, start: datetime, end: datetime) -> IssueStats:
    in_week = Issue.org_id == org.id
    opened = session.scalar(
        select(func.count()).select_from(Issue).where(in_week, Issue.reported_at >= start, Issue.reported_at < end)
    )
    resolved = session.scalar(
        select(func.count())
        .select_from(Issue)
        .where(in_week, Issue.last_resolved_at >= start, Issue.last_resolved_at < end)
    )
    # Past its resolve deadline at the week's end and not (first) resolved by then.
    overdue_rows = session.execute(
        select(Team.key, func.count())
        .select_from(Issue)
        .join(Touchpoint, Issue.touchpoint_id == Touchpoint.id)
        .outerjoin(Team, Team.id == func.coalesce(Issue.assignee_team_id, Touchpoint.owner_team_id))
        .where(
            in_week,
            Issue.reported_at < end,
            Issue.resolve_due_at < end,
            Issue.resolved_at.is_(None) | (Issue.resolved_at >= end),
        )
        .group_by(Team.key)
    )
    overdue = {key or "": n for key, n in overdue_rows}
    acknowledged = session.execute(
        select(Issue.reported_at, Issue.acknowledged_at).where(
            in_week, Issue.acknowledged_at >= start, Issue.acknowledged_at < end
        )
    )
    first_resolved = session.execute(
        select(Issue.reported_at, Issue.resolved_at).where(in_week, Issue.resolved_at >= start, Issue.resolved_at < end)
    )
    return IssueStats(
        opened or 0,
        resolved or 0,
        dict(sorted(overdue.items(), key=lambda kv: (-kv[1], kv[0]))),
        _hours([(done - at).total_seconds() / 3600 for at, done in acknowledged]),
        _hours([(done - at).total_seconds() / 3600 for at, done in first_resolved]),
    )


def observation_stats(
    session: Session,
    org: Org,
    start: datetime,
    end: datetime,
    language: str,
    summariser: Summariser,
    summary: Summary | None = None,
) -> tuple[ObservationStats, list[ShoutOut]]:
    rows = session.execute(
        select(
            Observation.text,
            Observation.themes,
            Observation.stage_id,
            Observation.touchpoint_id,
            Observation.anonymous,
            Observation.author_id,
            Observation.captured_by_id,
        )
        .where(Observation.org_id == org.id, Observation.created_at >= start, Observation.created_at < end)
        .order_by(Observation.id)
    ).all()
    stage_keys = dict(session.execute(select(Stage.id, Stage.key).where(Stage.org_id == org.id)).all())
    touchpoint_keys = dict(
        session.execute(select(Touchpoint.id, Touchpoint.key).where(Touchpoint.org_id == org.id)).all()
    )
    by_stage = Counter(stage_keys.get(r.stage_id, "") for r in rows)
    touchpoints = Counter(touchpoint_keys[r.touchpoint_id] for r in rows if r.touchpoint_id in touchpoint_keys)
    themes = Counter(t for r in rows for t in (r.themes or []) if t != "other")
    if summary is None and rows:
        summary = summariser.summarise([ObservationText(r.text, tuple(r.themes or ())) for r in rows], language)
    if not rows:
        summary = None
    # Shout-outs: who shared (wrote, or captured someone's message); never an anonymous one.
    shared: Counter[int] = Counter()
    for r in rows:
        if r.anonymous:
            continue
        for person_id in {r.author_id, r.captured_by_id} - {None}:
            shared[person_id] += 1
    people = {
        p.id: p
        for p in session.scalars(select(Person).where(Person.id.in_(list(shared)), Person.archived_at.is_(None)))
    }
    shout_outs = [
        ShoutOut(people[pid].key, people[pid].name, n)
        for pid, n in sorted(shared.items(), key=lambda kv: (-kv[1], people[kv[0]].name if kv[0] in people else ""))
        if pid in people
    ]
    return (
        ObservationStats(
            len(rows),
            dict(sorted(by_stage.items(), key=lambda kv: (-kv[1], kv[0]))),
            sorted(touchpoints.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP],
            sorted(themes.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP],
            summary.text if summary else "",
            summary.by if summary else "none",
            summary.quotes if summary else (),
        ),
        shout_outs,
    )


def summarise_week(
    session_factory: sessionmaker[Session], week: str, language: str, summariser: Summariser
) -> Summary | None:
    """The week's observations summarised with no transaction open while the summariser (maybe
    OpenAI, maybe slow) works; None for a week without observations."""
    with session_factory() as session:
        org = current_org(session)
        if org is None:
            return None
        start, end = week_bounds(week, ZoneInfo(org.time_zone))
        rows = session.execute(
            select(Observation.text, Observation.themes)
            .where(Observation.org_id == org.id, Observation.created_at >= start, Observation.created_at < end)
            .order_by(Observation.id)
        ).all()
    if not rows:
        return None
    return summariser.summarise([ObservationText(r.text, tuple(r.themes or ())) for r in rows], language)


def we_did(session: Session, org: Org, start: datetime, end: datetime) -> list[WeDid]:
    """Issues resolved in the week, beside the observations and reports that raised them."""
    issues = list(
        session.scalars(
            select(Issue)
            .where(
                Issue.org_id == org.id,
                Issue.status == "resolved",
                Issue.last_resolved_at >= start,
                Issue.last_resolved_at < end,
            )
            .order_by(Issue.affected_count.desc(), Issue.last_resolved_at)
            .limit(WE_DID_LIMIT)
        )
    )
    if not issues:
        return []
    ids = [i.id for i in issues]
    raised = dict(
        session.execute(
            select(IssueFollower.issue_id, func.count())
            .where(IssueFollower.issue_id.in_(ids))
            .group_by(IssueFollower.issue_id)
        ).all()
    )
    linked: dict[int, list[str]] = defaultdict(list)
    for issue_id, text in session.execute(
        select(Observation.issue_id, Observation.text).where(Observation.issue_id.in_(ids)).order_by(Observation.id)
    ):
        linked[issue_id].append(excerpt(text, 100))
    return [
        WeDid(
            i.id,
            i.touchpoint.key,
            excerpt(i.description, QUOTE_CHARS),
            i.root_cause,
            excerpt(i.action_taken or "", QUOTE_CHARS),
            linked[i.id][:2],
            max(raised.get(i.id, 0), 1),
        )
        for i in issues
    ]


def tip_of_week(
    session: Session, tips_service: TipService, week: str, tips: Mapping[str, Mapping[int, Tip]]
) -> TipOfWeek | None:
    number = session.scalar(
        select(TipPost.number)
        .where(TipPost.iso_week == week)
        .group_by(TipPost.number)
        .order_by(func.count().desc(), TipPost.number)
        .limit(1)
    )
    if number is None:
        return None
    engagement = tips_service.engagement(week)
    title = {language: tips[language][number].title for language in ("sv", "en") if number in tips.get(language, {})}
    return TipOfWeek(number, title.get("sv", ""), title.get("en", ""), engagement["reaction"], engagement["reply"])


def build_digest(
    session: Session,
    org: Org,
    week: str,
    *,
    catalogue: Catalogue,
    tips: Mapping[str, Mapping[int, Tip]],
    now: datetime,
    summariser: Summariser | None = None,
    summary: Summary | None = None,
) -> Digest:
    zone = ZoneInfo(org.time_zone)
    start, end = week_bounds(week, zone)
    before = previous_week(week, zone)
    weeks = weeks_ending(week, TREND_WEEKS, zone)
    low_n = org_low_n(org)
    book = KpiBook(session, org, weeks, low_n, detail_weeks=[before, week])
    stages = active_stages(session, org)
    kpis = stage_reports(session, org, week, book=book, stages=stages)
    trend_figures = {
        stage.key: {
            metric: [book.figure(w, metric, stage.id) for w in weeks]
            for metric in METRIC_ORDER
            if metric in book.metrics_with_data(stage.id)
        }
        for stage in stages
    }
    trend = {
        key: {metric: [f.value for f in figures] for metric, figures in metrics.items() if metric in SCALES}
        for key, metrics in trend_figures.items()
    }
    touchpoints = list(
        session.scalars(
            select(Touchpoint)
            .where(Touchpoint.org_id == org.id, Touchpoint.archived_at.is_(None))
            .order_by(Touchpoint.position)
        )
    )
    teams = session.scalars(select(Team).where(Team.org_id == org.id))
    observations, shout_outs = observation_stats(
        session,
        org,
        start,
        end,
        org.language,
        summariser
        or ExtractiveSummariser(lambda theme, lang: catalogue.text_or(lang, f"observations.theme.{theme}", theme)),
        summary,
    )
    tips_service = TipService(session, org, catalogue, tips, now)
    return Digest(
        org=org.name,
        week=week,
        previous_week=before,
        starts=start.astimezone(zone),
        ends=end.astimezone(zone),
        low_n=low_n,
        kpis=[measured for stage in kpis if (measured := _measured(stage)).metrics],
        trend_weeks=weeks,
        trend={k: v for k, v in trend.items() if v},
        stage_names={s.key: (s.name_sv, s.name_en) for s in stages},
        touchpoint_names={t.key: (t.name_sv, t.name_en) for t in touchpoints},
        team_names={t.key: (t.name_sv, t.name_en) for t in teams},
        issues=issue_stats(session, org, start, end),
        observations=observations,
        shout_outs=shout_outs,
        unowned=[t.key for t in touchpoints if t.owner_team_id is None and t.owner_id is None],
        tip=tip_of_week(session, tips_service, week, tips),
        we_did=we_did(session, org, start, end),
        trend_figures={k: v for k, v in trend_figures.items() if v},
        targets={s.key: {Metric(t.metric): t.target for t in s.targets} for s in stages},
    )


def _measured(stage: PlaceReport) -> PlaceReport:
    """A stage with only the metrics that have a figure this week or the week before: a target
    with no figures is not news, and a stage without any is left out."""

    def measured(metrics: list[MetricReport]) -> list[MetricReport]:
        return [m for m in metrics if m.current.value is not None or m.previous.value is not None]

    touchpoints = [replace(t, metrics=measured(t.metrics)) for t in stage.touchpoints]
    return replace(stage, metrics=measured(stage.metrics), touchpoints=[t for t in touchpoints if t.metrics])


# --- rendering -----------------------------------------------------------------------------


def _name(names: dict[str, tuple[str, str]], key: str, language: str) -> str:
    sv, en = names.get(key, (key, key))
    return sv if language == "sv" else en


def digest_chart(digest: Digest, language: str, catalogue: Catalogue | None = None) -> bytes | None:
    """The trend chart in ``language``: each stage in its journey colour and marker."""
    from bot.i18n import default_catalogue

    catalogue = catalogue or default_catalogue()
    positions = {key: i for i, key in enumerate(digest.stage_names)}
    stages = [
        StageTrend(
            key, _name(digest.stage_names, key, language), positions.get(key, 0), figures, digest.targets.get(key, {})
        )
        for key, figures in sorted(digest.trend_figures.items(), key=lambda kv: positions.get(kv[0], 0))
    ]
    words = ChartWords(
        title=catalogue.text(
            language, "chart.title", org=digest.org, first=digest.trend_weeks[0], last=digest.trend_weeks[-1]
        ),
        target=catalogue.text(language, "chart.target"),
        interval=catalogue.text(language, "chart.interval"),
        few=catalogue.text(language, "chart.few", n=digest.low_n),
    )
    return trend_png(digest.trend_weeks, stages, words, digest.low_n)


def chart_key(digest: Digest, language: str) -> str:
    return f"digest-chart:{digest.week}:{language}"


def digest_message(catalogue: Catalogue, language: str, digest: Digest, chart: str | None = None) -> Message:
    """The digest in one language; ``chart`` is the stored chart's attachment key, if drawn."""

    def t(key: str, **values: object) -> str:
        return catalogue.text(language, key, **values)

    header = t("digest.header", week=digest.week)
    if digest.empty:
        return Message(header=header, text=t("digest.empty", week=digest.week), context=[t("digest.footer")])
    sections: list[str] = []
    if digest.has_kpis:
        lines = [t("digest.kpis.title", previous=digest.previous_week)]
        for stage in digest.kpis:
            lines.append(stage.name(language))
            lines += place_lines(catalogue, language, stage, digest.low_n)
        sections.append("\n".join(lines))
    issues = digest.issues
    if not issues.empty:
        lines = [t("digest.issues.title"), t("digest.issues.counts", opened=issues.opened, resolved=issues.resolved)]
        for label, timing in (("acknowledge", issues.to_acknowledge), ("resolve", issues.to_resolve)):
            if timing.n:
                lines.append(
                    t(f"digest.issues.time_to_{label}", median=timing.median_hours, p90=timing.p90_hours, n=timing.n)
                )
        if issues.overdue_by_team:
            overdue = ", ".join(
                f"{_name(digest.team_names, k, language) if k else t('digest.issues.no_team')} {n}"
                for k, n in issues.overdue_by_team.items()
            )
            lines.append(t("digest.issues.overdue", teams=overdue))
        sections.append("\n".join(lines))
    obs = digest.observations
    if obs.count:
        lines = [t("digest.observations.title"), t("digest.observations.count", count=obs.count)]
        stages = [
            f"{_name(digest.stage_names, k, language) if k else t('digest.observations.unplaced')} {n}"
            for k, n in obs.by_stage.items()
        ]
        lines.append(t("digest.observations.by_stage", stages=", ".join(stages)))
        if obs.top_touchpoints:
            top = ", ".join(f"{_name(digest.touchpoint_names, k, language)} {n}" for k, n in obs.top_touchpoints)
            lines.append(t("digest.observations.top_touchpoints", touchpoints=top))
        if obs.summary:
            lines.append(t(f"digest.observations.summary_{obs.summary_by}"))
            if obs.quotes:  # the offline summary: each theme by its name in this language
                theme = "observations.theme.{}"
                said = [quote_line(catalogue.text_or(language, theme.format(q.theme), q.theme), q) for q in obs.quotes]
                lines.append(defuse_mentions("\n".join(said)))
            else:
                lines.append(defuse_mentions(obs.summary))
        sections.append("\n".join(lines))
    if digest.we_did:
        lines = [t("digest.we_did.title")]
        for item in digest.we_did:
            cause = t(f"issues.cause.{item.root_cause}") if item.root_cause else "–"
            lines.append(
                t(
                    "digest.we_did.item",
                    id=item.issue,
                    touchpoint=_name(digest.touchpoint_names, item.touchpoint, language),
                    description=item.description,
                    cause=cause,
                    action=item.action,
                    count=item.raised_by,
                )
            )
            lines += [f"   “{text}”" for text in item.observations]
        sections.append("\n".join(lines))
    if digest.shout_outs:
        people = ", ".join(f"{s.name} ({s.observations})" for s in digest.shout_outs[:10])
        sections.append(t("digest.shout_outs", people=defuse_mentions(people)))
    if digest.unowned:
        names = ", ".join(_name(digest.touchpoint_names, k, language) for k in digest.unowned)
        sections.append(t("digest.unowned", touchpoints=names))
    if digest.tip is not None:
        title = digest.tip.title_sv if language == "sv" else digest.tip.title_en
        sections.append(
            t(
                "digest.tip",
                number=digest.tip.number,
                title=title,
                reactions=digest.tip.reactions,
                replies=digest.tip.replies,
            )
        )
    image = None
    if chart is not None:
        metrics = sorted(
            {m for v in (digest.trend_figures or digest.trend).values() for m in v}, key=list(Metric).index
        )
        image = Image(
            alt=t(
                "digest.chart_alt",
                weeks=len(digest.trend_weeks),
                metrics=", ".join(metric_name(catalogue, language, m) for m in metrics),
            ),
            attachment=chart,
        )
    return Message(header=header, text="\n\n".join(sections), image=image, context=[t("digest.footer")])


def chart_input(digest: Digest) -> tuple[object, ...]:
    """Everything the chart is drawn from: a chart drawn from equal input is the same chart."""
    return (digest.org, digest.trend_weeks, digest.trend_figures, digest.targets, digest.stage_names, digest.low_n)


def store_chart(
    session: Session,
    digest: Digest,
    language: str,
    now: datetime,
    drawn: tuple[tuple[object, ...], bytes] | None = None,
) -> str | None:
    """Draw the chart and keep it as an attachment (redrawn if the figures changed). ``drawn``:
    a chart drawn beforehand, outside the transaction, and what it was drawn from; used when
    the digest's figures are still the same."""
    png = drawn[1] if drawn is not None and drawn[0] == chart_input(digest) else digest_chart(digest, language)
    if png is None:
        return None
    key = chart_key(digest, language)
    # An upsert: a preview, `cxbot digest --post` and the clock may draw the same chart at once.
    statement = insert_for(session, Attachment).values(
        key=key, filename=f"cx-{digest.week}.png", content_type="image/png", data=png, created_at=now
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["key"], set_={"data": statement.excluded.data, "created_at": statement.excluded.created_at}
        )
    )
    return key


def post_digest(
    session: Session,
    org: Org,
    digest: Digest,
    catalogue: Catalogue,
    now: datetime,
    drawn: tuple[tuple[object, ...], bytes] | None = None,
) -> int:
    """Queue the digest to every channel subscribed to it; returns how many were new. A channel
    gets a week's digest once: the key is the channel and the week. ``drawn``: see store_chart."""
    channels = subscriptions(session, org, "digest")
    if not channels:
        return 0
    chart = None if digest.empty else store_chart(session, digest, org.language, now, drawn)
    message = digest_message(catalogue, org.language, digest, chart)
    # The journey picture of the same week goes right after it, beside the trend chart.
    picture: Message | None = None  # made for the first channel that gets the digest, if any does
    posted = 0
    for channel in channels:
        key = f"digest:{digest.week}:{channel.platform}:{channel.channel_ref}"
        target = Target(channel.platform, "channel", channel.channel_ref)
        if enqueue(session, target, message, key, now, topic=f"digest:{digest.week}", language=org.language):
            posted += 1
            log.info("digest %s queued for %s %s", digest.week, channel.platform, channel.channel_ref)
            if digest.empty:
                continue
            picture = picture or journey_picture_message(session, org, digest.week, catalogue, now)
            enqueue(
                session,
                target,
                picture,
                f"digest-journey:{digest.week}:{channel.platform}:{channel.channel_ref}",
                now,
                topic=f"digest-journey:{digest.week}",
                language=org.language,
            )
    return posted


def journey_picture_message(session: Session, org: Org, week: str, catalogue: Catalogue, now: datetime) -> Message:
    from bot.services.journey_picture import picture_for
    from bot.services.picture_delivery import picture_message, store_picture

    picture = picture_for(session, org, org.language, now, week=week)
    return picture_message(picture, store_picture(session, picture, catalogue, now), catalogue)
