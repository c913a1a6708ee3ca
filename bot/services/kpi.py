"""Reading KPI figures per stage, touchpoint and ISO week: what `/cx kpi`, the digest, the trend
chart and the tip signals all show.

The database does the counting (answers grouped by week, stage, touchpoint, metric and score:
one scan of the weeks asked for, through the week index); ``bot.domain.kpi`` does the maths.
A metric with raw answers for a stage and week is computed from them; otherwise a recorded or
imported aggregate value is shown, so hand-entered figures never hide the answers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.domain.kpi import (
    LOW_N,
    SCALES,
    Figure,
    Metric,
    Trend,
    compare,
    from_aggregate,
    from_answers,
    target_met,
    trend,
)
from bot.domain.weeks import iso_week, previous_week
from bot.services.journey import active_stages
from bot.store.models import KpiTarget, KpiValue, Org, Stage, SurveyResponse, Touchpoint

METRIC_ORDER = tuple(Metric)
_STAGE = None  # the touchpoint slot of a whole stage's figure


@dataclass(frozen=True)
class MetricReport:
    """One metric of one stage (or touchpoint) in one week, beside the week before."""

    metric: Metric
    current: Figure
    previous: Figure
    delta: float | None
    trend: Trend
    target: float | None
    met: bool | None

    def as_json(self) -> dict[str, object]:
        return {
            "value": self.current.value,
            "n": self.current.n,
            "ci_low": self.current.ci_low,
            "ci_high": self.current.ci_high,
            "previous": self.previous.value,
            "previous_n": self.previous.n,
            "delta": self.delta,
            "trend": self.trend.value,
            "target": self.target,
            "target_met": self.met,
            "low_n": self.current.low_n,
        }


@dataclass(frozen=True)
class PlaceReport:
    """A stage or a touchpoint, with its metrics."""

    key: str
    name_sv: str
    name_en: str
    metrics: list[MetricReport]
    touchpoints: list[PlaceReport] = field(default_factory=list)

    def name(self, language: str) -> str:
        return self.name_sv if language == "sv" else self.name_en


class KpiBook:
    """The figures of some weeks: answers counted per stage (every week) and per touchpoint (the
    detail weeks only), and the aggregated values, in three grouped queries."""

    def __init__(
        self,
        session: Session,
        org: Org,
        weeks: Iterable[str],
        low_n: int = LOW_N,
        stage_ids: Sequence[int] | None = None,
        detail_weeks: Iterable[str] | None = None,
    ) -> None:
        """``stage_ids``: read only these stages (a routed issue needs one, the digest all).
        ``detail_weeks``: the weeks whose touchpoint figures are wanted (default: all); the
        digest's eight-week trend needs stages only."""
        self.org, self.low_n = org, low_n
        self.weeks = sorted(set(weeks))
        detail = sorted(set(detail_weeks)) if detail_weeks is not None else self.weeks
        self._counts: dict[tuple[str, int, int | None, Metric], dict[int, int]] = defaultdict(dict)
        self._aggregates: dict[tuple[str, int, Metric], tuple[float, int | None]] = {}
        self._measured: dict[tuple[int, int | None], set[Metric]] = defaultdict(set)
        if not self.weeks:
            return
        in_stages = [SurveyResponse.stage_id.in_(stage_ids)] if stage_ids is not None else []
        by_stage = session.execute(
            select(
                SurveyResponse.iso_week,
                SurveyResponse.stage_id,
                SurveyResponse.metric,
                SurveyResponse.score,
                func.count(),
            )
            .where(SurveyResponse.org_id == org.id, SurveyResponse.iso_week.in_(self.weeks), *in_stages)
            .group_by(SurveyResponse.iso_week, SurveyResponse.stage_id, SurveyResponse.metric, SurveyResponse.score)
        )
        for week, stage_id, metric, score, count in by_stage:
            self._add(week, stage_id, _STAGE, Metric(metric), score, count)
        if detail:
            by_touchpoint = session.execute(
                select(
                    SurveyResponse.iso_week,
                    SurveyResponse.stage_id,
                    SurveyResponse.touchpoint_id,
                    SurveyResponse.metric,
                    SurveyResponse.score,
                    func.count(),
                )
                .where(
                    SurveyResponse.org_id == org.id,
                    SurveyResponse.iso_week.in_(detail),
                    SurveyResponse.touchpoint_id.is_not(None),
                    *in_stages,
                )
                .group_by(
                    SurveyResponse.iso_week,
                    SurveyResponse.stage_id,
                    SurveyResponse.touchpoint_id,
                    SurveyResponse.metric,
                    SurveyResponse.score,
                )
            )
            for week, stage_id, touchpoint_id, metric, score, count in by_touchpoint:
                self._add(week, stage_id, touchpoint_id, Metric(metric), score, count)
        for week, stage_id, metric, value, n in session.execute(
            select(KpiValue.iso_week, KpiValue.stage_id, KpiValue.metric, KpiValue.value, KpiValue.n).where(
                KpiValue.org_id == org.id,
                KpiValue.iso_week.in_(self.weeks),
                *([KpiValue.stage_id.in_(stage_ids)] if stage_ids is not None else []),
            )
        ):
            self._aggregates[(week, stage_id, Metric(metric))] = (value, n)
            self._measured[(stage_id, _STAGE)].add(Metric(metric))

    def _add(self, week: str, stage_id: int, place: int | None, metric: Metric, score: int, count: int) -> None:
        counts = self._counts[(week, stage_id, place, metric)]
        counts[score] = counts.get(score, 0) + count
        self._measured[(stage_id, place)].add(metric)

    def figure(self, week: str, metric: Metric, stage_id: int, touchpoint_id: int | None = None) -> Figure:
        counts = self._counts.get((week, stage_id, touchpoint_id, metric))
        if counts and metric in SCALES:
            return from_answers(metric, counts, self.low_n)
        if touchpoint_id is None and (week, stage_id, metric) in self._aggregates:
            value, n = self._aggregates[(week, stage_id, metric)]
            return from_aggregate(metric, value, n, self.low_n)
        return Figure(metric, None, 0, low_n=True)

    def metrics_with_data(self, stage_id: int, touchpoint_id: int | None = None) -> set[Metric]:
        return set(self._measured.get((stage_id, touchpoint_id), ()))


def report(
    book: KpiBook,
    week: str,
    before: str,
    metric: Metric,
    stage_id: int,
    touchpoint_id: int | None,
    target: float | None,
) -> MetricReport:
    current = book.figure(week, metric, stage_id, touchpoint_id)
    previous = book.figure(before, metric, stage_id, touchpoint_id)
    return MetricReport(
        metric,
        current,
        previous,
        compare(current, previous).delta,
        trend(current, previous),
        target,
        target_met(metric, current.value, target),
    )


def targets_by_stage(session: Session, stage_ids: Sequence[int]) -> dict[int, dict[Metric, float]]:
    found: dict[int, dict[Metric, float]] = defaultdict(dict)
    for row in session.scalars(select(KpiTarget).where(KpiTarget.stage_id.in_(stage_ids))):
        found[row.stage_id][Metric(row.metric)] = row.target
    return found


def stage_reports(
    session: Session, org: Org, week: str, *, book: KpiBook | None = None, stages: Sequence[Stage] | None = None
) -> list[PlaceReport]:
    """Every stage's metrics for the week beside the week before: the metrics that have a figure
    in either week or a target. Touchpoints appear where answers name them."""
    zone = ZoneInfo(org.time_zone)
    before = previous_week(week, zone)
    chosen = stages is not None
    stages = list(stages) if stages is not None else active_stages(session, org)
    stage_ids = [s.id for s in stages]
    book = book or KpiBook(session, org, [week, before], org_low_n(org), stage_ids if chosen else None)
    targets = targets_by_stage(session, stage_ids)
    touchpoints: dict[int, list[Touchpoint]] = defaultdict(list)
    for touchpoint in session.scalars(
        select(Touchpoint)
        .where(Touchpoint.org_id == org.id, *([Touchpoint.stage_id.in_(stage_ids)] if chosen else []))
        .order_by(Touchpoint.position)
    ):
        touchpoints[touchpoint.stage_id].append(touchpoint)
    reports = []
    for stage in stages:
        wanted = book.metrics_with_data(stage.id) | set(targets[stage.id])
        metrics = [
            report(book, week, before, m, stage.id, None, targets[stage.id].get(m)) for m in METRIC_ORDER if m in wanted
        ]
        places = []
        for touchpoint in touchpoints[stage.id]:
            measured = book.metrics_with_data(stage.id, touchpoint.id)
            if measured:
                places.append(
                    PlaceReport(
                        touchpoint.key,
                        touchpoint.name_sv,
                        touchpoint.name_en,
                        [
                            report(book, week, before, m, stage.id, touchpoint.id, None)
                            for m in METRIC_ORDER
                            if m in measured
                        ],
                    )
                )
        reports.append(PlaceReport(stage.key, stage.name_sv, stage.name_en, metrics, places))
    return reports


def org_low_n(org: Org) -> int:
    return org.min_answers or LOW_N


def weeks_ending(week: str, count: int, zone: ZoneInfo) -> list[str]:
    """``count`` ISO weeks up to and including ``week``, oldest first."""
    weeks = [week]
    while len(weeks) < count:
        weeks.append(previous_week(weeks[-1], zone))
    return weeks[::-1]


def last_complete_week(now: datetime, zone: ZoneInfo) -> str:
    return previous_week(iso_week(now, zone), zone)


def falling_stages(session: Session, org: Org, now: datetime) -> list[tuple[str, Metric]]:
    """The stages whose metric got worse, beyond the noise, from the week before last to last
    week: the tips' FALLING_KPI signal."""
    zone = ZoneInfo(org.time_zone)
    week = last_complete_week(now, zone)
    return [
        (stage.key, metric.metric)
        for stage in stage_reports(session, org, week)
        for metric in stage.metrics
        if metric.trend == Trend.WORSE
    ]
