"""The right to erasure's rules: what still points at an erased person in a text (their name,
key or chat ids; a run of their own words), and the text with it taken out. Pure: no database."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

# A post quotes the person when it holds this many of their words in a row: an excerpt or a
# summary sentence quotes at least that many, while two people writing five words in the same
# order by chance is rare (and then too much is removed, never too little).
QUOTE_WORDS = 5
_WORD = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    return [word.casefold() for word in _WORD.findall(text)]


def _runs(words: Sequence[str], length: int = QUOTE_WORDS) -> Iterator[tuple[str, ...]]:
    return (tuple(words[i : i + length]) for i in range(len(words) - length + 1))


@dataclass(frozen=True)
class Traces:
    """What would still point at an erased person: who they were, and what they wrote."""

    identity: re.Pattern[str]  # their name (in any case), key and chat user ids, as whole words
    refs: frozenset[str]  # their key and chat user ids, as outbox keys hold them
    runs: frozenset[tuple[str, ...]]  # every QUOTE_WORDS words in a row that they wrote
    short: frozenset[tuple[str, ...]]  # what they wrote in fewer words, matched whole

    @classmethod
    def of(cls, name: str, refs: Iterable[str], texts: Iterable[str]) -> Traces:
        ids = sorted({ref for ref in refs if ref}, key=len, reverse=True)
        # Keys and ids as written: a lower-case key is no name, and "erik" must not catch "Erik".
        alternatives = [f"(?i:{re.escape(name.strip())})"] if name.strip() else []
        alternatives += map(re.escape, ids)
        pattern = "|".join(alternatives) or "(?!)"  # (?!) matches nothing
        identity = re.compile(rf"(?<![\w-])(?:{pattern})(?![\w-])")
        runs: set[tuple[str, ...]] = set()
        short: set[tuple[str, ...]] = set()
        for text in texts:
            words = _words(text)
            if len(words) >= QUOTE_WORDS:
                runs.update(_runs(words))
            elif words:
                short.add(tuple(words))
        return cls(identity, frozenset(ids), frozenset(runs), frozenset(short))

    def quotes(self, line: str) -> bool:
        words = _words(line)
        if any(run in self.runs for run in _runs(words)):
            return True
        # A one-word text counts only as a whole line: "Ok" is in too many sentences.
        return any(tuple(words) == text if len(text) == 1 else text in _runs(words, len(text)) for text in self.short)

    def scrub_text(self, text: str, someone: str, removed: str) -> str:
        """A line quoting them goes whole; their name or an id is replaced where it stands."""
        return "\n".join(
            removed if self.quotes(line) else self.identity.sub(someone, line) for line in text.split("\n")
        )

    def scrub(self, value: Any, someone: str, removed: str) -> Any:
        """Every text in a JSON value (a post, an event's data), scrubbed."""
        if isinstance(value, str):
            return self.scrub_text(value, someone, removed)
        if isinstance(value, list):
            return [self.scrub(item, someone, removed) for item in value]
        if isinstance(value, dict):
            return {key: self.scrub(item, someone, removed) for key, item in value.items()}
        return value

    def found_in(self, value: Any) -> bool:
        return self.scrub(value, "\0", "\0") != value

    def in_key(self, key: str) -> bool:
        """An outbox key names people by key and chat id between its colons."""
        return not self.refs.isdisjoint(key.split(":"))
