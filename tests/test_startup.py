"""`cxbot --help`, `cxbot journey validate` and `cxbot kpi import` start without the heavy
libraries: each command imports what it needs when it runs (benchmarks/startup.py times them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE
from tests.test_cli import cxbot

# Seconds of start-up each, and none of them needed to parse a command line, read a journey map
# or import a CSV: only `run`, `clock` and `digest` may load them.
HEAVY = ("openai", "matplotlib", "slack_bolt", "slack_sdk", "discord", "starlette", "uvicorn", "fastapi", "sklearn")
# --help loads no database, scheduler or settings layer either: that is what keeps it under 0.5 s.
NOT_FOR_HELP = (*HEAVY, "sqlalchemy", "alembic", "apscheduler", "pydantic_settings")

# Runs the real entry point in this interpreter, then writes down every module it loaded.
DRIVER = """\
import json, os, sys
from bot.cli import main
try:
    main()
finally:
    with open(os.environ["MODULES_OUT"], "w", encoding="utf-8") as out:
        json.dump(sorted(sys.modules), out)
"""

ANSWERS = "answered_at,metric,score,stage\n2026-11-23T09:15:00,nps,9,usage\n"


def loaded_modules(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXBOT_")}
    env |= {"CXBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'cx.db'}", "MODULES_OUT": str(out)}
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    return result, set(json.loads(out.read_text(encoding="utf-8")))


def offenders(modules: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in forbidden)


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    for args in (("--help",), ("kpi", "--help"), ("run", "--help")):
        result, modules = loaded_modules(tmp_path, *args)
        assert result.returncode == 0, result.stderr
        assert "Usage" in result.stdout
        assert offenders(modules, NOT_FOR_HELP) == [], args


def test_journey_validate_imports_nothing_heavy(tmp_path: Path) -> None:
    result, modules = loaded_modules(tmp_path, "journey", "validate", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert ": OK: " in result.stdout
    assert offenders(modules, HEAVY) == []


@pytest.mark.parametrize("aggregates", [False, True])
def test_kpi_import_imports_nothing_heavy(tmp_path: Path, aggregates: bool) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXBOT_")}
    env["CXBOT_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cx.db'}"
    assert cxbot("journey", "load", str(EXAMPLE), env=env, cwd=tmp_path).returncode == 0
    csv = tmp_path / "answers.csv"
    csv.write_text("week,metric,stage,value\n2026-W47,nps,usage,31\n" if aggregates else ANSWERS, encoding="utf-8")
    result, modules = loaded_modules(tmp_path, "kpi", "import", str(csv), *(["--aggregates"] if aggregates else []))
    assert result.returncode == 0, result.stderr
    assert "imported 1 " in result.stdout
    assert offenders(modules, HEAVY) == []
