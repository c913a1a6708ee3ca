"""Bad input, catalogued: commands, buttons, files and HTTP requests that are empty, huge, not
UTF-8, invisible, right-to-left, SQL-looking, pinging, forged or simply wrong. Each gets a clear
reply (never the internal-error apology), leaves a log line, and changes nothing already stored.
The parsers are also fuzzed with hypothesis."""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_bolt.request import BoltRequest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.app import CxApp, parse_command
from bot.content import default_content
from bot.domain.issues import parse_report
from bot.domain.journey_map import parse_journey
from bot.messages import Click, Invocation
from bot.services.journey import current_org
from bot.services.kpi_import import ImportFileError, import_aggregates, import_answers
from bot.store.models import Base
from tests.conftest import NOW

APOLOGY = {default_content().catalogue.text(lang, "common.internal_error") for lang in ("sv", "en")}
ZW, RLO = "\u200b\u200c\u200d\ufeff", "\u202e"


def snapshot(loaded: sessionmaker[Session]) -> dict[str, int]:
    """Row counts of every table: what "nothing stored changed" is checked against."""
    with loaded() as session:
        return {t.name: session.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables}


COMMANDS: list[tuple[str, str, str]] = [
    # (who, what they type, what the reply starts with or contains)
    ("leila", "", "cxbot"),
    ("leila", "/cx", "cxbot"),
    ("leila", "/cx " + "x" * 100_000, "4000"),
    ("leila", "/cx report", "Beskriv gärna vad som hände"),
    ("leila", "/cx report faktura:", "Beskriv gärna vad som hände"),
    ("leila", "/cx report faktura: " + "y" * 3500, "3500"),
    ("leila", "/cx report faktura: fel | impact: " + "z" * 600, "600"),
    ("leila", f"/cx report {ZW}: {ZW}", "Beskriv gärna vad som hände"),  # invisible text is no text
    ("leila", "/cx issue", "–"),
    ("leila", "/cx issue abc", "abc"),
    ("leila", "/cx issue 99999", "99999"),
    ("leila", "/cx issue -1", "-1"),
    ("leila", "/cx issue 1; DROP TABLE issue; --", "”1;” är inget tal"),
    ("leila", "/cx issue 1 resolve", "1"),
    ("leila", "/cx issues team '; DELETE FROM person; --", "DELETE"),
    ("leila", "/cx journey Robert'); DROP TABLE stage;--", "DROP"),
    ("leila", f"/cx journey {RLO}köp", "Köp"),  # the invisible override is ignored
    ("leila", "/cx journey <!channel>", "Det finns inget steg"),
    ("leila", "/cx lang fi", "fi"),
    ("leila", "/cx tip 11", "11"),
    ("leila", "/cx tip 0", "0"),
    ("leila", "/cx tip -3", "-3"),
    ("leila", "/cx subscribe digest", "administratör"),
    ("leila", "/cx erase anna", "administratör"),
    ("leila", "/cx kpi record nps 10 loyalty", "administratör"),
    ("leila", "/cx digest preview", "administratör"),
    ("elin", "/cx subscribe everything", "everything"),
    ("elin", "/cx erase nobody", "nobody"),
    ("elin", "/cx kpi record nps 1e309 loyalty", "”1e309” är inget tal"),
    ("elin", "/cx kpi record nps -inf loyalty", "”-inf” är inget tal"),
    ("elin", "/cx kpi record nps 101 loyalty", "kan inte vara"),
    ("elin", "/cx kpi record csat 50 loyalty 2026-W00", "”2026-W00” finns inte"),
    ("elin", "/cx digest preview 9999-W99", "utanför veckorna"),
    ("leila", "/cx observe", "Berätta gärna"),
    ("leila", "/cx observe " + "o" * 5000, "4000"),
    ("leila", "/cx observation 12345", "12345"),
    ("leila", "/cx observations week 2026-W54", "2026-W54"),
    ("leila", "/cx kpi månen", "Det finns inget steg"),
    ("nobody", "/cx report faktura: fel", "U0NOBODY"),
    ("nobody", "/cx whoami", "U0NOBODY"),
    ("leila", "/cx nonsense @everyone @here", "nonsense"),
]
USERS = {"leila": "U0NLLEIL05", "elin": "U0NLELIN09", "nobody": "U0NOBODY"}


@pytest.mark.parametrize(("who", "text", "expected"), COMMANDS, ids=[f"{i:02d}" for i in range(len(COMMANDS))])
def test_bad_commands_get_a_clear_reply_and_change_nothing(
    app: CxApp, loaded: sessionmaker[Session], caplog: pytest.LogCaptureFixture, who: str, text: str, expected: str
) -> None:
    caplog.set_level(logging.INFO)
    before = snapshot(loaded)
    reply = app.dispatch(Invocation("slack", "T", USERS[who], "C1", text))
    shown = reply.message.model_dump_json()
    assert (reply.message.text or "") not in APOLOGY
    assert expected in shown or expected in (reply.message.header or ""), shown[:300]
    assert "<!channel>" not in shown and "@everyone" not in shown.replace("@\u200beveryone", "")
    assert snapshot(loaded) == before
    assert caplog.records or not reply.refused, "a log line for every refusal"


CLICKS = [
    ("U0NLLEIL05", "issue:1:ack"),  # not hers to acknowledge
    ("U0NLLEIL05", "issue:1:resolve"),
    ("U0NLLEIL05", "issue:abc:ack"),
    ("U0NLLEIL05", "issue:999:ack"),
    ("U0NLLEIL05", "no-such-action"),
    ("U0NLLEIL05", ""),
    ("U0NLLEIL05", "report:forged-token:tp:chat"),
    ("U0NLLEIL05", "issue:1:" + "x" * 300),
    ("U0NOBODY", "issue:1:ack"),
]


@pytest.mark.parametrize(("user", "action"), CLICKS, ids=[f"{i:02d}" for i in range(len(CLICKS))])
def test_wrong_buttons_and_wrong_people_change_nothing(
    app: CxApp, loaded: sessionmaker[Session], caplog: pytest.LogCaptureFixture, user: str, action: str
) -> None:
    app.dispatch(Invocation("slack", "T", "U0NLANNA01", "C1", "/cx report faktura: Dubbla fakturor"))
    caplog.set_level(logging.INFO)
    before = snapshot(loaded)
    reply = app.click(Click("slack", "T", user, "C1", action))
    assert reply.refused and (reply.message.text or "") not in APOLOGY
    assert snapshot(loaded) == before
    assert caplog.records


FILES: list[tuple[bytes, str]] = [
    (b"", "the file is empty"),
    (b"   \n\n", "the file is empty"),
    (b"\xff\xfe\x00a\x00b", "not valid UTF-8"),
    (b"answered_at,metric,score,stage\n2026-11-23T09:00:00,nps,9,k\xf6p\n", "not valid UTF-8"),
    (b"a,b,c\n1,2,3\n", "wrong columns"),
    (b'answered_at,metric,score,stage\n"2026-11-23,nps,9,usage\n', "malformed CSV"),
    (b"answered_at,metric,score,stage\n2026-11-23T09:00:00,nps,11,usage\n", "outside 0"),
    (b"answered_at,metric,score,stage\nyesterday,nps,9,usage\n", "not an ISO 8601 time"),
    (b"answered_at,metric,score,stage\n2026-11-23T09:00:00,happiness,9,usage\n", "unknown metric"),
    (b"answered_at,metric,score,stage\n2026-11-23T09:00:00,nps,9,moon\n", "unknown stage"),
    (b"answered_at,metric,score,stage\n2026-11-23T09:00:00,nps,9.5,usage\n", "not a whole number"),
    (b"answered_at,metric,score,stage\n2026-11-23T09:00:00,nps,'; DROP TABLE survey_response;--,usage\n", "whole"),
    (b"answered_at,metric,score,stage\n2026-11-23T09:00:00,nps,9\n", "fields"),
]


@pytest.mark.parametrize(("raw", "reason"), FILES, ids=[f"{i:02d}" for i in range(len(FILES))])
def test_bad_kpi_files_are_refused_with_the_line_and_reason(
    loaded: sessionmaker[Session], raw: bytes, reason: str
) -> None:
    before = snapshot(loaded)
    with loaded.begin() as session:
        org = current_org(session)
        assert org is not None
        try:
            result = import_answers(session, org, raw, "bad.csv")
        except ImportFileError as exc:
            assert reason in exc.reason and exc.line >= 1
        else:
            assert result.refused and any(reason in e.reason for e in result.errors), result.errors
            session.rollback()
    assert snapshot(loaded) == before


JOURNEYS = [
    ("", "empty"),
    ("null", "empty"),
    ("~\n", "empty"),
    ("\x08", "malformed YAML"),
    ("org:\n  name: \x00\n", "malformed YAML"),
    ("org: [", "YAML"),
    ("org:\n  name: X\nstages: []\n", "stages"),
    ("org:\n  name: X\n  name: Y\nstages:\n  - key: a\n    name: {sv: A, en: A}\n", "duplicate"),
    ("org:\n  name: X\nstages:\n  - key: 'A B'\n    name: {sv: A, en: A}\n", "key"),
    ("org:\n  name: X\n  time_zone: Mars/Olympus\nstages:\n  - key: a\n    name: {sv: A, en: A}\n", "time zone"),
    ("- just\n- a list\n", "mapping"),
    ("org: &a\n  name: *a\n", ""),
]


@pytest.mark.parametrize(("text", "hint"), JOURNEYS, ids=[f"{i:02d}" for i in range(len(JOURNEYS))])
def test_bad_journey_files_are_reported_not_raised(text: str, hint: str) -> None:
    result = parse_journey(text, "bad.yaml")
    assert result.journey is None and result.errors
    assert all(p.file == "bad.yaml" and p.line >= 1 for p in result.problems)
    assert hint.casefold() in " ".join(p.message.casefold() for p in result.problems) or not hint


SECRET = "bad-input-secret"


def slack_request(raw: str, content_type: str, *, secret: str = SECRET, at: float | None = None) -> BoltRequest:
    timestamp = str(int(at if at is not None else time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=raw)
    headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}
    return BoltRequest(body=raw, headers=headers)


HTTP: list[tuple[str, str, dict[str, Any], int]] = [
    ("forged", "application/x-www-form-urlencoded", {"secret": "wrong"}, 401),
    ("stale", "application/x-www-form-urlencoded", {"at": time.time() - 3600}, 401),
    ("future", "application/x-www-form-urlencoded", {"at": time.time() + 3600}, 401),
    ('{"type": "event_callback", "event": ', "application/json", {}, 0),
    ("payload=%7Bnot-json", "application/x-www-form-urlencoded", {}, 0),
    ("payload=" + json.dumps({"type": "block_actions", "actions": []}), "application/x-www-form-urlencoded", {}, 0),
    ("", "application/x-www-form-urlencoded", {}, 0),
]


@pytest.mark.parametrize(("raw", "content_type", "options", "status"), HTTP, ids=[f"{i:02d}" for i in range(len(HTTP))])
def test_malformed_slack_requests_never_crash_or_write(
    app: CxApp, loaded: sessionmaker[Session], raw: str, content_type: str, options: dict[str, Any], status: int
) -> None:
    from adapters.slack.bot import SlackBot, make_client
    from tests.slack_stub import SlackStub

    stub = SlackStub()
    bot = SlackBot(app, make_client("xoxb-x", stub.api_url), signing_secret=SECRET)
    if raw in ("forged", "stale", "future"):
        raw = urlencode({"command": "/cx", "text": "report faktura: fel", "user_id": "U0NLLEIL05", "team_id": "T"})
    before = snapshot(loaded)
    response = bot.app.dispatch(slack_request(raw, content_type, **options))
    assert response.status in ({status} if status else {400, 401, 404, 500})
    assert snapshot(loaded) == before
    bot.close()
    stub.close()


# --- the parsers, fuzzed ---------------------------------------------------------------------

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.text())
def test_command_and_report_parsing_never_raise(text: str) -> None:
    sub, rest = parse_command(text)
    assert isinstance(sub, str) and isinstance(rest, str)
    request = parse_report(text)
    assert isinstance(request.description, str)


@FUZZ
@given(st.text(max_size=2000))
def test_journey_parsing_never_raises(text: str) -> None:
    result = parse_journey(text, "fuzz.yaml")
    assert result.journey is not None or result.errors


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600))
def test_kpi_import_never_raises_anything_but_a_file_error(loaded: sessionmaker[Session], raw: bytes) -> None:
    with loaded.begin() as session:
        org = current_org(session)
        assert org is not None
        try:
            import_answers(session, org, b"answered_at,metric,score,stage\n" + raw, "fuzz.csv", skip_invalid=True)
            import_aggregates(session, org, b"week,metric,stage,value\n" + raw, "fuzz.csv", NOW, skip_invalid=True)
        except ImportFileError:
            pass
        session.rollback()
