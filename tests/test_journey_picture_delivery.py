"""Where the journey picture is shown: `/cx journey [stage]` answers at once and sends the
picture after, drawn once per content and reused; the console writes it to a file; `journey
mine` lists a person's touchpoints as text cards (Slack's App Home); `cxbot journey picture`."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from adapters.console import ConsoleAdapter
from bot.app import CxApp
from bot.messages import Invocation, Reply
from bot.store.models import Attachment, Outbox
from tests.conftest import Clock
from tests.test_console import run_cxbot

PNG = b"\x89PNG\r\n\x1a\n"


def ask(app: CxApp, text: str, user: str = "anna") -> Reply:
    return app.dispatch(Invocation("console", "console", user, "#cx", text))


def pictures_sent(loaded: sessionmaker[Session]) -> list[Outbox]:
    with loaded() as session:
        return list(session.scalars(select(Outbox).where(Outbox.topic == "journey-picture").order_by(Outbox.id)))


def attachments(loaded: sessionmaker[Session]) -> int:
    with loaded() as session:
        return session.scalar(select(func.count()).select_from(Attachment)) or 0


def test_journey_answers_at_once_and_sends_the_picture_after(loaded: sessionmaker[Session], clock: Clock) -> None:
    later: list[Callable[[], object]] = []
    app = CxApp(loaded, clock=clock, default_language="sv", run_later=later.append)
    reply = ask(app, "/cx journey")
    assert reply.message.header == "Kundresan: Nordljus Energi AB"
    assert "Bilden av kundresan kommer till dig som ett eget meddelande." in reply.message.context
    assert len(later) == 1 and pictures_sent(loaded) == []  # not drawn on the reply's path
    later.pop()()
    [sent] = pictures_sent(loaded)
    assert (sent.platform, sent.target_kind, sent.target_ref) == ("console", "user", "anna")
    image = sent.payload["image"]
    assert image["attachment"].startswith("journey-picture:2026-W47:sv:all:")
    assert "Utan ägare: Prisjämförelsesajter." in image["alt"] and "27 kontaktpunkter" in image["alt"]
    with loaded() as session:
        png = session.scalar(select(Attachment.data).where(Attachment.key == image["attachment"]))
    assert png is not None and png.startswith(PNG)

    # Asked again on the same facts: sent again, drawn once.
    ask(app, "/cx journey")
    later.pop()()
    assert [p.payload["image"]["attachment"] for p in pictures_sent(loaded)] == [image["attachment"]] * 2
    assert attachments(loaded) == 1

    # A new issue changes the picture: drawn anew, and its card says so.
    ask(app, "/cx report high kreditprövning: Kreditprövningen hänger sig")
    later.clear()
    ask(app, "/cx journey")
    later.pop()()
    newest = pictures_sent(loaded)[-1].payload["image"]
    assert newest["attachment"] != image["attachment"] and attachments(loaded) == 2
    assert "Kreditprövning (inga siffror, öppna ärenden: 1, försenade: 0)" in newest["alt"]


def test_a_stage_shows_its_own_part(loaded: sessionmaker[Session], clock: Clock) -> None:
    later: list[Callable[[], object]] = []
    app = CxApp(loaded, clock=clock, default_language="sv", run_later=later.append)
    assert ask(app, "/cx journey köp").message.header == "3. Köp"
    later.pop()()
    [sent] = pictures_sent(loaded)
    assert sent.payload["image"]["attachment"].startswith("journey-picture:2026-W47:sv:purchase:")
    assert "4 kontaktpunkter" in sent.payload["image"]["alt"]


def test_the_console_writes_the_picture_to_a_file_and_prints_its_path(
    loaded: sessionmaker[Session], clock: Clock
) -> None:
    app = CxApp(loaded, clock=clock, default_language="sv", run_later=lambda task: task())
    out = io.StringIO()
    ConsoleAdapter(app, loaded, "anna", out=out, echo=True).run(["/cx journey"])
    printed = [line for line in out.getvalue().splitlines() if "[image: Bild av kundresan" in line]
    assert len(printed) == 1, out.getvalue()
    path = Path(printed[0].rsplit("] ", 1)[1])
    assert path.name == "cx-journey-2026-W47-all.png" and path.read_bytes().startswith(PNG)


def test_journey_mine_lists_the_persons_touchpoints_as_cards(loaded: sessionmaker[Session], clock: Clock) -> None:
    app = CxApp(loaded, clock=clock, default_language="sv", run_later=lambda task: None)
    ask(app, "/cx report faktura: Dubbla fakturor", user="leila")
    reply = ask(app, "/cx journey mine", user="fatima")  # she reads English
    assert reply.message.header == "Your touchpoints, week 2026-W47"
    cards = {f.label: f.value for f in reply.message.fields}
    # Billing's three (her team's), and Moving house, where she is the backup.
    assert set(cards) == {"Credit check", "First invoice", "Monthly invoice", "Moving house"}
    assert sum("1 open" in value for value in cards.values()) == 1
    assert all(value.startswith("– no figures · ") for value in cards.values())
    swedish = ask(app, "/cx journey mina", user="leila")
    assert swedish.message.header == "Dina kontaktpunkter, vecka 2026-W47"
    assert "Kundtjänst per telefon" in {f.label for f in swedish.message.fields}


def test_cxbot_journey_picture_writes_the_png(bare_engine: Engine, tmp_path: Path) -> None:
    assert run_cxbot(bare_engine, tmp_path, "", "demo").returncode == 0
    result = run_cxbot(
        bare_engine, tmp_path, "", "journey", "picture", "--stage", "köp", "--language", "en", "--out", "map.png"
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "map.png").read_bytes().startswith(PNG)
    assert result.stdout.startswith("Wrote map.png (") and "4 touchpoints" in result.stdout
    bad = run_cxbot(bare_engine, tmp_path, "", "journey", "picture", "--stage", "mars", "--out", "x.png")
    assert bad.returncode == 1 and "there is no stage 'mars'" in bad.stderr and "Traceback" not in bad.stderr
