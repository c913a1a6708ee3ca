"""Commands that cannot be undone ask first: a private preview with *Confirm* / *Cancel*.

The pending answer is a row (``PendingConfirmation``): the buttons carry only its random token,
so they work on every platform (a Discord button id carries no value), for the admin who asked,
once, for a few minutes. Answered, either way, the row is gone; an expired one is swept away
by the next question.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.app import UserError
from bot.store.models import PendingConfirmation, Person

LIFETIME = timedelta(minutes=5)
ERASE = "erase"
DELETE_OBSERVATION = "delete-observation"


@dataclass(frozen=True)
class Confirmed:
    action: str
    subject_id: int


def ask(session: Session, person: Person, action: str, subject_id: int, now: datetime) -> str:
    """Store the question; returns the token its buttons carry."""
    session.execute(delete(PendingConfirmation).where(PendingConfirmation.expires_at <= now))
    token = secrets.token_urlsafe(12)
    session.add(
        PendingConfirmation(
            token=token,
            person_id=person.id,
            action=action,
            subject_id=subject_id,
            created_at=now,
            expires_at=now + LIFETIME,
        )
    )
    return token


def answer(session: Session, token: str, person: Person, now: datetime) -> Confirmed:
    """Take the question behind a button, once. Someone else's question is refused and left
    for its owner; an unknown, used or expired one is refused."""
    pending = session.scalar(select(PendingConfirmation).where(PendingConfirmation.token == token).with_for_update())
    if pending is None or pending.expires_at <= now:
        raise UserError("confirm.expired")
    if pending.person_id != person.id:
        raise UserError("confirm.not_yours")
    confirmed = Confirmed(pending.action, pending.subject_id)
    session.delete(pending)
    return confirmed


def forget(session: Session, person_id: int) -> None:
    """An erased person's questions go, and questions about erasing them (there is no one left to
    erase)."""
    session.execute(
        delete(PendingConfirmation)
        .where(
            (PendingConfirmation.person_id == person_id)
            | ((PendingConfirmation.action == ERASE) & (PendingConfirmation.subject_id == person_id))
        )
        .execution_options(synchronize_session=False)
    )
