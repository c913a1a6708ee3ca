"""One routed post per person and channel per issue, edited in place on every change.

Reassigning to whoever already has the issue changes nothing; reassigning away and back, +1,
acknowledge, resolve, reopen and escalation edit the posts already made and never add a second
copy of the issue to a DM or a channel. The demo's seeded issues are edited in place too.
"""

from __future__ import annotations

import io
from collections import Counter
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adapters.console import ConsoleAdapter
from bot.app import CxApp
from bot.i18n import default_catalogue
from bot.scheduler import run_sla_sweep
from bot.services.demo import seed_demo_issues
from bot.services.journey import current_org
from bot.store.models import Issue, Outbox
from tests.conftest import NOW, Clock
from tests.test_issues import events, outbox_rows, report_invoice, say


def copies_per_place(loaded: sessionmaker[Session], number: int = 1) -> Counter[tuple[str, str, str]]:
    """How many posts (not edits) of the issue each place holds."""
    rows = outbox_rows(loaded, Outbox.topic == f"issue:{number}:routed", Outbox.update_of_id.is_(None))
    return Counter((r.platform, r.target_kind, r.target_ref) for r in rows)


def test_reassigning_to_the_one_who_has_it_changes_nothing(app: CxApp, loaded: sessionmaker[Session]) -> None:
    report_invoice(app)  # routed to fatima (the owner) and the billing team's channel
    before = outbox_rows(loaded)
    reply = say(app, "/cx issue 1 reassign fatima", "fatima")
    assert reply.refused and reply.message.text == "#1 is already with fatima: nothing changed."
    assert outbox_rows(loaded) == before or len(outbox_rows(loaded)) == len(before)
    assert events(loaded) == ["reported"]
    say(app, "/cx issue 1 reassign billing", "fatima")  # to the team: fatima is no longer assignee
    rows = len(outbox_rows(loaded))
    assert say(app, "/cx issue 1 reassign billing", "fatima").message.text == (
        "#1 is already with billing: nothing changed."
    )
    assert len(outbox_rows(loaded)) == rows


def test_every_change_edits_the_one_post_each_place_has(
    app: CxApp, loaded: sessionmaker[Session], clock: Clock
) -> None:
    report_invoice(app)
    first = copies_per_place(loaded)
    assert first and set(first.values()) == {1}
    say(app, "/cx issue 1 reassign elin", "fatima")  # elin gets the post: new places
    say(app, "/cx issue 1 reassign fatima", "elin")  # back to fatima, who has it already
    say(app, "/cx issue 1 reassign elin", "fatima")  # and to elin again
    say(app, "/cx report faktura: Fakturan visar fel moms för november", "leila")
    assert say(app, "/cx report faktura: Fakturan visar fel moms för november", "leila").message is not None
    clock.now = NOW + timedelta(days=10)  # past every deadline: escalation and overdue notices
    run_sla_sweep(loaded, clock)
    say(app, "/cx issue 1 ack", "elin")
    say(app, "/cx issue 1 resolve process: Momsen rättad", "elin")
    say(app, "/cx issue 1 reopen", "anna")
    run_sla_sweep(loaded, lambda: clock.now + timedelta(days=10))
    assert events(loaded)[:4] == ["reported", "reassigned", "reassigned", "reassigned"]
    assert {"acknowledged", "resolved", "reopened"} <= set(events(loaded))
    copies = copies_per_place(loaded)
    assert set(copies.values()) == {1}, copies  # never a second copy in one place
    assert set(first) < set(copies)  # elin's DMs were added once
    # Every change since the report edited every post made before it.
    with loaded() as session:
        issue = session.get(Issue, 1)
        assert issue is not None and issue.version >= 6
        originals = session.scalars(
            select(Outbox).where(Outbox.topic == "issue:1:routed", Outbox.update_of_id.is_(None))
        ).all()
        for original in originals:
            edits = session.scalars(select(Outbox).where(Outbox.update_of_id == original.id)).all()
            assert edits, original.idempotency_key


def test_the_demos_issues_are_edited_in_place_on_the_console(loaded: sessionmaker[Session], clock: Clock) -> None:
    with loaded.begin() as session:
        org = current_org(session)
        assert org is not None
        assert seed_demo_issues(session, org, default_catalogue(), NOW) == 5
    app = CxApp(loaded, clock=clock, default_language="sv")
    out = io.StringIO()
    console = ConsoleAdapter(app, loaded, "erik", out=out, echo=True)  # an admin
    console.run([])  # the journey's own notices; the demo's posts are history
    out.seek(0)
    out.truncate(0)
    with loaded() as session:
        number = session.scalar(select(Issue.id).where(Issue.status == "open").order_by(Issue.id))
        dm = session.scalar(
            select(Outbox).where(
                Outbox.topic == f"issue:{number}:routed",
                Outbox.platform == "console",
                Outbox.target_kind == "user",
                Outbox.update_of_id.is_(None),
            )
        )
        assert dm is not None
    console.run([f"/cx issue {number} ack"])
    shown = out.getvalue()
    assert f"[console-{dm.id} i @{dm.target_ref}, uppdaterat]" in shown, shown  # the label in the reader's language
    new_posts = [line for line in shown.splitlines() if line.startswith("[console-") and "uppdaterat]" not in line]
    # The card is edited everywhere; what is new is the one notice to the reporter.
    assert len(new_posts) <= 1, shown
