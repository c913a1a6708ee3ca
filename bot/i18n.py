"""Every user-facing sentence, in Swedish and English, from a keyed catalogue in content/i18n/."""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path

import yaml

LANGUAGES = ("sv", "en")


class CatalogueError(Exception):
    """A missing or broken catalogue file; the message names the file and the problem."""


class Catalogue:
    def __init__(self, entries: Mapping[str, Mapping[str, str]]) -> None:
        self._entries = entries

    def text(self, language: str, key: str, /, **values: object) -> str:
        table = self._entries.get(language) or self._entries["en"]
        template = table.get(key) or self._entries["en"].get(key)
        if template is None:
            # A missing string is a programming error, but the user still deserves a reply.
            return key
        return template.format(**values) if values else template

    def text_or(self, language: str, key: str, fallback: str) -> str:
        """The sentence for ``key``, or ``fallback`` when the catalogue has none (free-form tags)."""
        table = self._entries.get(language) or self._entries["en"]
        return table.get(key) or self._entries["en"].get(key) or fallback

    def keys(self, language: str) -> set[str]:
        return set(self._entries.get(language, {}))


def _flatten(prefix: str, node: object, out: dict[str, str], file: Path) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), value, out, file)
    elif isinstance(node, str):
        out[prefix] = node
    else:
        raise CatalogueError(f"{file}: {prefix!r} must be text, not {type(node).__name__}")


def load_catalogue(directory: Path) -> Catalogue:
    entries: dict[str, dict[str, str]] = {}
    for language in LANGUAGES:
        file = directory / f"{language}.yaml"
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CatalogueError(f"{file}: cannot read the message catalogue ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise CatalogueError(f"{file}: malformed YAML ({exc})") from None
        flat: dict[str, str] = {}
        _flatten("", data or {}, flat, file)
        entries[language] = flat
    return Catalogue(entries)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def default_catalogue() -> Catalogue:
    from bot.content import default_content

    return default_content().catalogue
