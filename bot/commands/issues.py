"""/cx report, /cx issues, /cx issue <n> … and the buttons on routed issues."""

from __future__ import annotations

from bot.app import Context, Registry, UserError, excerpt
from bot.domain.issues import IssueAction, parse_report
from bot.messages import Button, Message, MessageField, Reply
from bot.services import issue_views as views
from bot.services.issues import ChooseTouchpoint, Created, IssueService, Joined, MaybeDuplicate, ReportOutcome


def service(ctx: Context) -> IssueService:
    return IssueService(ctx.session, ctx.require_org(), ctx.catalogue, ctx.now)


def outcome_reply(ctx: Context, outcome: ReportOutcome) -> Reply:
    if isinstance(outcome, Created):
        issue = outcome.issue
        text = ctx.t(
            "issues.created",
            number=issue.id,
            touchpoint=issue.touchpoint.name(ctx.language),
            owner=views._assignee(ctx.catalogue, ctx.language, issue),
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


def parse_number(text: str) -> int:
    cleaned = text.strip().lstrip("#")
    if not cleaned.isdecimal() or not cleaned.isascii() or len(cleaned) > 9:
        raise UserError("issues.issue_usage", given=excerpt(text) or "–")
    return int(cleaned)


def register(registry: Registry) -> None:
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
        if not verb or verb in ("details", "detaljer"):
            issue = issues.get_issue(number)
            return Reply(views.detail_message(ctx.session, ctx.catalogue, ctx.language, issue, issues.org, ctx.now))
        if verb in ("ack", "acknowledge", "kvittera"):
            issue = issues.change(number, person, IssueAction.ACKNOWLEDGE)
            return Reply(Message(text=ctx.t("issues.acknowledged", number=issue.id)))
        if verb in ("resolve", "lös", "los"):
            cause, colon, action = argument.partition(":")
            if not colon:
                raise UserError("issues.resolve_usage", number=number, causes=views.cause_list())
            issue = issues.change(number, person, IssueAction.RESOLVE, cause=cause, action_taken=action)
            return Reply(Message(text=ctx.t("issues.resolved", number=issue.id)))
        if verb in ("reopen", "återöppna"):
            issue = issues.change(number, person, IssueAction.REOPEN)
            return Reply(Message(text=ctx.t("issues.reopened", number=issue.id)))
        if verb in ("reassign", "tilldela"):
            if not argument.strip():
                raise UserError("issues.reassign_usage", number=number)
            issue = issues.reassign(number, person, argument)
            return Reply(Message(text=ctx.t("issues.reassigned", number=issue.id, to=excerpt(argument))))
        raise UserError("issues.issue_usage", given=excerpt(rest))

    @registry.click("issue")
    def issue_click(ctx: Context, parts: list[str], value: str) -> Reply:
        if len(parts) != 2 or not parts[0].isdecimal():
            raise UserError("common.unknown_action")
        number, verb = int(parts[0]), parts[1]
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
            return Reply(Message(text=ctx.t(key, number=number, causes=views.cause_list())))
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
        if choice[0] == "join" and len(choice) == 2 and choice[1].isdecimal():
            return outcome_reply(ctx, issues.join_offered(draft, person, int(choice[1])))
        raise UserError("common.unknown_action")
