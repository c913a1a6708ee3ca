"""Employee observations: capture in one gesture, classify to the journey, act on them.

An observation is stored at once (the chat platform wants an answer within 3 seconds) and
classified afterwards, outside any transaction, so that a slow model never holds a lock. What
was not classified (a crash, a restart) is picked up by the clock's classify job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.app import UserError, excerpt
from bot.domain.classify import Classification, JourneyIndex, StageInfo
from bot.domain.errors import no_more_words
from bot.domain.issues import MAX_DESCRIPTION, ReportRequest
from bot.domain.journey_map import Severity
from bot.domain.matching import Candidate, MatchKind, match_touchpoint
from bot.domain.weeks import WEEK_LIKE, parse_week, week_start
from bot.i18n import Catalogue, PerLanguage
from bot.llm import Classifier
from bot.services.issues import Created, IssueService, ReportOutcome
from bot.services.journey import active_stages, current_org, find_stage
from bot.store.db import for_update, insert_for
from bot.store.models import (
    Observation,
    ObservationSeer,
    Org,
    Person,
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
        touchpoints=tuple(Candidate(t.key, t.spellings()) for t in touchpoints),
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

    def get(self, number: int, *, lock: bool = False) -> Observation:
        query = select(Observation).where(Observation.id == number, Observation.org_id == self.org.id)
        if lock:  # a late classification, a second click or a correction may be writing it now
            query = for_update(query)
        found = self.session.scalar(query)
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
        # Logs never carry who someone is by name, key or chat id (erasure could not reach them).
        log.info("observation %s saved by %s", observation.id, "anonymous" if anonymous else f"person {author.id}")
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
        """Save a chat message as an observation; the same message twice is one observation.

        Two people capturing it at the same moment (or a platform retrying the event) both land
        on the unique (platform, message) row: insert-or-skip, then read what is there.
        """
        existing = self._by_message(platform, message_ref)
        if existing is None:
            if text is None:
                # The adapter could not read it: deleted, or out of the bot's sight.
                raise UserError("observations.message_gone")
            validate_text(text)
            new_id = self.session.execute(
                insert_for(self.session, Observation)
                .values(
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
                .on_conflict_do_nothing(index_elements=["source_platform", "source_message_ref"])
                .returning(Observation.id)
            ).scalar()
            created = self._by_message(platform, message_ref)
            assert created is not None
            already = new_id is None  # someone else's capture got there first
        else:
            created, already = existing, True
        self._seen_by(created, captured_by)
        return Captured(created, already=already)

    def _by_message(self, platform: str, message_ref: str) -> Observation | None:
        return self.session.scalar(
            select(Observation)
            .where(Observation.source_platform == platform, Observation.source_message_ref == message_ref)
            .execution_options(populate_existing=True)
        )

    def _seen_by(self, observation: Observation, person: Person) -> None:
        self.session.execute(
            insert_for(self.session, ObservationSeer)
            .values(observation_id=observation.id, person_id=person.id, seen_at=self.now)
            .on_conflict_do_nothing(index_elements=["observation_id", "person_id"])
        )

    def wrote(self, observation: Observation, person: Person) -> bool:
        """Did this person write it? For an anonymous observation the only link is its seer row
        (kept, like an issue's anonymous reporter, for this and for erasure; never shown)."""
        if observation.author_id is not None:
            return observation.author_id == person.id
        if observation.source != "command":
            return False
        return (
            self.session.scalar(
                select(ObservationSeer.id).where(
                    ObservationSeer.observation_id == observation.id, ObservationSeer.person_id == person.id
                )
            )
            is not None
        )

    def may_change(self, observation: Observation, person: Person) -> bool:
        return person.is_admin or self.wrote(observation, person)

    def may_report(self, observation: Observation, person: Person) -> bool:
        """Turning someone's words into an issue is for them, admins, the CX lead and the people
        who own the touchpoint, not for anyone at all."""
        if self.may_change(observation, person) or person.is_cx_lead:
            return True
        touchpoint = observation.touchpoint
        if touchpoint is None:
            return False
        if person.id in (touchpoint.owner_id, touchpoint.backup_id):
            return True
        return touchpoint.owner_team_id is not None and touchpoint.owner_team_id in {t.id for t in person.teams}

    def correct(self, number: int, person: Person, what: str, value: str) -> Observation:
        observation = self.get(number, lock=True)
        if not self.may_change(observation, person):
            raise UserError("observations.not_yours", number=number)
        stages = active_stages(self.session, self.org)
        if what in ("stage", "steg"):
            stage = find_stage(stages, value)
            if stage is None:
                raise UserError("journey.unknown_stage", text=excerpt(value), stages=PerLanguage.names(stages))
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
            keys = [s.key for s in match.ranked[:3]]
            found = {
                tp.key: tp
                for tp in self.session.scalars(
                    select(Touchpoint).where(Touchpoint.org_id == self.org.id, Touchpoint.key.in_(keys))
                )
            }
            closest = PerLanguage.names(found[key] for key in keys if key in found)
            raise UserError("issues.unknown_touchpoint", text=excerpt(text), closest=closest)
        touchpoint = self.session.scalar(
            select(Touchpoint).where(Touchpoint.org_id == self.org.id, Touchpoint.key == match.best)
        )
        assert touchpoint is not None
        return touchpoint

    def delete(self, number: int, person: Person) -> None:
        observation = self.get(number, lock=True)
        if not self.may_change(observation, person):
            raise UserError("observations.not_yours", number=number)
        self.session.delete(observation)

    def report_as_issue(self, number: int, person: Person, severity: Severity) -> ReportOutcome:
        """A linked touchpoint issue in one step, from the observation's text."""
        observation = self.get(number, lock=True)  # a double click must not make two issues
        if not self.may_report(observation, person):
            raise UserError("observations.not_allowed_report", number=number)
        if observation.issue_id is not None:
            raise UserError("observations.already_reported", number=number, issue=observation.issue_id)
        touchpoint = observation.touchpoint
        if touchpoint is None or touchpoint.archived_at is not None:
            raise UserError("observations.needs_touchpoint", number=number)
        issues = IssueService(self.session, self.org, self.catalogue, self.now)
        request = ReportRequest(None, observation.text, severity, anonymous=observation.anonymous)
        outcome = issues.report(
            person, request, observation.source_platform, touchpoint_key=touchpoint.key, allow_duplicate=True
        )
        if not isinstance(outcome, Created):  # cannot happen with a known touchpoint; never link half
            raise UserError("observations.needs_touchpoint", number=number)
        observation.issue_id = outcome.issue.id
        return outcome

    def list(self, person: Person, filter_text: str) -> list[Observation]:
        words = filter_text.split()
        query = select(Observation).where(Observation.org_id == self.org.id)
        weeks = [w for w in words if WEEK_LIKE.fullmatch(w)]
        if weeks:
            no_more_words(weeks[1:])
            week = parse_week(weeks[0])
            words.remove(weeks[0])
            zone = ZoneInfo(self.org.time_zone)
            start = week_start(week, zone)
            query = query.where(Observation.created_at >= start, Observation.created_at < start + timedelta(days=7))
        kind = words[0].casefold() if words else ""
        argument = " ".join(words[1:])
        if kind in ("mine", "mina"):
            no_more_words(words[1:])
            seen = select(ObservationSeer.observation_id).where(ObservationSeer.person_id == person.id)
            query = query.where((Observation.author_id == person.id) | Observation.id.in_(seen))
        elif kind in ("stage", "steg"):
            stages = active_stages(self.session, self.org)
            stage = find_stage(stages, argument)
            if stage is None:
                raise UserError("journey.unknown_stage", text=excerpt(argument), stages=PerLanguage.names(stages))
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
    observation = session.get(Observation, number, with_for_update=True, populate_existing=True)
    if observation is None or observation.classifier is not None:
        return False  # gone, or classified meanwhile
    if observation.corrected_at is None:  # a person's placement wins over the classifier's
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


# What the background pool may still be working on is left alone this long.
PENDING_GRACE = timedelta(minutes=2)


def classify_pending(
    session_factory: sessionmaker[Session], classifier: Classifier, clock: Callable[[], datetime], limit: int = 50
) -> int:
    """The clock's safety net: classify what a crash or restart left unclassified."""
    with session_factory() as session:
        waiting = session.scalars(
            select(Observation.id)
            .where(Observation.classifier.is_(None), Observation.created_at <= clock() - PENDING_GRACE)
            .order_by(Observation.id)
            .limit(limit)
        ).all()
    done = 0
    for number in waiting:
        try:
            done += classify_observation(session_factory, number, classifier, clock)
        except Exception:  # one bad row must not hold back the others, minute after minute
            log.exception("classifying observation %s failed", number)
    return done
