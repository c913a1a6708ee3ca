"""/cx journey [stage]: the journey map as everybody can see it, owners included."""

from __future__ import annotations

from bot.app import Context, Registry, UserError, excerpt
from bot.domain.kpi import Metric
from bot.i18n import PerLanguage
from bot.messages import Button, Message, MessageField, Reply
from bot.services.journey import active_stages, find_stage
from bot.services.kpi_views import metric_name
from bot.store.models import Stage, Touchpoint


def owner_text(ctx: Context, touchpoint: Touchpoint) -> str:
    parts = []
    if touchpoint.owner_team is not None:
        parts.append(touchpoint.owner_team.name(ctx.language))
    if touchpoint.owner is not None:
        parts.append(touchpoint.owner.name)
    if not parts:
        return ctx.t("journey.no_owner")
    text = " · ".join(parts)
    if touchpoint.backup is not None:
        text += " " + ctx.t("journey.backup", name=touchpoint.backup.name)
    return text


def active_touchpoints(stage: Stage) -> list[Touchpoint]:
    return [tp for tp in stage.touchpoints if tp.archived_at is None]


def overview(ctx: Context) -> Reply:
    org = ctx.require_org()
    stages = active_stages(ctx.session, org)
    unowned: list[str] = []
    fields = []
    for stage in stages:
        touchpoints = active_touchpoints(stage)
        unowned += [tp.name(ctx.language) for tp in touchpoints if tp.owner_team is None and tp.owner is None]
        names = ", ".join(tp.name(ctx.language) for tp in touchpoints) or "–"
        owner = stage.owner.name if stage.owner else ctx.t("journey.no_owner")
        fields.append(
            MessageField(
                label=f"{stage.position}. {stage.name(ctx.language)}",
                value=ctx.t("journey.stage_line", touchpoints=names, owner=owner),
            )
        )
    context = [ctx.t("journey.hint")]
    if unowned:
        context.insert(0, ctx.t("journey.unowned", count=len(unowned), names=", ".join(unowned)))
    return Reply(
        Message(
            header=ctx.t("journey.header", org=org.name),
            fields=fields,
            context=context,
            buttons=[
                Button(action_id=f"journey:stage:{stage.key}", label=stage.name(ctx.language)) for stage in stages
            ],
        )
    )


def stage_detail(ctx: Context, stage: Stage) -> Reply:
    targets = " · ".join(
        f"{metric_name(ctx.catalogue, ctx.language, Metric(t.metric))} {t.target:g}"
        for t in sorted(stage.targets, key=lambda t: t.metric)
        if t.metric in set(Metric)
    )
    context = [ctx.t("journey.targets", targets=targets)] if targets else []
    if stage.owner is not None:
        context.insert(0, ctx.t("journey.stage_owner", name=stage.owner.name))
    return Reply(
        Message(
            header=f"{stage.position}. {stage.name(ctx.language)}",
            fields=[
                MessageField(
                    label=tp.name(ctx.language),
                    value=owner_text(ctx, tp),
                )
                for tp in active_touchpoints(stage)
            ],
            context=context,
        )
    )


def register(registry: Registry) -> None:
    @registry.command("journey", "journey [stage]", "resa", "kundresa")
    def journey(ctx: Context, rest: str) -> Reply:
        ctx.require_org()
        ctx.require_person()  # the map names the people who own each stage and touchpoint
        if not rest:
            return overview(ctx)
        stages = active_stages(ctx.session, ctx.require_org())
        stage = find_stage(stages, rest)
        if stage is None:
            raise UserError(
                "journey.unknown_stage",
                text=excerpt(rest),
                stages=PerLanguage.names(stages),
            )
        return stage_detail(ctx, stage)

    @registry.click("journey")
    def journey_click(ctx: Context, parts: list[str], value: str) -> Reply:
        ctx.require_person()
        if len(parts) == 2 and parts[0] == "stage":
            stages = active_stages(ctx.session, ctx.require_org())
            stage = next((s for s in stages if s.key == parts[1]), None)
            if stage is not None:
                return stage_detail(ctx, stage)
        raise UserError("common.unknown_action")
