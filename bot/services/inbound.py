"""Events from a platform that may arrive more than once (Slack redelivers what it did not see
acknowledged within 3 seconds): the first delivery counts, later ones change nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from bot.store.db import insert_for
from bot.store.models import InboundEvent

KEEP = timedelta(days=3)  # Slack retries within minutes; three days is generous


def first_delivery(session: Session, platform: str, event_id: str, now: datetime) -> bool:
    """Record the event in the caller's transaction; False when it was recorded before. The
    unique (platform, event id) decides between two deliveries handled at the same moment."""
    inserted = session.execute(
        insert_for(session, InboundEvent)
        .values(platform=platform, event_id=event_id[:128], received_at=now)
        .on_conflict_do_nothing(index_elements=["platform", "event_id"])
        .returning(InboundEvent.id)
    ).first()
    return inserted is not None


def forget_old(session: Session, now: datetime) -> int:
    """Drop records old enough that no platform will redeliver them; returns how many."""
    result = session.execute(delete(InboundEvent).where(InboundEvent.received_at < now - KEEP))
    return result.rowcount or 0
