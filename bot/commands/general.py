"""help, whoami, lang: who am I talking to, and what can I do here."""

from __future__ import annotations

from sqlalchemy import select

from bot.app import Context, Registry, UserError, excerpt
from bot.domain.errors import no_more_words
from bot.messages import Message, MessageField, Reply
from bot.store.models import Identity


def help_reply(ctx: Context, registry: Registry, unknown: str | None = None, about: str | None = None) -> Reply:
    """Every command; or the one ``about`` names (``/cx help kpi``)."""
    commands = registry.listed()
    wanted = registry.commands.get(about.casefold()) if about else None
    if about and wanted is None:
        unknown = about
    intro = ctx.t("help.unknown", command=excerpt(unknown)) if unknown else ctx.t("help.intro")
    return Reply(
        Message(
            header=ctx.t("help.header"),
            text=intro,
            fields=[
                MessageField(label=f"/cx {c.usage}", value=ctx.t(c.help_key))
                for c in ([wanted] if wanted is not None else commands)
            ],
            context=[ctx.t("help.footer")],
        )
    )


def platform_name(ctx: Context, platform: str) -> str:
    return ctx.catalogue.text_or(ctx.language, f"whoami.platform.{platform}", platform)


def register(registry: Registry) -> None:
    @registry.command("help", "help [command]", "hjälp", "?")
    def show_help(ctx: Context, rest: str) -> Reply:
        words = rest.split()
        no_more_words(words[1:])
        return help_reply(ctx, registry, about=words[0] if words else None)

    @registry.command("whoami", "whoami", "vemärjag")
    def whoami(ctx: Context, rest: str) -> Reply:
        person = ctx.require_person()
        no_more_words(rest.split())
        identities = ctx.session.scalars(
            select(Identity).where(Identity.person_id == person.id).order_by(Identity.platform)
        )
        roles = [ctx.t("whoami.admin")] if person.is_admin else []
        if person.is_cx_lead:
            roles.append(ctx.t("whoami.cx_lead"))
        teams = ", ".join(team.name(ctx.language) for team in person.teams) or "–"
        org_zone = ctx.org.time_zone if ctx.org else "–"
        return Reply(
            Message(
                header=person.name,
                fields=[
                    MessageField(label=ctx.t("whoami.key"), value=person.key),
                    MessageField(label=ctx.t("whoami.teams"), value=teams),
                    MessageField(
                        label=ctx.t("whoami.platforms"),
                        value=", ".join(f"{platform_name(ctx, i.platform)} ({i.external_user_id})" for i in identities),
                    ),
                    MessageField(label=ctx.t("whoami.language"), value=ctx.t(f"lang.name.{ctx.language}")),
                    MessageField(label=ctx.t("whoami.time_zone"), value=person.time_zone or org_zone),
                    *([MessageField(label=ctx.t("whoami.roles"), value=", ".join(roles))] if roles else []),
                ],
            )
        )

    @registry.command("lang", "lang sv|en", "språk")
    def choose_language(ctx: Context, rest: str) -> Reply:
        person = ctx.require_person()
        choice = rest.strip().lower()
        if choice not in ("sv", "en"):
            raise UserError("lang.usage", given=excerpt(choice) or "–")
        person.chosen_language = choice
        ctx.language = choice
        return Reply(Message(text=ctx.t("lang.set")))
