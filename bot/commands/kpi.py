"""/cx kpi [details] [stage], /cx kpi record <metric> <value> [stage] [week] [n=N], /cx digest preview [week]."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from bot.app import Context, Registry, UserError, excerpt
from bot.domain.kpi import Metric, value_problem
from bot.domain.weeks import iso_week, parse_week, previous_week
from bot.i18n import PerLanguage
from bot.messages import Button, Message, Reply
from bot.services.digest import build_digest, digest_message, store_chart
from bot.services.journey import active_stages, find_stage
from bot.services.kpi import MetricReport, org_low_n, stage_reports
from bot.services.kpi_import import record_value, recorded_in_chat_by
from bot.services.kpi_views import detail_line, format_value, metric_line, metric_name

WEEK_LIKE = re.compile(r"^\d{4}-[wW]\d{1,3}$")
N_TOKEN = re.compile(r"^n=(\S*)$", re.IGNORECASE)


def week_from(text: str) -> str:
    try:
        year, week = parse_week(text.upper())
    except ValueError:
        raise UserError("kpi.bad_week", given=excerpt(text)) from None
    return f"{year}-W{week:02d}"


DETAIL_WORDS = frozenset({"details", "detaljer"})


def show_kpis(ctx: Context, rest: str) -> Reply:
    """The plain lines; ``details …`` (or the Details button) gives the exact figures instead."""
    org = ctx.require_org()
    ctx.require_person()  # the company's own figures: for its people, not for every guest of a server
    zone = ZoneInfo(org.time_zone)
    week = iso_week(ctx.now, zone)
    stages = active_stages(ctx.session, org)
    first, _, remainder = rest.strip().partition(" ")
    detailed = first.casefold() in DETAIL_WORDS
    wanted = remainder if detailed else rest
    chosen = stages
    if wanted.strip():
        stage = find_stage(stages, wanted)
        if stage is None:
            raise UserError("journey.unknown_stage", text=excerpt(wanted), stages=PerLanguage.names(stages))
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
    header_key = "kpi.details.header" if detailed else "kpi.header"
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
        value = float(words[1].replace(",", "."))
    except ValueError:
        raise UserError("kpi.bad_value", given=excerpt(words[1])) from None
    problem = value_problem(metric, value)
    if problem is not None:
        raise UserError(
            "kpi.value_out_of_range", given=excerpt(words[1]), metric=metric_name(ctx.catalogue, ctx.language, metric)
        )
    zone = ZoneInfo(org.time_zone)
    week, n, stage_words = None, None, []
    for word in words[2:]:
        if WEEK_LIKE.match(word):
            week = week_from(word)
        elif (found := N_TOKEN.match(word)) is not None:
            if not found.group(1).isdecimal() or int(found.group(1)) > 10_000_000:
                raise UserError("kpi.bad_n", given=excerpt(word))
            n = int(found.group(1))
        else:
            stage_words.append(word)
    stages = active_stages(ctx.session, org)
    if not stage_words:
        raise UserError("kpi.stage_needed", stages=PerLanguage.names(stages))
    stage = find_stage(stages, " ".join(stage_words))
    if stage is None:
        raise UserError("journey.unknown_stage", text=excerpt(" ".join(stage_words)), stages=PerLanguage.names(stages))
    # Figures arrive after the week they measure: by default the last complete week.
    week = week or previous_week(iso_week(ctx.now, zone), zone)
    record_value(ctx.session, org, metric, stage, week, value, n, recorded_in_chat_by(admin.key), ctx.now)
    return Reply(
        Message(
            text=ctx.t(
                "kpi.recorded",
                metric=metric_name(ctx.catalogue, ctx.language, metric),
                value=format_value(metric, value),
                stage=stage.name(ctx.language),
                week=week,
                n=ctx.t("kpi.details.n", n=n) if n is not None else ctx.t("kpi.n_unknown"),
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
    if len(words) > 2:
        raise UserError("digest.usage")
    week = week_from(words[1]) if len(words) == 2 else previous_week(iso_week(ctx.now, zone), zone)
    digest = build_digest(ctx.session, org, week, catalogue=ctx.catalogue, tips=ctx.tips, now=ctx.now)
    chart = None if digest.empty else store_chart(ctx.session, digest, ctx.language, ctx.now)
    message = digest_message(ctx.catalogue, ctx.language, digest, chart)
    return Reply(message.model_copy(update={"context": [ctx.t("digest.preview_note"), *message.context]}))


def register(registry: Registry) -> None:
    @registry.command(
        "kpi",
        "kpi [details] [stage] | kpi record <metric> <value> <stage> [week] [n=N]",
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
