"""The Slack adapter, offline: the real slack_bolt App and slack_sdk WebClient against a loopback
Slack Web API stub, with requests signed by slack_sdk's own signature code."""

from __future__ import annotations

import itertools
import json
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_bolt.adapter.socket_mode.internals import run_bolt_app, send_response
from slack_bolt.request import BoltRequest
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adapters.slack.blocks import escape, message_blocks, modal_view, submitted_values
from adapters.slack.bot import SlackBot, make_client
from adapters.slack.sender import SlackSender
from adapters.web.runtime import serve_slack
from bot.app import CxApp
from bot.content import default_content
from bot.forms import Choice, ChoiceGroup, Form, FormField
from bot.messages import Button, Image, Message, MessageField
from bot.outbox import DeliveryError, Post, Target, drain
from bot.scheduler import run_weekly_tips
from bot.services.journey import current_org
from bot.services.tips import subscribe
from bot.store.models import Attachment, Issue, Observation, Outbox, TipEngagement
from tests.conftest import NOW, Clock
from tests.slack_stub import SlackStub
from tests.test_issues import count, issue

SECRET = "test-signing-secret"
ANNA, ERIK, LEILA, FATIMA = "U0NLANNA01", "U0NLERIK02", "U0NLLEIL05", "U0NLFATI07"
TEAM = "T0NL"
TRIGGERS = itertools.count(1)
EMPTY_REPORT = default_content().catalogue.text("sv", "issues.empty")


class InlineExecutor(Executor):
    """Bolt's listeners on the calling thread: dispatch returns when they are done."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


class FixedClock:
    """slack_sdk's clock protocol, for the signature window."""

    def __init__(self, now: float) -> None:
        self.value = now

    def now(self) -> float:
        return self.value


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def stub() -> Iterator[SlackStub]:
    server = SlackStub()
    yield server
    server.close()


@pytest.fixture
def core(loaded: sessionmaker[Session], clock: Clock) -> CxApp:
    return CxApp(loaded, clock=clock, default_language="sv", run_later=lambda task: task(), capture_emoji={"ear", "👂"})


@pytest.fixture
def signature_clock() -> FixedClock:
    return FixedClock(time.time())


@pytest.fixture
def slack(core: CxApp, stub: SlackStub, signature_clock: FixedClock) -> SlackBot:
    client = make_client("xoxb-test", stub.api_url)
    return SlackBot(
        core,
        client,
        signing_secret=SECRET,
        capture_emoji=frozenset({"ear", "👂"}),
        listener_executor=InlineExecutor(),
        work_executor=InlineExecutor(),
        verification_clock=signature_clock,  # type: ignore[arg-type]
    )


def signed(
    raw: str, content_type: str, *, at: float | None = None, secret: str = SECRET, **headers: str
) -> BoltRequest:
    timestamp = str(int(at if at is not None else time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=raw)
    return BoltRequest(
        body=raw,
        headers={
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
            **headers,
        },
    )


def command(slack: SlackBot, text: str, user: str = ANNA, channel: str = "C0NLCXCX007", **extra: str) -> Any:
    raw = urlencode(
        {
            "command": "/cx",
            "text": text,
            "user_id": user,
            "channel_id": channel,
            "team_id": TEAM,
            "trigger_id": f"trig-{next(TRIGGERS)}",  # unique per typed command, as Slack's are
            # The stub's response URL: a command's answer follows its ack there.
            "response_url": slack.client.base_url.replace("/api/", "/respond/cmd"),
            **extra,
        }
    )
    return slack.app.dispatch(signed(raw, "application/x-www-form-urlencoded"))


def interaction(slack: SlackBot, payload: dict[str, Any], stub: SlackStub | None = None) -> Any:
    payload.setdefault("team", {"id": TEAM})
    if stub is not None:
        payload.setdefault("response_url", f"{stub.base}/respond/1")
    raw = urlencode({"payload": json.dumps(payload)})
    return slack.app.dispatch(signed(raw, "application/x-www-form-urlencoded"))


def event(slack: SlackBot, inner: dict[str, Any], event_id: str, **headers: str) -> Any:
    body = {"type": "event_callback", "team_id": TEAM, "api_app_id": "A1", "event_id": event_id, "event": inner}
    return slack.app.dispatch(signed(json.dumps(body), "application/json", **headers))


def response_json(response: Any) -> dict[str, Any]:
    return json.loads(response.body) if response.body else {}


def texts_of(blocks: list[dict[str, Any]]) -> str:
    found = []
    for block in blocks:
        if "text" in block:
            found.append(block["text"]["text"])
        for field in block.get("fields", []):
            found.append(field["text"])
        for element in block.get("elements", []):
            found.append(
                element.get("text", {}).get("text", "")
                if isinstance(element.get("text"), dict)
                else element.get("text", "")
            )
    return "\n".join(found)


def issue_facts(loaded: sessionmaker[Session]) -> tuple[str, str, str, bool, str]:
    with loaded() as session:
        found = session.get(Issue, 1)
        assert found is not None
        return found.source_platform, found.touchpoint.key, found.severity, found.anonymous, found.description


# --- commands ---------------------------------------------------------------------------


def test_a_command_is_acknowledged_at_once_and_answered_privately(slack: SlackBot, stub: SlackStub) -> None:
    response = command(slack, "journey köp")
    assert response.status == 200 and response.body == ""  # the ack: empty, at once
    body = stub.called("response_url")[-1]
    assert body["response_type"] == "ephemeral"
    assert body["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "3. Köp", "emoji": True}}
    assert "Beställningsformulär" in texts_of(body["blocks"])


def test_a_report_in_slack_routes_to_the_owner_team_channel(
    slack: SlackBot, stub: SlackStub, loaded: sessionmaker[Session]
) -> None:
    response = command(slack, "report faktura: Dubbla fakturor <!channel> till kunder i Umeå", user=LEILA)
    assert response.status == 200
    assert "#1" in texts_of(stub.called("response_url")[-1]["blocks"])
    assert issue_facts(loaded)[:2] == ("slack", "monthly-invoice")
    with loaded() as session:
        targets = {
            (r.platform, r.target_ref)
            for r in session.scalars(select(Outbox).where(Outbox.topic == "issue:1:routed", Outbox.platform == "slack"))
        }
    assert ("slack", "C0NLBILL004") in targets  # the billing team's channel


def test_the_word_payload_in_a_command_is_not_mistaken_for_an_interaction(
    slack: SlackBot, loaded: sessionmaker[Session]
) -> None:
    # slack-bolt 1.30 drops such a body as empty (404); the adapter parses it as the form it is.
    response = command(slack, "observe Kunden sa att payload-sidan i appen var seg", user=LEILA)
    assert response.status == 200, response.body
    assert count(loaded, Observation) == 1


# --- forms as modals --------------------------------------------------------------------


def report_modal(stub: SlackStub) -> dict[str, Any]:
    opened = stub.called("views.open")
    assert opened, "a modal was opened"
    view = opened[-1]["view"]
    return json.loads(view) if isinstance(view, str) else view


def test_report_without_text_opens_a_modal_and_its_submission_reports(
    slack: SlackBot, stub: SlackStub, loaded: sessionmaker[Session]
) -> None:
    response = command(slack, "report", user=LEILA)
    assert response.status == 200 and response.body == ""
    view = report_modal(stub)
    assert view["callback_id"] == "cx_form:report" and view["title"]["text"] == "Rapportera ett problem"
    touchpoint = view["blocks"][1]["element"]
    assert touchpoint["type"] == "static_select"
    groups = [g["label"]["text"] for g in touchpoint["option_groups"]]
    assert groups[:3] == ["Medvetenhet", "Övervägande", "Köp"]
    submission = {
        "type": "view_submission",
        "user": {"id": LEILA},
        "view": {
            **view,
            "state": {
                "values": {
                    "touchpoint": {"touchpoint": {"type": "static_select", "selected_option": {"value": "mobile-app"}}},
                    "description": {"description": {"type": "plain_text_input", "value": "Appen visar fel saldo"}},
                    "severity": {"severity": {"type": "static_select", "selected_option": {"value": "high"}}},
                    "impact": {"impact": {"type": "plain_text_input", "value": None}},
                    "anonymous": {"anonymous": {"type": "checkboxes", "selected_options": [{"value": "true"}]}},
                }
            },
        },
    }
    answer = interaction(slack, submission)
    assert answer.status == 200 and answer.body == ""
    assert issue_facts(loaded)[1:] == ("mobile-app", "high", True, "Appen visar fel saldo")
    # The answer goes to the command's response URL, carried through the form: it works in any
    # channel, also one the bot was never invited to.
    answered = stub.called("response_url")[-1]
    assert answered["response_type"] == "ephemeral" and "#1" in texts_of(answered["blocks"])


def test_a_refused_submission_keeps_the_modal_open_with_the_reason(
    slack: SlackBot, stub: SlackStub, loaded: sessionmaker[Session]
) -> None:
    command(slack, "report", user=LEILA)
    view = report_modal(stub)
    state = {
        "values": {
            "touchpoint": {"touchpoint": {"type": "static_select", "selected_option": {"value": "chat"}}},
            "description": {"description": {"type": "plain_text_input", "value": "   "}},
        }
    }
    answer = interaction(slack, {"type": "view_submission", "user": {"id": LEILA}, "view": {**view, "state": state}})
    body = response_json(answer)
    assert body["response_action"] == "errors"
    assert body["errors"]["description"] == EMPTY_REPORT[:150]  # under the field to fix
    assert count(loaded, Issue) == 0


def test_buttons_acknowledge_and_resolve_through_a_modal(
    slack: SlackBot, stub: SlackStub, loaded: sessionmaker[Session]
) -> None:
    command(slack, "report faktura: Dubbla fakturor", user=LEILA)
    message = {"ts": "1700000000.000001"}
    ack = interaction(
        slack,
        {
            "type": "block_actions",
            "user": {"id": FATIMA},
            "channel": {"id": "C0NLBILL004"},
            "message": message,
            "trigger_id": "trig-2",
            "actions": [{"action_id": "issue:1:ack", "value": "", "type": "button"}],
        },
        stub,
    )
    assert ack.status == 200
    assert issue(loaded).status == "acknowledged"
    told = stub.called("response_url")
    assert told and told[-1]["response_type"] == "ephemeral" and told[-1]["replace_original"] is False
    interaction(
        slack,
        {
            "type": "block_actions",
            "user": {"id": FATIMA},
            "channel": {"id": "C0NLBILL004"},
            "message": message,
            "trigger_id": "trig-3",
            "actions": [{"action_id": "issue:1:resolve", "value": "", "type": "button"}],
        },
        stub,
    )
    view = report_modal(stub)
    assert view["callback_id"] == "cx_form:resolve:1"
    state = {
        "values": {
            "cause": {"cause": {"type": "static_select", "selected_option": {"value": "system"}}},
            "action": {"action": {"type": "plain_text_input", "value": "Dubblettkörningen stoppad"}},
        }
    }
    interaction(slack, {"type": "view_submission", "user": {"id": FATIMA}, "view": {**view, "state": state}})
    resolved = issue(loaded)
    assert (resolved.status, resolved.root_cause, resolved.action_taken) == (
        "resolved",
        "system",
        "Dubblettkörningen stoppad",
    )


# --- observations from Slack messages ---------------------------------------------------


def test_the_message_shortcut_saves_an_observation(
    slack: SlackBot, stub: SlackStub, loaded: sessionmaker[Session]
) -> None:
    payload = {
        "type": "message_action",
        "callback_id": "cx_capture",
        "trigger_id": "trig-4",
        "user": {"id": LEILA},
        "channel": {"id": "C0NLKUND006"},
        "message": {"ts": "1700000100.000200", "text": "Kunden väntade 40 minuter i telefonkön", "user": ANNA},
    }
    assert interaction(slack, payload, stub).status == 200
    with loaded() as session:
        saved = session.scalars(select(Observation)).one()
    assert saved.text == "Kunden väntade 40 minuter i telefonkön"
    assert saved.source_link == "https://nordljus.slack.com/archives/C0NLKUND006/p1700000100000200"


def test_a_capture_reaction_delivered_three_times_saves_one_observation(
    slack: SlackBot, stub: SlackStub, loaded: sessionmaker[Session]
) -> None:
    stub.messages[("C0NLKUND006", "1700000200.000300")] = {
        "ts": "1700000200.000300",
        "text": "Kunden förstod inte fakturan",
        "user": ANNA,
    }
    reaction = {
        "type": "reaction_added",
        "user": LEILA,
        "reaction": "ear",
        "item_user": ANNA,
        "item": {"type": "message", "channel": "C0NLKUND006", "ts": "1700000200.000300"},
        "event_ts": "1700000201.000000",
    }
    stub.messages[("C0NLKUND006", "1700000250.000400")] = {
        "ts": "1700000250.000400",
        "thread_ts": "1700000200.000300",
        "text": "Och den kom två gånger",
        "user": ANNA,
    }
    assert event(slack, reaction, "Ev01").status == 200
    assert (
        event(slack, reaction, "Ev01", **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}).status
        == 200
    )
    assert (
        event(slack, reaction, "Ev01", **{"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"}).status
        == 200
    )
    with loaded() as session:
        saved = session.scalars(select(Observation)).all()
    assert [o.text for o in saved] == ["Kunden förstod inte fakturan"]
    # A new event (another event_id) for the same message is not a new observation either.
    event(slack, {**reaction, "user": FATIMA}, "Ev02")
    assert count(loaded, Observation) == 1
    # A reply in a thread is found too (Slack lists the thread's parent first).
    in_thread = {**reaction, "item": {"type": "message", "channel": "C0NLKUND006", "ts": "1700000250.000400"}}
    event(slack, in_thread, "Ev03")
    with loaded() as session:
        texts = sorted(o.text for o in session.scalars(select(Observation)))
    assert texts == ["Kunden förstod inte fakturan", "Och den kom två gånger"]


# --- tips: posted by the sender, engagement from reactions and thread replies -------------


def test_a_tip_posted_to_slack_counts_reactions_and_thread_replies(
    slack: SlackBot, stub: SlackStub, loaded: sessionmaker[Session], clock: Clock
) -> None:
    with loaded.begin() as session:
        org = current_org(session)
        assert org is not None
        subscribe(session, org, "slack", "C0NLALL000", ("tips",), 1, NOW)
    assert run_weekly_tips(loaded, clock) == 1
    sender = SlackSender(slack.client, loaded, pace=0)
    delivered = drain(loaded, "slack", sender, clock)
    assert [p.idempotency_key for p in delivered if p.idempotency_key.startswith("tip:")] == [
        "tip:slack:C0NLALL000:2026-W48"
    ]
    posted = next(p for p in stub.called("chat.postMessage") if p["channel"] == "C0NLALL000")
    assert posted["channel"] == "C0NLALL000" and "Diskutera" in json.dumps(posted["blocks"], ensure_ascii=False)
    with loaded() as session:
        ref = session.scalar(select(Outbox.platform_ref).where(Outbox.topic.like("tip:%")))
    assert ref is not None
    channel, ts = ref.split(":")
    event(
        slack,
        {
            "type": "reaction_added",
            "user": LEILA,
            "reaction": "+1",
            "item": {"type": "message", "channel": channel, "ts": ts},
        },
        "Ev10",
    )
    reply = {
        "type": "message",
        "user": ERIK,
        "channel": channel,
        "ts": "1700009999.000001",
        "thread_ts": ts,
        "text": "Bra fråga!",
    }
    event(slack, reply, "Ev11")
    event(slack, reply, "Ev11", **{"X-Slack-Retry-Num": "1"})
    with loaded() as session:
        kinds = sorted(e.kind for e in session.scalars(select(TipEngagement)))
    assert kinds == ["reaction", "reply"]


# --- signatures ---------------------------------------------------------------------------


def test_forged_and_stale_requests_are_refused_before_anything_happens(
    slack: SlackBot, stub: SlackStub, loaded: sessionmaker[Session], signature_clock: FixedClock
) -> None:
    raw = urlencode(
        {"command": "/cx", "text": "report faktura: fel", "user_id": LEILA, "channel_id": "C1", "team_id": TEAM}
    )
    forged = slack.app.dispatch(signed(raw, "application/x-www-form-urlencoded", secret="not-the-secret"))
    assert forged.status == 401
    stale = slack.app.dispatch(signed(raw, "application/x-www-form-urlencoded", at=signature_clock.value - 301))
    assert stale.status == 401
    assert stub.called("auth.test") == []  # a refused request never reaches authorization
    edge = slack.app.dispatch(signed(raw, "application/x-www-form-urlencoded", at=signature_clock.value - 299))
    assert edge.status == 200  # inside the five minutes
    assert count(loaded, Issue) == 1


# --- App Home -------------------------------------------------------------------------------


def test_app_home_shows_my_touchpoints_my_issues_and_this_weeks_tip(slack: SlackBot, stub: SlackStub) -> None:
    command(slack, "report faktura: Dubbla fakturor", user=LEILA)
    event(slack, {"type": "app_home_opened", "user": LEILA, "tab": "home", "channel": "D1"}, "Ev20")
    published = stub.called("views.publish")
    assert published and published[-1]["user_id"] == LEILA
    view = published[-1]["view"]
    view = json.loads(view) if isinstance(view, str) else view
    text = texts_of(view["blocks"])
    assert view["type"] == "home" and "Dubbla fakturor" in text and "CX-råd" in text
    # Her touchpoints as text cards (a Block Kit image would need a public URL).
    assert "Dina kontaktpunkter" in text and "Kundtjänst per telefon" in text and "inga siffror" in text


# --- HTTP mode and Socket Mode --------------------------------------------------------------


def test_http_mode_serves_signed_requests_over_a_real_socket(
    slack: SlackBot, stub: SlackStub, loaded: sessionmaker[Session]
) -> None:
    server = serve_slack(slack.app)
    try:
        url = f"http://127.0.0.1:{server.port}/slack/events"
        raw = urlencode(
            {
                "command": "/cx",
                "text": "report faktura: Fel moms",
                "user_id": LEILA,
                "channel_id": "C1",
                "team_id": TEAM,
                "response_url": f"{stub.base}/respond/http",
            }
        )

        def post(request: BoltRequest) -> tuple[int, str]:
            headers = {k: v[0] for k, v in request.headers.items()}
            http = urllib.request.Request(url, data=raw.encode(), headers=headers, method="POST")
            try:
                with urllib.request.urlopen(http, timeout=10) as answer:
                    return answer.status, answer.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()

        status, body = post(signed(raw, "application/x-www-form-urlencoded"))
        assert status == 200 and body == ""
        assert stub.called("response_url")[-1]["response_type"] == "ephemeral"
        assert post(signed(raw, "application/x-www-form-urlencoded", secret="wrong"))[0] == 401
        assert count(loaded, Issue) == 1
    finally:
        server.stop()


class FakeSocketModeClient(BaseSocketModeClient):
    def __init__(self) -> None:
        self.logger = logging.getLogger("fake-socket")
        self.message_listeners: list[Any] = []
        self.socket_mode_request_listeners: list[Any] = []
        self.sent: list[dict[str, Any]] = []

    def send_message(self, message: str) -> None:
        self.sent.append(json.loads(message))


def test_socket_mode_envelopes_go_through_bolts_socket_path(
    slack: SlackBot, stub: SlackStub, loaded: sessionmaker[Session]
) -> None:
    socket = FakeSocketModeClient()
    envelope = SocketModeRequest(
        type="slash_commands",
        envelope_id="env-1",
        payload={
            "command": "/cx",
            "text": "whoami",
            "user_id": LEILA,
            "channel_id": "C1",
            "team_id": TEAM,
            "response_url": f"{stub.base}/respond/socket",
        },
        accepts_response_payload=True,
    )
    send_response(socket, envelope, run_bolt_app(slack.app, envelope), time.time())
    assert socket.sent == [{"envelope_id": "env-1"}]  # acknowledged at once over the socket
    assert "Leila" in texts_of(stub.called("response_url")[-1]["blocks"])
    stub.messages[("C0NLKUND006", "1700000300.000100")] = {
        "ts": "1700000300.000100",
        "text": "Chatten svarade inte",
        "user": ANNA,
    }
    inner = {
        "type": "reaction_added",
        "user": LEILA,
        "reaction": "ear",
        "item": {"type": "message", "channel": "C0NLKUND006", "ts": "1700000300.000100"},
    }
    for attempt in (None, 1, 2):  # Slack retries over the socket too
        request = SocketModeRequest(
            type="events_api",
            envelope_id=f"env-ev-{attempt}",
            payload={"type": "event_callback", "team_id": TEAM, "event_id": "Ev30", "event": inner},
            retry_attempt=attempt,
        )
        send_response(socket, request, run_bolt_app(slack.app, request), time.time())
    assert count(loaded, Observation) == 1


# --- the outbox sender ------------------------------------------------------------------


def post_of(message: Message, edit_ref: str | None = None, target: str = "C0NLBILL004") -> Post:
    return Post(1, Target("slack", "channel", target), message, "k1", 0, edit_ref)


def test_the_sender_posts_edits_and_uploads_the_chart(
    slack: SlackBot, stub: SlackStub, loaded: sessionmaker[Session]
) -> None:
    with loaded.begin() as session:
        session.add(
            Attachment(key="chart:1", filename="cx.png", content_type="image/png", data=b"\x89PNG...", created_at=NOW)
        )
    sleeps: list[float] = []
    sender = SlackSender(slack.client, loaded, pace=1.0, sleep=sleeps.append, monotonic=lambda: 100.0)
    message = Message(header="CX den här veckan", text="Hej", image=Image(alt="Trenddiagram", attachment="chart:1"))
    ref = sender.send(post_of(message))
    assert ref is not None and re.fullmatch(r"C0NLBILL004:\d{10}\.\d{6}", ref)
    assert [c["method"] for c in stub.calls][-3:] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    assert stub.called("upload")[-1] == b"\x89PNG..."
    edited = sender.send(post_of(Message(text="Uppdaterad"), edit_ref=ref))
    assert edited == ref and stub.called("chat.update")[-1]["ts"] == ref.split(":")[1]
    assert sleeps == [1.0]  # the second post to the same channel waited its turn (one a second)
    dm = sender.send(Post(2, Target("slack", "user", LEILA), Message(text="Till dig"), "k2", 0))
    assert dm is not None and dm.startswith("D0NLLEIL05:")


@pytest.mark.parametrize(
    ("status", "headers", "error", "retryable", "retry_after", "maybe_delivered"),
    [
        (429, {"Retry-After": "7"}, "ratelimited", True, 7.0, False),
        (500, {}, "internal_error", True, None, True),
        (200, {}, "channel_not_found", False, None, False),
        (200, {}, "not_in_channel", False, None, False),
        # Slack: "some aspect of the operation may have succeeded": look before posting again.
        (200, {}, "fatal_error", True, None, True),
        (200, {}, "internal_error", True, None, True),
    ],
)
def test_the_sender_turns_slack_errors_into_the_outboxs_retry_decisions(
    slack: SlackBot,
    stub: SlackStub,
    loaded: sessionmaker[Session],
    status: int,
    headers: dict[str, str],
    error: str,
    retryable: bool,
    retry_after: float | None,
    maybe_delivered: bool,
) -> None:
    stub.fail_next("chat.postMessage", status, headers, error)
    sender = SlackSender(slack.client, loaded, pace=0)
    with pytest.raises(DeliveryError) as raised:
        sender.send(post_of(Message(text="Hej")))
    decision = (raised.value.retryable, raised.value.retry_after, raised.value.maybe_delivered)
    assert decision == (retryable, retry_after, maybe_delivered)
    assert sender.send(post_of(Message(text="Hej"))) is not None  # the next attempt goes through


# --- Block Kit rendering ------------------------------------------------------------------


def test_user_text_can_never_ping_or_link() -> None:
    text = "Kolla <!channel> och <!here|here> och <@U123> och <https://evil.example|klicka> & mer"
    blocks = message_blocks(
        Message(text=text, fields=[MessageField(label="<!everyone>", value="<@U9>")], context=["<!here>"])
    )
    rendered = json.dumps(blocks)
    for dangerous in ("<!channel>", "<!here", "<@U123>", "<@U9>", "<!everyone>", "<https://"):
        assert dangerous not in rendered, dangerous
    assert escape("a < b & c > d") == "a &lt; b &amp; c &gt; d"


def test_slack_limits_are_kept() -> None:
    message = Message(
        header="H" * 200,
        text="\n".join(f"rad {i} " + "x" * 200 for i in range(40)),
        fields=[MessageField(label=f"f{i}", value="v" * 2500) for i in range(23)],
        context=[f"c{i}" for i in range(14)],
        buttons=[Button(action_id=f"b:{i}", label="L" * 100) for i in range(30)],
    )
    blocks = message_blocks(message)
    assert len(blocks[0]["text"]["text"]) == 150
    sections = [b for b in blocks if b["type"] == "section" and "text" in b]
    assert len(sections) >= 3 and all(len(b["text"]["text"]) <= 3000 for b in sections)
    field_sections = [b for b in blocks if "fields" in b]
    assert [len(b["fields"]) for b in field_sections] == [10, 10, 3]
    assert all(len(f["text"]) <= 2000 for b in field_sections for f in b["fields"])
    context = next(b for b in blocks if b["type"] == "context")
    assert len(context["elements"]) == 10
    actions = [b for b in blocks if b["type"] == "actions"]
    assert [len(a["elements"]) for a in actions] == [25, 5]
    assert all(len(e["text"]["text"]) <= 75 for a in actions for e in a["elements"])
    many = message_blocks(
        Message(text="\n\n".join("y" * 2900 for _ in range(60)), buttons=[Button(action_id="a", label="A")])
    )
    assert len(many) <= 50 and many[-1]["type"] == "actions"


def test_forms_render_as_modals_and_submissions_read_back() -> None:
    form = Form(
        "report",
        "Rapportera ett mycket långt problem här",
        "Skicka",
        (
            FormField(
                "tp",
                "Kontaktpunkt",
                "select",
                groups=(ChoiceGroup("Köp", (Choice("a", "A"),)), ChoiceGroup("Nyttja", (Choice("b", "B"),))),
            ),
            FormField(
                "sev",
                "Allvar",
                "select",
                groups=(ChoiceGroup("", (Choice("low", "låg"), Choice("high", "hög"))),),
                initial="high",
            ),
            FormField("anon", "Anonymt", "checkbox", required=False),
        ),
    )
    view = modal_view(form, "{}")
    assert len(view["title"]["text"]) <= 24
    assert [g["label"]["text"] for g in view["blocks"][0]["element"]["option_groups"]] == ["Köp", "Nyttja"]
    assert view["blocks"][1]["element"]["initial_option"]["value"] == "high"
    state = {
        "values": {
            "tp": {"tp": {"type": "static_select", "selected_option": {"value": "b"}}},
            "sev": {"sev": {"type": "static_select", "selected_option": None}},
            "anon": {"anon": {"type": "checkboxes", "selected_options": []}},
        }
    }
    assert submitted_values(state) == {"tp": "b", "sev": "", "anon": "false"}


def test_running_slack_without_tokens_says_what_is_missing(tmp_path: Any) -> None:
    from tests.test_cli import cxbot

    env = {"PATH": "/usr/bin:/bin", "CXBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "HOME": str(tmp_path)}
    missing = cxbot("run", "--adapter", "slack", env=env, cwd=tmp_path)
    assert (
        missing.returncode == 1
        and missing.stderr.strip() == "cxbot: SLACK_BOT_TOKEN is not set (xoxb-…; see README, Slack setup)"
    )
    http = cxbot("run", "--adapter", "slack", "--slack-http", env={**env, "SLACK_BOT_TOKEN": "xoxb-1"}, cwd=tmp_path)
    assert http.stderr.strip() == "cxbot: HTTP mode needs SLACK_SIGNING_SECRET to verify that requests come from Slack"


def test_a_routed_issue_is_updated_in_place_when_it_changes(
    slack: SlackBot, stub: SlackStub, loaded: sessionmaker[Session], clock: Clock
) -> None:
    command(slack, "report faktura: Dubbla fakturor", user=LEILA)
    sender = SlackSender(slack.client, loaded, pace=0)
    drain(loaded, "slack", sender, clock)
    routed = next(p for p in stub.called("chat.postMessage") if p["channel"] == "C0NLBILL004")
    assert "issue:1:ack" in json.dumps(routed["blocks"])
    with loaded() as session:
        ref = session.scalar(
            select(Outbox.platform_ref).where(Outbox.topic == "issue:1:routed", Outbox.target_ref == "C0NLBILL004")
        )
    assert ref is not None
    channel, ts = ref.split(":")
    interaction(
        slack,
        {
            "type": "block_actions",
            "user": {"id": FATIMA},
            "channel": {"id": channel},
            "message": {"ts": ts},
            "actions": [{"action_id": "issue:1:ack", "value": "", "type": "button"}],
        },
        stub,
    )
    drain(loaded, "slack", sender, clock)
    updates = [u for u in stub.called("chat.update") if u["channel"] == channel]
    assert updates and updates[-1]["ts"] == ts
    assert "issue:1:ack" not in json.dumps(updates[-1]["blocks"])  # acknowledged: no Acknowledge button


def test_the_manifest_declares_what_the_adapter_uses() -> None:
    from pathlib import Path

    import yaml

    from adapters.slack.bot import CAPTURE_SHORTCUT

    manifest = yaml.safe_load((Path(__file__).parent.parent / "slack" / "manifest.yaml").read_text(encoding="utf-8"))
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/cx"]
    assert [s["callback_id"] for s in manifest["features"]["shortcuts"]] == [CAPTURE_SHORTCUT]
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"reaction_added", "app_home_opened", "message.channels"} <= events
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "files:write", "reactions:read", "channels:history", "im:write"} <= scopes
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True


def test_cxbot_run_serves_slack_over_http_end_to_end(bare_engine: Any, tmp_path: Any, stub: SlackStub) -> None:
    """The composition root as a user runs it: `cxbot run --adapter slack --slack-http`, the
    demo data, a signed /cx command over HTTP, the answer at the response URL, and the outbox
    drained to the Slack stub."""
    import socket
    import subprocess

    from tests.test_console import cli_env, start_cxbot

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **cli_env(bare_engine, tmp_path),
        "SLACK_BOT_TOKEN": "xoxb-e2e",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_BASE_URL": stub.api_url,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    process = start_cxbot(
        tmp_path, env, "run", "--adapter", "slack", "--slack-http", "--port", str(port), "--demo", "--no-clock"
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, process.communicate()
                time.sleep(0.2)
        raw = urlencode(
            {
                "command": "/cx",
                "text": "whoami",
                "user_id": LEILA,
                "channel_id": "C1",
                "team_id": TEAM,
                "response_url": f"{stub.base}/respond/e2e",
            }
        )
        request = signed(raw, "application/x-www-form-urlencoded")
        http = urllib.request.Request(
            f"http://127.0.0.1:{port}/slack/events",
            data=raw.encode(),
            headers={k: v[0] for k, v in request.headers.items()},
            method="POST",
        )
        with urllib.request.urlopen(http, timeout=10) as answer:
            assert answer.status == 200
        deadline = time.time() + 20
        while time.time() < deadline and not (stub.called("response_url") and stub.called("chat.postMessage")):
            time.sleep(0.1)
        assert "Leila" in texts_of(stub.called("response_url")[-1]["blocks"])
        # The demo's journey-loaded notices and issues went out through the outbox to Slack.
        assert stub.called("chat.postMessage"), [c["method"] for c in stub.calls]
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def test_subscribing_a_channel_joins_it(slack: SlackBot, stub: SlackStub, loaded: sessionmaker[Session]) -> None:
    command(slack, "subscribe digest", user="U0NLELIN09", channel="C0NLALL000")
    assert stub.called("conversations.join")[-1]["channel"] == "C0NLALL000"
    command(slack, "subscribe digest", user=LEILA, channel="C0NLOTHER1")  # not an admin: refused
    assert [c["channel"] for c in stub.called("conversations.join")] == ["C0NLALL000"]


@pytest.mark.parametrize(
    ("user", "text"),
    [
        ("U0NOBODY99", "subscribers"),  # not in the journey file, not even the command
        ("U0NOBODY99", "prenumererax"),
        ("U0NOBODY99", "subscribe digest"),  # the command, refused: unknown person
        ("U0NOBODY99", "prenumerera alla"),
        (LEILA, "subscribe all"),  # known, not an admin
        ("U0NLELIN09", "subscribers"),  # an admin, but no such command: the help
        ("U0NLELIN09", "subscribe everything"),  # an admin, refused: no such kind
        ("U0NLELIN09", "prenumererax digest"),
    ],
)
def test_the_bot_joins_a_channel_only_when_the_core_accepted_a_subscription(
    slack: SlackBot, stub: SlackStub, user: str, text: str
) -> None:
    command(slack, text, user=user, channel="C0NLSECRET")
    assert stub.called("conversations.join") == []
    assert stub.called("response_url")  # answered all the same
    command(slack, "subscribe digest", user="U0NLELIN09", channel="C0NLSECRET")  # the real thing joins
    assert [c["channel"] for c in stub.called("conversations.join")] == ["C0NLSECRET"]


def test_an_answer_that_cannot_go_to_the_channel_goes_to_the_dm(slack: SlackBot, stub: SlackStub) -> None:
    stub.fail_next("chat.postEphemeral", 200, error="channel_not_found")
    interaction(
        slack,
        {
            "type": "block_actions",
            "user": {"id": LEILA},
            "channel": {"id": "C0NLSECRET"},
            "actions": [{"action_id": "journey:stage:loyalty", "value": "", "type": "button"}],
        },
    )
    assert stub.called("chat.postMessage")[-1:] and stub.called("chat.postMessage")[-1]["channel"] == LEILA, [
        c["method"] for c in stub.calls
    ]


def test_a_command_delivered_twice_reports_once(
    slack: SlackBot, stub: SlackStub, loaded: sessionmaker[Session]
) -> None:
    raw = urlencode(
        {
            "command": "/cx",
            "text": "report faktura: Dubbla fakturor",
            "user_id": LEILA,
            "channel_id": "C1",
            "team_id": TEAM,
            "trigger_id": "trig-same",
            "response_url": f"{stub.base}/respond/twice",
        }
    )
    first = slack.app.dispatch(signed(raw, "application/x-www-form-urlencoded"))
    again = slack.app.dispatch(signed(raw, "application/x-www-form-urlencoded", **{"X-Slack-Retry-Num": "1"}))
    assert first.status == again.status == 200
    assert count(loaded, Issue) == 1
    assert len(stub.called("response_url")) == 1  # the second delivery is answered by nothing
