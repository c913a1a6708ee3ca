"""The journey picture stored and sent: drawn once per content, kept as an Attachment like the
digest's chart, and posted through the outbox so every platform shows it its own way (Slack
uploads it beside the message, Discord attaches it to the embed, the console writes a file).

The key carries a fingerprint of everything drawn: the same week, language, scope and facts
find the picture already stored; a new owner or issue draws a new one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.i18n import Catalogue
from bot.messages import Image, Message
from bot.outbox import Target, enqueue
from bot.services.journey import current_org
from bot.services.journey_picture import JourneyPicture, alt_text, picture_for
from bot.store.db import database_unavailable, driver_reason, insert_for
from bot.store.models import Attachment

log = logging.getLogger(__name__)


def picture_key(picture: JourneyPicture) -> str:
    scope = picture.stage or "all"
    return f"journey-picture:{picture.week}:{picture.language}:{scope}:{picture.fingerprint()}"


def store_picture(session: Session, picture: JourneyPicture, catalogue: Catalogue, now: datetime) -> str:
    """The stored picture's attachment key; drawn only when no picture of this content exists."""
    key = picture_key(picture)
    if not is_stored(session, key):
        keep_picture(session, picture, draw_picture(picture, catalogue), now)
    return key


def is_stored(session: Session, key: str) -> bool:
    return session.scalar(select(Attachment.id).where(Attachment.key == key)) is not None


def draw_picture(picture: JourneyPicture, catalogue: Catalogue) -> bytes:
    from bot.services.picture_render import render_png  # matplotlib: only when drawing

    return render_png(picture, words(catalogue, picture.language))


def keep_picture(session: Session, picture: JourneyPicture, png: bytes, now: datetime) -> str:
    key = picture_key(picture)
    filename = f"cx-journey-{picture.week}-{picture.stage or 'all'}.png"
    statement = insert_for(session, Attachment).values(
        key=key, filename=filename, content_type="image/png", data=png, created_at=now
    )
    # Two people asking at once draw the same bytes: the second insert is simply skipped.
    session.execute(statement.on_conflict_do_nothing(index_elements=["key"]))
    return key


def words(catalogue: Catalogue, language: str) -> Callable[..., str]:
    return lambda key, **values: catalogue.text(language, key, **values)


def picture_message(picture: JourneyPicture, key: str, catalogue: Catalogue) -> Message:
    text = words(catalogue, picture.language)
    return Message(
        header=text("picture.sent_header", org=picture.org, week=picture.week),
        image=Image(alt=alt_text(picture, text), attachment=key),
    )


def prepare_picture(
    session_factory: sessionmaker[Session],
    catalogue: Catalogue,
    language: str,
    now: datetime,
    *,
    week: str | None = None,
    stage: str | None = None,
) -> tuple[JourneyPicture, str] | None:
    """Read the facts, draw the picture if it is not stored yet, store it: three steps, and no
    transaction open while matplotlib works (on SQLite it would hold the write lock). Returns
    the picture and its attachment key; None without a journey, or when it could not be kept."""
    with session_factory() as session:
        org = current_org(session)
        if org is None:
            return None
        picture = picture_for(session, org, language, now, week=week, stage=stage)
        key = picture_key(picture)
        stored = is_stored(session, key)
    if not stored:
        png = draw_picture(picture, catalogue)
        try:
            with session_factory.begin() as session:
                keep_picture(session, picture, png, now)
        except Exception as error:
            if not database_unavailable(error):
                raise
            # SQLite's write lock held past the busy timeout (a digest being built): whoever
            # needs the picture next draws it again.
            log.warning("journey picture %s not stored: the database is busy: %s", key, driver_reason(error))
            return None
    return picture, key


def send_picture(
    session_factory: sessionmaker[Session],
    catalogue: Catalogue,
    target: Target,
    language: str,
    clock: Callable[[], datetime],
    *,
    stage: str | None = None,
    request: str,
) -> None:
    """Draw (or reuse) the picture and queue it to ``target``; run after a command's reply.
    ``request`` makes the outbox key: one picture per asking."""
    now = clock()
    prepared = prepare_picture(session_factory, catalogue, language, now, stage=stage)
    if prepared is None:
        return
    picture, key = prepared
    with session_factory.begin() as session:
        message = picture_message(picture, key, catalogue)
        enqueue(session, target, message, f"journey-picture:{request}", now, topic="journey-picture", language=language)
    log.info("journey picture %s queued for %s", key, target.for_log)
