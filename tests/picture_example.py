"""The example journey map (content/journey.example.yaml) as journey-picture facts, with a fixed
week of figures, issues and observations that exercises every health: the input of the picture
tests and of the golden PNG."""

from __future__ import annotations

from bot.config import default_content_dir
from bot.domain.journey_map import JourneyMap, load_journey_file
from bot.domain.kpi import Figure, Metric
from bot.services.journey_picture import StageFacts, TouchpointFacts

WEEK = "2026-W47"


def F(metric: Metric, value: float, n: int, low: float | None = None, high: float | None = None) -> Figure:
    return Figure(metric, value, n, low, high, low_n=n < 30)


# touchpoint key → (figures, open issues, overdue issues, positive, neutral, negative observations)
WEEK_FACTS: dict[str, tuple[list[Figure], int, int, int, int, int]] = {
    "website": ([F(Metric.NPS, 25, 120, 15, 35)], 0, 0, 1, 0, 0),
    "social-media": ([F(Metric.NPS, 12, 80, 0, 24)], 0, 0, 0, 1, 1),
    "price-comparison": ([], 0, 0, 0, 0, 2),
    "quote-calculator": ([F(Metric.CSAT, 62, 150, 54, 70)], 3, 1, 0, 0, 4),
    "sales-phone": ([F(Metric.CSAT, 90, 12, 64, 99)], 0, 0, 1, 0, 0),
    "order-form": ([F(Metric.CES, 6.2, 200, 6.0, 6.4)], 0, 0, 0, 0, 0),
    "contract-signing": ([F(Metric.CSAT, 86, 90, 79, 93)], 0, 0, 2, 0, 0),
    "credit-check": ([], 1, 0, 0, 0, 0),
    "order-confirmation": ([F(Metric.FCR, 70, 60, 58, 81)], 0, 0, 0, 0, 0),
    "installation-booking": ([F(Metric.NPS, 20, 45, 5, 35)], 0, 0, 0, 0, 1),
    "equipment-delivery": ([F(Metric.CSAT, 70, 300, 65, 75)], 2, 2, 0, 1, 3),
    "installer-visit": ([F(Metric.NPS, 40, 50, 28, 52)], 1, 0, 3, 0, 1),
    "mobile-app": ([F(Metric.CSAT, 82, 400, 78, 86)], 0, 0, 0, 0, 0),
    "energy-dashboard": ([F(Metric.CSAT, 70, 8, 38, 91)], 0, 0, 0, 0, 0),
    "first-invoice": ([F(Metric.CSAT, 60, 100, 50, 69)], 4, 1, 0, 0, 5),
    "monthly-invoice": ([F(Metric.CHURN, 1.1, 2000, 0.7, 1.6)], 0, 0, 0, 0, 0),
    "support-phone": ([F(Metric.AHT, 7.5, 500)], 0, 0, 0, 0, 0),
    "chat": ([F(Metric.CSAT, 88, 210, 83, 92)], 0, 0, 2, 0, 0),
    "email-support": ([F(Metric.CES, 4.9, 70, 4.5, 5.3)], 1, 1, 0, 0, 1),
    "complaints": ([], 1, 0, 0, 0, 0),
    "moving-house": ([F(Metric.CSAT, 75, 20, 53, 89)], 0, 0, 0, 0, 0),
    "renewal-offer": ([F(Metric.NPS, 45, 60, 30, 60)], 0, 0, 0, 0, 0),
    "cancellation": ([F(Metric.CHURN, 2.1, 1500, 1.4, 2.8)], 0, 0, 0, 0, 2),
}


def example_journey() -> JourneyMap:
    result = load_journey_file(str(default_content_dir() / "journey.example.yaml"))
    assert result.journey is not None, result.problems
    return result.journey


def example_facts(language: str, journey: JourneyMap | None = None) -> list[StageFacts]:
    journey = journey or example_journey()
    teams = {t.key: t.name.get(language) for t in journey.teams}
    people = {p.key: p.name for p in journey.people}
    stages = []
    for stage in journey.stages:
        touchpoints = []
        for tp in stage.touchpoints:
            figures, open_issues, overdue, positive, neutral, negative = WEEK_FACTS.get(tp.key, ([], 0, 0, 0, 0, 0))
            owner = people[tp.owner] if tp.owner else teams[tp.owner_team] if tp.owner_team else None
            touchpoints.append(
                TouchpointFacts(
                    tp.key,
                    tp.name.get(language),
                    owner,
                    {f.metric: f for f in figures},
                    open_issues,
                    overdue,
                    positive,
                    neutral,
                    negative,
                )
            )
        targets = {Metric(m): v for m, v in stage.targets.items()}
        stages.append(StageFacts(stage.key, stage.name.get(language), targets, touchpoints))
    return stages
