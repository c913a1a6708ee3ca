"""/cx kpi [stage] [week], /cx kpi record <metric> <value> <stage> [week] [n=N], /cx digest preview [week]."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from bot.app import Context, Registry, UserError, excerpt
from bot.domain.errors import no_more_words
from bot.domain.kpi import Metric, value_problem
from bot.domain.numbers import NotANumber, decimal_number, whole_number
from bot.domain.weeks import WEEK_LIKE, iso_week, parse_week, previous_week
from bot.messages import Message, Reply
from bot.services.digest import build_digest, digest_message, store_chart
from bot.services.journey import active_stages, find_stage
from bot.services.kpi import org_low_n, stage_reports
from bot.services.kpi_import import record_value, recorded_in_chat_by
from bot.services.kpi_views import METRIC_LABELS, format_value, place_lines

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


def show_kpis(ctx: Context, rest: str) -> Reply:
    org = ctx.require_org()
    zone = ZoneInfo(org.time_zone)
    given, stage_words = week_and_rest(rest.split())
    week = given or iso_week(ctx.now, zone)
    stages = active_stages(ctx.session, org)
    chosen = stages
    if stage_words:
        stage = find_stage(stages, " ".join(stage_words))
        if stage is None:
            raise UserError(
                "journey.unknown_stage", text=excerpt(" ".join(stage_words)), stages=", ".join(s.key for s in stages)
            )
        chosen = [stage]
    reports = stage_reports(ctx.session, org, week, stages=chosen)
    low_n = org_low_n(org)
    lines: list[str] = []
    for place in reports:
        if all(m.current.value is None and m.previous.value is None for m in place.metrics):
            continue  # targets alone are not figures
        lines.append(place.name(ctx.language))
        lines += place_lines(ctx.catalogue, ctx.language, place, low_n)
        if len(chosen) == 1:
            for touchpoint in place.touchpoints:
                lines.append(f"  {touchpoint.name(ctx.language)}")
                lines += place_lines(ctx.catalogue, ctx.language, touchpoint, low_n, indent="    • ")
    header_key = "kpi.header" if week == iso_week(ctx.now, zone) else "kpi.header_week"
    header = ctx.t(header_key, week=week, previous=previous_week(week, zone))
    if not lines:
        return Reply(Message(header=header, text=ctx.t("kpi.nothing_yet")))
    return Reply(Message(header=header, text="\n".join(lines), context=[ctx.t("kpi.footer", threshold=low_n)]))


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
            "kpi.unknown_metric", given=excerpt(words[0]), metrics=", ".join(m.value for m in Metric)
        ) from None
    try:
        value = decimal_number(words[1])
    except NotANumber:
        raise UserError("kpi.bad_value", given=excerpt(words[1])) from None
    problem = value_problem(metric, value)
    if problem is not None:
        raise UserError("kpi.value_out_of_range", given=excerpt(words[1]), metric=METRIC_LABELS[metric])
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
        raise UserError("kpi.stage_needed", stages=", ".join(s.key for s in stages))
    stage = find_stage(stages, " ".join(stage_words))
    if stage is None:
        raise UserError(
            "journey.unknown_stage", text=excerpt(" ".join(stage_words)), stages=", ".join(s.key for s in stages)
        )
    # Figures arrive after the week they measure: by default the last complete week.
    week = week or previous_week(iso_week(ctx.now, zone), zone)
    record_value(ctx.session, org, metric, stage, week, value, n, recorded_in_chat_by(admin.key), ctx.now)
    return Reply(
        Message(
            text=ctx.t(
                "kpi.recorded",
                metric=METRIC_LABELS[metric],
                value=format_value(metric, value),
                stage=stage.name(ctx.language),
                week=week,
                n=n if n is not None else "–",
            )
        )
    )


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
        "kpi", "kpi [stage] [week]|record <metric> <value> <stage> [week] [n=N]", "nyckeltal", admin_words=RECORD_WORDS
    )
    def kpi(ctx: Context, rest: str) -> Reply:
        first, _, remainder = rest.strip().partition(" ")
        if first.casefold() in RECORD_WORDS:
            return record(ctx, remainder)
        return show_kpis(ctx, rest)

    @registry.command("digest", "digest preview [week]", "sammanfattning", admin=True)
    def digest(ctx: Context, rest: str) -> Reply:
        return preview_digest(ctx, rest)
