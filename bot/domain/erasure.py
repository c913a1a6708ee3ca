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


# A short text of theirs (fewer than QUOTE_WORDS words: "Ringde kunden") is quoted only as a
# whole line, or after a label of at most this many words and a colon ("Åtgärd: Ringde
# kunden"), never as a phrase inside someone else's sentence.
LABEL_WORDS = 3


@dataclass(frozen=True)
class Traces:
    """What would still point at an erased person: who they were, and what they wrote."""

    name: str
    identity: re.Pattern[str]  # their full name (in any case) and chat user ids, as whole words
    key: str  # their key: only where a value is exactly it (a key like "per" is also a word)
    refs: frozenset[str]  # their key and chat user ids, as outbox keys hold them
    runs: frozenset[tuple[str, ...]]  # every QUOTE_WORDS words in a row that they wrote
    short: frozenset[tuple[str, ...]]  # what they wrote in fewer words

    @classmethod
    def of(cls, name: str, key: str, ids: Iterable[str], texts: Iterable[str]) -> Traces:
        chat_ids = sorted({i for i in ids if i}, key=len, reverse=True)
        # Chat ids as written; the full name in any case. Not the key: "per" or "maj" are words.
        alternatives = [f"(?i:{re.escape(name.strip())})"] if name.strip() else []
        alternatives += map(re.escape, chat_ids)
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
        refs = frozenset({key, *chat_ids} - {""})
        return cls(name.strip(), identity, key, refs, frozenset(runs), frozenset(short))

    def names(self) -> list[str]:
        """What names them in any text: the full name and the chat ids (not the key)."""
        return [n for n in (self.name, *sorted(self.refs - {self.key})) if n]

    def quotes(self, line: str) -> bool:
        words = _words(line)
        if any(run in self.runs for run in _runs(words)):
            return True
        if tuple(words) in self.short:
            return True
        label, colon, rest = line.partition(":")
        return bool(colon) and len(_words(label)) <= LABEL_WORDS and tuple(_words(rest)) in self.short

    def scrub_text(self, text: str, someone: str, removed: str) -> str:
        """A line quoting them goes whole; their name or an id is replaced where it stands."""
        return "\n".join(
            removed if self.quotes(line) else self.identity.sub(someone, line) for line in text.split("\n")
        )

    def scrub(self, value: Any, someone: str, removed: str) -> Any:
        """Every text in a JSON value (a post, an event's data), scrubbed; a value that is
        exactly their key (a reassignment's "to_person") too."""
        if isinstance(value, str):
            return someone if value == self.key else self.scrub_text(value, someone, removed)
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
