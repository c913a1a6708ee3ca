"""/cx kpi [details] [stage] [week], /cx kpi record <metric> <value> <stage> [week] [n=N], /cx digest preview [week]."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from bot.app import Context, Registry, UserError, excerpt
from bot.domain.errors import no_more_words
from bot.domain.kpi import Metric, value_problem
from bot.domain.numbers import NotANumber, decimal_number, whole_number
from bot.domain.weeks import WEEK_LIKE, iso_week, parse_week, previous_week
from bot.i18n import PerLanguage
from bot.messages import Button, Message, Reply
from bot.services.digest import build_digest, digest_message, store_chart
from bot.services.journey import active_stages, find_stage
from bot.services.kpi import MetricReport, org_low_n, stage_reports
from bot.services.kpi_import import record_value, recorded_in_chat_by
from bot.services.kpi_views import detail_line, format_value, metric_line, metric_name

N_TOKEN = re.compile(r"^n=(\S*)$", re.IGNORECASE)


def week_and_rest(words: list[str]) -> tuple[str | None, list[str]]:
    """The one week among the words (``2026-W47``), and the other words. A second week is
    refused, not silently preferred."""
    week, others = None, []
    for word in words:
        if WEEK_LIKE.fullmatch(word) is None:
            others.append(word)
        elif week is None:
            week = parse_week(word)
        else:
            no_more_words([word])
    return week, others


DETAIL_WORDS = frozenset({"details", "detaljer"})


def show_kpis(ctx: Context, rest: str) -> Reply:
    """The plain lines; ``details …`` (or the Details button) gives the exact figures instead."""
    org = ctx.require_org()
    ctx.require_person()  # the company's own figures: for its people, not for every guest of a server
    zone = ZoneInfo(org.time_zone)
    words = rest.split()
    detailed = bool(words) and words[0].casefold() in DETAIL_WORDS
    given, stage_words = week_and_rest(words[1:] if detailed else words)
    week = given or iso_week(ctx.now, zone)
    stages = active_stages(ctx.session, org)
    chosen = stages
    if stage_words:
        stage = find_stage(stages, " ".join(stage_words))
        if stage is None:
            raise UserError(
                "journey.unknown_stage", text=excerpt(" ".join(stage_words)), stages=PerLanguage.names(stages)
            )
        chosen = [stage]
    reports = stage_reports(ctx.session, org, week, stages=chosen)
    low_n = org_low_n(org)
    lines: list[str] = []
    for place in reports:
        if all(m.current.value is None and m.previous.value is None for m in place.metrics):
            continue  # targets alone are not figures
        lines.append(place.name(ctx.language))
        places = [(place, "• ")]
        if len(chosen) == 1:
            places += [(touchpoint, "    • ") for touchpoint in place.touchpoints]
        for shown, indent in places:
            if shown is not place:
                lines.append(f"  {shown.name(ctx.language)}")
            for metric in shown.metrics:
                line = (detail_text if detailed else plain_line)(ctx, metric, low_n)
                lines.append(f"{indent}{line}")
    if detailed:
        header_key = "kpi.details.header"
    else:
        header_key = "kpi.header" if week == iso_week(ctx.now, zone) else "kpi.header_week"
    header = ctx.t(header_key, week=week, previous=previous_week(week, zone))
    if not lines:
        return Reply(Message(header=header, text=ctx.t("kpi.nothing_yet")))
    if detailed:
        return Reply(Message(header=header, text="\n".join(lines), context=[ctx.t("kpi.details.footer")]))
    scope = chosen[0].key if len(chosen) == 1 else ""
    details = Button(action_id=f"kpi:details:{scope}".rstrip(":"), label=ctx.t("issues.button.details"))
    footer = ctx.t("kpi.footer", threshold=low_n)
    return Reply(Message(header=header, text="\n".join(lines), context=[footer], buttons=[details]))


def plain_line(ctx: Context, metric: MetricReport, low_n: int) -> str:
    return metric_line(ctx.catalogue, ctx.language, metric, low_n)


def detail_text(ctx: Context, metric: MetricReport, low_n: int) -> str:
    return detail_line(ctx.catalogue, ctx.language, metric, low_n)


RECORD_WORDS = frozenset({"record", "registrera"})


def record(ctx: Context, rest: str) -> Reply:
    admin = ctx.require_admin()
    org = ctx.require_org()
    words = rest.split()
    if len(words) < 2:
        raise UserError("kpi.record_usage")
    try:
        metric = Metric(words[0].casefold())
    except ValueError:
        raise UserError(
            "kpi.unknown_metric", given=excerpt(words[0]), metrics=", ".join(f"`{m.value}`" for m in Metric)
        ) from None
    try:
        value = decimal_number(words[1])
    except NotANumber:
        raise UserError("kpi.bad_value", given=excerpt(words[1])) from None
    problem = value_problem(metric, value)
    if problem is not None:
        raise UserError(
            "kpi.value_out_of_range", given=excerpt(words[1]), metric=metric_name(ctx.catalogue, ctx.language, metric)
        )
    zone = ZoneInfo(org.time_zone)
    week, others = week_and_rest(words[2:])
    n, stage_words = None, []
    for word in others:
        if (found := N_TOKEN.match(word)) is None:
            stage_words.append(word)
            continue
        if n is not None:
            no_more_words([word])
        try:
            n = whole_number(found.group(1), 0, 10_000_000)
        except NotANumber:
            raise UserError("kpi.bad_n", given=excerpt(word)) from None
    stages = active_stages(ctx.session, org)
    if not stage_words:
        raise UserError("kpi.stage_needed", stages=PerLanguage.names(stages))
    stage = find_stage(stages, " ".join(stage_words))
    if stage is None:
        raise UserError("journey.unknown_stage", text=excerpt(" ".join(stage_words)), stages=PerLanguage.names(stages))
    # Figures arrive after the week they measure: by default the last complete week.
    week = week or previous_week(iso_week(ctx.now, zone), zone)
    fate = record_value(ctx.session, org, metric, stage, week, value, n, recorded_in_chat_by(admin.key), ctx.now)
    stage_name = stage.name(ctx.language)
    metric_label = metric_name(ctx.catalogue, ctx.language, metric)
    said = [
        ctx.t(
            "kpi.recorded",
            metric=metric_label,
            value=format_value(metric, value),
            stage=stage_name,
            week=week,
            n=ctx.t("kpi.details.n", n=n) if n is not None else ctx.t("kpi.n_unknown"),
        )
    ]
    if fate.earlier is not None:  # only then: there may have been nothing to replace
        said.append(ctx.t("kpi.recorded_replaces", earlier=format_value(metric, fate.earlier)))
    if fate.answers:  # stored, but the answers are what everyone sees: the admin must know
        said.append(
            ctx.t("kpi.recorded_hidden", answers=fate.answers, metric=metric_label, stage=stage_name, week=week)
        )
    return Reply(Message(text=" ".join(said)))


def preview_digest(ctx: Context, rest: str) -> Reply:
    ctx.require_admin()
    org = ctx.require_org()
    zone = ZoneInfo(org.time_zone)
    words = rest.split()
    if not words or words[0].casefold() not in ("preview", "förhandsvisa", "visa"):
        raise UserError("digest.usage")
    no_more_words(words[2:])
    week = parse_week(words[1]) if len(words) == 2 else previous_week(iso_week(ctx.now, zone), zone)
    digest = build_digest(ctx.session, org, week, catalogue=ctx.catalogue, tips=ctx.tips, now=ctx.now)
    chart = None if digest.empty else store_chart(ctx.session, digest, ctx.language, ctx.now)
    message = digest_message(ctx.catalogue, ctx.language, digest, chart)
    return Reply(message.model_copy(update={"context": [ctx.t("digest.preview_note"), *message.context]}))


def register(registry: Registry) -> None:
    @registry.command(
        "kpi",
        "kpi [details] [stage] [week] | kpi record <metric> <value> <stage> [week] [n=N]",
        "nyckeltal",
        admin_words=RECORD_WORDS,
    )
    def kpi(ctx: Context, rest: str) -> Reply:
        first, _, remainder = rest.strip().partition(" ")
        if first.casefold() in RECORD_WORDS:
            return record(ctx, remainder)
        return show_kpis(ctx, rest)

    @registry.click("kpi")
    def kpi_click(ctx: Context, parts: list[str], value: str) -> Reply:
        if not parts or parts[0] != "details" or len(parts) > 2:
            raise UserError("common.unknown_action")
        return show_kpis(ctx, " ".join(["details", *parts[1:]]))

    @registry.command("digest", "digest preview [week]", "sammanfattning", admin=True)
    def digest(ctx: Context, rest: str) -> Reply:
        return preview_digest(ctx, rest)
