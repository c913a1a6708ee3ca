"""KPI maths against hand-computed cases (DOMAIN.md's definitions)."""

from __future__ import annotations

import pytest

from bot.domain.kpi import (
    Figure,
    Metric,
    ces,
    ces_agree,
    churn,
    compare,
    csat,
    fcr,
    from_aggregate,
    median_and_p90,
    nps,
    percentile,
    target_met,
    valid_score,
)


def test_nps_and_its_adjusted_wald_interval_by_hand() -> None:
    # 50 promoters, 30 passives, 20 detractors: NPS = 50 % − 20 % = 30.
    scores = [10] * 25 + [9] * 25 + [8] * 15 + [7] * 15 + [6] * 10 + [0] * 10
    figure = nps(scores)
    # pP = 50.75 / 103 = 0.4927184, pD = 20.75 / 103 = 0.2014563, centre = 0.2912621
    # SE = sqrt((0.4927184 + 0.2014563 − 0.2912621²) / 103) = sqrt(0.6093411 / 103) = 0.0769150
    # 100 × (0.2912621 ± 1.96 × 0.0769150) = 14.05 … 44.20
    assert (figure.value, figure.n, figure.ci_low, figure.ci_high, figure.low_n) == (30.0, 100, 14.1, 44.2, False)


def test_nps_extremes_are_clipped_and_small_samples_flagged() -> None:
    every_promoter = nps([10] * 5)
    assert every_promoter.value == 100.0 and every_promoter.ci_high == 100.0 and every_promoter.low_n
    every_detractor = nps([0] * 40)
    assert every_detractor.value == -100.0 and every_detractor.ci_low == -100.0 and not every_detractor.low_n
    assert nps([]) == Figure(Metric.NPS, None, 0, low_n=True)
    assert nps([7, 8]).value == 0.0  # passives only


def test_csat_ces_fcr_churn_by_hand() -> None:
    assert csat([5, 4, 3, 2, 1, 5, 4, 4]).value == 62.5  # 5 of 8 are 4 or 5
    assert csat([], low_n=30).value is None
    assert ces([7, 6, 5, 1]).value == 4.75
    assert ces_agree([7, 6, 5, 1]) == 75.0
    assert fcr(72, 96).value == 75.0
    assert fcr(0, 0).value is None
    # 30 lost of 1 000 at the start is 3 %, however many new customers arrived meanwhile.
    assert churn(30, 1000).value == 3.0
    assert churn(3, 0).value is None


def test_times_use_the_median_and_p90_never_the_mean() -> None:
    hours = [1, 2, 2, 3, 4, 5, 6, 8, 20, 100]  # the mean (15.1) would be led by one outlier
    median, p90 = median_and_p90(hours)
    assert median == 4.5
    assert p90 == pytest.approx(28.0)  # position 8.1: 20 + 0.1 × (100 − 20)
    assert percentile([], 50) is None
    assert percentile([7], 90) == 7


def test_a_change_inside_the_noise_is_not_a_change() -> None:
    this_week, last_week = nps([10] * 12 + [0] * 8), nps([10] * 10 + [0] * 10)
    change = compare(this_week, last_week)
    assert change.delta == 20.0 and change.changed is False  # n = 20: the intervals overlap
    big_now, big_then = nps([10] * 700 + [0] * 300), nps([10] * 500 + [0] * 500)
    assert compare(big_now, big_then).changed is True
    assert compare(csat([5, 5]), csat([1, 1])).changed is False  # n = 2 each: the intervals overlap
    # AHT has no interval: the delta is said, without calling it a change or not.
    assert compare(from_aggregate(Metric.AHT, 5.0, None), from_aggregate(Metric.AHT, 7.0, None)).changed is None


def test_shares_and_the_ces_mean_carry_their_95_percent_intervals() -> None:
    # Agresti–Coull for 8 of 10: the textbook (0.4794, 0.9541).
    assert csat([5] * 6 + [4] * 2 + [1, 3]) == Figure(Metric.CSAT, 80.0, 10, 47.9, 95.4, True)
    # CES [7, 7, 5, 5]: mean 6, s = √(4/3), half-width 1.96 × s/√4 = 1.13; clipped to the 1–7 scale.
    assert ces([7, 7, 5, 5]) == Figure(Metric.CES, 6.0, 4, 4.87, 7.0, True)
    assert ces([6]) == Figure(Metric.CES, 6.0, 1, None, None, True)  # one answer has no spread
    # An aggregated FCR of 75 % on 400 contacts: 300 of 400, Agresti–Coull.
    assert from_aggregate(Metric.FCR, 75.0, 400) == Figure(Metric.FCR, 75.0, 400, 70.5, 79.0, False)
    # Churn with n: customers at the start; two decimals like the value.
    assert from_aggregate(Metric.CHURN, 2.0, 1000) == Figure(Metric.CHURN, 2.0, 1000, 1.28, 3.09, False)
    # Without n a figure is not called small, and has no interval.
    assert from_aggregate(Metric.CHURN, 2.0, None) == Figure(Metric.CHURN, 2.0, 0, None, None, False)
    assert compare(nps([]), nps([10])).delta is None


@pytest.mark.parametrize(
    ("metric", "value", "target", "met"),
    [
        (Metric.NPS, 31, 30, True),
        (Metric.CSAT, 79.9, 80, False),
        (Metric.CHURN, 1.1, 1.2, True),  # lower is better
        (Metric.AHT, 7, 6, False),
        (Metric.CES, 5.5, 5.5, True),
        (Metric.NPS, None, 30, None),
        (Metric.NPS, 10, None, None),
    ],
)
def test_targets(metric: Metric, value: float | None, target: float | None, met: bool | None) -> None:
    assert target_met(metric, value, target) is met


@pytest.mark.parametrize(
    ("metric", "score", "ok"),
    [
        (Metric.NPS, 0, True),
        (Metric.NPS, 11, False),
        (Metric.CSAT, 0, False),
        (Metric.CSAT, 5, True),
        (Metric.CES, 8, False),
    ],
)
def test_score_ranges(metric: Metric, score: int, ok: bool) -> None:
    assert valid_score(metric, score) is ok
