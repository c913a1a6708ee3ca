"""``cxbot`` as a user runs it: clear lines and exit codes, never a traceback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.conftest import EXAMPLE
from tests.test_console import CXBOT, cli_env

BROKEN = """\
org:
  name: Acme
  admins: [ghost]
teams:
  - key: web
    name: {sv: Webb, en: Web}
    colour: blue
stages:
  - key: buy
    name: {sv: Köp, en: Buy}
    touchpoints:
      - key: checkout
        name: {sv: Kassa, en: Checkout}
        owner_team: nobody
        sla: {high: {acknowledge: whenever}}
"""


def env_with(database_url: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CXBOT_")}
    return {**clean, "CXBOT_DATABASE_URL": database_url}


def cxbot(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CXBOT_")}
    return subprocess.run(
        [CXBOT, *args],
        capture_output=True,
        text=True,
        env=env if env is not None else base,
        cwd=cwd,
        timeout=120,
    )


def test_help_lists_the_commands() -> None:
    result = cxbot("--help")
    assert result.returncode == 0
    for command in ("run", "clock", "db", "journey", "demo"):
        assert f" {command} " in result.stdout
    journey = cxbot("journey", "--help")
    assert "validate" in journey.stdout and "load" in journey.stdout
    assert "upgrade" in cxbot("db", "--help").stdout


def test_validate_the_example() -> None:
    result = cxbot("journey", "validate", str(EXAMPLE))
    assert result.returncode == 0
    assert "warning: touchpoint 'price-comparison' has no owner" in result.stdout
    assert "OK: 7 stages, 27 touchpoints" in result.stdout


def test_validate_reports_every_structural_problem_with_its_line(tmp_path: Path) -> None:
    file = tmp_path / "broken.yaml"
    file.write_text(BROKEN, encoding="utf-8")
    result = cxbot("journey", "validate", str(file))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert f"{file}:7: error: unknown key 'colour' at teams.0.colour" in lines
    assert any(line.startswith(f"{file}:15: error: stages.0.touchpoints.0.sla.high.acknowledge:") for line in lines)
    assert "Traceback" not in result.stderr


def test_validate_reports_cross_reference_problems(tmp_path: Path) -> None:
    file = tmp_path / "refs.yaml"
    file.write_text(BROKEN.replace("    colour: blue\n", "").replace("whenever", "2h"), encoding="utf-8")
    result = cxbot("journey", "validate", str(file))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{file}:3: error: admin 'ghost' is not a person in 'people'",
        f"{file}:13: error: owner_team 'nobody' does not exist",
    ]


def test_validate_a_missing_file(tmp_path: Path) -> None:
    result = cxbot("journey", "validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1
    assert (
        result.stderr.strip() == f"{tmp_path / 'nope.yaml'}:1: error: cannot read the file: No such file or directory"
    )


def test_load_is_idempotent(bare_engine: Engine, tmp_path: Path) -> None:
    env = cli_env(bare_engine, tmp_path)
    first = cxbot("journey", "load", str(EXAMPLE), env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "arkiverade" in first.stdout and " tillagda" in first.stdout  # the org's language: Swedish
    second = cxbot("journey", "load", str(EXAMPLE), env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip().endswith("lästes in: 0 tillagda, 0 ändrade, 0 arkiverade, 0 återställda.")


def test_load_refuses_a_broken_file_and_touches_nothing(bare_engine: Engine, tmp_path: Path) -> None:
    file = tmp_path / "broken.yaml"
    file.write_text(BROKEN, encoding="utf-8")
    result = cxbot("journey", "load", str(file), env=cli_env(bare_engine, tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert "unknown key 'colour'" in result.stderr
    with bare_engine.connect() as connection:
        assert not bare_engine.dialect.has_table(connection, "org")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://nobody@127.0.0.1:1/none",
            "cxbot: cannot reach the database at postgresql+psycopg://nobody@127.0.0.1:1/none:",
        ),
        ("mysql-ish://what", "cxbot: cannot use the database URL 'mysql-ish://what':"),
        ("sqlite:////no/such/dir/x.db", "cxbot: cannot reach the database at sqlite:////no/such/dir/x.db:"),
    ],
)
def test_unusable_database_urls_give_one_line(tmp_path: Path, url: str, expected: str) -> None:
    # Not waiting for the server to come (tests/reliability/test_database_outage.py does that).
    env = env_with(url) | {"CXBOT_DATABASE_WAIT": "0"}
    for args in (("db", "upgrade"), ("run", "--adapter", "console", "--demo")):
        result = cxbot(*args, env=env, cwd=tmp_path)
        assert result.returncode == 1
        assert result.stderr.startswith(expected), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "mysql://cx:s3cret@db.example.com/cx",
        "mssql+pyodbc://cx:s3cret@cx-dsn",
        "postgresql+asyncpg://cx:s3cret@127.0.0.1/cx",
        "postgresql+psycopg2://cx:s3cret@127.0.0.1/cx",
        "oracle://cx:s3cret@db.example.com/cx",
        "sqlite+pysqlcipher://:s3cret@/cx.db",
        "not a url at all",
        "cx:s3cret@127.0.0.1",
    ],
)
def test_a_database_cxbot_does_not_run_on_is_one_line(tmp_path: Path, url: str) -> None:
    """Every URL SQLAlchemy could name but cxbot does not ship a driver for: one line saying what
    cxbot runs on, the password masked, exit 1; not the driver's ImportError."""
    result = cxbot("db", "upgrade", env=env_with(url) | {"CXBOT_DATABASE_WAIT": "0"}, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cxbot: cannot use the database URL ")
    assert "cxbot runs on SQLite" in lines[0] and "or PostgreSQL" in lines[0]
    assert "s3cret" not in result.stderr
    assert not (tmp_path / "cxbot.db").exists()


def test_bad_options_and_unknown_person(tmp_path: Path) -> None:
    env = env_with(f"sqlite:///{tmp_path}/x.db")
    bad = cxbot("run", "--adapter", "telegraph", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "telegraph" in bad.stderr and "Traceback" not in bad.stderr
    ghost = cxbot("run", "--adapter", "console", "--demo", "--as", "ghost", env=env, cwd=tmp_path)
    assert ghost.returncode == 1
    assert ghost.stderr.startswith("cxbot: there is no person 'ghost' in the journey map; choose one of: anna, ")
    nothing = cxbot(
        "run",
        "--adapter",
        "console",
        env=env_with(f"sqlite:///{tmp_path}/empty.db"),
        cwd=tmp_path,
    )
    assert nothing.returncode == 1
    assert nothing.stderr.strip() == "cxbot: no journey map is loaded; run `cxbot journey load FILE` or add --demo"


def test_demo_then_run_without_demo(tmp_path: Path) -> None:
    env = env_with(f"sqlite:///{tmp_path}/d.db")
    demo = cxbot("demo", env=env, cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    result = subprocess.run(
        [CXBOT, "run", "--adapter", "console", "--as", "fatima"],
        input="/cx journey\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "## Customer journey: Nordljus Energi AB" in result.stdout  # fatima reads English


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CXBOT_LOG_LEVEL", "verbose", "cxbot: bad setting log_level:"),
        ("CXBOT_TIME_ZONE", "Europe/Stokholm", "cxbot: bad setting time_zone: Value error, unknown time zone"),
        ("CXBOT_TIP_SCHEDULE", "every monday", "cxbot: bad CXBOT_TIP_SCHEDULE 'every monday':"),
    ],
)
def test_bad_settings_are_one_line(tmp_path: Path, variable: str, value: str, expected: str) -> None:
    env = {**env_with(f"sqlite:///{tmp_path}/s.db"), variable: value}
    result = subprocess.run(
        [CXBOT, "run", "--adapter", "console", "--demo"],
        input="",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(expected), result.stderr
    assert "Traceback" not in result.stderr


def test_a_database_password_is_never_printed(tmp_path: Path) -> None:
    result = cxbot("db", "upgrade", env=env_with("postgresql://cx:s3cret@127.0.0.1:1/none"), cwd=tmp_path)
    assert result.returncode == 1
    assert "s3cret" not in result.stderr and "***" in result.stderr
