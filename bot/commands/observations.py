"""/cx observe, /cx observations, /cx observation <n> …, /cx erase, and capturing chat messages."""

from __future__ import annotations

from sqlalchemy import select

from bot.app import Context, Registry, UserError, excerpt
from bot.commands.general import platform_name
from bot.commands.issues import number_in_button, outcome_reply, parse_number
from bot.domain.errors import no_more_words
from bot.domain.issues import defuse_mentions
from bot.domain.journey_map import Severity
from bot.messages import Button, CaptureRequest, Message, MessageField, Reaction, Reply
from bot.services import confirmations
from bot.services.confirmations import DELETE_OBSERVATION, ERASE, LIFETIME
from bot.services.erasure import erase_person, erasure_preview
from bot.services.journey import current_org
from bot.services.observations import ObservationService, classify_observation
from bot.store.models import Identity, Observation, ObservationSeer, Person

# Not "anonym": a Swedish sentence may well start with it ("Anonym kund ringde…").
ANONYMOUS_WORDS = ("anonymous", "anonymt")
SEVERITIES = {
    "low": "low",
    "låg": "low",
    "normal": "normal",
    "high": "high",
    "hög": "high",
    "critical": "critical",
    "kritisk": "critical",
}


def service(ctx: Context) -> ObservationService:
    return ObservationService(ctx.session, ctx.require_org(), ctx.catalogue, ctx.now)


def classify_later(ctx: Context, number: int) -> None:
    """Store first, classify after: the reply does not wait for the classifier."""
    session_factory, classifier = ctx.session_factory, ctx.classifier
    if session_factory is None or classifier is None:
        return
    clock = ctx.clock
    ctx.defer(lambda: classify_observation(session_factory, number, classifier, clock))


def observation_message(ctx: Context, observation: Observation) -> Message:
    def t(key: str, **values: object) -> str:
        return ctx.t(key, **values)

    seers = ctx.session.scalars(select(ObservationSeer.id).where(ObservationSeer.observation_id == observation.id))
    seen = len(seers.all())
    placed_by_someone = observation.classifier is not None or observation.corrected_at is not None
    if placed_by_someone:
        stage = observation.stage.name(ctx.language) if observation.stage else "–"
        touchpoint = observation.touchpoint.name(ctx.language) if observation.touchpoint else "–"
        placed = f"{stage} › {touchpoint}"
    else:
        placed = t("observations.unclassified")
    # Offline themes are catalogue keys; OpenAI's are free text, shown as they came, defused.
    themes = ", ".join(ctx.catalogue.text_or(ctx.language, f"observations.theme.{x}", x) for x in observation.themes)
    named = observation.author.name if observation.author else "–"
    author = t("issues.anonymous") if observation.anonymous else named
    sentiment = t(f"observations.sentiment.{observation.sentiment}") if observation.sentiment else "–"
    fields = [
        MessageField(label=t("observations.field.placed"), value=placed),
        MessageField(label=t("observations.field.sentiment"), value=sentiment),
        MessageField(label=t("observations.field.themes"), value=defuse_mentions(themes) or "–"),
        MessageField(label=t("observations.field.author"), value=author),
    ]
    if seen > 1:
        fields.append(MessageField(label=t("observations.field.seen_by"), value=str(seen)))
    if observation.source_link:
        fields.append(MessageField(label=t("observations.field.source"), value=observation.source_link))
    if observation.issue_id:
        fields.append(MessageField(label=t("observations.field.issue"), value=f"#{observation.issue_id}"))
    context = []
    if placed_by_someone:
        if observation.corrected_at:
            how = t("observations.by_person")
        else:
            how = t("observations.by_classifier", name=observation.classifier)
        note = f" ({defuse_mentions(observation.classifier_note)})" if observation.classifier_note else ""
        context.append(how + note)
    viewer = ctx.person
    may_report = viewer is not None and not observation.issue_id and service(ctx).may_report(observation, viewer)
    report = Button(action_id=f"observation:{observation.id}:report", label=t("observations.button.report"))
    return Message(
        header=t("observations.header", number=observation.id),
        text=defuse_mentions(observation.text),
        fields=fields,
        context=context,
        buttons=[report] if may_report else [],
    )


def capture_reply(ctx: Context, request: CaptureRequest) -> Reply:
    person = ctx.require_person()
    author = None
    if request.message_author:
        author = ctx.session.scalar(
            select(Person)
            .join(Identity)
            .where(Identity.platform == request.platform, Identity.external_user_id == request.message_author)
        )
    captured = service(ctx).capture(
        person,
        request.platform,
        request.channel_id,
        request.message_ref,
        request.message_text,
        author,
        request.message_link,
    )
    number = captured.observation.id
    if captured.already:
        return Reply(Message(text=ctx.t("observations.captured_again", number=number)))
    classify_later(ctx, number)
    return Reply(
        Message(
            text=ctx.t("observations.captured", number=number),
            buttons=[Button(action_id=f"observation:{number}:details", label=ctx.t("issues.button.details"))],
        )
    )


def confirm_buttons(ctx: Context, token: str, verb: str) -> list[Button]:
    return [
        Button(action_id=f"confirm:{token}:yes", label=ctx.t(f"confirm.{verb}"), style="danger"),
        Button(action_id=f"confirm:{token}:no", label=ctx.t("confirm.cancel")),
    ]


def minutes() -> int:
    return int(LIFETIME.total_seconds() // 60)


def confirm_erase(ctx: Context, admin: Person, person: Person) -> Reply:
    preview = erasure_preview(ctx.session, person)
    token = confirmations.ask(ctx.session, admin, ERASE, person.id, ctx.now)
    identities = ", ".join(f"{platform_name(ctx, platform)} ({ref})" for platform, ref in preview.identities) or "–"
    return Reply(
        Message(
            header=ctx.t("observations.erase_header", name=preview.name),
            text=ctx.t("observations.erase_preview", name=preview.name, minutes=minutes()),
            fields=[
                MessageField(label=ctx.t("observations.erase_person"), value=f"{preview.name} ({preview.key})"),
                MessageField(label=ctx.t("observations.erase_observations"), value=str(preview.observations)),
                MessageField(label=ctx.t("observations.erase_issues"), value=str(preview.issues)),
                MessageField(label=ctx.t("observations.erase_identities"), value=identities),
            ],
            context=[ctx.t("observations.erase_uncounted")],
            buttons=confirm_buttons(ctx, token, "erase"),
        )
    )


def erase_confirmed(ctx: Context, person_id: int) -> Reply:
    admin = ctx.require_admin()  # still an admin, minutes later
    person = ctx.session.get(Person, person_id)
    if person is None:
        raise UserError("observations.erase_gone")
    if person.id == admin.id:
        raise UserError("observations.erase_self")
    erased = erase_person(ctx.session, person, ctx.now, ctx.catalogue)
    # No counts: how many were anonymous would tell what they had said without their name.
    text = ctx.t("observations.erased", name=erased.name)
    if erased.in_journey_file:  # the next load would add them back: the admin should know
        text += " " + ctx.t("observations.erased_in_file")
    return Reply(Message(text=text))


def confirm_delete(ctx: Context, person: Person, observation: Observation) -> Reply:
    token = confirmations.ask(ctx.session, person, DELETE_OBSERVATION, observation.id, ctx.now)
    number = observation.id
    return Reply(
        Message(
            header=ctx.t("observations.delete_header", number=number),
            text=ctx.t("observations.delete_linked", number=number, issue=observation.issue_id, minutes=minutes()),
            buttons=confirm_buttons(ctx, token, "delete"),
        )
    )


def cancelled(ctx: Context, key: str, **values: object) -> Reply:
    return Reply(Message(text=ctx.t(f"observations.{key}", **values)))


def register(registry: Registry) -> None:
    @registry.command("observe", "observe [anonymous] <what you saw>", "observera")
    def observe(ctx: Context, rest: str) -> Reply:
        person = ctx.require_person()
        first, _, remainder = rest.strip().partition(" ")
        anonymous = first.casefold() in ANONYMOUS_WORDS
        text = remainder if anonymous else rest
        observation = service(ctx).observe(person, text, anonymous, ctx.platform, ctx.channel_id)
        classify_later(ctx, observation.id)
        return Reply(
            Message(
                text=ctx.t("observations.saved", number=observation.id),
                context=[ctx.t("issues.created_anonymous")] if anonymous else [],
                buttons=[
                    Button(action_id=f"observation:{observation.id}:details", label=ctx.t("issues.button.details")),
                    Button(action_id=f"observation:{observation.id}:report", label=ctx.t("observations.button.report")),
                ],
            )
        )

    @registry.command("observations", "observations [stage <s>|touchpoint <tp>|mine] [2026-W48]", "observationer")
    def list_observations(ctx: Context, rest: str) -> Reply:
        person = ctx.require_person()
        found = service(ctx).list(person, rest)
        if not found:
            return Reply(Message(text=ctx.t("observations.list_empty")))
        fields = []
        for observation in found:
            where = (
                observation.touchpoint.name(ctx.language)
                if observation.touchpoint
                else (observation.stage.name(ctx.language) if observation.stage else ctx.t("observations.unplaced"))
            )
            text = " ".join(observation.text.split())
            short = text if len(text) <= 90 else text[:89] + "…"
            fields.append(MessageField(label=f"#{observation.id} · {where}", value=defuse_mentions(short)))
        return Reply(
            Message(
                header=ctx.t("observations.list_header", count=len(found)),
                fields=fields,
                context=[ctx.t("observations.list_hint")],
            )
        )

    @registry.command(
        "observation", "observation <n> [stage <s>|touchpoint <tp>|delete|report [severity]]", "observationen"
    )
    def one_observation(ctx: Context, rest: str) -> Reply:
        person = ctx.require_person()
        number_text, _, command = rest.strip().partition(" ")
        number = parse_number(number_text, "observations.usage")
        verb, _, argument = command.strip().partition(" ")
        verb = verb.casefold()
        observations = service(ctx)
        if verb in ("", "delete", "radera"):
            no_more_words(argument.split())
        if not verb:
            return Reply(observation_message(ctx, observations.get(number)))
        if verb in ("stage", "steg", "touchpoint", "kontaktpunkt"):
            observation = observations.correct(number, person, verb, argument)
            return Reply(
                observation_message(ctx, observation).model_copy(
                    update={"text": ctx.t("observations.corrected", number=number)}
                )
            )
        if verb in ("delete", "radera"):
            observation = observations.get(number)
            if observation.issue_id is not None:  # an issue came from it: ask first
                if not observations.may_change(observation, person):
                    raise UserError("observations.not_yours", number=number)
                return confirm_delete(ctx, person, observation)
            observations.delete(number, person)
            return Reply(Message(text=ctx.t("observations.deleted", number=number)))
        if verb in ("report", "rapportera"):
            severity = SEVERITIES.get(argument.strip().casefold() or "normal")
            if severity is None:
                raise UserError("observations.usage", given=excerpt(rest))
            return outcome_reply(ctx, observations.report_as_issue(number, person, Severity(severity)))
        raise UserError("observations.usage", given=excerpt(rest))

    @registry.command("erase", "erase <person>", "radera", admin=True)
    def erase(ctx: Context, rest: str) -> Reply:
        admin = ctx.require_admin()
        org = ctx.require_org()
        key = rest.strip().lstrip("@").casefold()
        person = ctx.session.scalar(select(Person).where(Person.org_id == org.id, Person.key == key))
        if person is None:
            raise UserError("issues.unknown_assignee", text=excerpt(rest) or "–")
        if person.id == admin.id:
            raise UserError("observations.erase_self")
        # Nothing goes yet: a preview, and buttons that work once, for this admin, for minutes.
        return confirm_erase(ctx, admin, person)

    @registry.click("confirm")
    def confirmed(ctx: Context, parts: list[str], value: str) -> Reply:
        if len(parts) != 2 or parts[1] not in ("yes", "no"):
            raise UserError("common.unknown_action")
        person = ctx.require_person()
        answer = confirmations.answer(ctx.session, parts[0], person, ctx.now)
        if answer.action == ERASE:
            return erase_confirmed(ctx, answer.subject_id) if parts[1] == "yes" else cancelled(ctx, "erase_cancelled")
        if answer.action == DELETE_OBSERVATION:
            number = answer.subject_id
            if parts[1] == "no":
                return cancelled(ctx, "delete_cancelled", number=number)
            service(ctx).delete(number, person)  # asks again whether they may: things change in minutes
            return Reply(Message(text=ctx.t("observations.deleted", number=number)))
        raise UserError("common.unknown_action")

    @registry.click("observation")
    def observation_click(ctx: Context, parts: list[str], value: str) -> Reply:
        if len(parts) != 2:
            raise UserError("common.unknown_action")
        person = ctx.require_person()
        observations = service(ctx)
        number, verb = number_in_button(parts[0]), parts[1]
        if verb == "details":
            return Reply(observation_message(ctx, observations.get(number)))
        if verb == "report":
            return outcome_reply(ctx, observations.report_as_issue(number, person, Severity.NORMAL))
        raise UserError("common.unknown_action")

    registry.capture = capture_reply

    @registry.reactions.append
    def capture_by_reaction(ctx: Context, reaction: Reaction) -> Reply | None:
        if reaction.emoji not in ctx.capture_emoji or current_org(ctx.session) is None:
            return None
        request = CaptureRequest(
            reaction.platform,
            reaction.workspace_id,
            reaction.user_id,
            reaction.channel_id,
            reaction.message_ref,
            reaction.message_text,
            reaction.message_author,
            reaction.message_link,
        )
        return capture_reply(ctx, request)
