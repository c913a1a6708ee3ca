"""Every user-facing sentence, in Swedish and English, from a keyed catalogue in content/i18n/."""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml

LANGUAGES = ("sv", "en")


class CatalogueError(Exception):
    """A missing or broken catalogue file; the message names the file and the problem."""


class Named(Protocol):
    """A stage, touchpoint or team: something with a name in each language."""

    def name(self, language: str) -> str: ...


@dataclass(frozen=True)
class PerLanguage:
    """A value that reads differently in each language (a list of stage names, say), for a
    sentence put together where the reader's language is not known yet, such as a UserError
    raised in a service. The catalogue picks the reader's text when it renders the sentence."""

    texts: Mapping[str, str]

    @classmethod
    def names(cls, things: Iterable[Named], empty: str = "–") -> PerLanguage:
        """The things' names in each language, joined by commas: never their keys."""
        listed = list(things)
        return cls({lang: ", ".join(thing.name(lang) for thing in listed) or empty for lang in LANGUAGES})

    def in_language(self, language: str) -> str:
        return self.texts.get(language) or self.texts.get("en") or next(iter(self.texts.values()), "")

    def __str__(self) -> str:  # only a log line or a programming error sees this
        return self.in_language("en")


class Catalogue:
    def __init__(self, entries: Mapping[str, Mapping[str, str]]) -> None:
        self._entries = entries

    def text(self, language: str, key: str, /, **values: object) -> str:
        table = self._entries.get(language) or self._entries["en"]
        template = table.get(key) or self._entries["en"].get(key)
        if template is None:
            # A missing string is a programming error, but the user still deserves a reply.
            return key
        if not values:
            return template
        return template.format(
            **{k: v.in_language(language) if isinstance(v, PerLanguage) else v for k, v in values.items()}
        )

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
