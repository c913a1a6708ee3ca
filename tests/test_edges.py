"""Nothing crashes at the edges: each class of odd input has one parser, and a test for the class.

- numbers people type (``²``, ``③``, ``٣``, ``３``…): bot.domain.numbers;
- weeks at the edge of the calendar (``0001-W01``, ``9999-W52``): bot.domain.weeks;
- free text with NUL, control characters, or nothing visible: bot.domain.text, applied by the core;
- a CSV line without end: refused while streaming, with bounded memory;
- console commands are whole words;
- words a command has no use for are refused, never silently dropped.
"""

from __future__ import annotations

import io
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adapters.console import ConsoleAdapter
from bot.app import CxApp
from bot.content import default_content
from bot.domain.numbers import NotANumber, decimal_number, identifier, whole_number
from bot.domain.text import clean_text, invisible
from bot.domain.weeks import FIRST_YEAR, LAST_YEAR, BadWeek, parse_week, previous_week, week_bounds, weeks_in
from bot.forms import FormSubmission
from bot.messages import CaptureRequest, Invocation, Reply
from bot.services.journey import current_org
from bot.services.kpi_import import MAX_LINE_BYTES, ImportFileError, import_aggregates, import_answers
from bot.store.models import Base, Issue, KpiValue, Observation, SurveyResponse
from tests.conftest import EXAMPLE, NOW
from tests.test_cli import cxbot
from tests.test_console import cli_env

CATALOGUE = default_content().catalogue
APOLOGY = {CATALOGUE.text(lang, "common.internal_error") for lang in ("sv", "en")}
ZONE_NAME = "Europe/Stockholm"
# Admin, CX lead, an ordinary colleague: console identities are the person keys.
ADMIN, LEAD, PERSON = "elin", "anna", "leila"

# Characters str.isdigit() or int() accept that nobody types as a number on a keyboard.
DIGIT_LIKE = [
    "²",
    "³",
    "③",
    "⑫",
    "٣",
    "۷",
    "३",
    "３",
    "１２",
    "𝟙",
    "Ⅻ",
    "½",
    "٠١",
    "1_0",
    "1e3",
    "nan",
    "inf",
    "-",
    "+",
    "",
]


def say(app: CxApp, text: str, user: str = PERSON) -> Reply:
    return app.dispatch(Invocation("console", "console", user, "#cx", text))


def polite(reply: Reply) -> str:
    """The reply's text, asserting it is a refusal in the catalogue's words, not the apology."""
    text = reply.message.text or ""
    assert text not in APOLOGY, "an internal error where a polite refusal belongs"
    assert reply.refused, text
    return text


def count(loaded: sessionmaker[Session], model: type[Base]) -> int:
    with loaded() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


# --- 1. numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", DIGIT_LIKE)
def test_digit_like_text_is_not_a_number(text: str) -> None:
    with pytest.raises(NotANumber):
        whole_number(text)
    with pytest.raises(NotANumber):
        decimal_number(text)
    with pytest.raises(NotANumber):
        identifier(text)


@pytest.mark.parametrize(
    ("text", "low", "high", "value"),
    [("7", 1, 10, 7), (" 10 ", 1, 10, 10), ("-3", None, None, -3), ("+4", 0, None, 4), ("007", 1, 10, 7)],
)
def test_plain_numbers_in_range_are_read(text: str, low: int | None, high: int | None, value: int) -> None:
    assert whole_number(text, low, high) == value


@pytest.mark.parametrize(("text", "low", "high"), [("0", 1, 10), ("11", 1, 10), ("-1", 1, None), ("99" * 9, 1, None)])
def test_numbers_out_of_range_are_refused(text: str, low: int, high: int | None) -> None:
    with pytest.raises(NotANumber):
        whole_number(text, low, high)


def test_decimals_take_a_point_or_a_comma() -> None:
    assert decimal_number("1,8") == decimal_number("1.8") == 1.8
    for text in ("1.", ".5", "1,8,1", "1e309", "-inf", "１.５"):
        with pytest.raises(NotANumber):
            decimal_number(text)


@given(st.text(max_size=30))
def test_whole_number_reads_ascii_digits_or_refuses(text: str) -> None:
    try:
        value = whole_number(text, -(10**15), 10**15)
    except NotANumber as refused:
        assert refused.key.startswith("common.")
    else:
        assert text.strip().lstrip("+-").isascii() and value == int(text.strip())


NUMBER_COMMANDS = [
    "/cx tip {x}",
    "/cx issue {x}",
    "/cx issue {x} ack",
    "/cx observation {x}",
    "/cx observation {x} delete",
]
ADMIN_NUMBER_COMMANDS = ["/cx kpi record nps {x} usage", "/cx kpi record nps 10 usage n={x}"]


@pytest.mark.parametrize("template", NUMBER_COMMANDS + ADMIN_NUMBER_COMMANDS)
@pytest.mark.parametrize("x", ["²", "③", "٣", "３", "1e3", "0x1"])
def test_every_command_refuses_digit_like_numbers(app: CxApp, template: str, x: str) -> None:
    who = ADMIN if template in ADMIN_NUMBER_COMMANDS else PERSON
    text = polite(say(app, template.format(x=x), who))
    assert x in text or "n=" in text, text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=4))
def test_any_numeric_characters_get_a_reply_never_an_error(app: CxApp, x: str) -> None:
    for template in ("/cx tip {x}", "/cx issue {x}", "/cx observation {x}"):
        reply = say(app, template.format(x=x))
        assert (reply.message.text or "") not in APOLOGY


@pytest.mark.parametrize("typed", ["²", "③", "٣", "３", "-1", "0", "99"])
def test_console_button_numbers_are_plain_numbers(app: CxApp, loaded: sessionmaker[Session], typed: str) -> None:
    out = io.StringIO()
    console = ConsoleAdapter(app, loaded, PERSON, out=out)
    assert console.run(["/cx journey", typed, "/cx whoami"]) == 0
    text = out.getvalue()
    assert typed in text.split("/cx whoami")[0].split("Medvetenhet")[-1]  # the refusal names it
    assert "## Leila" in text  # and the console carried on


# --- 2. weeks -----------------------------------------------------------------------------------

OUTSIDE = ["0001-W01", "9999-W52", "1999-W52", f"{LAST_YEAR + 1}-W01", "0000-W00", "2026-W54", "2027-W53", "2026-W00"]
NOT_WEEKS = ["２０２６-W47", "2026-W4７", "2026W47", "2026-47", "week 47", "", "2026-W047"]


@pytest.mark.parametrize("text", OUTSIDE + NOT_WEEKS)
def test_weeks_outside_the_calendar_are_refused(text: str) -> None:
    with pytest.raises(BadWeek):
        parse_week(text)


def test_the_first_and_last_weeks_can_be_computed_with() -> None:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(ZONE_NAME)
    for week in (f"{FIRST_YEAR}-W01", f"{LAST_YEAR}-W{weeks_in(LAST_YEAR)}", "2026-W53"):
        assert parse_week(week.lower()) == week
        start, end = week_bounds(week, zone)
        assert start < end and previous_week(week, zone) < week


@given(st.text(max_size=12) | st.from_regex(r"[0-9]{4}-[wW][0-9]{1,2}", fullmatch=True))
def test_a_week_read_is_a_week_every_function_can_use(text: str) -> None:
    from zoneinfo import ZoneInfo

    try:
        week = parse_week(text)
    except BadWeek as refused:
        assert str(refused) and refused.key.startswith("common.week")
        return
    zone = ZoneInfo(ZONE_NAME)
    week_bounds(week, zone)
    assert parse_week(previous_week(week, zone)) if week[:4] != str(FIRST_YEAR) or week[-2:] != "01" else True


@pytest.mark.parametrize("week", ["0001-W01", "9999-W52", "2026-W54", "2026-W4７"])
@pytest.mark.parametrize(
    "template",
    [
        "/cx kpi record nps 10 usage {week}",
        "/cx kpi usage {week}",
        "/cx kpi {week}",
        "/cx digest preview {week}",
        "/cx observations {week}",
    ],
)
def test_chat_refuses_weeks_outside_the_calendar(
    app: CxApp, loaded: sessionmaker[Session], template: str, week: str
) -> None:
    reply = say(app, template.format(week=week), ADMIN)
    assert week in polite(reply)
    assert count(loaded, KpiValue) == 0


@pytest.mark.parametrize("week", ["0001-W01", "9999-W52", "2026-W54"])
def test_cli_refuses_weeks_outside_the_calendar_in_one_line(bare_engine, tmp_path: Path, week: str) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(bare_engine, tmp_path)
    assert cxbot("journey", "load", str(EXAMPLE), env=env, cwd=tmp_path).returncode == 0
    env["CXBOT_WAREHOUSE_URL"] = f"sqlite:///{tmp_path / 'warehouse.db'}"
    for command in (["digest", "--week", week], ["kpi", "pull", "--week", week]):
        done = cxbot(*command, env=env, cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        line = done.stderr.strip()
        assert line.startswith("cxbot: --week: ") and week in line and "\n" not in line, line


@pytest.mark.parametrize(
    "answered_at", ["0001-01-01T00:00:00", "9999-12-31T23:59:00", "9999-12-31T23:59:00-12:00", "0001-01-01T00:00+14:00"]
)
def test_answers_outside_the_calendar_are_invalid_rows(loaded: sessionmaker[Session], answered_at: str) -> None:
    raw = f"answered_at,metric,score,stage\n{answered_at},nps,9,usage\n2026-11-23T09:00:00,nps,9,usage\n".encode()
    with loaded.begin() as session:
        org = current_org(session)
        assert org is not None
        result = import_answers(session, org, raw, "edge.csv")
        assert result.refused and [(e.line, "outside the weeks" in e.reason) for e in result.errors] == [(2, True)]
        session.rollback()
    assert count(loaded, SurveyResponse) == 0


@pytest.mark.parametrize("week", ["0001-W01", "9999-W52", "２０２６-W47"])
def test_aggregates_outside_the_calendar_are_invalid_rows(loaded: sessionmaker[Session], week: str) -> None:
    raw = f"week,metric,stage,value\n{week},churn,usage,1.4\n".encode()
    with loaded.begin() as session:
        org = current_org(session)
        assert org is not None
        result = import_aggregates(session, org, raw, "agg.csv", NOW)
        assert result.refused and result.errors[0].line == 2 and week in result.errors[0].reason
        session.rollback()
    assert count(loaded, KpiValue) == 0


def test_aggregate_weeks_are_stored_as_every_reader_writes_them(loaded: sessionmaker[Session]) -> None:
    with loaded.begin() as session:
        org = current_org(session)
        assert org is not None
        assert import_aggregates(session, org, b"week,metric,stage,value\n2026-w5,churn,usage,1.4\n", "a", NOW).imported
    with loaded() as session:
        assert session.scalars(select(KpiValue.iso_week)).all() == ["2026-W05"]


# --- 3. free text -------------------------------------------------------------------------------

INVISIBLE_ONLY = [
    "\u200b",
    "\u200b\u200c\u200d\ufeff",
    "\u202e\u202c",
    "\u2066\u2069",
    "\u3164",
    "\u2800 \u00ad",
    "\x00",
]


@pytest.mark.parametrize("text", INVISIBLE_ONLY)
def test_text_showing_nothing_is_empty(text: str) -> None:
    assert clean_text(text) == ""
    assert clean_text(f"  {text}\n{text} ") == ""


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("a\x00b", "ab"),
        ("line 1\r\nline 2\tx", "line 1\nline 2\tx"),
        ("e\u0301", "é"),  # NFC
        ("\x07bell\x1b[31m", "bell[31m"),
        ("👩\u200d💻 ok", "👩\u200d💻 ok"),  # a joiner inside a visible word stays
        ("\u200b hej \u202e", "hej"),
        ("x\ud800y", "xy"),
    ],
)
def test_clean_text(text: str, cleaned: str) -> None:
    assert clean_text(text) == cleaned


@given(st.text())
def test_clean_text_is_storable_and_visible_or_empty(text: str) -> None:
    cleaned = clean_text(text)
    assert "\x00" not in cleaned and cleaned == unicodedata.normalize("NFC", cleaned)
    cleaned.encode("utf-8")  # no lone surrogate
    assert cleaned == "" or not all(invisible(c) for c in cleaned)
    assert clean_text(cleaned) == cleaned


def test_nul_and_controls_are_removed_before_anything_is_stored(app: CxApp, loaded: sessionmaker[Session]) -> None:
    assert not say(app, "/cx observe Kunden\x00 ringde\x07 om fakturan").refused
    assert not say(app, "/cx report faktura: Fel\x00 moms | impact: tre\x00 kunder").refused
    with loaded() as session:
        assert session.scalars(select(Observation.text)).all() == ["Kunden ringde om fakturan"]
        issue = session.scalars(select(Issue)).one()
        assert (issue.description, issue.customer_impact) == ("Fel moms", "tre kunder")


@pytest.mark.parametrize("nothing", INVISIBLE_ONLY)
def test_text_showing_nothing_is_refused_on_every_path(app: CxApp, loaded: sessionmaker[Session], nothing: str) -> None:
    empty_observation = CATALOGUE.text("sv", "observations.empty")
    assert polite(say(app, f"/cx observe {nothing}")) == empty_observation
    assert polite(say(app, f"/cx observe anonymous {nothing}")) == empty_observation
    assert polite(say(app, f"/cx report faktura: {nothing}")) == CATALOGUE.text("sv", "issues.empty")
    form = FormSubmission(
        "console", "console", PERSON, "#cx", "report", {"touchpoint": "order-form", "description": nothing}
    )
    assert polite(app.submit(form)) == CATALOGUE.text("sv", "issues.empty")
    captured = app.capture(CaptureRequest("console", "console", PERSON, "#cx", "msg-1", nothing, LEAD))
    assert (captured.message.text or "") not in APOLOGY and count(loaded, Observation) == 0
    assert count(loaded, Issue) == 0


def test_a_resolve_form_with_nothing_visible_is_refused(app: CxApp, loaded: sessionmaker[Session]) -> None:
    assert not say(app, "/cx report faktura: Dubbla fakturor").refused
    with loaded() as session:
        issue = session.scalars(select(Issue)).one()
        owner = issue.assignee.key if issue.assignee else ADMIN
    form = FormSubmission(
        "console", "console", owner, "#cx", f"resolve:{issue.id}", {"cause": "process", "action": "\x00\u200b"}
    )
    polite(app.submit(form))
    with loaded() as session:
        assert session.scalars(select(Issue.status)).one() != "resolved"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=60))
def test_any_observation_text_is_stored_clean_or_refused(app: CxApp, loaded: sessionmaker[Session], text: str) -> None:
    reply = say(app, f"/cx observe {text}")
    assert (reply.message.text or "") not in APOLOGY
    if not reply.refused:
        with loaded() as session:
            stored = session.scalars(select(Observation.text).order_by(Observation.id.desc())).first()
        assert stored is not None and "\x00" not in stored and stored == clean_text(stored)


@pytest.mark.parametrize("field", ["answered_at", "metric", "score", "stage", "id"])
def test_a_control_character_in_an_imported_field_is_an_invalid_row(loaded: sessionmaker[Session], field: str) -> None:
    row = {"answered_at": "2026-11-23T09:00:00", "metric": "nps", "score": "9", "stage": "usage", "id": "r1"}
    row[field] = row[field][:1] + "\x00" + row[field][1:]
    raw = ("answered_at,metric,score,stage,id\n" + ",".join(row.values()) + "\n").encode()
    with loaded.begin() as session:
        org = current_org(session)
        assert org is not None
        result = import_answers(session, org, raw, "nul.csv", skip_invalid=True)
        assert [(e.line, e.reason) for e in result.errors] == [(2, "a control character (U+0000) in a field")]
    assert count(loaded, SurveyResponse) == 0


def test_cli_import_with_nul_says_which_line(bare_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(bare_engine, tmp_path)
    assert cxbot("journey", "load", str(EXAMPLE), env=env, cwd=tmp_path).returncode == 0
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"answered_at,metric,score,stage,id\n2026-11-23T09:00:00,nps,9,usage,r\x001\n")
    done = cxbot("kpi", "import", str(nul), env=env, cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"{nul}:2: a control character (U+0000) in a field" in done.stderr


# --- 4. a line without end ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"answered_at,metric,score,stage\n" + b"x" * (MAX_LINE_BYTES + 1) + b"\n",
        b"answered_at,metric,score,stage\n2026-11-23T09:00:00,nps,9,usage\n" + b"y" * (3 * MAX_LINE_BYTES),
        b"a" * (MAX_LINE_BYTES * 2),
    ],
)
def test_an_overlong_line_is_refused_with_its_number(loaded: sessionmaker[Session], raw: bytes) -> None:
    with loaded.begin() as session:
        org = current_org(session)
        assert org is not None
        with pytest.raises(ImportFileError) as caught:
            import_answers(session, org, io.BytesIO(raw), "long.csv")
    assert caught.value.line == raw.count(b"\n", 0, raw.index(b"xx" if b"xx" in raw else raw[-2:])) + 1
    assert "longer than" in caught.value.reason


PEAK = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(done.stderr)
print("PEAK", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_kib(command: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """The peak resident memory of a cxbot command (KiB), and what it said on stderr."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK, *command], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )
    said, _, peak = done.stdout.rpartition("PEAK ")
    return int(peak), said


def test_a_50_mb_line_is_refused_while_streaming_with_bounded_memory(tmp_path: Path) -> None:
    from tests.test_console import CXBOT

    env = {**{k: v for k, v in __import__("os").environ.items() if not k.startswith("CXBOT_")}}
    env["CXBOT_DATABASE_URL"] = f"sqlite:///{tmp_path / 'mem.db'}"
    assert cxbot("journey", "load", str(EXAMPLE), env=env, cwd=tmp_path).returncode == 0
    small = tmp_path / "small.csv"
    small.write_bytes(b"answered_at,metric,score,stage\n" + b"z" * 1000 + b"\n")
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as out:
        out.write(b"answered_at,metric,score,stage\n2026-11-23T09:00:00,nps,9,usage\n")
        for _ in range(50):
            out.write(b"q" * (1 << 20))
        out.write(b"\n")
    base, _ = peak_kib([CXBOT, "kpi", "import", str(small)], env, tmp_path)
    peak, said = peak_kib([CXBOT, "kpi", "import", str(huge)], env, tmp_path)
    assert said.strip() == f"cxbot: {huge}:3: the line is longer than {MAX_LINE_BYTES} bytes; is this a CSV file?"
    # Reading the file whole costs at least its 50 MB (and its decoded copy); streaming, a few MB.
    assert peak - base < 20 * 1024, (base, peak)


# --- 5. console commands are whole words --------------------------------------------------------

NOT_CONSOLE_COMMANDS = [
    "/saying hello",
    "/asdf",
    "/asfatima",
    "/clockwork",
    "/reacted msg-1 x",
    "/replying x",
    "/helpme",
    "/cxjourney",
    "/quitter",
    "/exiting",
    "/sayhi",
]


@pytest.mark.parametrize("line", NOT_CONSOLE_COMMANDS)
def test_console_commands_match_whole_words(app: CxApp, loaded: sessionmaker[Session], line: str) -> None:
    out = io.StringIO()
    console = ConsoleAdapter(app, loaded, PERSON, out=out)
    assert console.run([line, "/cx whoami"]) == 0
    text = out.getvalue()
    word = line.split()[0]
    assert CATALOGUE.text("sv", "console.unknown_command", command=word) in text
    assert console.person_key == PERSON and console.said == 0  # nobody became "df", nothing was said
    assert "## Leila" in text  # and it did not quit


@given(
    st.sampled_from(["/as", "/say", "/clock", "/react", "/reply", "/help", "/quit", "/exit", "/cx"]),
    st.from_regex(r"[a-zåäö]{1,8}", fullmatch=True),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_console_command_with_letters_added_is_unknown(
    app: CxApp, loaded: sessionmaker[Session], command: str, tail: str
) -> None:
    out = io.StringIO()
    console = ConsoleAdapter(app, loaded, PERSON, out=out)
    assert console.handle_line(command + tail) is True
    assert console.person_key == PERSON and console.said == 0
    assert CATALOGUE.text("sv", "console.unknown_command", command=command + tail) in out.getvalue()


# --- 6. no word is silently ignored -------------------------------------------------------------

JUNK = "zqxj"
# Every command with arguments that work, and who may run it. Appending JUNK must either be
# refused, naming it, or be used (as text, or as what the command looks for).
WORKING = {
    "help": (PERSON, "/cx help"),
    "whoami": (PERSON, "/cx whoami"),
    "lang": (PERSON, "/cx lang en"),
    "journey": (PERSON, "/cx journey köp"),
    "report": (PERSON, "/cx report faktura: Fel moms"),
    "issues": (PERSON, "/cx issues open"),
    "issue": (ADMIN, "/cx issue 1"),
    "tip": (PERSON, "/cx tip 3"),
    "subscribe": (ADMIN, "/cx subscribe tips"),
    "unsubscribe": (ADMIN, "/cx unsubscribe tips"),
    "observe": (PERSON, "/cx observe Kunden väntade"),
    "observations": (PERSON, "/cx observations mine"),
    "observation": (ADMIN, "/cx observation 1"),
    "erase": (ADMIN, "/cx erase leila"),
    "kpi": (ADMIN, "/cx kpi usage"),
    "digest": (ADMIN, "/cx digest preview 2026-W47"),
}
MORE = [
    (ADMIN, "/cx issue 1 ack"),
    (ADMIN, "/cx issue 1 reopen"),
    (ADMIN, "/cx issue 1 details"),
    (ADMIN, "/cx observation 1 delete"),
    (ADMIN, "/cx observation 1 report high"),
    (PERSON, "/cx issues mine"),
    (PERSON, "/cx issues overdue"),
    (PERSON, "/cx observations 2026-W47"),
    (ADMIN, "/cx kpi record nps 10 usage 2026-W47"),
    (ADMIN, "/cx kpi record nps 10 usage n=40"),
    (PERSON, "/cx tip next"),
    (ADMIN, "/cx issue 1 reassign erik"),
    (PERSON, "/cx issues team web"),
    (PERSON, "/cx observations stage köp"),
    (ADMIN, "/cx observation 1 stage köp"),
    # Not here: "touchpoint <name>" filters. The touchpoint matcher forgives words around a name
    # on purpose ("the website" is the website), so "faktura zqxj" still finds the invoice.
]
FREE_TEXT = {"report", "observe"}  # the junk is what the person said


def test_every_command_is_walked() -> None:
    from bot.commands import default_registry

    assert {c.name for c in default_registry().listed()} == set(WORKING)


def seed(app: CxApp) -> None:
    assert not say(app, "/cx report faktura: Dubbla fakturor").refused
    assert not say(app, "/cx observe Kunden ringde om fakturan").refused


@pytest.mark.parametrize(("who", "line"), [*WORKING.values(), *MORE], ids=lambda v: v if v.startswith("/") else "")
def test_a_word_too_many_is_used_or_refused_never_ignored(
    app: CxApp, loaded: sessionmaker[Session], who: str, line: str
) -> None:
    seed(app)
    reply = say(app, f"{line} {JUNK}", who)
    shown = reply.message.model_dump_json()
    assert (reply.message.text or "") not in APOLOGY
    if line.split()[1] in FREE_TEXT:
        with loaded() as session:
            texts = session.scalars(select(Observation.text)).all() + session.scalars(select(Issue.description)).all()
        assert any(JUNK in t for t in texts)
    elif line.startswith("/cx help"):
        assert JUNK in shown  # "I don't know the command zqxj"
    else:
        assert reply.refused and JUNK in shown, shown[:400]


@pytest.mark.parametrize(
    ("line", "week"),
    [("/cx kpi usage 2026-W47", "2026-W47"), ("/cx kpi 2026-W46", "2026-W46"), ("/cx kpi 2026-W48 köp", "2026-W48")],
)
def test_kpi_shows_the_week_asked_for(app: CxApp, line: str, week: str) -> None:
    reply = say(app, line)
    assert not reply.refused and week in (reply.message.header or ""), reply.message


def test_two_weeks_in_a_record_are_refused_not_the_last_one_kept(app: CxApp, loaded: sessionmaker[Session]) -> None:
    assert "2026-W46" in polite(say(app, "/cx kpi record nps 10 usage 2026-W47 2026-W46", ADMIN))
    assert "n=5" in polite(say(app, "/cx kpi record nps 10 usage n=4 n=5", ADMIN))
    assert count(loaded, KpiValue) == 0


def test_observation_minus_one_gets_a_number_refusal_not_another_commands_help(app: CxApp) -> None:
    text = polite(say(app, "/cx observation -1"))
    assert text == CATALOGUE.text("sv", "common.number_min", given="-1", low=1)


@pytest.mark.parametrize(
    "text",
    [
        "https://example.com/x is broken",
        "see http://nordljus.se/faktura: it fails",
        "mailto-less text with ftp://host/path",
    ],
)
def test_a_link_is_not_a_touchpoint(text: str) -> None:
    from bot.domain.issues import parse_report

    request = parse_report(text)
    assert request.touchpoint is None and request.description == text


def test_a_colon_after_a_touchpoint_still_separates() -> None:
    from bot.domain.issues import parse_report

    request = parse_report("faktura: see https://example.com/x at 10:30")
    assert (request.touchpoint, request.description) == ("faktura", "see https://example.com/x at 10:30")
