"""The console bot, driven through stdin as a user would drive it."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from adapters.console import ConsoleAdapter, ConsoleClock, render_message
from bot.app import CxApp
from bot.messages import Button, Image, Message, MessageField
from bot.scheduler import run_sla_sweep
from tests.conftest import Clock

CXBOT = str(Path(sys.executable).with_name("cxbot"))


def run_console(app: CxApp, loaded: sessionmaker[Session], lines: list[str], person: str = "anna") -> str:
    out = io.StringIO()
    console = ConsoleAdapter(app, loaded, person, out=out, echo=True)
    assert console.run(lines) == 0
    return out.getvalue()


def test_render_message_numbers_buttons() -> None:
    numbers = iter(range(5, 10))
    message = Message(
        header="Head",
        text="Body line 1\nBody line 2",
        fields=[MessageField(label="Short", value="v"), MessageField(label="Long", value="a\nb")],
        image=Image(alt="trend", path="/tmp/chart.png"),
        context=["ctx"],
        buttons=[Button(action_id="a:1", label="Yes"), Button(action_id="a:2", label="No")],
    )
    assert render_message(message, lambda b: next(numbers)) == [
        "## Head",
        "Body line 1",
        "Body line 2",
        "  Short: v",
        "  Long:",
        "      a",
        "      b",
        "  [image: trend] /tmp/chart.png",
        "  > ctx",
        "  [5] Yes  [6] No",
    ]


def test_console_session(app: CxApp, loaded: sessionmaker[Session], clock: Clock) -> None:
    text = run_console(
        app,
        loaded,
        ["/cx help", "", "/cx journey", "3", "/as fatima", "/cx whoami", "42", "/as ghost", "hello", "/help"],
    )
    # The admins' notice of the journey load was queued for the console and is shown, labelled
    # in the language of whoever sits at the console (anna: Swedish).
    assert " till @anna]" not in text  # anna is the CX lead, not an admin
    assert " till @elin]" in text and " till @erik]" in text
    assert "[till dig (bara du ser det här)]\n## cxbot: kundupplevelsen är allas jobb" in text  # anna: Swedish
    assert "anna> /cx help" in text and "## cxbot: kundupplevelsen är allas jobb" in text
    assert "[1] Medvetenhet" in text
    assert "anna> 3\n" in text and "## 3. Köp" in text  # button 3 pressed
    assert "You are now fatima." in text
    assert "## Fatima Hassan" in text and "Language: English" in text
    assert "There is no button number 42." in text
    assert "There is no person “ghost” in the journey map." in text
    assert "Commands start with /cx" in text
    assert "/as KEY    become another person" in text


def test_quit_stops_reading(app: CxApp, loaded: sessionmaker[Session]) -> None:
    text = run_console(app, loaded, ["/quit", "/cx help"])
    assert "cxbot: kundupplevelsen" not in text


def test_a_100_kb_line(app: CxApp, loaded: sessionmaker[Session]) -> None:
    text = run_console(app, loaded, ["/cx journey " + "å" * 100_000, "/cx whoami"])
    assert "Meddelandet är 100012 tecken långt" in text
    assert "## Anna Lindqvist" in text  # the bot carries on
    assert len(text) < 5000  # and never echoes the whole line back


def cli_env(bare_engine: Engine, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXBOT_", "SLACK_", "DISCORD_"))}
    url = bare_engine.url.render_as_string(hide_password=False)
    if bare_engine.dialect.name == "postgresql":
        # Each test has a schema of its own; the child process finds it through the URL.
        with bare_engine.connect() as connection:
            current = connection.exec_driver_sql("select current_schema()").scalar()
        url += f"?options=-csearch_path%3D{current}"
    env["CXBOT_DATABASE_URL"] = url
    # `cxbot run` with a platform serves its web app on PORT (8080 by default): each child gets a
    # free port of its own, so a lingering or parallel process never makes this one fail to start.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        env["PORT"] = str(probe.getsockname()[1])
    return env


def run_cxbot(
    bare_engine: Engine, tmp_path: Path, stdin: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed `cxbot` with stdin piped in, on the test's database, in a scratch folder."""
    return subprocess.run(
        [CXBOT, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**cli_env(bare_engine, tmp_path), **(env or {})},
        timeout=120,
    )


def start_cxbot(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """The installed `cxbot` running in the background in a scratch folder, its output piped
    (the test stops it)."""
    return subprocess.Popen(
        [CXBOT, *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_the_real_command_reads_stdin_and_exits_0(bare_engine: Engine, tmp_path: Path) -> None:
    result = run_cxbot(bare_engine, tmp_path, "/cx help\n/cx journey\n", "run", "--adapter", "console", "--demo")
    assert result.returncode == 0, result.stderr
    assert "## cxbot: kundupplevelsen är allas jobb" in result.stdout
    assert "## Kundresan: Nordljus Energi AB" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("stdin", ["", "\n\n   \n"])
def test_empty_input_exits_0(bare_engine: Engine, tmp_path: Path, stdin: str) -> None:
    result = run_cxbot(bare_engine, tmp_path, stdin, "run", "--adapter", "console", "--demo", "--as", "erik")
    assert result.returncode == 0, result.stderr
    # Setting the demo up (the admins' journey-load notice too) is history: the banner, and calm.
    assert result.stdout.startswith("cxbot-konsolen: du är Erik Johansson (erik).")
    assert "[console-" not in result.stdout


LIFECYCLE = [
    "/cx report kritisk faktura: Fakturan visar fel moms @here",
    "/as fatima",
    "/cx issues",
    "/cx issue 1 ack",
    "/cx issue 1 resolve system: Rättade momstabellen och skickade om fakturorna",
    "/as anna",
    "/cx issue 1",
]


def test_the_issue_lifecycle_typed_in_the_console(loaded: sessionmaker[Session]) -> None:
    """Report, route, acknowledge, resolve, and the reporter hears back: as a user types it."""
    with time_machine.travel(datetime(2026, 11, 24, 9, 30, tzinfo=UTC), tick=False):
        clock = ConsoleClock()
        app = CxApp(loaded, clock=clock, default_language="sv")
        out = io.StringIO()
        console = ConsoleAdapter(
            app, loaded, "anna", out=out, echo=True, clock=clock, on_tick=lambda: run_sla_sweep(loaded, clock)
        )
        console.run(LIFECYCLE)
    text = out.getvalue()
    assert "Tack! Ärende #1 (Månadsfaktura) ligger nu hos Fakturering · Fatima Hassan." in text
    assert "till #billing]\n## #1 · Månadsfaktura · kritisk" in text  # anna reads the labels in Swedish
    assert "till @fatima]\n## #1 · Monthly invoice · critical" in text
    posted = "\n".join(line for line in text.splitlines() if not re.match(r"^\w+> ", line))  # not the echo
    assert "@\u200bhere" in posted and "@here" not in posted
    assert "You acknowledged #1. The reporter has been told." in text
    assert "in #billing, updated]" in text  # fatima at the console now: English
    assert "Din rapport #1 (Månadsfaktura) har kvitterats av Fatima Hassan." in text
    assert "## #1 är löst" in text and "Åtgärd: Rättade momstabellen och skickade om fakturorna" in text
    assert "löst av Fatima Hassan (grundorsak: system eller IT)" in text  # the timeline anna sees


def test_escalation_by_moving_the_console_clock(loaded: sessionmaker[Session]) -> None:
    with time_machine.travel(datetime(2026, 11, 24, 9, 30, tzinfo=UTC), tick=False):
        clock = ConsoleClock()
        app = CxApp(loaded, clock=clock, default_language="sv")
        out = io.StringIO()
        console = ConsoleAdapter(
            app, loaded, "anna", out=out, echo=True, clock=clock, on_tick=lambda: run_sla_sweep(loaded, clock)
        )
        console.run(
            [
                "/cx report kritisk app: kraschar vid inloggning",
                "/clock +50m",
                "/clock +2h",
                "/clock soon",
                "/cx issue 1",
            ]
        )
    text = out.getvalue()
    assert "Konsolens klocka visar nu 2026-11-24 11:20." in text
    assert "Konsolens klocka visar nu 2026-11-24 13:20." in text
    # 50 minutes in, the 15-minute reminder window is open: oskar (London, 10:20) is reminded.
    assert "till @oskar]\n## Waiting for you to acknowledge: 1 issue(s)" in text
    assert "till @erik]\n## #1 · Mobilappen · kritisk\n#1 kvitterades inte före 2026-11-24 11:30." in text
    assert "eskalerat till Anna Lindqvist" in text
    assert "Skriv /clock +2h (eller 30m, 1d)" in text


def test_the_real_command_runs_a_report_script(bare_engine: Engine, tmp_path: Path) -> None:
    # The demo has five issues already: this report becomes #6.
    script = "/cx report kritisk app: kraschar\n/as oskar\n/cx issue 6 ack\n/clock +3h\n/cx issue 6\n"
    result = run_cxbot(bare_engine, tmp_path, script, "run", "--adapter", "console", "--demo", "--as", "anna")
    assert result.returncode == 0, result.stderr
    assert "Tack! Ärende #6 (Mobilappen) ligger nu hos Webb och app · Oskar Holm." in result.stdout
    assert "You acknowledged #6." in result.stdout
    timeline = result.stdout[result.stdout.rindex("oskar> /cx issue 6") :]
    assert "acknowledged by Oskar Holm" in timeline
    assert "escalated to" not in timeline  # acknowledged in time: no escalation
    assert result.stderr == ""  # the log went to cxbot.log
    # Logged by the person's number: never a name, key or chat id, which erasure could not reach.
    logged = (tmp_path / "cxbot.log").read_text(encoding="utf-8")
    assert re.search(r"issue 6 reported on mobile-app \(critical\) by person \d+", logged)
    assert "anna" not in logged.casefold()
