"""How an issue looks: the routed post, notices, details with the timeline, lists.

Every user-provided text passes through ``defuse_mentions`` before it is shown. An anonymous
reporter is never named here, whoever is looking.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.domain.issues import ROOT_CAUSES, IssueStatus, defuse_mentions
from bot.i18n import LANGUAGES, Catalogue, PerLanguage
from bot.messages import Button, Message, MessageField
from bot.services.kpi import MetricReport, last_complete_week, stage_reports
from bot.services.kpi_views import format_value, metric_name, short_figure
from bot.store.models import Issue, IssueEvent, Org, Person, Team


def local_time(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def cause_list(catalogue: Catalogue) -> PerLanguage:
    """The root causes by their names in each language (each name is also a word they match)."""
    return PerLanguage(
        {lang: ", ".join(catalogue.text(lang, f"issues.cause.{c}") for c in ROOT_CAUSES) for lang in LANGUAGES}
    )


def title(catalogue: Catalogue, language: str, issue: Issue) -> str:
    return catalogue.text(
        language,
        "issues.title",
        number=issue.id,
        touchpoint=issue.touchpoint.name(language),
        severity=catalogue.text(language, f"issues.severity.{issue.severity}"),
    )


def _reporter(session: Session, catalogue: Catalogue, language: str, issue: Issue) -> str:
    if issue.anonymous:
        return catalogue.text(language, "issues.anonymous")
    event = session.scalar(select(IssueEvent).where(IssueEvent.issue_id == issue.id, IssueEvent.kind == "reported"))
    return event.actor.name if event is not None and event.actor is not None else "–"


def assignee_text(catalogue: Catalogue, language: str, issue: Issue) -> str:
    parts = []
    if issue.assignee_team is not None:
        parts.append(issue.assignee_team.name(language))
    if issue.assignee is not None:
        parts.append(issue.assignee.name)
    return " · ".join(parts) or catalogue.text(language, "journey.no_owner")


@dataclass(frozen=True)
class RoutedFacts:
    """What a routed message shows beyond the issue itself, read once per change."""

    reporter: str | None  # None: anonymous
    open_in_stage: int
    week: str  # the last complete week, whose figures are shown
    kpis: tuple[MetricReport, ...]  # the stage's targeted or measured metrics that week


def routed_facts(session: Session, issue: Issue, now: datetime) -> RoutedFacts:
    reporter = None
    if not issue.anonymous:
        event = session.scalar(select(IssueEvent).where(IssueEvent.issue_id == issue.id, IssueEvent.kind == "reported"))
        reporter = event.actor.name if event is not None and event.actor is not None else "–"
    open_count = session.scalar(
        select(func.count())
        .select_from(Issue)
        .where(Issue.stage_id == issue.stage_id, Issue.status != IssueStatus.RESOLVED)
    )
    org = session.get(Org, issue.org_id)
    assert org is not None  # an issue belongs to an org (a foreign key)
    week = last_complete_week(now, ZoneInfo(org.time_zone))
    reports = stage_reports(session, org, week, stages=[issue.stage])
    return RoutedFacts(reporter, open_count or 0, week, tuple(reports[0].metrics) if reports else ())


def stage_context(catalogue: Catalogue, language: str, facts: RoutedFacts) -> str:
    """Why it matters: the stage's open issues, and its KPIs last week beside their targets."""
    text = catalogue.text(language, "issues.stage_open", count=facts.open_in_stage)
    if facts.kpis and all(r.current.value is None for r in facts.kpis):  # no figures yet: the targets
        targets = ", ".join(
            f"{metric_name(catalogue, language, r.metric)} {format_value(r.metric, r.target)}"
            for r in facts.kpis
            if r.target is not None
        )
        return text + " · " + catalogue.text(language, "journey.targets", targets=targets) if targets else text
    figures = [short_figure(catalogue, language, report) for report in facts.kpis]
    if figures:
        text += " · " + catalogue.text(language, "issues.stage_kpis", week=facts.week, figures=", ".join(figures))
    return text


def routed_message(catalogue: Catalogue, language: str, issue: Issue, org: Org, facts: RoutedFacts) -> Message:
    def t(key: str, **values: object) -> str:
        return catalogue.text(language, key, **values)

    fields = [
        MessageField(label=t("issues.field.stage"), value=issue.stage.name(language)),
        MessageField(label=t("issues.field.status"), value=t(f"issues.status.{issue.status}")),
        MessageField(label=t("issues.field.assignee"), value=assignee_text(catalogue, language, issue)),
        MessageField(label=t("issues.field.reporter"), value=facts.reporter or t("issues.anonymous")),
    ]
    if issue.affected_count > 1:
        fields.append(MessageField(label=t("issues.field.affected"), value=str(issue.affected_count)))
    if issue.customer_impact:
        fields.append(MessageField(label=t("issues.field.impact"), value=defuse_mentions(issue.customer_impact)))
    if issue.status == IssueStatus.RESOLVED:
        fields.append(MessageField(label=t("issues.field.root_cause"), value=t(f"issues.cause.{issue.root_cause}")))
        fields.append(MessageField(label=t("issues.field.action"), value=defuse_mentions(issue.action_taken or "")))
    else:
        if issue.status == IssueStatus.OPEN:
            fields.append(
                MessageField(label=t("issues.field.ack_due"), value=local_time(issue.ack_due_at, org.time_zone))
            )
        fields.append(
            MessageField(label=t("issues.field.resolve_due"), value=local_time(issue.resolve_due_at, org.time_zone))
        )
    prefix = f"issue:{issue.id}"
    if issue.status == IssueStatus.RESOLVED:
        buttons = [
            Button(action_id=f"{prefix}:reopen", label=t("issues.button.reopen")),
            Button(action_id=f"{prefix}:details", label=t("issues.button.details")),
        ]
    else:
        buttons = [
            *(
                [Button(action_id=f"{prefix}:ack", label=t("issues.button.ack"), style="primary")]
                if issue.status == IssueStatus.OPEN
                else []
            ),
            Button(action_id=f"{prefix}:resolve", label=t("issues.button.resolve")),
            Button(action_id=f"{prefix}:reassign", label=t("issues.button.reassign")),
            Button(action_id=f"{prefix}:details", label=t("issues.button.details")),
        ]
    return Message(
        header=title(catalogue, language, issue),
        text=defuse_mentions(issue.description),
        fields=fields,
        context=[stage_context(catalogue, language, facts)],
        buttons=buttons,
    )


def follower_notice(catalogue: Catalogue, language: str, issue: Issue, what: str, actor: Person | None) -> Message:
    def t(key: str, **values: object) -> str:
        return catalogue.text(language, key, **values)

    name = actor.name if actor is not None else t("issues.actor.reported")

    touchpoint = issue.touchpoint.name(language)
    if what == "resolve":
        return Message(
            header=t("issues.notice.resolved_header", number=issue.id),
            text=t("issues.notice.resolved", number=issue.id, touchpoint=touchpoint, name=name),
            fields=[
                MessageField(label=t("issues.field.action"), value=defuse_mentions(issue.action_taken or "")),
                MessageField(label=t("issues.field.root_cause"), value=t(f"issues.cause.{issue.root_cause}")),
            ],
            context=[t("issues.notice.thanks")],
        )
    key = {"ack": "issues.notice.acknowledged", "reopen": "issues.notice.reopened"}[what]
    return Message(text=t(key, number=issue.id, touchpoint=touchpoint, name=name))


def joined_notice(catalogue: Catalogue, language: str, issue: Issue) -> Message:
    return Message(
        text=catalogue.text(
            language,
            "issues.notice.joined",
            number=issue.id,
            touchpoint=issue.touchpoint.name(language),
            count=issue.affected_count,
        )
    )


def _event_line(
    catalogue: Catalogue, language: str, event: IssueEvent, org: Org, names: Mapping[str, Mapping[str, str]]
) -> str:
    """``names``: person and team names by key ("person"/"team"), as events keep keys."""
    who = event.actor.name if event.actor is not None else catalogue.text(language, f"issues.actor.{event.kind}")
    data = event.data or {}
    if data.get("to_person"):
        detail = names["person"].get(data["to_person"], data["to_person"])
    elif data.get("to_team"):
        detail = names["team"].get(data["to_team"], data["to_team"])
    else:
        detail = data.get("to") or ""
    if event.kind == "resolved":
        detail = catalogue.text(language, f"issues.cause.{data.get('root_cause', 'other')}")
    text = catalogue.text(language, f"issues.event.{event.kind}", who=who, detail=detail)
    return f"{local_time(event.at, org.time_zone)}  {text}"


def detail_message(
    session: Session, catalogue: Catalogue, language: str, issue: Issue, org: Org, now: datetime
) -> Message:
    routed = routed_message(catalogue, language, issue, org, routed_facts(session, issue, now))
    events = session.scalars(select(IssueEvent).where(IssueEvent.issue_id == issue.id).order_by(IssueEvent.id))
    names = {
        "person": dict(session.execute(select(Person.key, Person.name).where(Person.org_id == org.id)).all()),
        "team": {t.key: t.name(language) for t in session.scalars(select(Team).where(Team.org_id == org.id))},
    }
    timeline = "\n".join(_event_line(catalogue, language, e, org, names) for e in events)
    return routed.model_copy(
        update={
            "fields": [
                *routed.fields,
                MessageField(label=catalogue.text(language, "issues.field.timeline"), value=timeline),
            ],
            "buttons": [b for b in routed.buttons if not b.action_id.endswith(":details")],
        }
    )


def list_message(
    catalogue: Catalogue, language: str, kind: str, issues: Sequence[Issue], org: Org, now: datetime
) -> Message:
    def t(key: str, **values: object) -> str:
        return catalogue.text(language, key, **values)

    if not issues:
        return Message(text=t("issues.list_empty"))
    fields = []
    for issue in issues:
        late = (issue.status == IssueStatus.OPEN and issue.ack_due_at < now) or (
            issue.status != IssueStatus.RESOLVED and issue.resolve_due_at < now
        )
        status = t(f"issues.status.{issue.status}") + (" · " + t("issues.overdue") if late else "")
        fields.append(
            MessageField(
                label=title(catalogue, language, issue),
                value=f"{status} · {defuse_mentions(_short(issue.description))}",
            )
        )
    return Message(
        header=t("issues.list_header", count=len(issues)),
        fields=fields,
        context=[t("issues.list_hint")],
    )


def _short(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def reminder_message(catalogue: Catalogue, language: str, issues: Sequence[Issue], org: Org) -> Message:
    return Message(
        header=catalogue.text(language, "issues.reminder_header", count=len(issues)),
        fields=[
            MessageField(
                label=title(catalogue, language, issue),
                value=catalogue.text(language, "issues.reminder_line", due=local_time(issue.ack_due_at, org.time_zone)),
            )
            for issue in issues
        ],
        buttons=[
            Button(
                action_id=f"issue:{issue.id}:ack",
                label=f"{catalogue.text(language, 'issues.button.ack')} #{issue.id}",
            )
            for issue in issues[:5]
        ],
    )


def escalation_message(catalogue: Catalogue, language: str, issue: Issue, org: Org, breach: str) -> Message:
    key = "issues.escalated" if breach == "acknowledge" else "issues.overdue_notice"
    due = issue.ack_due_at if breach == "acknowledge" else issue.resolve_due_at
    return Message(
        header=title(catalogue, language, issue),
        text=catalogue.text(language, key, number=issue.id, due=local_time(due, org.time_zone)),
        fields=[
            MessageField(
                label=catalogue.text(language, "issues.field.assignee"),
                value=assignee_text(catalogue, language, issue),
            )
        ],
        buttons=[
            Button(
                action_id=f"issue:{issue.id}:ack",
                label=catalogue.text(language, "issues.button.ack"),
                style="primary",
            ),
            Button(action_id=f"issue:{issue.id}:details", label=catalogue.text(language, "issues.button.details")),
        ]
        if issue.status == IssueStatus.OPEN
        else [Button(action_id=f"issue:{issue.id}:details", label=catalogue.text(language, "issues.button.details"))],
    )
