"""KPI figures as words: one line per metric, shared by `/cx kpi` and the digest.

The lines say what a figure means in words anyone reads ("likely between 24 and 40", "too few
answers to say"), never statisticians' shorthand; the exact figures (interval, n, the delta)
are one step away, in ``detail_line`` (`/cx kpi details`) and the digest's JSON.
"""

from __future__ import annotations

from bot.domain.kpi import SHARES, Figure, Metric, Trend
from bot.i18n import Catalogue
from bot.services.kpi import MetricReport, PlaceReport


def metric_name(catalogue: Catalogue, language: str, metric: Metric) -> str:
    """The metric as people call it in that language (NPS stays NPS; churn is kundbortfall)."""
    return catalogue.text(language, f"kpi.metric.{metric.value}")


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


def _interval(figure: Figure) -> tuple[str, str] | None:
    if figure.ci_low is None or figure.ci_high is None:
        return None
    return format_value(figure.metric, figure.ci_low), format_value(figure.metric, figure.ci_high)


def figure_text(catalogue: Catalogue, language: str, figure: Figure, low_n: int) -> str:
    """ "+32.0 (likely between 18.4 and 44.1, from 120 answers)": how many answers, always, and
    when they are too few to go by, that first."""
    if figure.value is None:
        return catalogue.text(language, "kpi.no_data")
    details = []
    interval = _interval(figure)
    if interval is not None:
        details.append(catalogue.text(language, "kpi.range", low=interval[0], high=interval[1]))
    if not figure.n:
        details.append(catalogue.text(language, "kpi.n_unknown"))
    elif figure.low_n:
        details.append(catalogue.text(language, "kpi.low_n", n=figure.n, threshold=low_n))
    else:
        details.append(catalogue.text(language, "kpi.answers", n=figure.n))
    return f"{format_value(figure.metric, figure.value)} ({', '.join(details)})"


def metric_line(catalogue: Catalogue, language: str, report: MetricReport, low_n: int) -> str:
    def t(key: str, **values: object) -> str:
        return catalogue.text(language, key, **values)

    name = metric_name(catalogue, language, report.metric)
    parts = [f"{name} {figure_text(catalogue, language, report.current, low_n)}"]
    if report.previous.value is not None:
        previous = format_value(report.metric, report.previous.value)
        if report.delta is not None and report.current.value is not None:
            parts.append(t(f"kpi.trend.{report.trend.value}", previous=previous))
        else:
            parts.append(t("kpi.previous_only", previous=previous))
    if report.target is not None:
        key = {True: "kpi.target_met", False: "kpi.target_missed", None: "kpi.target"}[report.met]
        parts.append(t(key, target=format_value(report.metric, report.target)))
    return " · ".join(parts)


def place_lines(catalogue: Catalogue, language: str, place: PlaceReport, low_n: int, indent: str = "• ") -> list[str]:
    return [f"{indent}{metric_line(catalogue, language, m, low_n)}" for m in place.metrics]


def format_delta(catalogue: Catalogue, language: str, metric: Metric, delta: float) -> str:
    """Shares move in percentage points, not percent; the rest in their own unit."""
    number = f"{delta:+.2f}" if metric in (Metric.CHURN, Metric.CES) else f"{delta:+.1f}"
    if metric in SHARES:
        return catalogue.text(language, "kpi.details.points", delta=number)
    return number


def detail_line(catalogue: Catalogue, language: str, report: MetricReport, low_n: int) -> str:
    """The exact figures behind a plain line: n, the 95 % interval, last week's value and n, the
    change and whether it is larger than the noise, the target."""

    def t(key: str, **values: object) -> str:
        return catalogue.text(language, key, **values)

    current = report.current
    parts = [f"{metric_name(catalogue, language, report.metric)} {format_value(report.metric, current.value)}"]
    if current.value is not None:
        parts.append(t("kpi.details.n", n=current.n) if current.n else t("kpi.n_unknown"))
        interval = _interval(current)
        parts.append(
            t("kpi.details.interval", low=interval[0], high=interval[1]) if interval else t("kpi.details.no_interval")
        )
        if current.low_n and current.n:
            parts.append(t("kpi.details.low_n", threshold=low_n))
    if report.previous.value is not None:
        previous_n = t("kpi.details.n", n=report.previous.n) if report.previous.n else t("kpi.n_unknown")
        parts.append(
            t("kpi.details.previous", previous=format_value(report.metric, report.previous.value), n=previous_n)
        )
    if report.delta is not None:
        verdict = {
            Trend.BETTER: "kpi.details.beyond_noise",
            Trend.WORSE: "kpi.details.beyond_noise",
            Trend.STEADY: "kpi.details.within_noise",
            Trend.UNCERTAIN: "kpi.details.cannot_tell",
            Trend.UNKNOWN: "kpi.details.cannot_tell",
        }[report.trend]
        delta = format_delta(catalogue, language, report.metric, report.delta)
        parts.append(t("kpi.details.change", delta=delta, verdict=t(verdict)))
    if report.target is not None:
        parts.append(t("kpi.target", target=format_value(report.metric, report.target)))
    return " · ".join(parts)


def short_figure(catalogue: Catalogue, language: str, report: MetricReport) -> str:
    """One figure for a routed issue's context line: "NPS +2.7 (73 answers, target +40.0)"."""
    name = metric_name(catalogue, language, report.metric)
    figure = f"{name} {format_value(report.metric, report.current.value)}"
    details = []
    if report.current.value is not None and report.current.n:
        key = "kpi.answers_few" if report.current.low_n else "kpi.answers"
        details.append(catalogue.text(language, key, n=report.current.n))
    if report.target is not None:
        details.append(catalogue.text(language, "kpi.target", target=format_value(report.metric, report.target)))
    return f"{figure} ({', '.join(details)})" if details else figure
