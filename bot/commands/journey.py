"""/cx journey [stage]: the journey map as everybody can see it, owners included."""

from __future__ import annotations

import uuid

from sqlalchemy import or_, select

from bot.app import Context, Registry, UserError, excerpt
from bot.domain.kpi import Metric
from bot.i18n import PerLanguage
from bot.messages import Button, Message, MessageField, Reply
from bot.outbox import Target
from bot.services.journey import active_stages, find_stage
from bot.services.journey_picture import Card, activity_words, picture_for
from bot.services.kpi_views import metric_name
from bot.services.picture_delivery import send_picture
from bot.services.picture_style import HEALTH_STYLE
from bot.store.models import Stage, TeamMember, Touchpoint

MINE_WORDS = frozenset({"mine", "mina"})


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
    context = [ctx.t("journey.hint"), *picture_on_its_way(ctx, None)]
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
    context += picture_on_its_way(ctx, stage.key)
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


def picture_on_its_way(ctx: Context, stage: str | None) -> list[str]:
    """Queue the picture (of the map, or of one stage) to the person who asked, drawn after the
    reply has gone: drawing can take a second, a reply must not wait for it."""
    factory = ctx.session_factory
    if factory is None or ctx.org is None:
        return []
    catalogue, language, clock = ctx.catalogue, ctx.language, ctx.clock
    target = Target(ctx.platform, "user", ctx.user_id)
    # Each asking gets its picture, even twice within one clock tick.
    request = f"{ctx.platform}:{stage or 'all'}:{uuid.uuid4().hex}"
    ctx.defer(lambda: send_picture(factory, catalogue, target, language, clock, stage=stage, request=request))
    return [ctx.t("picture.on_its_way")]


def card_line(ctx: Context, card: Card) -> str:
    """A touchpoint's card in words, for places without pictures (Slack's App Home)."""
    symbol = HEALTH_STYLE[card.health][2]
    return f"{symbol} {ctx.t(f'picture.health.{card.health.value}')} · {activity_words(card, ctx.t)}"


def my_cards(ctx: Context) -> Reply:
    """The cards of the touchpoints the person owns, alone or through a team."""
    org, person = ctx.require_org(), ctx.require_person()
    teams = select(TeamMember.team_id).where(TeamMember.person_id == person.id)
    mine = set(
        ctx.session.scalars(
            select(Touchpoint.key).where(
                Touchpoint.org_id == org.id,
                Touchpoint.archived_at.is_(None),
                or_(
                    Touchpoint.owner_id == person.id,
                    Touchpoint.backup_id == person.id,
                    Touchpoint.owner_team_id.in_(teams),
                ),
            )
        )
    )
    picture = picture_for(ctx.session, org, ctx.language, ctx.now)
    cards = [c for c in picture.all_cards if c.key in mine]
    if not cards:
        return Reply(Message(header=ctx.t("picture.mine_header", week=picture.week), text=ctx.t("picture.mine_none")))
    return Reply(
        Message(
            header=ctx.t("picture.mine_header", week=picture.week),
            fields=[MessageField(label=c.name, value=card_line(ctx, c)) for c in cards],
        )
    )


def register(registry: Registry) -> None:
    @registry.command("journey", "journey [stage]", "resa", "kundresa")
    def journey(ctx: Context, rest: str) -> Reply:
        ctx.require_org()
        ctx.require_person()  # the map names the people who own each stage and touchpoint
        if not rest:
            return overview(ctx)
        if rest.casefold() in MINE_WORDS:
            return my_cards(ctx)
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
