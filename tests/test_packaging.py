"""A normal install works: the wheel holds every module and every content file, and `cxbot run
--demo`, installed from the wheel and started far from the checkout, reads the catalogue, the tips
and the example journey from the installed package.

Offline: the wheel is built with this environment's setuptools, and the fresh virtual environment
borrows this one's dependencies through a .pth line, which does not run this environment's own
.pth files, so the editable install's import hook (the checkout) stays out of it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from bot.config import PACKAGED_CONTENT, REPO_CONTENT
from bot.i18n import LANGUAGES, load_catalogue

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parent.parent
# What the build reads; the rest of the checkout (tests, docs, .venv) is not copied.
BUILD_INPUTS = ("pyproject.toml", "README.md", "bot", "adapters", "content")
SHIPPED_CODE = ("bot", "adapters")
UNWANTED_ENV = ("CXBOT_", "DATABASE_URL", "OPENAI_", "PYTHON", "VIRTUAL_ENV")
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")

# Records every file the installed bot opens (imports included), through an audit hook that a .pth
# line installs at interpreter start when CXBOT_TEST_OPENED names a log file.
AUDIT = """\
import os, sys
if os.environ.get("CXBOT_TEST_OPENED"):
    _log = open(os.environ["CXBOT_TEST_OPENED"], "a", encoding="utf-8", buffering=1)
    def _opened(event, args):
        if event == "open" and isinstance(args[0], (str, os.PathLike)):
            _log.write(os.fspath(args[0]) + "\\n")
    sys.addaudithook(_opened)
"""


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of the checkout, so no build/ or egg-info is left in it, and no stale
    build/ in it can smuggle a deleted module into the wheel."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=JUNK)
        else:
            shutil.copy2(ROOT / name, source / name)
    offline = ("--no-deps", "--no-build-isolation", "--no-index")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", *offline, "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("cxbot-*.whl")
    return built


def test_the_wheel_holds_every_module_and_every_content_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {p.relative_to(ROOT).as_posix() for folder in SHIPPED_CODE for p in files_under(ROOT / folder)}
    expected |= {f"bot/{PACKAGED_CONTENT}/{p.relative_to(REPO_CONTENT).as_posix()}" for p in files_under(REPO_CONTENT)}
    # A package missing from pyproject.toml's list, or a content file missing from package-data.
    assert sorted(expected - names) == []
    assert "bot/store/migrations/script.py.mako" in names  # alembic's template, not a module


def make_venv(folder: Path, wheel: Path) -> Path:
    """A fresh virtual environment with only the wheel installed in it, and this environment's
    site-packages behind it for the dependencies. Returns its bin/ (Scripts\\ on Windows)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    scripts = folder / ("Scripts" if os.name == "nt" else "bin")
    python = scripts / ("python.exe" if os.name == "nt" else "python")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.strip()
    )
    # Only after the install: pip must not see (and offer to replace) this environment's cxbot.
    borrowed = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site / "zz_borrowed_dependencies.pth").write_text("\n".join(borrowed) + "\n", encoding="utf-8")
    (site / "cxbot_test_audit.py").write_text(AUDIT, encoding="utf-8")
    (site / "cxbot_test_audit.pth").write_text("import cxbot_test_audit\n", encoding="utf-8")
    return scripts


def test_the_installed_wheel_runs_the_demo_from_anywhere(wheel: Path, tmp_path: Path) -> None:
    scripts = make_venv(tmp_path / "venv", wheel)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    opened = tmp_path / "opened.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(UNWANTED_ENV)}
    env["CXBOT_TEST_OPENED"] = str(opened)
    result = subprocess.run(
        # --no-clock: the console still runs the clock's jobs between commands, in its own thread,
        # so on a busy machine no second thread holds SQLite's lock; this test is about packaging.
        [str(scripts / "cxbot"), "run", "--demo", "--adapter", "console", "--no-clock"],
        input="/cx help\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=elsewhere,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    catalogue = load_catalogue(REPO_CONTENT / "i18n")
    assert any(catalogue.text(lang, "help.header") in result.stdout for lang in LANGUAGES), result.stdout

    paths = [Path(line) for line in opened.read_text(encoding="utf-8").splitlines()]
    checkout = [p for p in paths if any(p.is_relative_to(ROOT / part) for part in (*SHIPPED_CODE, "content"))]
    assert checkout == []  # not one module or content file from the checkout
    shipped = {p.relative_to(p.parents[1]).as_posix() for p in paths if PACKAGED_CONTENT in p.parts}
    assert {"i18n/sv.yaml", "i18n/en.yaml", "tips/sv.md", "tips/en.md"} <= shipped
    assert any(p.name == "journey.example.yaml" and PACKAGED_CONTENT in p.parts for p in paths)
    # The code too (cli.py, or the .pyc pip compiled from it) came from the new environment.
    assert any(p.name.startswith("cli.") and "bot" in p.parts and p.is_relative_to(tmp_path / "venv") for p in paths)
