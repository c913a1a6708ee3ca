"""The right to erasure (`/cx erase <person>`): everything a person wrote, and everything that
names them, goes from the database in one transaction; the issues stay with their teams, and the
bot's delivered posts that named or quoted them are edited in place."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from bot.domain.erasure import Traces
from bot.domain.tips import Tip
from bot.domain.weeks import iso_week
from bot.i18n import Catalogue
from bot.messages import Message
from bot.outbox import SENDING, SENT, Target, enqueue
from bot.services.digest import Digest, build_digest, digest_message
from bot.services.issues import IssueService, routed_topic
from bot.services.kpi_import import ERASED_CHAT_SOURCE, recorded_in_chat_by
from bot.store.models import (
    Identity,
    Issue,
    IssueEvent,
    IssueFollower,
    KpiValue,
    Observation,
    ObservationSeer,
    Org,
    Outbox,
    Person,
    ReportDraft,
    Stage,
    Subscription,
    TeamMember,
    TipEngagement,
    Touchpoint,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Erased:
    """What the admin is told. No counts: how many were anonymous would say what they wrote."""

    name: str
    in_journey_file: bool


def erase_person(
    session: Session,
    person: Person,
    now: datetime,
    catalogue: Catalogue,
    tips: Mapping[str, Mapping[int, Tip]],
) -> Erased:
    """The right to erasure, in the caller's one transaction: a failure leaves nothing half done.

    Everything the person wrote goes: their observations (anonymous ones too) are deleted, and
    their words in issues, timelines and stored posts are replaced by a marker. Nothing names
    them any more: their person row, identities, memberships, drafts, +1s and tip reactions are
    deleted, and what pointed at them points at no one. The issues stay with their teams. Posts
    to them are deleted; the bot's posts to others that named or quoted them are rewritten, and
    where already delivered, edited in place (routed issue posts and digests re-rendered, the
    rest scrubbed). Chat messages the person wrote on the platform are not the bot's to delete.
    """
    org = session.get(Org, person.org_id)
    assert org is not None  # a person belongs to an org (a foreign key)
    erased = Erased(person.name, in_journey_file=person.archived_at is None)
    erasure = _Erasure.of(session, org, catalogue, tips, now, person)
    erasure.replace_words()
    erasure.forget_observations()
    erasure.forget_person()
    edited = erasure.clean_outbox()
    log.info("erasure: %s issue(s) re-rendered, %s delivered post(s) edited", len(erasure.touched), edited)
    return erased


def _written_by(person_id: int) -> Any:
    """Observations the person wrote: named, or anonymous and linked only by their seer row."""
    seen = select(ObservationSeer.observation_id).where(ObservationSeer.person_id == person_id)
    return (Observation.author_id == person_id) | (
        Observation.anonymous & (Observation.source == "command") & Observation.id.in_(seen)
    )


@dataclass
class _Erasure:
    """One erasure: what was read about the person before anything changed, and its steps."""

    session: Session
    org: Org
    catalogue: Catalogue
    tips: Mapping[str, Mapping[int, Tip]]
    now: datetime
    person: Person
    traces: Traces
    targets: set[tuple[str, str]]  # (platform, user id): posts to them
    observations: list[Observation]
    texts: dict[tuple[int, str], str]  # (issue, column) → their words in it
    weeks: set[str]  # weeks with their observations: those digests are built again
    touched: set[int] = field(default_factory=set)  # issues whose routed posts change
    digests: dict[str, Digest] = field(default_factory=dict)  # built again, by week

    @classmethod
    def of(
        cls,
        session: Session,
        org: Org,
        catalogue: Catalogue,
        tips: Mapping[str, Mapping[int, Tip]],
        now: datetime,
        person: Person,
    ) -> _Erasure:
        identities = session.execute(
            select(Identity.platform, Identity.external_user_id).where(Identity.person_id == person.id)
        ).all()
        observations = list(session.scalars(select(Observation).where(_written_by(person.id))))
        texts = _their_issue_texts(session, person, observations)
        words = [*(o.text for o in observations), *texts.values(), *_their_other_words(session, person)]
        traces = Traces.of(person.name, [person.key, *(i.external_user_id for i in identities)], words)
        zone = ZoneInfo(org.time_zone)
        weeks = {iso_week(o.created_at, zone) for o in observations}
        targets = {(i.platform, i.external_user_id) for i in identities}
        return cls(session, org, catalogue, tips, now, person, traces, targets, observations, texts, weeks)

    def text(self, language: str | None, key: str) -> str:
        return self.catalogue.text(language or self.org.language, key)

    def replace_words(self) -> None:
        """Their words in issues give way to a marker in the org's language; the issues stay."""
        removed = self.text(None, "erasure.removed")
        for (number, column), _ in self.texts.items():
            issue = self.session.get(Issue, number)
            assert issue is not None
            setattr(issue, column, removed)
            self.touched.add(number)

    def forget_observations(self) -> None:
        session, person_id = self.session, self.person.id
        ids = [o.id for o in self.observations]
        session.execute(delete(ObservationSeer).where(ObservationSeer.observation_id.in_(ids)))
        session.execute(delete(Observation).where(Observation.id.in_(ids)))
        # What others wrote stays; that they captured it or placed it no longer says who.
        session.execute(delete(ObservationSeer).where(ObservationSeer.person_id == person_id))
        for column in (Observation.captured_by_id, Observation.corrected_by_id):
            _unlink(session, column, person_id)

    def forget_person(self) -> None:
        session, person_id = self.session, self.person.id
        self.touched |= set(session.scalars(select(IssueEvent.issue_id).where(IssueEvent.actor_id == person_id)))
        self.touched |= set(session.scalars(select(IssueFollower.issue_id).where(IssueFollower.person_id == person_id)))
        self.touched |= set(session.scalars(select(Issue.id).where(Issue.assignee_id == person_id)))
        for column in (
            IssueEvent.actor_id,
            Issue.assignee_id,  # the issue stays with its team
            Stage.owner_id,
            Touchpoint.owner_id,
            Touchpoint.backup_id,
            Subscription.created_by_id,
        ):
            _unlink(session, column, person_id)
        self._scrub_events()
        # The figures they typed stay (they are the company's); who typed them does not.
        session.execute(
            update(KpiValue)
            .where(KpiValue.source == recorded_in_chat_by(self.person.key))
            .values(source=ERASED_CHAT_SOURCE)
            .execution_options(synchronize_session=False)
        )
        user_ids = [user_id for _, user_id in self.targets]
        for statement in (
            delete(IssueFollower).where(IssueFollower.person_id == person_id),
            delete(ReportDraft).where(ReportDraft.person_id == person_id),
            delete(TipEngagement).where(TipEngagement.external_user_id.in_(user_ids)),
            delete(TeamMember).where(TeamMember.person_id == person_id),
            delete(Identity).where(Identity.person_id == person_id),
            delete(Person).where(Person.id == person_id),
        ):
            session.execute(statement.execution_options(synchronize_session=False))
        session.expunge(self.person)
        session.flush()
        session.expire_all()  # the bulk changes above are not in the objects already loaded

    def _scrub_events(self) -> None:
        """Timelines keep every event; its data (a reminder's "to", a resolution's action) no
        longer names or quotes them."""
        removed = self.text(None, "erasure.removed")
        events = self.session.scalars(select(IssueEvent).join(Issue).where(Issue.org_id == self.org.id))
        for event in events:
            scrubbed = self.traces.scrub(event.data or {}, "–", removed)
            if scrubbed != (event.data or {}):
                event.data = scrubbed
                self.touched.add(event.issue_id)

    def clean_outbox(self) -> int:
        """Posts to them go; posts to others are rewritten and, if delivered, edited. Returns
        how many delivered posts get an edit beyond the routed issue posts."""
        self._delete_posts_to_them()
        chains: dict[int, list[Outbox]] = {}
        for row in self.session.scalars(select(Outbox).order_by(Outbox.id)):
            chains.setdefault(row.update_of_id or row.id, []).append(row)
        traced = {root for root, rows in chains.items() if any(self._traced(row) for row in rows)}
        for root in traced:
            topic = chains[root][0].topic or ""
            issue = _routed_issue(topic)
            if issue is not None:
                self.touched.add(issue)
            elif topic.startswith("digest:"):
                self.weeks.add(topic.removeprefix("digest:"))
        routed = self._refresh_routed()
        token = secrets.token_hex(6)
        edited = 0
        for root, rows in chains.items():
            topic = rows[0].topic or ""
            if topic in routed:
                for row in rows:
                    row.payload = self._clean(routed[topic](row.language or self.org.language), row.language)
            elif topic.startswith("digest:") and topic.removeprefix("digest:") in self.weeks:
                for row in rows:
                    row.payload = self._digest(topic.removeprefix("digest:"), row)
                edited += self._edit(rows, token)
            elif root in traced:
                for row in rows:
                    row.payload = self.traces.scrub(row.payload, *self._markers(row.language))
                edited += self._edit(rows, token)
            for row in rows:
                self._scrub_row(row)
        return edited

    def _delete_posts_to_them(self) -> None:
        """What was said to them is theirs alone: gone, with the edits of it."""
        if not self.targets:
            return
        to_them = or_(
            *(
                (Outbox.platform == platform) & (Outbox.target_kind == "user") & (Outbox.target_ref == user_id)
                for platform, user_id in self.targets
            )
        )
        ids = list(self.session.scalars(select(Outbox.id).where(to_them)))
        self.session.execute(delete(Outbox).where(Outbox.update_of_id.in_(ids)))
        self.session.execute(delete(Outbox).where(Outbox.id.in_(ids)))

    def _traced(self, row: Outbox) -> bool:
        return (
            self.traces.found_in(row.payload)
            or self.traces.in_key(row.idempotency_key)
            or (row.last_error is not None and self.traces.found_in(row.last_error))
        )

    def _markers(self, language: str | None) -> tuple[str, str]:
        return self.text(language, "erasure.someone"), self.text(language, "erasure.removed")

    def _clean(self, message: Message, language: str | None) -> dict[str, Any]:
        payload = message.model_dump(mode="json", exclude_defaults=True)
        scrubbed: dict[str, Any] = self.traces.scrub(payload, *self._markers(language))
        return scrubbed

    def _refresh_routed(self) -> dict[str, Callable[[str], Message]]:
        """Every touched issue's routed posts edited to show it as it is now, without them."""
        service = IssueService(self.session, self.org, self.catalogue, self.now)
        composers = {}
        for issue in self.session.scalars(select(Issue).where(Issue.id.in_(self.touched)).order_by(Issue.id)):
            service.refresh_routed(issue)
            composers[routed_topic(issue)] = service.routed_composer(issue)
        return composers

    def _digest(self, week: str, row: Outbox) -> dict[str, Any]:
        """The week's digest built again, without them, keeping the chart it was posted with."""
        if week not in self.digests:
            self.digests[week] = build_digest(
                self.session, self.org, week, catalogue=self.catalogue, tips=self.tips, now=self.now
            )
        chart = (row.payload.get("image") or {}).get("attachment")
        language = row.language or self.org.language
        return self._clean(digest_message(self.catalogue, language, self.digests[week], chart), language)

    def _edit(self, rows: list[Outbox], token: str) -> int:
        """A delivered (or being delivered) post gets an edit showing its newest version, clean."""
        root = rows[0]
        delivered = root.status == SENT and root.platform_ref is not None
        if root.update_of_id is not None or not (delivered or root.status == SENDING):
            return 0
        return int(
            enqueue(
                self.session,
                Target(root.platform, root.target_kind, root.target_ref),
                Message.model_validate(rows[-1].payload),
                f"erasure:{token}:edit:{root.id}",
                self.now,
                topic=root.topic,
                update_of=root.id,
                language=root.language,
            )
        )

    def _scrub_row(self, row: Outbox) -> None:
        if self.traces.in_key(row.idempotency_key):
            row.idempotency_key = f"erased:{row.id}"  # unique as the row is, and names no one
        if row.last_error is not None and self.traces.found_in(row.last_error):
            row.last_error = self.traces.scrub_text(row.last_error, "–", "–")


def _unlink(session: Session, column: InstrumentedAttribute[Any], person_id: int) -> None:
    """Whatever pointed at the person points at no one."""
    session.execute(
        update(column.class_)
        .where(column == person_id)
        .values({column: None})
        .execution_options(synchronize_session=False)
    )


def _routed_issue(topic: str) -> int | None:
    parts = topic.split(":")
    if len(parts) == 3 and parts[0] == "issue" and parts[2] == "routed" and parts[1].isdecimal():
        return int(parts[1])
    return None


def _their_issue_texts(
    session: Session, person: Person, observations: Sequence[Observation]
) -> dict[tuple[int, str], str]:
    """Where the person's words stand in issues: what they reported (unless it was someone
    else's observation they turned into an issue), issues made from their observations, and
    the actions they resolved issues with."""
    found: dict[tuple[int, str], str] = {}
    reported = session.scalars(
        select(Issue)
        .join(IssueFollower, IssueFollower.issue_id == Issue.id)
        .where(IssueFollower.person_id == person.id, IssueFollower.role == "reporter")
    ).all()
    theirs = {o.id for o in observations}
    borrowed = {
        (issue_id, text)
        for issue_id, observation_id, text in session.execute(
            select(Observation.issue_id, Observation.id, Observation.text).where(
                Observation.issue_id.in_([i.id for i in reported])
            )
        )
        if observation_id not in theirs
    }
    for issue in reported:
        if (issue.id, issue.description) not in borrowed:
            found[(issue.id, "description")] = issue.description
        if issue.customer_impact:
            found[(issue.id, "customer_impact")] = issue.customer_impact
    for observation in observations:
        issue = session.get(Issue, observation.issue_id) if observation.issue_id else None
        if issue is not None and issue.description == observation.text:
            found[(issue.id, "description")] = issue.description
    for issue_id, action in _their_resolutions(session, person):
        issue = session.get(Issue, issue_id)
        if issue is not None and issue.action_taken == action:  # not resolved again since by another
            found[(issue.id, "action_taken")] = action
    return found


def _their_resolutions(session: Session, person: Person) -> list[tuple[int, str]]:
    events = session.execute(
        select(IssueEvent.issue_id, IssueEvent.data).where(
            IssueEvent.actor_id == person.id, IssueEvent.kind == "resolved"
        )
    )
    return [(issue_id, str(data["action"])) for issue_id, data in events if (data or {}).get("action")]


def _their_other_words(session: Session, person: Person) -> list[str]:
    """Their words that stay nowhere but may be quoted: every action they resolved with (an
    issue resolved again keeps only the last), and the reports they left waiting as drafts."""
    drafts = session.scalars(select(ReportDraft.payload).where(ReportDraft.person_id == person.id))
    drafted = [str(payload[k]) for payload in drafts for k in ("description", "impact") if payload.get(k)]
    return [action for _, action in _their_resolutions(session, person)] + drafted
