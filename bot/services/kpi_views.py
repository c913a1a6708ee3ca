"""KPI figures as words: one line per metric, shared by `/cx kpi` and the digest."""

from __future__ import annotations

from bot.domain.kpi import Figure, Metric, Trend
from bot.i18n import Catalogue
from bot.services.kpi import MetricReport, PlaceReport

METRIC_LABELS = {
    Metric.NPS: "NPS",
    Metric.CSAT: "CSAT",
    Metric.CES: "CES",
    Metric.FCR: "FCR",
    Metric.CHURN: "Churn",
    Metric.AHT: "AHT",
}
TREND_MARKS = {Trend.BETTER: "▲", Trend.WORSE: "▼", Trend.STEADY: "→", Trend.UNCERTAIN: "±", Trend.UNKNOWN: ""}


def format_value(metric: Metric, value: float | None) -> str:
    if value is None:
        return "–"
    if metric == Metric.NPS:
        return f"{value:+.1f}"
    if metric in (Metric.CSAT, Metric.FCR):
        return f"{value:.1f} %"
    if metric == Metric.CHURN:
        return f"{value:.2f} %"
    if metric == Metric.AHT:
        return f"{value:.1f} min"
    return f"{value:.2f}"


def format_delta(metric: Metric, delta: float, language: str) -> str:
    """Percent metrics move in percentage points (p.e. / pp), not percent."""
    number = f"{delta:+.2f}" if metric in (Metric.CHURN, Metric.CES) else f"{delta:+.1f}"
    if metric in (Metric.CSAT, Metric.FCR, Metric.CHURN):
        return f"{number} {'p.e.' if language == 'sv' else 'pp'}"
    return number


def figure_text(catalogue: Catalogue, language: str, figure: Figure) -> str:
    """ "+32.0 (n=120, 95 % CI 18.4 – 44.1)" — n beside every figure."""
    if figure.value is None:
        return catalogue.text(language, "kpi.no_data")
    details = [f"n={figure.n}" if figure.n else catalogue.text(language, "kpi.n_unknown")]
    if figure.ci_low is not None and figure.ci_high is not None:
        digits = 2 if figure.metric in (Metric.CES, Metric.CHURN) else 1
        low, high = f"{figure.ci_low:.{digits}f}", f"{figure.ci_high:.{digits}f}"
        details.append(catalogue.text(language, "kpi.ci", low=low, high=high))
    return f"{format_value(figure.metric, figure.value)} ({', '.join(details)})"


def metric_line(catalogue: Catalogue, language: str, report: MetricReport, low_n: int) -> str:
    def t(key: str, **values: object) -> str:
        return catalogue.text(language, key, **values)

    parts = [f"{METRIC_LABELS[report.metric]} {figure_text(catalogue, language, report.current)}"]
    if report.previous.value is not None:
        previous = format_value(report.metric, report.previous.value)
        if report.delta is not None and report.current.value is not None:
            mark = TREND_MARKS[report.trend]
            parts.append(
                t(
                    f"kpi.trend.{report.trend.value}",
                    mark=mark,
                    delta=format_delta(report.metric, report.delta, language),
                    previous=previous,
                )
            )
        else:
            parts.append(t("kpi.previous_only", previous=previous))
    if report.target is not None:
        key = {True: "kpi.target_met", False: "kpi.target_missed", None: "kpi.target"}[report.met]
        parts.append(t(key, target=format_value(report.metric, report.target)))
    if report.current.value is not None and report.current.low_n and report.current.n:
        parts.append(t("kpi.low_n", threshold=low_n))
    return " · ".join(parts)


def place_lines(catalogue: Catalogue, language: str, place: PlaceReport, low_n: int, indent: str = "• ") -> list[str]:
    return [f"{indent}{metric_line(catalogue, language, m, low_n)}" for m in place.metrics]
