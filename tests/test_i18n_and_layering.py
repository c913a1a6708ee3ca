"""Both languages say everything; the core never imports a platform library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bot.config import REPO_CONTENT
from bot.i18n import CatalogueError, load_catalogue, placeholders

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("slack_bolt", "slack_sdk", "discord", "openai", "starlette", "uvicorn", "prometheus_client", "fastapi")


def test_swedish_and_english_have_the_same_keys_and_placeholders() -> None:
    catalogue = load_catalogue(REPO_CONTENT / "i18n")
    sv, en = catalogue.keys("sv"), catalogue.keys("en")
    assert sv == en, f"only in sv: {sv - en}; only in en: {en - sv}"
    for key in sorted(sv):
        assert placeholders(catalogue.text("sv", key)) == placeholders(catalogue.text("en", key)), key


def test_a_broken_catalogue_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "sv.yaml").write_text("a: [1, 2\n", encoding="utf-8")
    (tmp_path / "en.yaml").write_text("a: b\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"sv\.yaml: malformed YAML"):
        load_catalogue(tmp_path)
    with pytest.raises(CatalogueError, match=r"cannot read the message catalogue"):
        load_catalogue(tmp_path / "missing")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_core_imports_no_platform_library() -> None:
    offenders = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        for module in imported_modules(path):
            top = module.split(".")[0]
            # openai is allowed in bot/llm.py only, behind the Classifier protocol (issue 4).
            if top in FORBIDDEN and not (top == "openai" and path.name == "llm.py"):
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
            # The CLI is the composition root and may start an adapter; nothing else may.
            if top == "adapters" and path.name != "cli.py":
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []
