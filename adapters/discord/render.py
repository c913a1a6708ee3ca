"""Neutral messages and forms as Discord embeds, buttons and modals.

Every message is sent with ``AllowedMentions.none()``, so nothing a user typed (``@everyone``,
``@here``, a role or a person) pings anyone when the bot echoes it. And nothing a user typed is
interpreted either: the text of a title, description and field is escaped (``escape_markdown``
for bold, masked links ``[text](url)``, headers, spoilers…; every ``<`` for mentions, channels,
custom emoji and timestamps; ``escape_mentions`` for ``@everyone``), as Slack's renderer escapes
its control characters. The core's Message does not say which words a person typed, so all of it
is escaped; the catalogue's own texts use no Discord markdown that would matter. Footers and
button labels are plain text on Discord and need nothing. Discord's limits are kept
here: an embed's title 256, description 4 096, 25 fields of 1 024, footer 2 048, 6 000 in all;
25 buttons; a modal's title and labels 45 characters, at most 5 inputs, selects of 25 options.
"""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.forms import Form, FormField
from bot.messages import Message

TITLE = 256
DESCRIPTION = 4096
FIELDS = 25
FIELD_NAME = 256
FIELD_VALUE = 1024
FOOTER = 2048
EMBED_TOTAL = 6000
BUTTONS = 25
BUTTON_LABEL = 80
CUSTOM_ID = 100
MODAL_TITLE = 45
MODAL_LABEL = 45
MODAL_INPUTS = 5
SELECT_OPTIONS = 25
TEXT_INPUT = 4000
BUTTON_PREFIX = "cx:"
FORM_PREFIX = "cxform:"
CHART_FILENAME = "cx-chart.png"
COLOUR = discord.Colour(0x1D4E89)
# Discord's markdown: emphasis, code, spoilers, quotes, headers, lists, masked links, mentions
# (<@…>, <#…>, @everyone), custom emoji and timestamps (<:…:…>, <t:…>), and the escape itself.
MARKUP = re.compile(r"([\\*_~|`>#\-+\[\]()<@:])")
URL = re.compile(r"(https?://[^\s\[\]()<>`*|~\\]+)")
STYLES = {"primary": discord.ButtonStyle.primary, "danger": discord.ButtonStyle.danger}


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Text shown as written: no markdown, masked link, mention, channel, emoji or timestamp.

    Every character Discord's markdown gives a meaning gets a backslash, which Discord hides; a
    bare URL is left whole (a visible, clickable link; the characters that could turn it into
    something else end it). Not ``discord.utils.escape_markdown``: it escapes only the first
    character of ``[a](b) … [c](d)`` and leaves everything between the two links live."""
    parts = URL.split(text)
    return "".join(part if index % 2 else MARKUP.sub(r"\\\1", part) for index, part in enumerate(parts))


def shown(text: str, limit: int) -> str:
    """Escaped, then cut to Discord's limit (an escape never counts against the text's own)."""
    return cut(escape(text), limit)


def message_embed(message: Message) -> discord.Embed | None:
    """One embed per message, within the 6 000-character total; None for an empty message."""
    if not (message.header or message.text or message.fields or message.context or message.image):
        return None
    budget = EMBED_TOTAL
    title = shown(message.header, TITLE) if message.header else None
    budget -= len(title or "")
    footer = cut(" · ".join(message.context), min(FOOTER, max(budget - 200, 0))) if message.context else None
    budget -= len(footer or "")
    description = shown(message.text, min(DESCRIPTION, max(budget - 100, 1))) if message.text else None
    budget -= len(description or "")
    embed = discord.Embed(title=title, description=description, colour=COLOUR)
    for field in message.fields[:FIELDS]:
        name, value = shown(field.label or "–", FIELD_NAME), shown(field.value or "–", FIELD_VALUE)
        if len(name) + len(value) > budget:
            break
        budget -= len(name) + len(value)
        embed.add_field(name=name, value=value, inline=len(value) <= 40)
    if footer:
        embed.set_footer(text=footer)
    if message.image is not None:
        if message.image.attachment:
            embed.set_image(url=f"attachment://{CHART_FILENAME}")
        elif message.image.url:
            embed.set_image(url=message.image.url)
    return embed


def button_custom_id(action_id: str) -> str:
    return (BUTTON_PREFIX + action_id)[:CUSTOM_ID]


class CoreButton(discord.ui.DynamicItem[discord.ui.Button], template=r"cx:(?P<action>.+)"):  # type: ignore[call-arg]
    """A button whose custom id carries the core's action id: it keeps working after a restart,
    on a message this process never sent (Discord sends the message's components back)."""

    def __init__(self, action_id: str, label: str = "…", style: str = "default") -> None:
        super().__init__(
            discord.ui.Button(
                label=cut(label, BUTTON_LABEL),
                style=STYLES.get(style, discord.ButtonStyle.secondary),
                custom_id=button_custom_id(action_id),
            )
        )
        self.action_id = action_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> CoreButton:
        return cls(match["action"], item.label or "…")

    async def callback(self, interaction: discord.Interaction) -> None:
        handler = getattr(interaction.client, "on_core_button", None)
        if handler is not None:
            await handler(interaction, self.action_id)


def message_view(message: Message) -> discord.ui.View | None:
    if not message.buttons:
        return None
    view = discord.ui.View(timeout=None)
    for button in message.buttons[:BUTTONS]:
        view.add_item(CoreButton(button.action_id, button.label, button.style))
    return view


def send_kwargs(message: Message) -> dict[str, Any]:
    """What ``send``/``edit`` take for a Message (files apart): embed, view, no mentions."""
    embed = message_embed(message)
    kwargs: dict[str, Any] = {"allowed_mentions": discord.AllowedMentions.none()}
    if embed is not None:
        kwargs["embed"] = embed
    else:
        kwargs["content"] = "…"
    view = message_view(message)
    if view is not None:
        kwargs["view"] = view
    return kwargs


# --- forms as modals -----------------------------------------------------------------------


class FormModal(discord.ui.Modal):
    """A neutral Form as a Discord modal. A select with more than 25 choices (touchpoints of a
    big journey) becomes a text input; the core matches what is typed."""

    def __init__(self, form: Form) -> None:
        super().__init__(title=cut(form.title, MODAL_TITLE), custom_id=(FORM_PREFIX + form.form_id)[:CUSTOM_ID])
        self.form = form
        self.inputs: dict[str, discord.ui.TextInput[Any] | discord.ui.Select[Any]] = {}
        self._checkboxes = {f.name for f in form.fields if f.kind == "checkbox"}
        for field in form.fields[:MODAL_INPUTS]:
            self._add(field)

    def _add(self, field: FormField) -> None:
        label = cut(field.label, MODAL_LABEL)
        choices = field.choices
        if field.kind == "checkbox":  # a select of one option: ticked or not
            select: discord.ui.Select[Any] = discord.ui.Select(
                custom_id=field.name,
                options=[discord.SelectOption(label=cut("✓ " + field.label, 100), value="true")],
                required=False,
                min_values=0,
                max_values=1,
            )
            self.inputs[field.name] = select
            self.add_item(discord.ui.Label(text=label, component=select))
            return
        if field.kind == "select" and 0 < len(choices) <= SELECT_OPTIONS:
            options = [
                discord.SelectOption(label=cut(c.label, 100), value=c.value[:100], default=c.value == field.initial)
                for c in choices
            ]
            select = discord.ui.Select(
                custom_id=field.name, options=options, required=field.required, min_values=int(field.required)
            )
            self.inputs[field.name] = select
            self.add_item(discord.ui.Label(text=label, component=select))
            return
        text = discord.ui.TextInput(
            label=label,
            custom_id=field.name,
            style=discord.TextStyle.paragraph if field.kind == "multiline" else discord.TextStyle.short,
            required=field.required,
            max_length=min(field.max_length or TEXT_INPUT, TEXT_INPUT),
            placeholder=cut(field.placeholder or ", ".join(c.label for c in choices[:6]), 100) or None,
            default=field.initial if field.kind != "select" else None,
        )
        self.inputs[field.name] = text
        self.add_item(text)

    def values(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, item in self.inputs.items():
            if isinstance(item, discord.ui.Select):
                found[name] = item.values[0] if item.values else ("false" if name in self._checkboxes else "")
            else:
                found[name] = item.value or ""
        return found

    async def on_submit(self, interaction: discord.Interaction) -> None:
        handler = getattr(interaction.client, "on_form_submitted", None)
        if handler is not None:
            await handler(interaction, self.form.form_id, self.values())
