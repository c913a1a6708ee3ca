"""The refusal every layer may raise: a mistake the person can fix, named by a catalogue key.

It lives at the bottom so that pure parsers (numbers, weeks, free text) can refuse politely
without knowing about the router; the router renders it in the person's language."""

from __future__ import annotations

from collections.abc import Iterable

from bot.domain.text import excerpt


class UserError(Exception):
    """A mistake the user can fix. Carries a catalogue key, rendered in the user's language."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


def no_more_words(words: Iterable[str]) -> None:
    """Refuse words a command has no use for, naming the first: nothing typed is silently
    ignored."""
    for word in words:
        raise UserError("common.extra_word", word=excerpt(word))
