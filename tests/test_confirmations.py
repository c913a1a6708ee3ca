"""Commands that cannot be undone ask first: `/cx erase <person>`, and deleting an observation
an issue came from. A private preview with Confirm / Cancel, valid for the admin who asked,
once, for a few minutes; nobody can erase themselves."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.app import CxApp
from bot.messages import Message, Visibility
from bot.services.confirmations import LIFETIME
from bot.store.models import Identity, Observation, PendingConfirmation, Person
from tests.conftest import Clock
from tests.test_issues import press, say


def people(loaded: sessionmaker[Session]) -> set[str]:
    with loaded() as session:
        return set(session.scalars(select(Person.key)))


def pending(loaded: sessionmaker[Session]) -> int:
    with loaded() as session:
        return session.scalar(select(func.count()).select_from(PendingConfirmation)) or 0


def erase_preview(app: CxApp, who: str = "erik", whom: str = "mikael") -> Message:
    reply = say(app, f"/cx erase {whom}", who)
    assert reply.visibility is Visibility.EPHEMERAL  # the admin alone sees it
    return reply.message


def test_erase_shows_what_will_go_and_waits_for_the_button(app: CxApp, loaded: sessionmaker[Session]) -> None:
    say(app, "/cx observe Kunden var nöjd med installationen", "mikael")
    say(app, "/cx observe anonymous Chefen lyssnar aldrig på montörerna", "mikael")
    say(app, "/cx report app: Appen kraschar vid inloggning", "mikael")
    say(app, "/cx report anonymous faktura: Fakturan har fel moms", "mikael")
    preview = erase_preview(app)
    assert preview.header == "Radera Mikael Eriksson?"
    assert preview.text is not None and preview.text.startswith("Det här går inte att ångra.")
    fields = {f.label: f.value for f in preview.fields}
    assert fields["Person"] == "Mikael Eriksson (mikael)"
    assert fields["Observationer i personens namn"] == "1"  # the anonymous one is not counted
    assert fields["Ärenden personen rapporterat, gett +1, haft tilldelade eller hanterat"] == "1"  # nor that report
    with loaded() as session:
        ids = session.scalars(select(Identity.external_user_id).join(Person).where(Person.key == "mikael")).all()
    assert all(i in fields["Chattidentiteter"] for i in ids) and len(ids) == 3
    assert [b.label for b in preview.buttons] == ["Radera", "Avbryt"]
    assert preview.buttons[0].style == "danger"
    assert "mikael" in people(loaded)  # nothing has gone yet

    done = press(app, preview.buttons[0].action_id, "erik")
    assert (done.message.text or "").startswith("Raderade allt Mikael Eriksson skrivit under eget namn.")
    assert "mikael" not in people(loaded)
    with loaded() as session:
        assert session.scalar(select(func.count()).select_from(Observation)) == 1  # the anonymous one stays, unlinked
    assert pending(loaded) == 0  # used: gone
    again = press(app, preview.buttons[0].action_id, "erik")
    assert again.refused and again.message.text == (
        "Knappen har gått ut eller redan använts: inget gjordes. Skriv kommandot igen för en ny."
    )


def test_cancel_erases_nothing_and_spends_the_button(app: CxApp, loaded: sessionmaker[Session]) -> None:
    preview = erase_preview(app)
    cancel = press(app, preview.buttons[1].action_id, "erik")
    assert cancel.message.text == "Avbrutet: inget raderades."
    assert press(app, preview.buttons[0].action_id, "erik").refused
    assert "mikael" in people(loaded) and pending(loaded) == 0


def test_only_the_admin_who_asked_may_press(app: CxApp, loaded: sessionmaker[Session]) -> None:
    preview = erase_preview(app)
    for other in ("elin", "mikael", "leila"):  # another admin, the person, anyone
        refused = press(app, preview.buttons[0].action_id, other)
        assert refused.refused, other
    assert "mikael" in people(loaded) and pending(loaded) == 1  # still erik's to answer
    assert (press(app, preview.buttons[0].action_id, "erik").message.text or "").startswith("Raderade allt")


def test_the_button_expires_after_a_few_minutes(app: CxApp, loaded: sessionmaker[Session], clock: Clock) -> None:
    preview = erase_preview(app)
    clock.now += LIFETIME + timedelta(seconds=1)
    assert press(app, preview.buttons[0].action_id, "erik").refused
    assert "mikael" in people(loaded)
    erase_preview(app, whom="david")  # the next question sweeps the expired one away
    assert pending(loaded) == 1


def test_an_admin_cannot_erase_themselves(app: CxApp, loaded: sessionmaker[Session]) -> None:
    reply = say(app, "/cx erase erik", "erik")
    assert reply.refused and reply.message.text == "Du kan inte radera dig själv: be en annan administratör göra det."
    assert not reply.message.buttons and pending(loaded) == 0


def test_a_made_up_or_mangled_button_does_nothing(app: CxApp, loaded: sessionmaker[Session]) -> None:
    erase_preview(app)
    for action in ("confirm:nonsense:yes", "confirm::yes", "confirm:x", "confirm:x:maybe"):
        assert press(app, action, "erik").refused, action
    assert "mikael" in people(loaded)


@pytest.mark.parametrize("answer", ["yes", "no"])
def test_deleting_an_observation_an_issue_came_from_asks_first(
    app: CxApp, loaded: sessionmaker[Session], answer: str
) -> None:
    say(app, "/cx observe Kunden väntade 40 minuter i telefonkön om fakturan", "leila")
    say(app, "/cx observation 1 touchpoint faktura", "leila")
    say(app, "/cx observation 1 report", "leila")
    with loaded() as session:
        linked = session.get(Observation, 1)
        assert linked is not None and linked.issue_id == 1
    refused = say(app, "/cx observation 1 delete", "mikael")  # not hers to delete: no question either
    assert refused.refused and not refused.message.buttons
    asked = say(app, "/cx observation 1 delete", "leila").message
    assert asked.header == "Radera observation #1?"
    assert asked.text is not None and "ärende #1" in asked.text
    with loaded() as session:
        assert session.get(Observation, 1) is not None
    button = asked.buttons[0 if answer == "yes" else 1]
    reply = press(app, button.action_id, "leila")
    with loaded() as session:
        kept = session.get(Observation, 1)
    if answer == "yes":
        assert reply.message.text == "Observation #1 är raderad." and kept is None
    else:
        assert reply.message.text == "Avbrutet: observation #1 finns kvar." and kept is not None
    # An observation with no issue is deleted at once, as before.
    say(app, "/cx observe Kunden var nöjd", "leila")
    with loaded() as session:
        number = session.scalar(select(func.max(Observation.id)).where(Observation.issue_id.is_(None)))
    assert say(app, f"/cx observation {number} delete", "leila").message.text == f"Observation #{number} är raderad."
