"""Discord as a thin translation layer: a ``/cx`` command group mirroring the core's commands,
persistent buttons, modals, a message context menu and reactions, all turned into the core's
Invocation, Click, FormSubmission, CaptureRequest, Reaction and ThreadReply.

The core is synchronous (SQLAlchemy): every call to it runs in a worker thread
(``asyncio.to_thread``), never on the event loop. Discord invalidates an interaction not
answered within 3 seconds, so an answer that takes longer than ``DEFER_AFTER`` is deferred and
followed up when it is ready.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

import discord
from discord import app_commands

from adapters.discord.render import CoreButton, FormModal, cut, send_kwargs
from bot.app import CxApp
from bot.forms import Form, FormRequest, FormSubmission
from bot.messages import CaptureRequest, Click, Invocation, Message, Reaction, Reply, ThreadReply, Visibility

log = logging.getLogger(__name__)

PLATFORM = "discord"
DEFER_AFTER = 2.0  # seconds; Discord allows 3 for the first answer
RESOLVE_ACTION = re.compile(r"^issue:(\d+):resolve$")
REPORT_WORDS = frozenset({"report", "rapportera"})
CAPTURE_MENU = "Save as CX observation"


def intents() -> discord.Intents:
    """Guilds, messages (replies under tip posts) with their content (the message a 👂 saves),
    reactions. Message content is a privileged intent: switch it on in the developer portal."""
    chosen = discord.Intents.none()
    chosen.guilds = True
    chosen.guild_messages = True
    chosen.guild_reactions = True
    chosen.dm_messages = True
    chosen.message_content = True
    return chosen


class CxDiscord(discord.Client):
    def __init__(
        self,
        core: CxApp,
        *,
        guild_ids: Iterable[int] = (),
        admin_role_ids: Iterable[int] = (),
        capture_emoji: Iterable[str] = ("👂",),
        command_help: dict[str, str] | None = None,
        defer_after: float = DEFER_AFTER,
        run_sync: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(intents=intents(), allowed_mentions=discord.AllowedMentions.none())
        self.core = core
        self.guild_ids = [int(g) for g in guild_ids]
        self.admin_role_ids = {int(r) for r in admin_role_ids}
        self.capture_emoji = frozenset(e.strip(":") for e in capture_emoji)
        self.defer_after = defer_after
        self.run_sync = run_sync or asyncio.to_thread
        self.tree = app_commands.CommandTree(self)
        self.group = app_commands.Group(name="cx", description="cxbot: customer experience is everybody's job")
        for name, description in (command_help or {}).items():
            self.group.add_command(self._subcommand(name, description))
        self.tree.add_command(self.group)
        self.tree.add_command(app_commands.ContextMenu(name=CAPTURE_MENU, callback=self.capture_message))
        self.tree.on_error = self.on_tree_error  # type: ignore[method-assign]

    async def setup_hook(self) -> None:
        self.add_dynamic_items(CoreButton)
        for guild_id in self.guild_ids:  # guild commands appear at once; global ones take an hour
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
            log.info("discord: commands synced to guild %s", guild_id)

    # --- the /cx group --------------------------------------------------------------------

    def _subcommand(self, name: str, description: str) -> app_commands.Command[Any, Any, Any]:
        async def callback(interaction: discord.Interaction, text: str | None = None) -> None:
            await self.run_command(interaction, name, text or "")

        command = app_commands.Command(name=name, description=cut(description, 100) or name, callback=callback)
        command.autocomplete("text")(self._suggest_for(name))
        return command

    def _suggest_for(self, name: str) -> Callable[[discord.Interaction, str], Any]:
        async def suggest(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            found = await self.run_sync(self.core.suggest, PLATFORM, str(interaction.user.id), name, current)
            return [app_commands.Choice(name=cut(label, 100), value=value[:100]) for label, value in found[:25]]

        return suggest

    async def run_command(self, interaction: discord.Interaction, name: str, text: str) -> None:
        if not self.may_run(interaction, name, text):
            language = await self.run_sync(self.core.language_of, PLATFORM, str(interaction.user.id))
            await interaction.response.send_message(
                "🔒 " + self.core.catalogue.text(language, "common.admin_only"), ephemeral=True
            )
            # Never a user id in a log line: the right to erasure cannot reach log files.
            log.info("discord: refused /cx %s (no Manage Server or admin role)", name)
            return
        channel, guild = str(interaction.channel_id or ""), str(interaction.guild_id or "")
        user = str(interaction.user.id)
        if name in REPORT_WORDS and not text.strip():
            form = await self.run_sync(self.core.form, FormRequest(PLATFORM, guild, user, channel, "report"))
            if isinstance(form, Form):
                await interaction.response.send_modal(FormModal(form))
                return
            await self.answer(interaction, lambda: form)
            return
        invocation = Invocation(PLATFORM, guild, user, channel, f"{name} {text}".strip())
        await self.answer(interaction, lambda: self.core.dispatch(invocation))

    def may_run(self, interaction: discord.Interaction, name: str, text: str) -> bool:
        """Admin sub-commands (as the core declares them) need Manage Server, or one of the
        configured admin roles; the core then checks the journey file's admins."""
        command = self.core.registry.commands.get(name)
        if command is None or not command.for_admins(text.strip().split(" ", 1)[0]):
            return True
        if interaction.permissions.manage_guild:
            return True
        roles = getattr(interaction.user, "_roles", ())  # the raw role ids, cached guild or not
        return bool(self.admin_role_ids & {int(r) for r in roles})

    async def answer(self, interaction: discord.Interaction, work: Callable[[], Reply]) -> None:
        """Answer within Discord's 3 seconds: at once when the core is quick, else defer and
        follow up when it is done."""
        task = asyncio.ensure_future(self.run_sync(work))
        done, _ = await asyncio.wait({task}, timeout=self.defer_after)
        if task in done:
            reply = task.result()
            await interaction.response.send_message(
                **send_kwargs(reply.message), ephemeral=reply.visibility is Visibility.EPHEMERAL
            )
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        reply = await task
        await interaction.followup.send(**send_kwargs(reply.message), ephemeral=True)

    # --- buttons and forms ------------------------------------------------------------------

    async def on_core_button(self, interaction: discord.Interaction, action_id: str) -> None:
        channel, guild = str(interaction.channel_id or ""), str(interaction.guild_id or "")
        user = str(interaction.user.id)
        resolve = RESOLVE_ACTION.match(action_id)
        if resolve is not None:
            request = FormRequest(PLATFORM, guild, user, channel, f"resolve:{resolve.group(1)}")
            form = await self.run_sync(self.core.form, request)
            if isinstance(form, Form):
                await interaction.response.send_modal(FormModal(form))
                return
            await self.answer(interaction, lambda: form)
            return
        message_id = interaction.message.id if interaction.message is not None else None
        click = Click(PLATFORM, guild, user, channel, action_id, "", f"{channel}:{message_id}" if message_id else None)
        await self.answer(interaction, lambda: self.core.click(click))

    async def on_form_submitted(self, interaction: discord.Interaction, form_id: str, values: dict[str, str]) -> None:
        submission = FormSubmission(
            PLATFORM,
            str(interaction.guild_id or ""),
            str(interaction.user.id),
            str(interaction.channel_id or ""),
            form_id,
            values,
        )
        await self.answer(interaction, lambda: self.core.submit(submission))

    # --- observations from messages -----------------------------------------------------------

    async def capture_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        channel = str(interaction.channel_id or message.channel.id)
        request = CaptureRequest(
            PLATFORM,
            str(interaction.guild_id or ""),
            str(interaction.user.id),
            channel,
            f"{channel}:{message.id}",
            message.content or None,
            str(message.author.id),
            message.jump_url,
        )
        await self.answer(interaction, lambda: self.core.capture(request))

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if self.user is not None and payload.user_id == self.user.id:
            return
        emoji = payload.emoji.name if payload.emoji.is_custom_emoji() else str(payload.emoji)
        channel = str(payload.channel_id)
        text = author = link = None
        if emoji in self.capture_emoji:  # only a capture needs the message itself
            try:
                channel_of = self.get_partial_messageable(payload.channel_id, guild_id=payload.guild_id)
                message = await channel_of.fetch_message(payload.message_id)
                # Not message.jump_url: that needs the guild in the cache, else it links under @me.
                link = f"{channel_of.jump_url}/{message.id}"
                text, author = message.content or None, str(message.author.id)
            except discord.HTTPException:
                log.warning("discord: could not read message %s in %s", payload.message_id, channel)
        reaction = Reaction(
            PLATFORM,
            str(payload.guild_id or ""),
            str(payload.user_id),
            channel,
            f"{channel}:{payload.message_id}",
            str(emoji),
            text,
            author,
            link,
        )
        reply = await self.run_sync(self.core.react, reaction)
        if reply is not None:
            await self.tell(payload.user_id, reply.message)

    async def on_message(self, message: discord.Message) -> None:
        """A reply to one of the bot's posts, or a message in a thread started on one, counts
        as engagement with it (tips); everything else is ignored."""
        if message.author.bot:
            return
        parent: str | None = None
        if message.reference is not None and message.reference.message_id is not None:
            parent = f"{message.reference.channel_id}:{message.reference.message_id}"
        elif isinstance(message.channel, discord.Thread) and message.channel.parent_id is not None:
            parent = f"{message.channel.parent_id}:{message.channel.id}"  # a thread's id is its first message's
        if parent is None:
            return
        reply = ThreadReply(
            PLATFORM,
            str(message.guild.id if message.guild else ""),
            str(message.author.id),
            str(message.channel.id),
            parent,
            f"{message.channel.id}:{message.id}",
        )
        await self.run_sync(self.core.replied, reply)

    async def tell(self, user_id: int, message: Message) -> None:
        """A direct message (the core's answer to something that had no interaction)."""
        try:
            channel = await self.create_dm(discord.Object(id=user_id))
            await channel.send(**send_kwargs(message))
        except discord.HTTPException:
            log.warning("discord: could not send a direct message")

    # --- errors -------------------------------------------------------------------------------

    async def on_tree_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        log.error("discord: /%s failed", interaction.command.name if interaction.command else "?", exc_info=error)
        text = self.core.catalogue.text(self.core.default_language, "common.internal_error")
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException:
            log.warning("discord: could not tell the user about the failure")


def command_help(core: CxApp, language: str = "en") -> dict[str, str]:
    """The core's commands and their help lines: the /cx group's sub-commands."""
    return {command.name: core.catalogue.text(language, command.help_key) for command in core.registry.listed()}
