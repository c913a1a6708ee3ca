"""Employee observations: capture in one gesture, classify to the journey, act on them.

An observation is stored at once (the chat platform wants an answer within 3 seconds) and
classified afterwards, outside any transaction, so that a slow model never holds a lock. What
was not classified (a crash, a restart) is picked up by the clock's classify job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.app import UserError, excerpt
from bot.domain.classify import Classification, JourneyIndex, StageInfo
from bot.domain.issues import MAX_DESCRIPTION, ReportRequest
from bot.domain.journey_map import Severity
from bot.domain.matching import Candidate, MatchKind, match_touchpoint
from bot.domain.weeks import parse_week, week_start
from bot.i18n import Catalogue
from bot.llm import Classifier
from bot.services.issues import IssueService, ReportOutcome
from bot.services.journey import active_stages, current_org, find_stage
from bot.store.models import (
    IssueEvent,
    IssueFollower,
    Observation,
    ObservationSeer,
    Org,
    Person,
    ReportDraft,
    Stage,
    Touchpoint,
)

log = logging.getLogger(__name__)


def journey_index(session: Session, org: Org) -> JourneyIndex:
    stages = active_stages(session, org)
    touchpoints = [tp for stage in stages for tp in stage.touchpoints if tp.archived_at is None]
    return JourneyIndex(
        stages=tuple(
            StageInfo(s.key, tuple(w.casefold() for w in (s.name_sv, s.name_en, *s.keywords))) for s in stages
        ),
        touchpoints=tuple(Candidate(t.key, (t.key, t.name_sv, t.name_en, *t.aliases)) for t in touchpoints),
        stage_of={t.key: t.stage.key for t in touchpoints},
    )


@dataclass(frozen=True)
class Captured:
    observation: Observation
    already: bool


@dataclass
class ObservationService:
    session: Session
    org: Org
    catalogue: Catalogue
    now: datetime

    def get(self, number: int) -> Observation:
        found = self.session.scalar(
            select(Observation).where(Observation.id == number, Observation.org_id == self.org.id)
        )
        if found is None:
            raise UserError("observations.unknown", number=number)
        return found

    def observe(self, author: Person, text: str, anonymous: bool, platform: str, channel: str) -> Observation:
        validate_text(text)
        observation = Observation(
            org_id=self.org.id,
            text=text.strip(),
            author_id=None if anonymous else author.id,
            anonymous=anonymous,
            source="command",
            source_platform=platform,
            source_channel=channel,
            created_at=self.now,
            themes=[],
        )
        self.session.add(observation)
        self.session.flush()
        self.session.add(ObservationSeer(observation_id=observation.id, person_id=author.id, seen_at=self.now))
        log.info("observation %s saved by %s", observation.id, "anonymous" if anonymous else author.key)
        return observation

    def capture(
        self,
        captured_by: Person,
        platform: str,
        channel: str,
        message_ref: str,
        text: str | None,
        author: Person | None,
        link: str | None,
    ) -> Captured:
        """Save a chat message as an observation; the same message twice is one observation."""
        existing = self.session.scalar(
            select(Observation).where(
                Observation.source_platform == platform, Observation.source_message_ref == message_ref
            )
        )
        if existing is not None:
            seen = self.session.scalar(
                select(ObservationSeer).where(
                    ObservationSeer.observation_id == existing.id, ObservationSeer.person_id == captured_by.id
                )
            )
            if seen is None:
                self.session.add(
                    ObservationSeer(observation_id=existing.id, person_id=captured_by.id, seen_at=self.now)
                )
            return Captured(existing, already=True)
        if text is None:
            # The adapter could not read it: deleted, or out of the bot's sight.
            raise UserError("observations.message_gone")
        validate_text(text)
        observation = Observation(
            org_id=self.org.id,
            text=text.strip(),
            author_id=author.id if author is not None else None,
            anonymous=False,
            source="message",
            source_platform=platform,
            source_channel=channel,
            source_message_ref=message_ref,
            source_link=link,
            captured_by_id=captured_by.id,
            created_at=self.now,
            themes=[],
        )
        self.session.add(observation)
        self.session.flush()
        self.session.add(ObservationSeer(observation_id=observation.id, person_id=captured_by.id, seen_at=self.now))
        return Captured(observation, already=False)

    def may_change(self, observation: Observation, person: Person) -> bool:
        return person.is_admin or (observation.author_id is not None and observation.author_id == person.id)

    def correct(self, number: int, person: Person, what: str, value: str) -> Observation:
        observation = self.get(number)
        if not self.may_change(observation, person):
            raise UserError("observations.not_yours", number=number)
        stages = active_stages(self.session, self.org)
        if what in ("stage", "steg"):
            stage = find_stage(stages, value)
            if stage is None:
                raise UserError("journey.unknown_stage", text=excerpt(value), stages=", ".join(s.key for s in stages))
            observation.stage_id = stage.id
            if observation.touchpoint is not None and observation.touchpoint.stage_id != stage.id:
                observation.touchpoint_id = None
        elif what in ("touchpoint", "kontaktpunkt"):
            touchpoint = self._touchpoint(value)
            observation.touchpoint_id, observation.stage_id = touchpoint.id, touchpoint.stage_id
        else:
            raise UserError("observations.usage", given=excerpt(what))
        observation.corrected_by_id, observation.corrected_at = person.id, self.now
        self.session.expire(observation, ["stage", "touchpoint"])
        return observation

    def _touchpoint(self, text: str) -> Touchpoint:
        index = journey_index(self.session, self.org)
        match = match_touchpoint(text, index.touchpoints)
        if match.kind is not MatchKind.EXACT or match.best is None:
            closest = ", ".join(s.key for s in match.ranked[:3]) or "–"
            raise UserError("issues.unknown_touchpoint", text=excerpt(text), closest=closest)
        touchpoint = self.session.scalar(
            select(Touchpoint).where(Touchpoint.org_id == self.org.id, Touchpoint.key == match.best)
        )
        assert touchpoint is not None
        return touchpoint

    def delete(self, number: int, person: Person) -> None:
        observation = self.get(number)
        if not self.may_change(observation, person):
            raise UserError("observations.not_yours", number=number)
        self.session.delete(observation)

    def report_as_issue(self, number: int, person: Person, severity: Severity) -> ReportOutcome:
        """A linked touchpoint issue in one step, from the observation's text."""
        observation = self.get(number)
        if observation.issue_id is not None:
            raise UserError("observations.already_reported", number=number, issue=observation.issue_id)
        if observation.touchpoint is None:
            raise UserError("observations.needs_touchpoint", number=number)
        issues = IssueService(self.session, self.org, self.catalogue, self.now)
        request = ReportRequest(None, observation.text, severity, anonymous=observation.anonymous)
        outcome = issues.report(
            person,
            request,
            observation.source_platform,
            touchpoint_key=observation.touchpoint.key,
            allow_duplicate=True,
        )
        observation.issue_id = outcome.issue.id  # type: ignore[union-attr]
        return outcome

    def list(self, person: Person, filter_text: str) -> list[Observation]:
        words = filter_text.split()
        query = select(Observation).where(Observation.org_id == self.org.id)
        week = next((w for w in words if w.upper().startswith(("20", "19")) and "-W" in w.upper()), None)
        if week is not None:
            words.remove(week)
            try:
                parse_week(week.upper())
            except ValueError as exc:
                raise UserError("observations.bad_week", given=excerpt(week), reason=str(exc)) from None
            zone = ZoneInfo(self.org.time_zone)
            start = week_start(week.upper(), zone)
            from datetime import timedelta

            query = query.where(Observation.created_at >= start, Observation.created_at < start + timedelta(days=7))
        kind = words[0].casefold() if words else ""
        argument = " ".join(words[1:])
        if kind in ("mine", "mina"):
            seen = select(ObservationSeer.observation_id).where(ObservationSeer.person_id == person.id)
            query = query.where((Observation.author_id == person.id) | Observation.id.in_(seen))
        elif kind in ("stage", "steg"):
            stages = active_stages(self.session, self.org)
            stage = find_stage(stages, argument)
            if stage is None:
                raise UserError(
                    "journey.unknown_stage", text=excerpt(argument), stages=", ".join(s.key for s in stages)
                )
            query = query.where(Observation.stage_id == stage.id)
        elif kind in ("touchpoint", "kontaktpunkt"):
            query = query.where(Observation.touchpoint_id == self._touchpoint(argument).id)
        elif kind:
            raise UserError("observations.list_usage", given=excerpt(filter_text))
        return list(self.session.scalars(query.order_by(Observation.id.desc()).limit(25)))


def validate_text(text: str) -> None:
    if not text.strip():
        raise UserError("observations.empty")
    if len(text) > MAX_DESCRIPTION:
        raise UserError("observations.too_long", length=len(text), limit=MAX_DESCRIPTION)


# --- classification, after the fact ---------------------------------------------------------------


def classify_observation(
    session_factory: sessionmaker[Session], number: int, classifier: Classifier, clock: Callable[[], datetime]
) -> bool:
    """Classify one stored observation; False when it is gone or already classified."""
    with session_factory() as session:
        observation = session.get(Observation, number)
        org = current_org(session)
        if observation is None or org is None or observation.classifier is not None:
            return False
        text, index = observation.text, journey_index(session, org)
    result = classifier.classify(text, index)  # outside any transaction: it may take seconds
    with session_factory.begin() as session:
        return store_classification(session, number, result, clock())


def store_classification(session: Session, number: int, result: Classification, now: datetime) -> bool:
    observation = session.get(Observation, number, with_for_update=True)
    if observation is None or observation.classifier is not None or observation.corrected_at is not None:
        return False  # gone, classified meanwhile, or corrected by a person: theirs wins
    stage = (
        session.scalar(select(Stage).where(Stage.org_id == observation.org_id, Stage.key == result.stage))
        if result.stage
        else None
    )
    touchpoint = (
        session.scalar(
            select(Touchpoint).where(Touchpoint.org_id == observation.org_id, Touchpoint.key == result.touchpoint)
        )
        if result.touchpoint
        else None
    )
    observation.stage_id = stage.id if stage else None
    observation.touchpoint_id = touchpoint.id if touchpoint else None
    observation.sentiment = result.sentiment.value
    observation.themes = list(result.themes)
    observation.classifier = result.classifier
    observation.classifier_note = (result.note or "")[:500] or None
    observation.classified_at = now
    return True


def classify_pending(
    session_factory: sessionmaker[Session], classifier: Classifier, clock: Callable[[], datetime], limit: int = 50
) -> int:
    """The clock's safety net: classify what a crash or restart left unclassified."""
    with session_factory() as session:
        waiting = session.scalars(
            select(Observation.id).where(Observation.classifier.is_(None)).order_by(Observation.id).limit(limit)
        ).all()
    return sum(classify_observation(session_factory, number, classifier, clock) for number in waiting)


# --- the right to erasure ----------------------------------------------------------------------


@dataclass(frozen=True)
class Erasure:
    observations: int
    events: int
    follows: int


def erase_person(session: Session, person: Person) -> Erasure:
    """Everything a person authored goes; issues stay, but no longer say who was involved."""
    observations = session.execute(delete(Observation).where(Observation.author_id == person.id)).rowcount or 0
    session.execute(delete(ObservationSeer).where(ObservationSeer.person_id == person.id))
    session.execute(
        update(Observation)
        .where(Observation.captured_by_id == person.id)
        .values(captured_by_id=None)
        .execution_options(synchronize_session=False)
    )
    events = (
        session.execute(
            update(IssueEvent)
            .where(IssueEvent.actor_id == person.id)
            .values(actor_id=None)
            .execution_options(synchronize_session=False)
        ).rowcount
        or 0
    )
    follows = session.execute(delete(IssueFollower).where(IssueFollower.person_id == person.id)).rowcount or 0
    session.execute(delete(ReportDraft).where(ReportDraft.person_id == person.id))
    log.info("erased %s observation(s), %s issue event(s), %s follow(s) of a person", observations, events, follows)
    return Erasure(observations, events, follows)


def count_by_week(session: Session, org: Org, start: datetime, end: datetime) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Observation)
            .where(Observation.org_id == org.id, Observation.created_at >= start, Observation.created_at < end)
        )
        or 0
    )
