"""The inner loop: an unhappy customer's answer becomes a follow-up for the touchpoint's owner.

Survey intake (the webhooks, the export imports) calls :func:`answers_stored` after it has
committed new or changed answers; everything slower than storing (placing by comment,
follow-up rules, routing, noise control) happens here, never before the tool is answered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker


def answers_stored(
    session_factory: sessionmaker[Session], clock: Callable[[], datetime], answer_ids: Sequence[int]
) -> None:
    """Act on answers just committed (``SurveyResponse`` ids, new or updated).

    Must be idempotent: a redelivered or updated answer is passed again.
    """
    # The follow-up rules land with the inner loop (issue 16); until then an answer only counts.
    return None
