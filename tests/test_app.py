"""The core router: parsing, identity, language, and polite refusals that leave no trace."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.app import MAX_INPUT_CHARS, CxApp, Registry, UserError, parse_command
from bot.commands import default_registry
from bot.messages import Click, Invocation, Message, Reply
from bot.store.models import Person
from tests.conftest import Clock


def say(app: CxApp, text: str, user: str = "anna", platform: str = "console") -> Reply:
    return app.dispatch(Invocation(platform, platform, user, "#cx", text))


def field_labels(reply: Reply) -> list[str]:
    return [f.label for f in reply.message.fields]


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("/cx journey Köp", ("journey", "Köp")),
        ("journey   Köp  ", ("journey", "Köp")),
        ("/CX HELP", ("help", "")),
        ("", ("", "")),
        ("/cx", ("", "")),
    ],
)
def test_parse_command(text: str, parsed: tuple[str, str]) -> None:
    assert parse_command(text) == parsed


def test_help_lists_every_command(app: CxApp) -> None:
    reply = say(app, "/cx help")
    assert reply.message.header == "cxbot: kundupplevelsen är allas jobb"
    assert field_labels(reply) == [
        "/cx help [command]",
        "/cx whoami",
        "/cx lang sv|en",
        "/cx journey [stage]",
        "/cx report [severity] [anonymous] <touchpoint>: <what happened>",
        "/cx issues [mine|open|overdue|team <t>|touchpoint <tp>]",
        "/cx issue <n> [ack|resolve <cause>: <action>|reopen|reassign <person>]",
        "/cx tip [1-10|next]",
        "/cx subscribe tips|digest|all",
        "/cx unsubscribe tips|digest|all",
        "/cx observe [anonymous] <what you saw>",
        "/cx observations [stage <s>|touchpoint <tp>|mine] [2026-W48]",
        "/cx observation <n> [stage <s>|touchpoint <tp>|delete|report [severity]]",
        "/cx erase <person>",
        "/cx kpi [details] [stage] [week] | kpi record <metric> <value> <stage> [week] [n=N]",
        "/cx digest preview [week]",
    ]


@pytest.mark.parametrize("text", ["", "   ", "/cx"])
def test_empty_input_gets_help(app: CxApp, text: str) -> None:
    assert say(app, text).message.text == "Det här kan du be mig om:"


def test_unknown_command_gets_help_and_a_log_line(app: CxApp, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bot.app"):
        reply = say(app, "/cx fly to the moon")
    assert reply.message.text == "Jag känner inte till kommandot ”fly”. Det här kan du be mig om:"
    assert "/cx journey [stage]" in field_labels(reply)
    assert "unknown command 'fly'" in caplog.text


def test_a_100_kb_line_is_refused_politely(app: CxApp, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bot.app"):
        reply = say(app, "/cx journey " + "x" * 100_000)
    assert reply.message.text == (
        f"Meddelandet är 100012 tecken långt; gränsen är {MAX_INPUT_CHARS}. Korta ner det och försök igen."
    )
    assert "common.too_long" in caplog.text
    # A long unknown sub-command is echoed short, on one line.
    echoed = say(app, "/cx " + "y" * 3000).message.text or ""
    assert len(echoed) < 120


def test_unknown_user_is_told_how_to_get_in(app: CxApp) -> None:
    reply = say(app, "/cx whoami", user="U999", platform="slack")
    assert reply.message.text == (
        "Jag vet inte vem du är på slack än (ditt användar-id är U999). "
        "Be en administratör lägga till dig i kundresefilen."
    )
    # ...and is told the same, not shown the journey (it names its owners) or the KPIs (README).
    for text in ("/cx journey", "/cx kpi"):
        refused = say(app, text, user="U999", platform="slack")
        assert refused.refused and "U999" in (refused.message.text or "")
    assert say(app, "/cx help", user="U999", platform="slack").message.text  # help is for everyone


def test_identity_on_each_platform_resolves_to_the_same_person(app: CxApp) -> None:
    by_console = say(app, "/cx whoami", user="erik", platform="console")
    by_slack = say(app, "/cx whoami", user="U0NLERIK02", platform="slack")
    by_discord = say(app, "/cx whoami", user="1190000000000000002", platform="discord")
    assert by_console.message.header == by_slack.message.header == by_discord.message.header
    assert by_console.message.header == "Erik Johansson"


def test_journey_overview_and_stage(app: CxApp) -> None:
    overview = say(app, "/cx journey")
    assert len(overview.message.fields) == 7
    assert overview.message.buttons[0].action_id == "journey:stage:awareness"
    assert "Prisjämförelsesajter" in overview.message.context[0]
    stage = say(app, "/cx journey köp")
    assert stage.message.header == "3. Köp"
    assert "Kreditprövning" in field_labels(stage)  # the name, never the key (credit-check)
    assert not [label for label in field_labels(stage) if "credit-check" in label]


def test_unknown_stage(app: CxApp) -> None:
    reply = say(app, "/cx journey Mars")
    assert reply.message.text is not None
    assert reply.message.text.startswith("Det finns inget steg som heter ”Mars”. Stegen är: Medvetenhet, Övervägande,")


def test_language_choice_is_kept_and_used(app: CxApp, loaded: sessionmaker[Session]) -> None:
    assert say(app, "/cx lang en").message.text == "From now on I will write to you in English."
    assert say(app, "/cx journey").message.header == "Customer journey: Nordljus Energi AB"
    refused = say(app, "/cx lang fi")
    assert refused.message.text == "“fi” is not a language I speak. Write `/cx lang sv` or `/cx lang en`."
    with loaded() as session:
        anna = session.scalar(select(Person).where(Person.key == "anna"))
        assert anna is not None and anna.chosen_language == "en"


def test_click_routes_to_the_stage_and_refuses_stale_buttons(app: CxApp) -> None:
    click = Click("console", "console", "anna", "#cx", "journey:stage:support")
    assert app.click(click).message.header == "6. Kundservice och support"
    for stale in ("journey:stage:gone", "nothing:here", ""):
        reply = app.click(Click("console", "console", "anna", "#cx", stale))
        assert reply.message.text == "Den knappen gör inget längre. Kör kommandot igen för att få en ny."


def writing_registry(error: Exception) -> Registry:
    """A registry with a command that writes, then fails."""
    registry = default_registry()

    @registry.command("rename", "rename")
    def rename(ctx, rest):  # type: ignore[no-untyped-def]
        person = ctx.require_person()
        person.name = "Changed"
        ctx.session.flush()
        raise error

    return registry


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (UserError("common.admin_only"), "Det är bara administratörer som kan göra det."),
        (
            RuntimeError("boom"),
            "Förlåt, något gick fel hos mig och ingenting sparades. Felet är loggat; försök gärna igen om en stund.",
        ),
    ],
)
def test_a_refused_or_failed_command_leaves_nothing_written(
    loaded: sessionmaker[Session],
    clock: Clock,
    error: Exception,
    expected: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = CxApp(loaded, writing_registry(error), clock=clock, default_language="sv")
    with caplog.at_level(logging.INFO, logger="bot.app"):
        reply = say(app, "/cx rename")
    assert reply.message == Message(text=expected)
    with loaded() as session:
        assert session.scalar(select(Person.name).where(Person.key == "anna")) == "Anna Lindqvist"
    assert "rename" in caplog.text


def test_no_journey_loaded(session_factory: sessionmaker[Session]) -> None:
    app = CxApp(session_factory, default_language="en")
    assert say(app, "/cx journey").message.text == (
        "No journey map is loaded yet. An admin can load one with `cxbot journey load FILE`."
    )


@pytest.mark.parametrize(
    "text", ["/cx @everyone", "/cx lang @here", "/cx journey <!channel>", "/cx issue <!subteam^S1|@x>"]
)
def test_echoed_input_never_pings_anyone(app: CxApp, text: str) -> None:
    reply = say(app, text).message.model_dump_json()
    for mention in ("@everyone", "@here", "<!channel", "<!subteam"):
        assert mention not in reply
