"""The right to erasure (`/cx erase <person>`): everything a person wrote under their name, and
everything that names them, goes from the database in one transaction; the issues stay with their
teams, and the bot's delivered posts that named or quoted them are edited in place.

What they wrote anonymously stays as it is, and only its hidden link to them (the reporter or
seer row) goes. Changing it at the moment of their erasure (a marker in the text, an edit of its
posts, an observation gone from the week's count) would tell everyone watching who wrote it,
which is the one thing its writer asked the bot never to say. The text carries no identity; if it
names the erased person, that name gives way to "someone (erased)" as it does in every other text,
whoever wrote it, so that change says nothing about who the writer was."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, Text, cast, delete, false, func, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from bot.domain.erasure import Traces
from bot.domain.weeks import iso_week
from bot.i18n import Catalogue
from bot.messages import Message
from bot.outbox import PENDING, SENDING, SENT, Target, enqueue
from bot.services.confirmations import forget as forget_confirmations
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


@dataclass(frozen=True)
class ErasurePreview:
    """What the admin is shown before an erasure. Counts only what carries the person's name: an
    anonymous observation or report goes too, but counting it would tell the admin it exists."""

    name: str
    key: str
    identities: list[tuple[str, str]]  # (platform, user id)
    observations: int  # under their name
    issues: int  # they reported or +1'd by name, are assigned, or acted on


def erasure_preview(session: Session, person: Person) -> ErasurePreview:
    identities = session.execute(
        select(Identity.platform, Identity.external_user_id)
        .where(Identity.person_id == person.id)
        .order_by(Identity.platform)
    ).all()
    observations = session.scalar(
        select(func.count()).select_from(Observation).where(Observation.author_id == person.id, ~Observation.anonymous)
    )
    issues = (
        select(Issue.id)
        .where(Issue.assignee_id == person.id)
        .union(
            select(IssueFollower.issue_id).where(IssueFollower.person_id == person.id, ~IssueFollower.anonymous),
            select(IssueEvent.issue_id).where(IssueEvent.actor_id == person.id),
        )
    )
    touched = session.scalar(select(func.count()).select_from(issues.subquery()))
    return ErasurePreview(person.name, person.key, [(p, ref) for p, ref in identities], observations or 0, touched or 0)


def erase_person(
    session: Session,
    person: Person,
    now: datetime,
    catalogue: Catalogue,
) -> Erased:
    """The right to erasure, in the caller's one transaction: a failure leaves nothing half done.

    Everything the person wrote under their name goes: their observations are deleted, and
    their words in issues, timelines and stored posts are replaced by a marker. What they wrote
    anonymously stays, unlinked from them (see the module's note). Nothing names
    them any more: their person row, identities, memberships, drafts, +1s and tip reactions are
    deleted, and what pointed at them points at no one. The issues stay with their teams. Posts
    to them are deleted; the bot's posts to others that named or quoted them are rewritten, and
    where they are or may be on the platform, edited in place (routed issue posts rendered
    again from the cleaned issue, the rest, digests too, scrubbed). Chat messages the person
    wrote on the platform are not the bot's to delete.
    """
    # Locked first: on PostgreSQL a report, an observation or the SLA sweep naming them waits
    # for the erasure instead of slipping a new trace in beside it.
    session.execute(select(Person.id).where(Person.id == person.id).with_for_update())
    org = session.get(Org, person.org_id)
    assert org is not None  # a person belongs to an org (a foreign key)
    erased = Erased(person.name, in_journey_file=person.archived_at is None)
    erasure = _Erasure.of(session, org, catalogue, now, person)
    erasure.replace_words()
    erasure.unname_in_others_words()
    erasure.forget_observations()
    erasure.forget_person()
    edited = erasure.clean_outbox()
    log.info("erasure: %s issue(s) re-rendered, %s delivered post(s) edited", len(erasure.touched), edited)
    return erased


def _written_by(person_id: int) -> Any:
    """Observations the person wrote under their name. Their anonymous ones are linked to them
    only by a seer row, which goes with the rest of what names them; the observations stay."""
    return Observation.author_id == person_id


@dataclass
class _Erasure:
    """One erasure: what was read about the person before anything changed, and its steps."""

    session: Session
    org: Org
    catalogue: Catalogue
    now: datetime
    person: Person
    traces: Traces
    targets: set[tuple[str, str]]  # (platform, user id): posts to them
    observations: list[Observation]
    texts: dict[tuple[int, str], str]  # (issue, column) → their words in it
    weeks: set[str]  # weeks with their observations: those digests may quote them
    touched: set[int] = field(default_factory=set)  # issues whose routed posts are shown again
    related: set[int] = field(default_factory=set)  # issues they were part of in any way
    since: datetime | None = None  # their first words: nothing older can quote them

    @classmethod
    def of(
        cls,
        session: Session,
        org: Org,
        catalogue: Catalogue,
        now: datetime,
        person: Person,
    ) -> _Erasure:
        identities = session.execute(
            select(Identity.platform, Identity.external_user_id).where(Identity.person_id == person.id)
        ).all()
        observations = list(session.scalars(select(Observation).where(_written_by(person.id))))
        texts = _their_issue_texts(session, person, observations)
        words = [*(o.text for o in observations), *texts.values(), *_their_other_words(session, person)]
        traces = Traces.of(person.name, person.key, [i.external_user_id for i in identities], words)
        zone = ZoneInfo(org.time_zone)
        weeks = {iso_week(o.created_at, zone) for o in observations}
        targets = {(i.platform, i.external_user_id) for i in identities}
        erasure = cls(session, org, catalogue, now, person, traces, targets, observations, texts, weeks)
        erasure.since = _first_words(session, person)
        return erasure

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

    def unname_in_others_words(self) -> None:
        """Others' words stay, but not the erased person's name or chat id in them ("Erik
        promised a refund" in someone else's report): every later rendering would show it."""
        someone = self.text(None, "erasure.someone")
        for model, columns in (
            (Issue, (Issue.description, Issue.customer_impact, Issue.action_taken)),
            (Observation, (Observation.text,)),
        ):
            named = or_(*(_mentions(column, self.traces.names()) for column in columns))
            for row in self.session.scalars(select(model).where(named)):
                for column in columns:
                    text = getattr(row, column.key)
                    if text and (cleaner := self.traces.identity.sub(someone, text)) != text:
                        setattr(row, column.key, cleaner)
                        if isinstance(row, Issue):
                            self.touched.add(row.id)

    def forget_observations(self) -> None:
        session, person_id = self.session, self.person.id
        ids = [o.id for o in self.observations]
        session.execute(delete(ObservationSeer).where(ObservationSeer.observation_id.in_(ids)))
        session.execute(delete(Observation).where(Observation.id.in_(ids)))
        # What others wrote, and what they wrote anonymously, stays; that they captured it, placed
        # it or wrote it (an anonymous one's only link to them) no longer says who.
        session.execute(delete(ObservationSeer).where(ObservationSeer.person_id == person_id))
        for column in (Observation.captured_by_id, Observation.corrected_by_id):
            _unlink(session, column, person_id)

    def forget_person(self) -> None:
        session, person_id = self.session, self.person.id
        # Issues they acted on or followed by name: their timelines and notices may name them. The
        # routed post shows only the reporter and the assignee: those issues are shown again. What
        # they reported or +1'd anonymously never named them: its follower row just goes, below.
        self.related |= set(session.scalars(select(IssueEvent.issue_id).where(IssueEvent.actor_id == person_id)))
        self.related |= set(
            session.scalars(
                select(IssueFollower.issue_id).where(IssueFollower.person_id == person_id, ~IssueFollower.anonymous)
            )
        )
        self.touched |= set(session.scalars(select(Issue.id).where(Issue.assignee_id == person_id)))
        self.touched |= set(
            session.scalars(
                select(IssueFollower.issue_id).where(
                    IssueFollower.person_id == person_id, IssueFollower.role == "reporter", ~IssueFollower.anonymous
                )
            )
        )
        self.related |= self.touched
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
        forget_confirmations(session, person_id)
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
        longer names or quotes them. Only the events of issues they were part of, and those
        naming them elsewhere (an escalation to them), are read."""
        removed = self.text(None, "erasure.removed")
        naming = _mentions(IssueEvent.data, [*self.traces.names(), f'"{self.person.key}"'])
        events = self.session.scalars(
            select(IssueEvent).where(or_(IssueEvent.issue_id.in_(self.related), naming)).order_by(IssueEvent.id)
        )
        for event in events:
            scrubbed = self.traces.scrub(event.data or {}, "–", removed)
            if scrubbed != (event.data or {}):
                event.data = scrubbed

    def clean_outbox(self) -> int:
        """Posts to them go; posts to others are rewritten and, if they may be on the platform,
        edited. Returns how many such posts get an edit beyond the routed issue posts.

        Only the rows that can hold a trace are read (and locked, so no sender takes one while
        it changes): those naming them, those about their issues and weeks, reminders since
        their first words. The rest of a large outbox is not touched."""
        self._delete_posts_to_them()
        chains: dict[int, list[Outbox]] = {}
        roots = set(self.session.scalars(self._candidate_roots()))  # the costly sieve, run once
        for row in self.session.scalars(
            select(Outbox)
            .where(or_(Outbox.id.in_(roots), Outbox.update_of_id.in_(roots)))
            .order_by(Outbox.id)
            .with_for_update()
        ):
            chains.setdefault(row.update_of_id or row.id, []).append(row)
        traced = {root for root, rows in chains.items() if any(self._traced(row) for row in rows)}
        self.touched |= {issue for root in traced if (issue := _routed_issue(chains[root][0].topic or ""))}
        routed = self._refresh_routed()
        token = secrets.token_hex(6)
        edited = 0
        for root, rows in chains.items():
            topic = rows[0].topic or ""
            if topic in routed:  # refresh_routed has queued the edits, clean
                for row in rows:
                    row.payload = self._clean(routed[topic](row.language or self.org.language), row.language)
            elif root in traced:
                for row in rows:
                    row.payload = self.traces.scrub(row.payload, *self._markers(row.language))
                edited += self._edit(rows, token)
            for row in rows:
                self._scrub_row(row)
        return edited

    def _candidate_roots(self) -> Select[tuple[int]]:
        keys = [Outbox.idempotency_key.like(f"issue:{number}:%") for number in sorted(self.related)]
        about = [
            *keys,
            Outbox.topic.in_([f"digest:{week}" for week in self.weeks]),
            _mentions(Outbox.payload, self.traces.names()),
            _mentions(Outbox.last_error, self.traces.names()),
            *(Outbox.idempotency_key.like(f"%:{ref}%") for ref in self.traces.refs),
        ]
        if self.since is not None:  # reminders list issues with excerpts of their reports
            about.append(Outbox.idempotency_key.like("remind:%") & (Outbox.created_at >= self.since))
        return select(func.coalesce(Outbox.update_of_id, Outbox.id)).where(or_(*about))

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
        """Every touched issue's routed posts edited to show it as it is now, without them: the
        issue's text no longer holds them, and the rendering is scrubbed too, for what it
        quotes from elsewhere."""
        service = IssueService(self.session, self.org, self.catalogue, self.now)
        composers = {}
        for issue in self.session.scalars(select(Issue).where(Issue.id.in_(self.touched)).order_by(Issue.id)):
            compose = self._scrubbed(service.routed_composer(issue))
            service.refresh_routed(issue, compose)
            composers[routed_topic(issue)] = compose
        return composers

    def _scrubbed(self, compose: Callable[[str], Message]) -> Callable[[str], Message]:
        return lambda language: Message.model_validate(self._clean(compose(language), language))

    def _edit(self, rows: list[Outbox], token: str) -> int:
        """A post that is, or may be, on the platform (delivered, being delivered, or retried
        after an attempt whose outcome is unknown) gets an edit showing its newest version,
        clean. One never sent goes out clean as it is."""
        root = rows[0]
        on_platform = root.status in (SENT, SENDING) or (root.status == PENDING and root.delivery_unknown)
        if root.update_of_id is not None or not on_platform:
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


def _mentions(column: Any, needles: Sequence[str]) -> ColumnElement[bool]:
    """The column's text (JSON as stored) contains one of ``needles``: a cheap first sieve in
    SQL, so that only rows that can hold a trace are read. JSON stores non-ASCII escaped
    ("\\u00c5"), so each needle is looked for in that spelling too."""
    spellings = {spelling for needle in needles for spelling in (needle, json.dumps(needle)[1:-1]) if spelling}
    text = cast(column, Text)
    return or_(false(), *(text.ilike(f"%{_like_escaped(spelling)}%", escape="!") for spelling in sorted(spellings)))


def _like_escaped(value: str) -> str:
    return value.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def _first_words(session: Session, person: Person) -> datetime | None:
    """When they first wrote or did anything in the bot."""
    moments = [
        session.scalar(select(func.min(IssueEvent.at)).where(IssueEvent.actor_id == person.id)),
        session.scalar(
            select(func.min(IssueFollower.joined_at)).where(
                IssueFollower.person_id == person.id, ~IssueFollower.anonymous
            )
        ),
        session.scalar(select(func.min(Observation.created_at)).where(_written_by(person.id))),
    ]
    return min((moment for moment in moments if moment is not None), default=None)


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
    """Where the person's words stand in issues: what they reported under their name (unless it
    was someone else's observation they turned into an issue), issues made from their named
    observations, and the actions they resolved issues with. Not what they reported anonymously."""
    found: dict[tuple[int, str], str] = {}
    reported = session.scalars(
        select(Issue)
        .join(IssueFollower, IssueFollower.issue_id == Issue.id)
        .where(IssueFollower.person_id == person.id, IssueFollower.role == "reporter", ~IssueFollower.anonymous)
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
    issue resolved again keeps only the last), and the reports they left waiting as drafts (not
    anonymous ones: the same words may stand in an anonymous issue, which stays as it is)."""
    drafts = session.scalars(select(ReportDraft.payload).where(ReportDraft.person_id == person.id))
    drafted = [
        str(payload[k])
        for payload in drafts
        if not payload.get("anonymous")
        for k in ("description", "impact")
        if payload.get(k)
    ]
    return [action for _, action in _their_resolutions(session, person)] + drafted
