"""The console through the real `cxbot run --adapter console --demo` process, with piped input:
the first screen a newcomer sees, and posts shown when they are due, none lost at the end."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine, select

from bot.content import default_content
from bot.store.models import Outbox
from tests.test_console import run_cxbot

CATALOGUE = default_content().catalogue
# The label is in the reader's language.
POST_LABEL = re.compile(r"^\[(console-\d+) (?:to|in|till|i) [^\]]*\]$", re.MULTILINE)


def echoed(stdout: str, person: str, line: str) -> int:
    """Where the console echoed a typed line."""
    position = stdout.find(f"{person}> {line}\n")
    assert position >= 0, (line, stdout[:2000])
    return position


def test_the_first_screen_is_calm_and_in_the_chosen_language(bare_engine: Engine, tmp_path: Path) -> None:
    result = run_cxbot(
        bare_engine, tmp_path, "/cx help\n/cx whoami\n", "run", "--adapter", "console", "--demo", "--lang", "en"
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # The banner: who you are, how to be someone else, how to change the language, in English.
    first = echoed(out, "elin", "/cx help")
    banner = out[:first]
    assert banner.startswith("cxbot console: you are Elin Sandberg (elin).")
    assert "/as KEY" in banner and "/cx lang sv" in banner and "/clock" in banner
    assert "[console-" not in banner  # no post before anything is typed
    # The reply to /cx help, whole and in English, with nothing in between.
    second = echoed(out, "elin", "/cx whoami")
    help_block = out[first:second]
    header = "## " + CATALOGUE.text("en", "help.header")
    footer = "  > " + CATALOGUE.text("en", "help.footer")
    assert header in help_block and footer in help_block
    between = help_block[help_block.index(header) : help_block.index(footer)]
    assert "[console-" not in between and "\n[" not in between
    assert "[console-" not in help_block  # the demo's tip and digest wait for /clock
    assert "Language: English" in out[second:]
    assert CATALOGUE.text("sv", "help.header") not in out


def test_swedish_is_one_flag_away(bare_engine: Engine, tmp_path: Path) -> None:
    result = run_cxbot(bare_engine, tmp_path, "/cx help\n", "run", "--adapter", "console", "--demo", "--lang", "sv")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("cxbot-konsolen: du är Elin Sandberg (elin).")
    assert "## " + CATALOGUE.text("sv", "help.header") in result.stdout
    bad = run_cxbot(bare_engine, tmp_path, "", "run", "--adapter", "console", "--demo", "--lang", "fi")
    assert bad.returncode != 0 and "--lang must be sv or en" in bad.stderr and "Traceback" not in bad.stderr


def test_every_post_is_shown_after_the_command_that_caused_it_and_none_is_lost_at_the_end(
    bare_engine: Engine, tmp_path: Path
) -> None:
    """/clock +10d puts every open demo issue and a fresh report past all their deadlines at
    once: several escalation and overdue notices for the same people, in one command. All are
    shown before the next command is echoed, and those of the last line before exit."""
    script = "/cx report faktura: Fakturan visar fel moms\n/clock +10d\n/cx whoami\n/clock +20d\n"
    result = run_cxbot(bare_engine, tmp_path, script, "run", "--adapter", "console", "--demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    with bare_engine.connect() as connection:
        rows = connection.execute(
            select(Outbox.id, Outbox.status, Outbox.update_of_id, Outbox.idempotency_key).where(
                Outbox.platform == "console"
            )
        ).all()
    assert rows and not [r for r in rows if r.status in ("pending", "sending")]  # nothing left behind
    shown = {label: match.start() for match in POST_LABEL.finditer(out) for label in [match.group(1)]}
    notices = [r for r in rows if ":escalated:" in r.idempotency_key or ":overdue:" in r.idempotency_key]
    assert len(notices) >= 6
    whoami = echoed(out, "elin", "/cx whoami")
    last_clock = echoed(out, "elin", "/clock +20d")
    for row in notices:
        label = f"console-{row.id}"
        assert label in shown, label
    first_round = [
        f"console-{r.id}" for r in notices if f"console-{r.id}" in shown and shown[f"console-{r.id}"] < whoami
    ]
    late = [
        label
        for label, at in shown.items()
        if whoami < at < last_clock and label in {f"console-{r.id}" for r in notices}
    ]
    assert first_round and not late, late  # nothing caused by /clock +10d waited for the next command
    # Several notices to one person from one command (the case that used to come late).
    targets = [key.rsplit(":", 1)[-1] for key in (r.idempotency_key for r in notices)]
    assert max(targets.count(t) for t in set(targets)) >= 2
