"""What the core says and hears, independent of any chat platform.

``Invocation`` and ``Click`` come in from an adapter; ``Reply`` goes back to the person who
asked; a ``Message`` posted elsewhere travels through the outbox as ``Message.model_dump()``.
Adapters render a Message as Block Kit, an embed with a view, or terminal text.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Button(BaseModel):
    model_config = ConfigDict(frozen=True)

    # Stable, parseable ids such as "issue:42:ack" so any adapter can route a click back.
    action_id: str = Field(max_length=250)
    label: str
    value: str = ""
    style: Literal["default", "primary", "danger"] = "default"


class MessageField(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str
    value: str


class Image(BaseModel):
    model_config = ConfigDict(frozen=True)

    alt: str  # also what a text-only client shows, so it says what the picture shows
    url: str | None = None
    path: str | None = None
    attachment: str | None = None  # the key of a stored Attachment (bot.store.models)


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    header: str | None = None
    text: str | None = None
    fields: list[MessageField] = Field(default_factory=list)
    image: Image | None = None
    context: list[str] = Field(default_factory=list)
    buttons: list[Button] = Field(default_factory=list)

    def plain_text(self) -> str:
        """Everything a reader needs, as plain text: for a terminal, a notification's preview, or
        a client that shows no rich layout."""
        parts = [self.header or "", self.text or ""]
        parts += [f"{f.label}: {f.value}" for f in self.fields]
        parts += [f"[{self.image.alt}]"] if self.image is not None else []
        parts += self.context
        return "\n".join(p for p in parts if p)


class Visibility(StrEnum):
    EPHEMERAL = "ephemeral"  # only the person who asked sees it
    CHANNEL = "channel"  # everybody in the channel sees it


@dataclass(frozen=True)
class Reply:
    message: Message
    visibility: Visibility = Visibility.EPHEMERAL
    # The core said no (bad input, no permission): a platform may show it beside the form.
    refused: bool = False
    # The core could not do it: "failed" (a bug) or "database_unavailable"; nothing was saved.
    failure: str = ""
    # The core accepted a command that makes this channel receive the bot's posts: a platform
    # whose bot must be a member to post, upload and hear reactions there (Slack) joins it.
    # Platform side effects follow from what the core accepted, never from the typed text.
    join_channel: bool = False

    @property
    def outcome(self) -> str:
        """For an operator's metrics: "ok", "refused", "failed" or "database_unavailable"."""
        return self.failure or ("refused" if self.refused else "ok")


@dataclass(frozen=True)
class Invocation:
    """A typed command: ``/cx <text>`` from one user in one channel of one platform."""

    platform: str
    workspace_id: str
    user_id: str
    channel_id: str
    text: str
    command: str = "cx"
    trigger_id: str | None = None
    # The platform's id for this one request (Slack's trigger_id): a second delivery of the same
    # request changes nothing and gets an empty reply.
    delivery_id: str | None = None


@dataclass(frozen=True)
class Click:
    """A button pressed on a message the bot posted earlier."""

    platform: str
    workspace_id: str
    user_id: str
    channel_id: str
    action_id: str
    value: str = ""
    message_ref: str | None = None


@dataclass(frozen=True)
class Reaction:
    """An emoji put on a message; adapters report them (for tip engagement, and capture)."""

    platform: str
    workspace_id: str
    user_id: str
    channel_id: str
    message_ref: str
    emoji: str
    # What the adapter could read of the message reacted to (for capture); None if it is gone.
    message_text: str | None = None
    message_author: str | None = None  # the author's user id on the platform
    message_link: str | None = None
    delivery_id: str | None = None  # the platform's event id: a redelivery of it changes nothing


@dataclass(frozen=True)
class ThreadReply:
    """A reply posted under one of the bot's messages."""

    platform: str
    workspace_id: str
    user_id: str
    channel_id: str
    parent_ref: str
    reply_ref: str
    delivery_id: str | None = None


@dataclass(frozen=True)
class CaptureRequest:
    """ "Save this message as an observation": a message shortcut, or a reaction with the capture
    emoji. ``message_text`` is None when the adapter could no longer read the message."""

    platform: str
    workspace_id: str
    user_id: str
    channel_id: str
    message_ref: str
    message_text: str | None
    message_author: str | None = None
    message_link: str | None = None
