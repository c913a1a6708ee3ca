"""Touchpoint issues: report → route to the owner → acknowledge → resolve, and close the loop.

Every state change is an IssueEvent, updates the routed messages in place (outbox edits) and
tells the people following the issue. The caller owns the transaction.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from bot.app import UserError, excerpt, language_for
from bot.domain.errors import no_more_words
from bot.domain.issues import (
    MAX_ACTION,
    MAX_DESCRIPTION,
    MAX_IMPACT,
    InvalidTransition,
    IssueAction,
    IssueStatus,
    ReportRequest,
    match_root_cause,
    next_status,
)
from bot.domain.journey_map import DEFAULT_SLA, Severity
from bot.domain.matching import Candidate, MatchKind, Scored, match_touchpoint, suggest_touchpoints
from bot.domain.sla import WorkingHours, deadlines
from bot.i18n import Catalogue, PerLanguage
from bot.messages import Message
from bot.outbox import (
    edit_posts,
    person_targets,
    post_to_person,
    post_to_targets,
    post_to_team,
    team_targets,
    without_post_about,
)
from bot.services import issue_views as views
from bot.store.db import for_update
from bot.store.models import (
    Issue,
    IssueEvent,
    IssueFollower,
    Org,
    Person,
    ReportDraft,
    Team,
    TeamMember,
    Touchpoint,
)

log = logging.getLogger(__name__)

# Two reports on one touchpoint this alike are probably the same problem.
SIMILAR = 70
DRAFT_LIFETIME = timedelta(days=1)


# --- outcomes of a report --------------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    issue: Issue


@dataclass(frozen=True)
class ChooseTouchpoint:
    token: str
    choices: list[Touchpoint]


@dataclass(frozen=True)
class MaybeDuplicate:
    token: str
    similar: Issue


@dataclass(frozen=True)
class Joined:
    issue: Issue
    already: bool


ReportOutcome = Created | ChooseTouchpoint | MaybeDuplicate | Joined


@dataclass(frozen=True)
class Draft:
    """A report waiting behind buttons, as its writer left it."""

    request: ReportRequest
    platform: str
    touchpoint_key: str | None
    similar_id: int | None


@dataclass
class IssueService:
    session: Session
    org: Org
    catalogue: Catalogue
    now: datetime
    _touchpoints: list[Touchpoint] = field(default_factory=list)

    # --- lookups ---------------------------------------------------------------------

    def touchpoints(self) -> list[Touchpoint]:
        if not self._touchpoints:
            self._touchpoints = list(
                self.session.scalars(
                    select(Touchpoint)
                    .where(Touchpoint.org_id == self.org.id, Touchpoint.archived_at.is_(None))
                    .order_by(Touchpoint.position)
                )
            )
        return self._touchpoints

    def touchpoint_by_key(self, key: str) -> Touchpoint | None:
        return next((tp for tp in self.touchpoints() if tp.key == key), None)

    def candidates(self) -> list[Candidate]:
        return [Candidate(tp.key, tp.spellings()) for tp in self.touchpoints()]

    def get_issue(self, number: int, *, lock: bool = False) -> Issue:
        query = select(Issue).where(Issue.id == number, Issue.org_id == self.org.id)
        if lock:  # two owners pressing Acknowledge at once: the second sees the first's change
            query = for_update(query)
        issue = self.session.scalar(query)
        if issue is None:
            raise UserError("issues.unknown_issue", number=number)
        return issue

    # --- reporting -----------------------------------------------------------------

    def report(
        self,
        reporter: Person,
        request: ReportRequest,
        platform: str,
        *,
        touchpoint_key: str | None = None,
        allow_duplicate: bool = False,
    ) -> ReportOutcome:
        validate_request(request)
        touchpoint = self.touchpoint_by_key(touchpoint_key) if touchpoint_key else None
        if touchpoint is None:
            chosen = self._resolve_touchpoint(request)
            if not isinstance(chosen, Touchpoint):
                return ChooseTouchpoint(self._draft(reporter, request, platform), chosen)
            touchpoint = chosen
        if not allow_duplicate:
            similar = self.similar_open_issue(touchpoint, request.description)
            if similar is not None:
                draft = self._draft(reporter, request, platform, touchpoint.key, similar.id)
                return MaybeDuplicate(draft, similar)
        return Created(self._create(reporter, request, platform, touchpoint))

    def _resolve_touchpoint(self, request: ReportRequest) -> Touchpoint | list[Touchpoint]:
        candidates = self.candidates()
        if request.touchpoint is not None:
            match = match_touchpoint(request.touchpoint, candidates)
            if match.kind is MatchKind.EXACT and match.best:
                touchpoint = self.touchpoint_by_key(match.best)
                assert touchpoint is not None
                return touchpoint
            if match.kind is MatchKind.UNKNOWN:
                raise UserError(
                    "issues.unknown_touchpoint",
                    text=excerpt(request.touchpoint),
                    closest=self._names(match.ranked),
                )
            return self._by_keys(match.ranked)
        suggestions = suggest_touchpoints(request.description, candidates)
        if not suggestions:
            raise UserError("issues.which_touchpoint")
        return self._by_keys(suggestions)

    def _by_keys(self, ranked: tuple[Scored, ...] | list[Scored]) -> list[Touchpoint]:
        return [tp for s in ranked if (tp := self.touchpoint_by_key(s.key)) is not None]

    def _names(self, ranked: tuple[Scored, ...]) -> PerLanguage:
        return PerLanguage.names(self._by_keys(ranked))

    def similar_open_issue(self, touchpoint: Touchpoint, description: str) -> Issue | None:
        open_issues = self.session.scalars(
            select(Issue)
            .where(Issue.touchpoint_id == touchpoint.id, Issue.status != IssueStatus.RESOLVED)
            .order_by(Issue.id.desc())
            .limit(50)
        )
        best, best_score = None, 0.0
        for issue in open_issues:
            score = similarity(description, issue.description)
            if score >= SIMILAR and score > best_score:
                best, best_score = issue, score
        return best

    def _draft(
        self,
        reporter: Person,
        request: ReportRequest,
        platform: str,
        touchpoint_key: str | None = None,
        similar_id: int | None = None,
    ) -> str:
        token = secrets.token_urlsafe(12)
        self.session.add(
            ReportDraft(
                token=token,
                person_id=reporter.id,
                platform=platform,
                payload={
                    "description": request.description,
                    "severity": request.severity.value,
                    "anonymous": request.anonymous,
                    "impact": request.impact,
                    "touchpoint": touchpoint_key,
                    # The one issue this draft may join: a "+1" button names no other.
                    "similar": similar_id,
                },
                created_at=self.now,
            )
        )
        return token

    def take_draft(self, token: str, person: Person) -> Draft:
        """The draft behind a button, once, by the person who wrote it, within a day."""
        draft = self.session.scalar(select(ReportDraft).where(ReportDraft.token == token).with_for_update())
        if (
            draft is None
            or draft.person_id != person.id
            or draft.used_at is not None
            or draft.created_at + DRAFT_LIFETIME < self.now
        ):
            raise UserError("common.unknown_action")
        draft.used_at = self.now
        payload = draft.payload
        request = ReportRequest(
            touchpoint=None,
            description=payload["description"],
            severity=Severity(payload["severity"]),
            anonymous=payload["anonymous"],
            impact=payload.get("impact"),
        )
        return Draft(request, draft.platform, payload.get("touchpoint"), payload.get("similar"))

    def join_offered(self, draft: Draft, person: Person, number: int) -> ReportOutcome:
        """The "+1" button: join the issue the draft was offered, or, if it has been resolved
        since, report the draft as a new issue rather than follow a closed one."""
        if draft.similar_id is None or draft.similar_id != number or draft.touchpoint_key is None:
            raise UserError("common.unknown_action")
        issue = self.get_issue(number, lock=True)
        if issue.status == IssueStatus.RESOLVED:
            return self.report(
                person, draft.request, draft.platform, touchpoint_key=draft.touchpoint_key, allow_duplicate=True
            )
        return self.join(issue, person, draft.request.anonymous)

    def _create(self, reporter: Person, request: ReportRequest, platform: str, touchpoint: Touchpoint) -> Issue:
        severity = request.severity
        ack_due, resolve_due = self.deadlines_from_now(touchpoint, severity)
        issue = Issue(
            org_id=self.org.id,
            touchpoint_id=touchpoint.id,
            stage_id=touchpoint.stage_id,
            description=request.description,
            severity=severity.value,
            customer_impact=request.impact,
            anonymous=request.anonymous,
            status=IssueStatus.OPEN.value,
            assignee_id=touchpoint.owner_id,
            assignee_team_id=touchpoint.owner_team_id,
            affected_count=1,
            reported_at=self.now,
            source_platform=platform,
            ack_due_at=ack_due,
            resolve_due_at=resolve_due,
            escalation_level=0,
            version=1,
        )
        self.session.add(issue)
        self.session.flush()
        self.session.add(
            IssueFollower(
                issue_id=issue.id,
                person_id=reporter.id,
                role="reporter",
                anonymous=request.anonymous,
                joined_at=self.now,
            )
        )
        self._event(issue, "reported", None if request.anonymous else reporter, severity=severity.value)
        self.session.flush()
        # Never log who reported an anonymous issue; nor anyone's name, key or chat id, which
        # the right to erasure could not reach in a log: the person's number is enough to debug.
        log.info(
            "issue %s reported on %s (%s) by %s",
            issue.id,
            touchpoint.key,
            severity.value,
            "anonymous" if request.anonymous else f"person {reporter.id}",
        )
        self._route(issue, touchpoint)
        return issue

    def deadlines_from_now(self, touchpoint: Touchpoint, severity: Severity) -> tuple[datetime, datetime]:
        acknowledge, resolve = self.sla_windows(touchpoint, severity)
        return deadlines(
            self.now,
            acknowledge,
            resolve,
            critical=severity is Severity.CRITICAL,
            zone=ZoneInfo(self.org.time_zone),
            hours=WorkingHours.from_spec(self.org.business_hours),
        )

    def sla_windows(self, touchpoint: Touchpoint, severity: Severity) -> tuple[timedelta, timedelta]:
        # The org's rule is stored whole (merged with the defaults when the map was loaded).
        built_in = DEFAULT_SLA[severity]
        org_rule: dict[str, Any] = self.org.sla.get(severity.value, {})
        override: dict[str, Any] = touchpoint.sla.get(severity.value, {})

        def window(name: str) -> timedelta:
            seconds = override.get(name, org_rule.get(name))
            return timedelta(seconds=seconds) if seconds is not None else getattr(built_in, name)

        return window("acknowledge"), window("resolve")

    # --- routing -------------------------------------------------------------------

    def _route(self, issue: Issue, touchpoint: Touchpoint) -> None:
        """The owner team's channel and the owner, on every platform they are on."""
        topic = routed_topic(issue)
        compose = self.routed_composer(issue)
        sent = 0
        if touchpoint.owner_team is not None:
            sent += post_to_team(
                self.session,
                touchpoint.owner_team,
                compose,
                self.org.language,
                f"{topic}:team",
                self.now,
                topic=topic,
            )
        recipients = [p for p in (touchpoint.owner,) if p is not None]
        if not recipients:
            # Nobody owns this touchpoint: the CX lead and the admins hear of it instead.
            recipients = self.fallback_people()
        for person in recipients:
            sent += post_to_person(
                self.session,
                person,
                compose,
                language_for(person, self.org, self.org.language),
                f"{topic}:dm:{person.key}",
                self.now,
                topic=topic,
            )
        if sent == 0:
            log.warning("issue %s on %s reached nobody: no owner, channel or admin", issue.id, touchpoint.key)

    def routed_composer(self, issue: Issue) -> Callable[[str], Message]:
        """The routed message in any language, from facts read once."""
        facts = views.routed_facts(self.session, issue, self.now)
        return lambda language: views.routed_message(self.catalogue, language, issue, self.org, facts)

    def fallback_people(self) -> list[Person]:
        return list(
            self.session.scalars(
                select(Person)
                .where(
                    Person.org_id == self.org.id,
                    Person.archived_at.is_(None),
                    Person.is_cx_lead | Person.is_admin,
                )
                .order_by(Person.is_cx_lead.desc(), Person.key)
            )
        )

    def refresh_routed(self, issue: Issue, compose: Callable[[str], Message] | None = None) -> None:
        """Edit every routed post of the issue to show its current state (as ``compose`` renders
        it, when given: the erasure's, scrubbed)."""
        issue.version += 1
        self.session.flush()
        edit_posts(
            self.session,
            routed_topic(issue),
            compose or self.routed_composer(issue),
            self.org.language,
            f"{routed_topic(issue)}:v{issue.version}",
            self.now,
        )

    # --- the lifecycle ---------------------------------------------------------------

    def may_manage(self, issue: Issue, person: Person) -> bool:
        if person.is_admin or person.id in (
            issue.assignee_id,
            issue.touchpoint.owner_id,
            issue.touchpoint.backup_id,
        ):
            return True
        teams = {t for t in (issue.assignee_team_id, issue.touchpoint.owner_team_id) if t is not None}
        if not teams:
            return False
        member = self.session.scalar(
            select(func.count())
            .select_from(TeamMember)
            .where(TeamMember.person_id == person.id, TeamMember.team_id.in_(teams))
        )
        return bool(member)

    def change(
        self,
        number: int,
        actor: Person,
        action: IssueAction,
        *,
        cause: str | None = None,
        action_taken: str | None = None,
    ) -> Issue:
        issue = self.get_issue(number, lock=True)
        manager = self.may_manage(issue, actor)
        follower = None if manager else self.follower(issue, actor)
        if action is IssueAction.REOPEN:
            if not manager and follower is None:
                raise UserError("issues.not_allowed", number=issue.id)
        elif not manager:
            log.info("issue %s: person %s may not %s it", issue.id, actor.id, action.value)
            raise UserError("issues.not_allowed", number=issue.id)
        try:
            status = next_status(IssueStatus(issue.status), action)
        except InvalidTransition as exc:
            raise UserError(f"issues.cannot_{action.value}_{exc.status.value}", number=issue.id) from None
        data: dict[str, Any] = {}
        if action is IssueAction.ACKNOWLEDGE:
            issue.acknowledged_at = issue.acknowledged_at or self.now
            if issue.assignee_id is None:
                issue.assignee_id = actor.id
                self.session.expire(issue, ["assignee"])
        elif action is IssueAction.RESOLVE:
            root_cause = match_root_cause(cause or "")
            if root_cause is None:
                raise UserError("issues.resolve_usage", number=issue.id, causes=views.cause_list(self.catalogue))
            text = (action_taken or "").strip()
            if not text:
                raise UserError("issues.resolve_usage", number=issue.id, causes=views.cause_list(self.catalogue))
            if len(text) > MAX_ACTION:
                raise UserError("issues.action_too_long", length=len(text), limit=MAX_ACTION)
            issue.root_cause, issue.action_taken = root_cause, text
            issue.resolved_at = issue.resolved_at or self.now
            issue.last_resolved_at = self.now
            data = {"root_cause": root_cause, "action": text}
        elif action is IssueAction.REOPEN:
            # A new round: fresh deadlines, and the SLA steps start over (under new keys).
            issue.ack_due_at, issue.resolve_due_at = self.deadlines_from_now(issue.touchpoint, Severity(issue.severity))
            issue.escalation_level, issue.reminded_at, issue.resolve_breach_noted_at = 0, None, None
            issue.reopen_count += 1
        issue.status = status.value
        # A follower who reported anonymously stays anonymous when they reopen it.
        shown = None if follower is not None and follower.anonymous else actor
        kind = {"ack": "acknowledged", "resolve": "resolved", "reopen": "reopened"}[action.value]
        self._event(issue, kind, shown, **data)
        self.refresh_routed(issue)
        self.tell_followers(issue, action.value, actor, shown)
        return issue

    def reassign(self, number: int, actor: Person, target: str) -> Issue:
        issue = self.get_issue(number, lock=True)
        if not self.may_manage(issue, actor):
            raise UserError("issues.not_allowed", number=issue.id)
        if issue.status == IssueStatus.RESOLVED:
            raise UserError("issues.cannot_reassign_resolved", number=issue.id)
        wanted = target.strip().lstrip("@#").casefold()
        # People are few: compare in Python, where case folding knows Å, Ä and Ö on every database.
        people = self.session.scalars(
            select(Person).where(Person.org_id == self.org.id, Person.archived_at.is_(None))
        ).all()
        matches = [p for p in people if wanted in (p.key.casefold(), p.name.casefold())]
        if len(matches) > 1:
            raise UserError("issues.ambiguous_assignee", text=excerpt(target), keys=", ".join(p.key for p in matches))
        person = matches[0] if matches else None
        team = None
        if person is None:
            team = self.session.scalar(
                select(Team).where(Team.org_id == self.org.id, Team.archived_at.is_(None), Team.key == wanted)
            )
        if person is None and team is None:
            raise UserError("issues.unknown_assignee", text=excerpt(target) or "–")
        if (person is not None and issue.assignee_id == person.id) or (
            team is not None and issue.assignee_id is None and issue.assignee_team_id == team.id
        ):
            # Nothing changes: no event, no edit, and above all no second copy of the post.
            raise UserError("issues.already_assigned", number=issue.id, to=excerpt(target))
        # A new owner gets their own reminder before the deadline.
        issue.reminded_at = None
        if person is not None:
            issue.assignee_id = person.id
            self._event(issue, "reassigned", actor, to_person=person.key)
        else:
            assert team is not None
            issue.assignee_team_id, issue.assignee_id = team.id, None
            self._event(issue, "reassigned", actor, to_team=team.key)
        # The relationships were read before the ids changed: read them again when shown.
        self.session.expire(issue, ["assignee", "assignee_team"])
        # Edit what was posted so far, then show the issue as it is now to the new owner, in the
        # places that do not have it yet: one routed post per person and channel, edited after.
        self.refresh_routed(issue)
        topic, compose = routed_topic(issue), self.routed_composer(issue)
        if person is not None:
            targets = without_post_about(self.session, topic, person_targets(self.session, person))
            language = language_for(person, self.org, self.org.language)
            key = f"{topic}:dm:{person.key}:v{issue.version}"
        else:
            assert team is not None
            targets = without_post_about(self.session, topic, team_targets(self.session, team))
            language, key = self.org.language, f"{topic}:team:{team.key}:v{issue.version}"
        post_to_targets(self.session, targets, compose, language, key, self.now, topic)
        return issue

    def join(self, issue: Issue, person: Person, anonymous: bool) -> Joined:
        """A "+1": the person saw the same problem. Counted once per person."""
        exists = self.session.scalar(
            select(IssueFollower).where(IssueFollower.issue_id == issue.id, IssueFollower.person_id == person.id)
        )
        if exists is not None:
            return Joined(issue, already=True)
        self.session.add(
            IssueFollower(
                issue_id=issue.id,
                person_id=person.id,
                role="affected",
                anonymous=anonymous,
                joined_at=self.now,
            )
        )
        issue.affected_count += 1
        self._event(issue, "joined", None if anonymous else person, affected=issue.affected_count)
        self.refresh_routed(issue)
        owner = issue.assignee or issue.touchpoint.owner
        if owner is not None:
            post_to_person(
                self.session,
                owner,
                lambda lang: views.joined_notice(self.catalogue, lang, issue),
                language_for(owner, self.org, self.org.language),
                f"issue:{issue.id}:joined:{issue.affected_count}:{owner.key}",
                self.now,
            )
        return Joined(issue, already=False)

    def follower(self, issue: Issue, person: Person) -> IssueFollower | None:
        return self.session.scalar(
            select(IssueFollower).where(IssueFollower.issue_id == issue.id, IssueFollower.person_id == person.id)
        )

    def tell_followers(self, issue: Issue, what: str, actor: Person, shown: Person | None) -> None:
        """Close the loop: everyone who reported or +1'd hears the outcome, privately.
        ``shown`` is who the notice names (None: someone anonymous)."""
        followers = self.session.scalars(
            select(Person)
            .join(IssueFollower, IssueFollower.person_id == Person.id)
            .where(IssueFollower.issue_id == issue.id, Person.archived_at.is_(None))
        ).all()
        for person in followers:
            if person.id == actor.id:
                continue
            post_to_person(
                self.session,
                person,
                lambda lang: views.follower_notice(self.catalogue, lang, issue, what, shown),
                language_for(person, self.org, self.org.language),
                f"issue:{issue.id}:{what}:v{issue.version}:{person.key}",
                self.now,
            )

    def _event(self, issue: Issue, kind: str, actor: Person | None, **data: Any) -> IssueEvent:
        event = IssueEvent(issue_id=issue.id, kind=kind, actor_id=actor.id if actor else None, at=self.now, data=data)
        self.session.add(event)
        return event

    # --- queries ---------------------------------------------------------------------

    def list(self, person: Person, filter_text: str) -> tuple[str, list[Issue]]:
        words = filter_text.strip().split(maxsplit=1)
        kind = words[0].casefold() if words else "open"
        argument = words[1] if len(words) > 1 else ""
        query = (
            select(Issue)
            .where(Issue.org_id == self.org.id)
            .options(selectinload(Issue.touchpoint), selectinload(Issue.assignee))
            .order_by(Issue.id.desc())
            .limit(25)
        )
        unresolved = Issue.status != IssueStatus.RESOLVED
        if kind in ("open", "öppna", "mine", "mina", "overdue", "försenade"):
            no_more_words(argument.split())
        if kind in ("open", "öppna"):
            query = query.where(unresolved)
        elif kind in ("mine", "mina"):
            mine = select(IssueFollower.issue_id).where(IssueFollower.person_id == person.id)
            query = query.where(unresolved, (Issue.assignee_id == person.id) | Issue.id.in_(mine))
        elif kind in ("overdue", "försenade"):
            query = query.where(
                ((Issue.status == IssueStatus.OPEN) & (Issue.ack_due_at < self.now))
                | (unresolved & (Issue.resolve_due_at < self.now))
            )
        elif kind == "team":
            team = self.session.scalar(
                select(Team).where(Team.org_id == self.org.id, Team.key == argument.strip().casefold())
            )
            if team is None:
                raise UserError("issues.unknown_team", text=excerpt(argument) or "–")
            owned = select(Touchpoint.id).where(Touchpoint.owner_team_id == team.id)
            query = query.where(unresolved, (Issue.assignee_team_id == team.id) | Issue.touchpoint_id.in_(owned))
        elif kind in ("touchpoint", "kontaktpunkt"):
            match = match_touchpoint(argument, self.candidates())
            touchpoint = self.touchpoint_by_key(match.best) if match.best else None
            if touchpoint is None:
                raise UserError(
                    "issues.unknown_touchpoint",
                    text=excerpt(argument) or "–",
                    closest=self._names(match.ranked),
                )
            query = query.where(Issue.touchpoint_id == touchpoint.id)
        else:
            raise UserError("issues.list_usage")
        return kind, list(self.session.scalars(query))


def similarity(a: str, b: str) -> float:
    """How alike two descriptions are, 0–100.

    ``token_set_ratio`` alone calls any text that contains the other's words a perfect match
    ("fel moms" against a long report); averaging with ``token_sort_ratio`` keeps reworded
    reports of one problem high while texts that merely share a few words fall below SIMILAR.
    """
    left, right = a.casefold(), b.casefold()
    return (fuzz.token_set_ratio(left, right) + fuzz.token_sort_ratio(left, right)) / 2


def validate_request(request: ReportRequest) -> None:
    if not request.description.strip():
        raise UserError("issues.empty")
    if len(request.description) > MAX_DESCRIPTION:
        raise UserError("issues.too_long", length=len(request.description), limit=MAX_DESCRIPTION)
    if request.impact is not None and len(request.impact) > MAX_IMPACT:
        raise UserError("issues.impact_too_long", length=len(request.impact), limit=MAX_IMPACT)


def routed_topic(issue: Issue) -> str:
    return f"issue:{issue.id}:routed"
