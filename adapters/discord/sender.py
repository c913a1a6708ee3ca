"""The outbox's Discord sender: posts and edits through discord.py on the bot's event loop.

A post's reference is ``"<channel id>:<message id>"``, what an edit and a reaction are matched
against. discord.py already waits out rate limits and retries 5xx a few times; what still fails
is sorted here: retry later (429, 5xx, network), or give up (no access, unknown channel).

Every post is sent with a nonce made from its outbox row, and discord.py asks Discord to enforce
it: a retry after a timeout or a killed sender gets the message already made back instead of a
second copy, for as long as Discord remembers nonces (a few minutes).
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import aiohttp
import discord
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adapters.discord.render import CHART_FILENAME, send_kwargs
from bot.outbox import DeliveryError, Post
from bot.store.models import Attachment

log = logging.getLogger(__name__)

TIMEOUT = 60.0


def post_nonce(post: Post) -> str:
    """Discord takes a nonce of at most 25 characters."""
    return "cx" + post.mark[:23]


class DiscordSender:
    def __init__(
        self, client: discord.Client, session_factory: sessionmaker[Session], timeout: float = TIMEOUT
    ) -> None:
        self.client, self.session_factory, self.timeout = client, session_factory, timeout

    def send(self, post: Post) -> str | None:
        """Called from the outbox's thread; the work runs on the client's loop."""
        future = asyncio.run_coroutine_threadsafe(self.deliver(post), self.client.loop)
        try:
            return future.result(self.timeout)
        except TimeoutError:
            future.cancel()
            raise DeliveryError("discord: timed out", retryable=True, maybe_delivered=True) from None

    async def deliver(self, post: Post) -> str | None:
        kwargs: dict[str, Any] = send_kwargs(post.message)
        try:
            if post.edit_ref:
                channel_id, _, message_id = post.edit_ref.partition(":")
                partial = self.client.get_partial_messageable(int(channel_id)).get_partial_message(int(message_id))
                kwargs.setdefault("view", None)  # an edit that drops the buttons removes them
                await partial.edit(**kwargs)
                return post.edit_ref
            if not post.target.ref.isdecimal():
                raise DeliveryError(f"discord: {post.target.ref!r} is not a Discord id", retryable=False)
            if post.target.kind == "user":
                channel: Any = await self.client.create_dm(discord.Object(id=int(post.target.ref)))
            else:
                channel = self.client.get_partial_messageable(int(post.target.ref))
            chart = self._chart(post)
            if chart is not None:
                kwargs["file"] = discord.File(io.BytesIO(chart), filename=CHART_FILENAME)
            message = await channel.send(nonce=post_nonce(post), **kwargs)
            return f"{message.channel.id}:{message.id}"
        except discord.RateLimited as exc:
            raise DeliveryError("discord: rate limited", retryable=True, retry_after=exc.retry_after) from None
        except discord.DiscordServerError as exc:
            raise DeliveryError(f"discord: HTTP {exc.status}", retryable=True, maybe_delivered=True) from None
        except (discord.Forbidden, discord.NotFound) as exc:
            raise DeliveryError(f"discord: HTTP {exc.status} {exc.text}", retryable=False) from None
        except discord.HTTPException as exc:
            raise DeliveryError(f"discord: HTTP {exc.status} {exc.text}", retryable=exc.status == 429) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DeliveryError(f"discord: network: {exc}", retryable=True, maybe_delivered=True) from None

    def _chart(self, post: Post) -> bytes | None:
        image = post.message.image
        if image is None or not image.attachment:
            return None
        with self.session_factory() as session:
            data = session.scalar(select(Attachment.data).where(Attachment.key == image.attachment))
        if data is None:
            log.warning("discord: attachment %s is gone; the message goes without it", image.attachment)
        return data
