"""Neutral messages and forms as Slack Block Kit. Pure: dicts in, dicts out.

User text is escaped (``&``, ``<``, ``>``) wherever it goes into mrkdwn, so nothing a user typed
(``<!channel>``, ``<!here>``, ``<@U…>``, a ``<url|label>`` link) is parsed as a mention or a
link. Slack's limits are enforced here (raw dict blocks are not checked by the SDK): too long
text is cut or split, never rejected by Slack.
"""

from __future__ import annotations

from typing import Any

from bot.forms import Form, FormField
from bot.messages import Message

HEADER_CHARS = 150
SECTION_CHARS = 3000
FIELD_CHARS = 2000
FIELDS_PER_SECTION = 10
CONTEXT_ELEMENTS = 10
ACTIONS_PER_BLOCK = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ACTION_ID = 255
MAX_BLOCKS = 50
MODAL_TITLE = 24
OPTION_TEXT = 75
OPTIONS = 100
FALLBACK_CHARS = 3000

Block = dict[str, Any]


def escape(text: str) -> str:
    """Slack's three control characters, as its docs ask: the text then cannot ping or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def split_text(text: str, limit: int = SECTION_CHARS) -> list[str]:
    """Split on line ends into chunks of at most ``limit`` characters (a very long line is cut)."""
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        line = cut(line, limit)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": cut(text, limit) or " ", "emoji": True}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def message_blocks(message: Message) -> list[Block]:
    """Header, sections, fields, image (by URL), context, and actions, within Slack's limits."""
    blocks: list[Block] = []
    if message.header:
        blocks.append({"type": "header", "text": _plain(message.header, HEADER_CHARS)})
    if message.text:
        for chunk in split_text(escape(message.text)):
            blocks.append({"type": "section", "text": _mrkdwn(chunk)})
    fields = [
        _mrkdwn(cut(f"*{escape(f.label)}*\n{escape(f.value)}", FIELD_CHARS))
        for f in message.fields
        if f.label or f.value
    ]
    for start in range(0, len(fields), FIELDS_PER_SECTION):
        blocks.append({"type": "section", "fields": fields[start : start + FIELDS_PER_SECTION]})
    if message.image is not None and message.image.url:
        blocks.append({"type": "image", "image_url": message.image.url, "alt_text": cut(message.image.alt, 2000)})
    if message.context:
        elements = [_mrkdwn(cut(escape(c), SECTION_CHARS)) for c in message.context[:CONTEXT_ELEMENTS]]
        blocks.append({"type": "context", "elements": elements})
    buttons = [
        {
            "type": "button",
            "action_id": b.action_id[:ACTION_ID],
            "text": _plain(b.label, BUTTON_TEXT),
            "value": b.value[:BUTTON_VALUE] or b.action_id[:BUTTON_VALUE],
            **({"style": b.style} if b.style != "default" else {}),
        }
        for b in message.buttons
    ]
    for start in range(0, len(buttons), ACTIONS_PER_BLOCK):
        blocks.append({"type": "actions", "elements": buttons[start : start + ACTIONS_PER_BLOCK]})
    if len(blocks) > MAX_BLOCKS:  # keep the actions: they are what the message is for
        actions = [b for b in blocks if b["type"] == "actions"]
        rest = [b for b in blocks if b["type"] != "actions"][: MAX_BLOCKS - len(actions) - 1]
        blocks = [*rest, {"type": "context", "elements": [_mrkdwn("…")]}, *actions]
    return blocks


def fallback_text(message: Message) -> str:
    """The notification text and the screen-reader summary of the blocks (escaped too)."""
    return cut(escape(message.plain_text()), FALLBACK_CHARS) or " "


# --- forms as modals ----------------------------------------------------------------------


def _option(value: str, label: str) -> dict[str, Any]:
    return {"text": _plain(label, OPTION_TEXT), "value": value[:150]}


def _element(field: FormField) -> dict[str, Any]:
    if field.kind == "select":
        element: dict[str, Any] = {"type": "static_select", "action_id": field.name}
        named_groups = [g for g in field.groups if g.label]
        if named_groups and len(field.groups) > 1:
            element["option_groups"] = [
                {
                    "label": _plain(g.label, OPTION_TEXT),
                    "options": [_option(c.value, c.label) for c in g.choices][:OPTIONS],
                }
                for g in field.groups[:OPTIONS]
            ]
        else:
            element["options"] = [_option(c.value, c.label) for c in field.choices][:OPTIONS]
        initial = next((c for c in field.choices if c.value == field.initial), None)
        if initial is not None:
            element["initial_option"] = _option(initial.value, initial.label)
        return element
    if field.kind == "checkbox":
        return {"type": "checkboxes", "action_id": field.name, "options": [_option("true", field.label)]}
    element = {"type": "plain_text_input", "action_id": field.name, "multiline": field.kind == "multiline"}
    if field.max_length:
        element["max_length"] = field.max_length
    if field.initial:
        element["initial_value"] = field.initial
    return element


def modal_view(form: Form, private_metadata: str) -> dict[str, Any]:
    """A Form as a modal. Each field is an input block whose block_id is the field's name."""
    blocks: list[Block] = []
    if form.intro:
        blocks.append({"type": "section", "text": _mrkdwn(cut(escape(form.intro), SECTION_CHARS))})
    for field in form.fields:
        label = " " if field.kind == "checkbox" else field.label
        blocks.append(
            {
                "type": "input",
                "block_id": field.name,
                "label": _plain(label, 2000),
                "optional": not field.required,
                "element": _element(field),
            }
        )
    return {
        "type": "modal",
        "callback_id": f"cx_form:{form.form_id}",
        "private_metadata": private_metadata[:3000],
        "title": _plain(form.title, MODAL_TITLE),
        "submit": _plain(form.submit, MODAL_TITLE),
        "close": _plain("✕", MODAL_TITLE),
        "blocks": blocks[:100],
    }


def submitted_values(state: dict[str, Any]) -> dict[str, str]:
    """A view_submission's ``view.state.values`` as the form's plain values."""
    values: dict[str, str] = {}
    for block_id, actions in (state or {}).get("values", {}).items():
        for action in actions.values():
            kind = action.get("type")
            if kind == "static_select":
                selected = action.get("selected_option") or {}
                values[block_id] = str(selected.get("value", ""))
            elif kind == "checkboxes":
                values[block_id] = "true" if action.get("selected_options") else "false"
            else:
                values[block_id] = str(action.get("value") or "")
    return values


def home_view(sections: list[Message]) -> dict[str, Any]:
    """The App Home tab: the given messages one after another, with dividers, within 100 blocks."""
    blocks: list[Block] = []
    for message in sections:
        if blocks:
            blocks.append({"type": "divider"})
        blocks.extend(message_blocks(message))
    return {"type": "home", "blocks": blocks[:100]}
