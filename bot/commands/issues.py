"""/cx report, /cx issues, /cx issue <n> … and the buttons on routed issues."""

from __future__ import annotations

from bot.app import Context, Registry, UserError, excerpt
from bot.domain.errors import no_more_words
from bot.domain.issues import (
    MAX_ACTION,
    MAX_DESCRIPTION,
    MAX_IMPACT,
    ROOT_CAUSES,
    IssueAction,
    ReportRequest,
    parse_report,
)
from bot.domain.journey_map import Severity
from bot.domain.numbers import NotANumber, identifier
from bot.forms import Choice, ChoiceGroup, Form, FormField
from bot.messages import Button, Message, MessageField, Reply
from bot.services import issue_views as views
from bot.services.issues import (
    ChooseTouchpoint,
    Created,
    IssueService,
    Joined,
    MaybeDuplicate,
    ReportOutcome,
)


def service(ctx: Context) -> IssueService:
    return IssueService(ctx.session, ctx.require_org(), ctx.catalogue, ctx.now)


def outcome_reply(ctx: Context, outcome: ReportOutcome) -> Reply:
    if isinstance(outcome, Created):
        issue = outcome.issue
        text = ctx.t(
            "issues.created",
            number=issue.id,
            touchpoint=issue.touchpoint.name(ctx.language),
            owner=views.assignee_text(ctx.catalogue, ctx.language, issue),
        )
        context = [ctx.t("issues.created_anonymous")] if issue.anonymous else []
        return Reply(Message(text=text, context=context))
    if isinstance(outcome, ChooseTouchpoint):
        return Reply(
            Message(
                text=ctx.t("issues.choose_touchpoint"),
                buttons=[
                    Button(action_id=f"report:{outcome.token}:tp:{tp.key}", label=tp.name(ctx.language))
                    for tp in outcome.choices
                ],
            )
        )
    if isinstance(outcome, MaybeDuplicate):
        similar = outcome.similar
        return Reply(
            Message(
                text=ctx.t("issues.maybe_duplicate", number=similar.id),
                fields=[
                    MessageField(
                        label=views.title(ctx.catalogue, ctx.language, similar),
                        value=views.defuse_mentions(views._short(similar.description, 200)),
                    )
                ],
                buttons=[
                    Button(
                        action_id=f"report:{outcome.token}:join:{similar.id}",
                        label=ctx.t("issues.button.join", number=similar.id),
                        style="primary",
                    ),
                    Button(action_id=f"report:{outcome.token}:new", label=ctx.t("issues.button.new")),
                ],
            )
        )
    assert isinstance(outcome, Joined)
    key = "issues.joined_already" if outcome.already else "issues.joined"
    return Reply(Message(text=ctx.t(key, number=outcome.issue.id, count=outcome.issue.affected_count)))


def parse_number(text: str, usage: str = "issues.issue_usage") -> int:
    """An issue's (or an observation's) number; the command's usage when there is none (a word
    without digits is no attempt at a number)."""
    if not any(c.isnumeric() for c in text):
        raise UserError(usage, given=excerpt(text) or "–")
    return identifier(text)


def number_in_button(text: str) -> int:
    """The number in a button's id: the bot wrote it, so anything else is a stale or forged button."""
    try:
        return identifier(text)
    except NotANumber:
        raise UserError("common.unknown_action") from None


def report_form(ctx: Context, parts: list[str]) -> Form | Reply:
    """The report modal: the touchpoint grouped by stage, what happened, severity, impact, anonymous."""
    ctx.require_person()
    issues = service(ctx)
    groups: dict[int, list[Choice]] = {}
    names: dict[int, str] = {}
    for touchpoint in issues.touchpoints():
        groups.setdefault(touchpoint.stage_id, []).append(Choice(touchpoint.key, touchpoint.name(ctx.language)))
        names[touchpoint.stage_id] = touchpoint.stage.name(ctx.language)
    severities = ChoiceGroup("", tuple(Choice(s.value, ctx.t(f"issues.severity.{s.value}")) for s in Severity))
    return Form(
        "report",
        ctx.t("forms.report.title"),
        ctx.t("forms.report.submit"),
        (
            FormField(
                "touchpoint",
                ctx.t("forms.report.touchpoint"),
                "select",
                groups=tuple(ChoiceGroup(names[k], tuple(v)) for k, v in groups.items()),
            ),
            FormField("description", ctx.t("forms.report.description"), "multiline", max_length=MAX_DESCRIPTION),
            FormField(
                "severity",
                ctx.t("forms.report.severity"),
                "select",
                groups=(severities,),
                initial=Severity.NORMAL.value,
            ),
            FormField("impact", ctx.t("forms.report.impact"), "text", required=False, max_length=MAX_IMPACT),
            FormField("anonymous", ctx.t("forms.report.anonymous"), "checkbox", required=False),
        ),
        intro=ctx.t("forms.report.intro"),
    )


def resolve_form(ctx: Context, parts: list[str]) -> Form | Reply:
    number = parse_number(parts[0] if parts else "")
    person = ctx.require_person()
    issues = service(ctx)
    issue = issues.get_issue(number)
    if not issues.may_manage(issue, person):
        raise UserError("issues.not_allowed", number=number)
    causes = ChoiceGroup("", tuple(Choice(c, ctx.t(f"issues.cause.{c}")) for c in ROOT_CAUSES))
    return Form(
        f"resolve:{number}",
        ctx.t("forms.resolve.title", number=number),
        ctx.t("forms.resolve.submit"),
        (
            FormField("cause", ctx.t("forms.resolve.cause"), "select", groups=(causes,)),
            FormField("action", ctx.t("forms.resolve.action"), "multiline", max_length=MAX_ACTION),
        ),
        intro=f"#{number}: {excerpt(issue.description, 200)}",
    )


def register(registry: Registry) -> None:
    @registry.form("report", report_form)
    def submit_report(ctx: Context, parts: list[str], values: dict[str, str]) -> Reply:
        reporter = ctx.require_person()
        try:
            severity = Severity(values.get("severity") or Severity.NORMAL.value)
        except ValueError:
            raise UserError("common.unknown_action") from None
        touchpoint = values.get("touchpoint") or ""
        issues = service(ctx)
        chosen = issues.touchpoint_by_key(touchpoint)
        # A key from a select; or typed text (a platform whose selects cannot hold every
        # touchpoint), matched the way `/cx report <touchpoint>: …` is.
        request = ReportRequest(
            None if chosen is not None else touchpoint or None,
            values.get("description", ""),
            severity,
            values.get("anonymous") == "true",
            values.get("impact") or None,
        )
        key = chosen.key if chosen is not None else None
        return outcome_reply(ctx, issues.report(reporter, request, ctx.platform, touchpoint_key=key))

    @registry.form("resolve", resolve_form)
    def submit_resolve(ctx: Context, parts: list[str], values: dict[str, str]) -> Reply:
        number = parse_number(parts[0] if parts else "")
        person = ctx.require_person()
        service(ctx).change(
            number, person, IssueAction.RESOLVE, cause=values.get("cause", ""), action_taken=values.get("action", "")
        )
        return Reply(Message(text=ctx.t("issues.resolved", number=number)))

    @registry.command("report", "report [severity] [anonymous] <touchpoint>: <what happened>", "rapportera")
    def report(ctx: Context, rest: str) -> Reply:
        reporter = ctx.require_person()
        request = parse_report(rest)
        return outcome_reply(ctx, service(ctx).report(reporter, request, ctx.platform))

    @registry.command("issues", "issues [mine|open|overdue|team <t>|touchpoint <tp>]", "ärenden")
    def list_issues(ctx: Context, rest: str) -> Reply:
        person = ctx.require_person()
        issues = service(ctx)
        kind, found = issues.list(person, rest)
        return Reply(views.list_message(ctx.catalogue, ctx.language, kind, found, issues.org, ctx.now))

    @registry.command("issue", "issue <n> [ack|resolve <cause>: <action>|reopen|reassign <person>]", "ärende")
    def one_issue(ctx: Context, rest: str) -> Reply:
        person = ctx.require_person()
        number_text, _, command = rest.strip().partition(" ")
        number = parse_number(number_text)
        verb, _, argument = command.strip().partition(" ")
        issues = service(ctx)
        verb = verb.casefold()
        if verb in ("", "details", "detaljer", "ack", "acknowledge", "kvittera", "reopen", "återöppna"):
            no_more_words(argument.split())
        if not verb or verb in ("details", "detaljer"):
            issue = issues.get_issue(number)
            return Reply(views.detail_message(ctx.session, ctx.catalogue, ctx.language, issue, issues.org, ctx.now))
        if verb in ("ack", "acknowledge", "kvittera"):
            issue = issues.change(number, person, IssueAction.ACKNOWLEDGE)
            return Reply(Message(text=ctx.t("issues.acknowledged", number=issue.id)))
        if verb in ("resolve", "lös", "los"):
            cause, colon, action = argument.partition(":")
            if not colon:
                raise UserError("issues.resolve_usage", number=number, causes=views.cause_list(ctx.catalogue))
            issue = issues.change(number, person, IssueAction.RESOLVE, cause=cause, action_taken=action)
            return Reply(Message(text=ctx.t("issues.resolved", number=issue.id)))
        if verb in ("reopen", "återöppna"):
            issue = issues.change(number, person, IssueAction.REOPEN)
            return Reply(Message(text=ctx.t("issues.reopened", number=issue.id)))
        if verb in ("reassign", "tilldela"):
            if not argument.strip():
                raise UserError("issues.reassign_usage", number=number)
            issue = issues.reassign(number, person, argument)
            to = views.assignee_text(ctx.catalogue, ctx.language, issue)
            return Reply(Message(text=ctx.t("issues.reassigned", number=issue.id, to=to)))
        raise UserError("issues.issue_usage", given=excerpt(rest))

    @registry.click("issue")
    def issue_click(ctx: Context, parts: list[str], value: str) -> Reply:
        if len(parts) != 2:
            raise UserError("common.unknown_action")
        number, verb = number_in_button(parts[0]), parts[1]
        person = ctx.require_person()
        issues = service(ctx)
        if verb == "details":
            issue = issues.get_issue(number)
            return Reply(views.detail_message(ctx.session, ctx.catalogue, ctx.language, issue, issues.org, ctx.now))
        if verb == "ack":
            issues.change(number, person, IssueAction.ACKNOWLEDGE)
            return Reply(Message(text=ctx.t("issues.acknowledged", number=number)))
        if verb == "reopen":
            issues.change(number, person, IssueAction.REOPEN)
            return Reply(Message(text=ctx.t("issues.reopened", number=number)))
        if verb in ("resolve", "reassign"):
            # Chat platforms open a form here; the core says what the form asks for.
            issue = issues.get_issue(number)
            if not issues.may_manage(issue, person):
                raise UserError("issues.not_allowed", number=number)
            key = "issues.resolve_usage" if verb == "resolve" else "issues.reassign_usage"
            return Reply(Message(text=ctx.t(key, number=number, causes=views.cause_list(ctx.catalogue))))
        raise UserError("common.unknown_action")

    @registry.click("report")
    def report_click(ctx: Context, parts: list[str], value: str) -> Reply:
        if len(parts) < 2:
            raise UserError("common.unknown_action")
        person = ctx.require_person()
        issues = service(ctx)
        draft = issues.take_draft(parts[0], person)
        choice = parts[1:]
        if choice[0] == "tp" and len(choice) == 2:
            return outcome_reply(ctx, issues.report(person, draft.request, draft.platform, touchpoint_key=choice[1]))
        if choice[0] == "new" and draft.touchpoint_key:
            return outcome_reply(
                ctx,
                issues.report(
                    person, draft.request, draft.platform, touchpoint_key=draft.touchpoint_key, allow_duplicate=True
                ),
            )
        if choice[0] == "join" and len(choice) == 2:
            return outcome_reply(ctx, issues.join_offered(draft, person, number_in_button(choice[1])))
        raise UserError("common.unknown_action")
