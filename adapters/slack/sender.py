"""The outbox's Slack sender: posts and edits with the official WebClient.

A post's reference is ``"<channel>:<ts>"``: what ``chat.update`` needs to edit it in place, and
what reactions and thread replies on it are matched against. 429 is retried after Slack's
``Retry-After``; 5xx, timeouts and dropped connections with the outbox's backoff; an error that
will not go away (a channel that does not exist, a bot not in it) is given up at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adapters.slack.blocks import fallback_text, message_blocks
from bot.outbox import DeliveryError, Post
from bot.store.models import Attachment

log = logging.getLogger(__name__)

PACE_SECONDS = 1.0  # Slack allows about one message per second per channel
# Errors that retrying cannot fix: https://api.slack.com/methods/chat.postMessage#errors
PERMANENT = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "msg_too_long",
        "no_text",
        "invalid_blocks",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "missing_scope",
        "user_not_found",
        "cant_update_message",
        "message_not_found",
        "edit_window_closed",
        "restricted_action",
    }
)


def split_ref(ref: str) -> tuple[str, str]:
    channel, _, ts = ref.partition(":")
    return channel, ts


class SlackSender:
    def __init__(
        self,
        client: WebClient,
        session_factory: sessionmaker[Session],
        *,
        pace: float = PACE_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client, self.session_factory = client, session_factory
        self.pace, self.sleep, self.monotonic = pace, sleep, monotonic
        self._last_post: dict[str, float] = {}
        self._lock = threading.Lock()

    def send(self, post: Post) -> str | None:
        blocks, text = message_blocks(post.message), fallback_text(post.message)
        try:
            if post.edit_ref:
                channel, ts = split_ref(post.edit_ref)
                self._wait_turn(channel)
                self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
                return post.edit_ref
            self._wait_turn(post.target.ref)
            # A user id as the channel posts in the person's DM with the app.
            response = self.client.chat_postMessage(
                channel=post.target.ref, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
            )
            channel, ts = str(response["channel"]), str(response["ts"])
        except SlackApiError as exc:
            raise self._delivery_error(exc) from None
        except (TimeoutError, URLError, ConnectionError, OSError) as exc:
            raise DeliveryError(f"network: {exc}", retryable=True) from None
        if post.message.image is not None and post.message.image.attachment:
            self._upload(channel, ts, post.message.image.attachment, post.message.image.alt)
        return f"{channel}:{ts}"

    def _wait_turn(self, channel: str) -> None:
        with self._lock:
            now = self.monotonic()
            wait = self._last_post.get(channel, -1e9) + self.pace - now
            self._last_post[channel] = now + max(wait, 0.0)
        if wait > 0:
            self.sleep(wait)

    def _upload(self, channel: str, ts: str, key: str, alt: str) -> None:
        """The chart beside its message. The message is already out: a failed upload is logged,
        never retried (a retry would post the message twice)."""
        with self.session_factory() as session:
            attachment = session.scalar(select(Attachment).where(Attachment.key == key))
            if attachment is None:
                log.warning("slack: attachment %s is gone; the message went without it", key)
                return
            data, filename = attachment.data, attachment.filename
        try:
            self.client.files_upload_v2(channel=channel, thread_ts=ts, content=data, filename=filename, title=alt[:250])
        except Exception:
            log.exception("slack: uploading %s to %s failed; the message went without it", key, channel)

    @staticmethod
    def _delivery_error(exc: SlackApiError) -> DeliveryError:
        status = getattr(exc.response, "status_code", 200)
        error = str(exc.response.get("error", "")) if hasattr(exc.response, "get") else ""
        if status == 429 or error == "ratelimited":
            retry_after = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
            try:
                seconds = float(retry_after) if retry_after is not None else None
            except ValueError:
                seconds = None
            return DeliveryError("slack: rate limited", retryable=True, retry_after=seconds)
        if status >= 500:
            return DeliveryError(f"slack: HTTP {status}", retryable=True)
        return DeliveryError(f"slack: {error or status}", retryable=error not in PERMANENT)
