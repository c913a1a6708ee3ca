"""Slack as a thin translation layer: Bolt listeners turn Slack payloads into the core's
Invocation, Click, FormSubmission, CaptureRequest, Reaction and ThreadReply, and the core's
Reply and Form into Block Kit. The core decides; nothing here knows what a command means.

Every listener acknowledges within Slack's 3 seconds: a command at once, its answer following
through the response URL; a click at once, then the core. Forms are answered in the ack, so
that a refusal can be shown beside the field. A redelivered event (same ``event_id``) is
recorded once by the core and changes nothing.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

import slack_bolt.request.request as bolt_request_module
from slack_bolt import Ack, App, BoltResponse, Respond
from slack_bolt.middleware.request_verification import RequestVerification
from slack_sdk import WebClient
from slack_sdk.signature import Clock, SignatureVerifier

from adapters.slack.blocks import fallback_text, home_view, message_blocks, modal_view, submitted_values
from bot.app import CxApp
from bot.forms import Form, FormRequest, FormSubmission
from bot.messages import CaptureRequest, Click, Invocation, Message, Reaction, Reply, ThreadReply, Visibility

log = logging.getLogger(__name__)

PLATFORM = "slack"
CAPTURE_SHORTCUT = "cx_capture"
FORM_CALLBACK = re.compile(r"^cx_form:")
RESOLVE_BUTTON = re.compile(r"^issue:(\d+):resolve$")
REPORT_WORDS = frozenset({"report", "rapportera"})


def _fix_bolt_body_parsing() -> None:
    """slack-bolt 1.30 reads any form body that merely contains the word "payload" as an
    interaction payload: `/cx observe the payload page is slow` would vanish as an empty request
    (404). Parse such a body as the plain form it is. And a body that is not valid JSON made
    Bolt raise before the signature was even checked: read it as empty instead."""
    original = bolt_request_module.parse_body
    if getattr(original, "cxbot_fixed", False):
        return

    def parse_body(body: str, content_type: str | None) -> dict[str, Any]:
        if body and content_type != "application/json" and not body.startswith("{") and "payload" in body:
            form = dict(parse_qsl(body, keep_blank_values=True))
            if "payload" not in form:
                return form
        try:
            return original(body, content_type)
        except ValueError:  # malformed JSON: an empty request, which is then refused, not a crash
            log.warning("slack: a request body that is not valid JSON was ignored")
            return {}

    parse_body.cxbot_fixed = True  # type: ignore[attr-defined]
    bolt_request_module.parse_body = parse_body


_fix_bolt_body_parsing()


class RequestGate(RequestVerification):
    """What every request passes before anything else: Bolt's signature check, with an
    injectable clock (Bolt's own has none) so that the five-minute window can be tested, and a
    refusal of interaction payloads Bolt itself would trip over (no actions at all)."""

    def __init__(self, signing_secret: str | None, clock: Clock | None = None) -> None:
        super().__init__(signing_secret or "-")
        self.verifies = signing_secret is not None
        self._verifier = SignatureVerifier(signing_secret=signing_secret or "-", clock=clock or Clock())

    def process(self, *, req: Any, resp: BoltResponse, next: Any) -> BoltResponse:
        body = req.body if isinstance(req.body, dict) else {}
        if body.get("type") == "block_actions" and not body.get("actions"):
            log.warning("slack: a block_actions request without actions was refused")
            return BoltResponse(status=400, body="")
        return super().process(req=req, resp=resp, next=next) if self.verifies else next()

    def _debug_log_error(self, signature: str, timestamp: str, body: str) -> None:
        # Bolt logs the whole refused request here at INFO: a user's id beside their words, the
        # response_url (a capability to post into the channel), the verification token. A refused
        # request is anyone's text: one line, why and how big, nothing of it.
        log.warning("slack: refused a request with a missing, stale or forged signature (%s bytes)", len(body))


class _NoPayloadInLog(logging.Filter):
    """Bolt's warning about a request no listener handles quotes the request's fields; keep the
    fact, drop the fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        if message.startswith(("Unhandled request", "A global middleware")):
            record.msg, record.args = "slack: a request no listener handles was ignored", ()
        return True


def reply_payload(reply: Reply) -> dict[str, Any]:
    return {
        "text": fallback_text(reply.message),
        "blocks": message_blocks(reply.message),
        "response_type": "in_channel" if reply.visibility is Visibility.CHANNEL else "ephemeral",
    }


def _is_empty(reply: Reply) -> bool:
    message = reply.message
    return not (message.header or message.text or message.fields or message.buttons)


class SlackBot:
    """The Bolt app for one workspace: its listeners call the core."""

    def __init__(
        self,
        core: CxApp,
        client: WebClient,
        *,
        signing_secret: str | None = None,
        capture_emoji: frozenset[str] = frozenset({"ear"}),
        listener_executor: Executor | None = None,
        work_executor: Executor | None = None,
        verification_clock: Clock | None = None,
    ) -> None:
        self.core, self.client = core, client
        # Commands are acknowledged at once and answered from here: a slow database never makes
        # Slack wait, and Bolt's own listener threads stay free to acknowledge the next request.
        self.work = work_executor or ThreadPoolExecutor(max_workers=2, thread_name_prefix="slack-work")
        self._in_flight = 0
        self._idle = threading.Condition()
        self.capture_emoji = frozenset(e.strip(":") for e in capture_emoji)
        options: dict[str, Any] = {}
        if listener_executor is not None:
            options["listener_executor"] = listener_executor
        self.app = App(
            client=client,
            signing_secret=signing_secret or "",
            token_verification_enabled=False,  # no auth.test at start: it runs on the first request
            request_verification_enabled=False,  # ours below, with a clock, before authorization
            before_authorize=RequestGate(signing_secret, verification_clock),
            **options,
        )
        self.app.logger.addFilter(_NoPayloadInLog())
        self._register()

    # --- wiring -------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app
        app.command("/cx")(self.on_command)
        app.action(re.compile(".*"))(self.on_action)
        app.view(FORM_CALLBACK)(self.on_form_submitted)
        app.shortcut(CAPTURE_SHORTCUT)(self.on_capture_shortcut)
        app.event("reaction_added")(self.on_reaction)
        app.event("message")(self.on_message)
        app.event("app_home_opened")(self.on_home_opened)
        app.error(self.on_error)

    # --- slash command ------------------------------------------------------------------

    def on_command(self, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        text = str(body.get("text", ""))
        user, channel, team = (
            str(body.get("user_id", "")),
            str(body.get("channel_id", "")),
            str(body.get("team_id", "")),
        )
        if text.strip().casefold() in REPORT_WORDS and body.get("trigger_id"):
            form = self.core.form(FormRequest(PLATFORM, team, user, channel, "report"))
            if isinstance(form, Form):
                ack()
                self._open_form(str(body["trigger_id"]), form, channel, body.get("response_url"))
                return
            ack(**reply_payload(form))
            return
        ack()
        trigger = str(body.get("trigger_id") or "") or None
        # A trigger id is unique to one typed command: a redelivered request does nothing twice.
        invocation = Invocation(PLATFORM, team, user, channel, text, trigger_id=trigger, delivery_id=trigger)
        with self._idle:
            self._in_flight += 1
        self.work.submit(self._answer_command, invocation, respond if body.get("response_url") else None)

    def _answer_command(self, invocation: Invocation, respond: Respond | None) -> None:
        try:
            reply = self.core.dispatch(invocation)  # never raises: the core answers every failure
            if reply.join_channel:  # the core accepted a subscription (never decided on the text)
                self._join(invocation.channel_id)
            self._tell(invocation.user_id, invocation.channel_id, reply, respond)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _join(self, channel: str) -> None:
        """A subscribed channel needs the bot in it: for the chart's upload, and for the
        reactions and replies on tips, which Slack only reports from channels the bot is in."""
        try:
            self.client.conversations_join(channel=channel)
        except Exception:  # a private channel: an admin must /invite the bot (README)
            log.warning("slack: could not join %s; invite the bot there", channel, exc_info=True)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every acknowledged command has been answered (shutdown, benchmarks)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def close(self) -> None:
        """Finish the commands being answered."""
        if isinstance(self.work, ThreadPoolExecutor):
            self.work.shutdown(wait=True)

    def _open_form(self, trigger_id: str, form: Form, channel: str, response_url: str | None = None) -> None:
        # The form's answer goes back where the command or button was: its response URL works
        # in any channel, even one the bot was never invited to.
        metadata = json.dumps({"channel": channel, "response_url": response_url or ""})
        self.client.views_open(trigger_id=trigger_id, view=modal_view(form, metadata))

    # --- buttons ------------------------------------------------------------------------

    def on_action(self, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        action = (body.get("actions") or [{}])[0]
        action_id, value = str(action.get("action_id", "")), str(action.get("value", ""))
        user = str((body.get("user") or {}).get("id", ""))
        team = str((body.get("team") or {}).get("id", ""))
        channel = str((body.get("channel") or {}).get("id", "") or (body.get("container") or {}).get("channel_id", ""))
        resolve = RESOLVE_BUTTON.match(action_id)
        if resolve is not None and body.get("trigger_id"):
            form = self.core.form(FormRequest(PLATFORM, team, user, channel, f"resolve:{resolve.group(1)}"))
            if isinstance(form, Form):
                self._open_form(str(body["trigger_id"]), form, channel, body.get("response_url"))
                return
            self._tell(user, channel, form, respond if body.get("response_url") else None)
            return
        message_ts = (body.get("message") or {}).get("ts") or (body.get("container") or {}).get("message_ts")
        reply = self.core.click(
            Click(PLATFORM, team, user, channel, action_id, value, f"{channel}:{message_ts}" if message_ts else None)
        )
        self._tell(user, channel, reply, respond if body.get("response_url") else None)

    def _tell(self, user: str, channel: str, reply: Reply, respond: Respond | None) -> None:
        """A reply to one person after the ack: through the response URL when there is one, else
        as an ephemeral message in the channel, else in their DM with the app."""
        if _is_empty(reply):
            return
        payload = reply_payload(reply)
        try:
            if respond is not None:
                respond(replace_original=False, **payload)
            elif channel and reply.visibility is Visibility.EPHEMERAL:
                self.client.chat_postEphemeral(
                    channel=channel, user=user, text=payload["text"], blocks=payload["blocks"]
                )
            else:
                self.client.chat_postMessage(channel=channel or user, text=payload["text"], blocks=payload["blocks"])
            return
        except Exception:  # e.g. a channel the bot is not in: the person's DM with the app instead
            log.warning("slack: could not answer in %s; trying the person's DM", channel or "-", exc_info=True)
        try:
            self.client.chat_postMessage(channel=user, text=payload["text"], blocks=payload["blocks"])
        except Exception:  # the action itself is saved; only telling the person failed
            log.exception("slack: could not send a reply to the person")

    # --- forms --------------------------------------------------------------------------

    def on_form_submitted(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        form_id = str(view.get("callback_id", "")).removeprefix("cx_form:")
        user = str((body.get("user") or {}).get("id", ""))
        team = str((body.get("team") or {}).get("id", "") or (body.get("user") or {}).get("team_id", ""))
        try:
            metadata = json.loads(view.get("private_metadata") or "{}")
            channel, response_url = str(metadata.get("channel", "")), str(metadata.get("response_url", ""))
        except (ValueError, AttributeError):
            channel = response_url = ""
        values = submitted_values(view.get("state") or {})
        reply = self.core.submit(FormSubmission(PLATFORM, team, user, channel, form_id, values))
        if reply.refused:
            # Shown in the form, under what most needs fixing; the person keeps what they typed.
            inputs = [b["block_id"] for b in view.get("blocks", []) if b.get("type") == "input"]
            field = next((f for f in ("description", "action") if f in inputs), inputs[0] if inputs else None)
            if field is not None:
                ack(response_action="errors", errors={field: (reply.message.text or "")[:150]})
                return
        ack()
        respond = Respond(response_url=response_url) if response_url else None
        self._tell(user, channel, reply, respond)

    # --- observations from messages -----------------------------------------------------

    def on_capture_shortcut(self, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        message = body.get("message") or {}
        channel = str((body.get("channel") or {}).get("id", ""))
        user = str((body.get("user") or {}).get("id", ""))
        team = str((body.get("team") or {}).get("id", ""))
        ts = str(message.get("ts", ""))
        reply = self.core.capture(
            CaptureRequest(
                PLATFORM,
                team,
                user,
                channel,
                f"{channel}:{ts}",
                message.get("text"),
                message.get("user"),
                self._permalink(channel, ts),
            )
        )
        self._tell(user, channel, reply, respond if body.get("response_url") else None)

    def on_reaction(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        if item.get("type") != "message":
            return
        channel, ts = str(item.get("channel", "")), str(item.get("ts", ""))
        user, emoji = str(event.get("user", "")), str(event.get("reaction", ""))
        text = link = None
        if emoji in self.capture_emoji:  # only a capture needs the message itself
            text = self._message_text(channel, ts)
            link = self._permalink(channel, ts)
        reply = self.core.react(
            Reaction(
                PLATFORM,
                str(body.get("team_id", "")),
                user,
                channel,
                f"{channel}:{ts}",
                emoji,
                text,
                event.get("item_user"),
                link,
                delivery_id=body.get("event_id"),
            )
        )
        if reply is not None:
            self._tell(user, channel, reply, None)

    def on_message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        """Thread replies under the bot's posts count as engagement; other messages are ignored."""
        thread, ts = event.get("thread_ts"), event.get("ts")
        if not thread or thread == ts or event.get("subtype") or event.get("bot_id"):
            return
        channel = str(event.get("channel", ""))
        self.core.replied(
            ThreadReply(
                PLATFORM,
                str(body.get("team_id", "")),
                str(event.get("user", "")),
                channel,
                f"{channel}:{thread}",
                f"{channel}:{ts}",
                delivery_id=body.get("event_id"),
            )
        )

    def _message_text(self, channel: str, ts: str) -> str | None:
        """The reacted-to message's text: from the channel's history, or from a thread."""
        try:
            found = self.client.conversations_history(channel=channel, latest=ts, inclusive=True, limit=1)
            messages = [m for m in found.get("messages", []) if m.get("ts") == ts]
            if not messages:  # a reply in a thread: Slack lists the thread's parent first
                found = self.client.conversations_replies(
                    channel=channel, ts=ts, oldest=ts, latest=ts, inclusive=True, limit=2
                )
                messages = [m for m in found.get("messages", []) if m.get("ts") == ts]
            return str(messages[0].get("text", "")) if messages else None
        except Exception:  # gone, or no access: the core says so politely
            log.warning("slack: could not read message %s in %s", ts, channel, exc_info=True)
            return None

    def _permalink(self, channel: str, ts: str) -> str | None:
        try:
            return str(self.client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink") or "") or None
        except Exception:
            log.info("slack: no permalink for %s in %s", ts, channel)
            return None

    # --- App Home -----------------------------------------------------------------------

    def on_home_opened(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        if event.get("tab") != "home":
            return
        user, team = str(event.get("user", "")), str(body.get("team_id", ""))
        sections: list[Message] = []
        # The viewer's touchpoints as text cards: a Block Kit image needs a public URL, which an
        # uploaded picture does not have; /cx journey sends the picture itself.
        for text in ("journey mine", "issues mine", "tip"):
            reply = self.core.dispatch(Invocation(PLATFORM, team, user, "", text))
            sections.append(reply.message)
        self.client.views_publish(user_id=user, view=home_view(sections))

    # --- errors -------------------------------------------------------------------------

    def on_error(self, error: Exception, body: dict[str, Any]) -> BoltResponse | None:
        log.exception(
            "slack: a listener failed on a %s request", body.get("type") or body.get("command"), exc_info=error
        )
        return None


def make_client(token: str, base_url: str | None = None, timeout: int = 10, *, retries: bool = True) -> WebClient:
    """The official client; ``base_url`` (SLACK_API_BASE_URL) for GovSlack-style endpoints and tests.

    ``retries=False`` is for the outbox's sender: the client's own retry after a dropped
    connection would post a message Slack may already have, behind the outbox's back.
    """
    options: dict[str, Any] = {"token": token, "timeout": timeout}
    if not retries:
        options["retry_handlers"] = []
    if base_url:
        options["base_url"] = base_url
    return WebClient(**options)
