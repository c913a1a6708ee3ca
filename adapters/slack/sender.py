"""The outbox's Slack sender: posts and edits with the official WebClient.

A post's reference is ``"<channel>:<ts>"``: what ``chat.update`` needs to edit it in place, and
what reactions and thread replies on it are matched against. 429 is retried after Slack's
``Retry-After``; 5xx, timeouts and dropped connections with the outbox's backoff; an error that
will not go away (a channel that does not exist, a bot not in it) is given up at once.

Every post carries a mark of its outbox row (hashed) in Slack's message metadata. When an earlier attempt
may have reached Slack (its sender was killed, or timed out waiting for the answer), the sender
reads the channel's history since the post was queued and takes the message it finds there
instead of posting a second copy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
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
METADATA_TYPE = "cxbot_post"
LOOKUP_PAGES = 5  # 1 000 messages since the post was queued: far more than a lease's worth
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


# Answered with ok:false, yet "some aspect of the operation may have succeeded" (Slack's docs).
PARTLY_DONE = frozenset({"fatal_error", "internal_error", "request_timeout", "service_unavailable"})


def split_ref(ref: str) -> tuple[str, str]:
    channel, _, ts = ref.partition(":")
    return channel, ts


def post_marker(post: Post) -> str:
    """What a post carries in its metadata to be found again (hashed: metadata is visible to
    other apps in the workspace)."""
    return post.mark[:32]


def post_metadata(post: Post) -> dict[str, object]:
    return {"event_type": METADATA_TYPE, "event_payload": {"outbox": post_marker(post)}}


def carries_marker(message: dict[str, object], marker: str) -> bool:
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != METADATA_TYPE:
        return False
    payload = metadata.get("event_payload")
    return isinstance(payload, dict) and payload.get("outbox") == marker


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
            found = self._already_posted(post) if post.maybe_delivered else None
            if found is not None:
                channel, ts, replies = found
                log.info("slack: outbox %s was already in %s; not posted again", post.id, post.target.for_log)
                if replies:  # the chart went with it (it is the thread's first reply)
                    return f"{channel}:{ts}"
            else:
                # A user id as the channel posts in the person's DM with the app.
                response = self.client.chat_postMessage(
                    channel=post.target.ref,
                    text=text,
                    blocks=blocks,
                    unfurl_links=False,
                    unfurl_media=False,
                    metadata=post_metadata(post),
                )
                channel, ts = str(response["channel"]), str(response["ts"])
        except SlackApiError as exc:
            raise self._delivery_error(exc) from None
        except (TimeoutError, URLError, ConnectionError, OSError) as exc:
            # The request may have reached Slack before the answer was lost.
            raise DeliveryError(f"network: {exc}", retryable=True, maybe_delivered=True) from None
        if post.message.image is not None and post.message.image.attachment:
            self._upload(channel, ts, post.message.image.attachment, post.message.image.alt)
        return f"{channel}:{ts}"

    def _already_posted(self, post: Post) -> tuple[str, str, int] | None:
        """The (channel, ts, thread replies) of this post if an earlier attempt made it.

        An error that retrying will not heal (a missing history scope) cannot be allowed to hold
        the post back for ever: it is logged and the post goes out, perhaps a second time.
        """
        try:
            channel = post.target.ref
            if post.target.kind == "user":
                channel = str(self.client.conversations_open(users=post.target.ref)["channel"]["id"])
            # Newest first, so a wide margin for clock skew between this host and Slack costs little.
            since = post.queued_at - timedelta(minutes=10) if post.queued_at else None
            marker, cursor = post_marker(post), None
            for _ in range(LOOKUP_PAGES):
                page = self.client.conversations_history(
                    channel=channel,
                    oldest=f"{since.timestamp():.6f}" if since else None,
                    include_all_metadata=True,
                    limit=200,
                    cursor=cursor,
                )
                for message in page.get("messages") or []:
                    if carries_marker(message, marker):
                        return channel, str(message["ts"]), int(message.get("reply_count") or 0)
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    return None
        except SlackApiError as exc:
            error = self._delivery_error(exc)
            if error.retryable:
                raise
            log.warning("slack: cannot check whether outbox %s was already posted (%s); posting it", post.id, error)
        return None

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
        if status >= 500:  # Slack may have posted it before failing to answer
            return DeliveryError(f"slack: HTTP {status}", retryable=True, maybe_delivered=True)
        return DeliveryError(
            f"slack: {error or status}", retryable=error not in PERMANENT, maybe_delivered=error in PARTLY_DONE
        )
