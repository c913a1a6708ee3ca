"""The right to erasure's text rules (bot/domain/erasure.py): what counts as a trace of a person."""

from __future__ import annotations

import pytest

from bot.domain.erasure import Traces

PER = Traces.of(
    "Per Holm",
    "per",
    ["U0PERHOLM", "1180000000000000042"],
    ["Ringde kunden", "kunden ringde och var arg över fakturan"],
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # His name, in any case, and his chat ids go; the rest of the line stays.
        ("Tack till Per Holm och Leila", "Tack till X och Leila"),
        ("tack till PER HOLM", "tack till X"),
        ("Fråga <@U0PERHOLM> eller <@1180000000000000042>", "Fråga <@X> eller <@X>"),
        # His key is a word too: it is never replaced in running text.
        ("📊 Nyckeltal per steg", "📊 Nyckeltal per steg"),
        ("NPS per stage", "NPS per stage"),
        ("Per Holmberg skrev", "Per Holmberg skrev"),  # someone else's longer name
        # Five of his words in a row: the line goes.
        ("”kunden ringde och var arg” sade någon", "(removed)"),
        # A short text of his: as a whole line, or after a short label, not inside a sentence.
        ("Ringde kunden", "(removed)"),
        ("Åtgärd: Ringde kunden", "(removed)"),
        ("Anna ringde kunden direkt", "Anna ringde kunden direkt"),
        ("Vi ringde kunden", "Vi ringde kunden"),
    ],
)
def test_what_names_or_quotes_him_and_what_does_not(line: str, expected: str) -> None:
    assert PER.scrub(line, "X", "(removed)") == expected


def test_a_value_that_is_exactly_his_key_is_his_in_structured_data() -> None:
    data = {"to_person": "per", "note": "per vecka", "steps": ["per"]}
    assert PER.scrub(data, "–", "(removed)") == {"to_person": "–", "note": "per vecka", "steps": ["–"]}
    assert PER.found_in(data) and not PER.found_in({"note": "per vecka"})


def test_outbox_keys_name_him_by_key_or_chat_id_between_colons() -> None:
    assert PER.in_key("issue:4:routed:dm:per")
    assert PER.in_key("issue:4:routed:slack:user:U0PERHOLM")
    assert not PER.in_key("issue:4:routed:team")
    assert not PER.in_key("issue:4:routed:dm:persson")
    assert PER.names() == ["Per Holm", "1180000000000000042", "U0PERHOLM"]
