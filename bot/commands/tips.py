"""/cx tip, /cx subscribe, /cx unsubscribe, and counting engagement with tip posts."""

from __future__ import annotations

from collections.abc import Iterable

from bot.app import Context, Registry, UserError, excerpt
from bot.domain.numbers import NotANumber, whole_number
from bot.domain.tips import TIP_COUNT
from bot.messages import Message, Reaction, Reply, ThreadReply
from bot.services.tips import SUBSCRIPTION_KINDS, TipService, subscribe, unsubscribe


def service(ctx: Context) -> TipService:
    return TipService(ctx.session, ctx.require_org(), ctx.catalogue, ctx.tips, ctx.now)


def kinds_from(text: str) -> tuple[str, ...]:
    word = text.strip().casefold()
    if word in ("all", "allt", "alla"):
        return SUBSCRIPTION_KINDS
    if word in ("tips", "tip", "råd"):
        return ("tips",)
    if word in ("digest", "sammanfattning"):
        return ("digest",)
    raise UserError("tips.subscribe_usage", given=excerpt(text) or "–")


def kind_names(ctx: Context, kinds: Iterable[str]) -> str:
    """What a channel gets, by name ("the weekly tip"), not by the word typed to ask for it."""
    names = [ctx.t(f"tips.kind.{kind}") for kind in kinds]
    if len(names) == 1:
        return names[0]
    return ctx.t("tips.kind.and", first=", ".join(names[:-1]), last=names[-1])


def register(registry: Registry) -> None:
    @registry.command("tip", "tip [1-10|next]", "råd")
    def tip(ctx: Context, rest: str) -> Reply:
        tips = service(ctx)
        wanted = rest.strip().casefold()
        if not wanted:
            posted = tips.posted_this_week(ctx.platform, ctx.channel_id)
            if posted is not None:
                return Reply(tips.message(ctx.language, posted.number, None))
            _, choice = tips.next_choice(ctx.platform, ctx.channel_id, ctx.tip_order)
            return Reply(tips.message(ctx.language, choice.number, None))
        if wanted in ("next", "nästa"):
            _, choice = tips.next_choice(ctx.platform, ctx.channel_id, ctx.tip_order)
            message = tips.message(ctx.language, choice.number, choice.signal, weekly=True)
            return Reply(message.model_copy(update={"context": [ctx.t("tips.next_note"), *message.context]}))
        try:
            number = whole_number(wanted, 1, TIP_COUNT)
        except NotANumber:
            raise UserError("tips.usage", given=excerpt(rest)) from None
        return Reply(tips.message(ctx.language, number, None))

    @registry.command("subscribe", "subscribe tips|digest|all", "prenumerera", admin=True)
    def subscribe_channel(ctx: Context, rest: str) -> Reply:
        admin = ctx.require_admin()
        kinds = kinds_from(rest)
        added = subscribe(ctx.session, ctx.require_org(), ctx.platform, ctx.channel_id, kinds, admin.id, ctx.now)
        key = "tips.subscribed" if added else "tips.already_subscribed"
        text = ctx.t(key, channel=ctx.channel_id, kinds=kind_names(ctx, added or kinds))
        return Reply(Message(text=text), join_channel=True)

    @registry.command("unsubscribe", "unsubscribe tips|digest|all", "avprenumerera", admin=True)
    def unsubscribe_channel(ctx: Context, rest: str) -> Reply:
        ctx.require_admin()
        kinds = kinds_from(rest)
        removed = unsubscribe(ctx.session, ctx.platform, ctx.channel_id, kinds)
        key = "tips.unsubscribed" if removed else "tips.not_subscribed"
        return Reply(Message(text=ctx.t(key, channel=ctx.channel_id, kinds=kind_names(ctx, removed or kinds))))

    @registry.reactions.append
    def tip_reaction(ctx: Context, reaction: Reaction) -> Reply | None:
        if ctx.org is not None:
            service(ctx).record_engagement(
                reaction.platform, reaction.message_ref, "reaction", reaction.user_id, reaction.emoji
            )
        return None

    @registry.replies.append
    def tip_reply(ctx: Context, reply: ThreadReply) -> Reply | None:
        if ctx.org is not None:
            service(ctx).record_engagement(reply.platform, reply.parent_ref, "reply", reply.user_id, reply.reply_ref)
        return None
