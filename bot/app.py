"""The command router: ``/cx <sub> …`` or a button click → a use case → a Reply.

Every platform hands the core the same ``Invocation`` / ``Click``; the core parses, resolves who
is asking and in which language, runs the handler inside one transaction, and returns a Reply.
A ``UserError`` becomes a polite reply and a log line; anything else is logged with its
traceback, the transaction is rolled back, and the user is told nothing was saved.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.content import Content, default_content
from bot.domain.errors import UserError
from bot.domain.text import clean_text, excerpt
from bot.domain.tips import Tip
from bot.forms import Form, FormRequest, FormSubmission
from bot.i18n import Catalogue
from bot.llm import Classifier, OfflineClassifier
from bot.messages import CaptureRequest, Click, Invocation, Message, Reaction, Reply, ThreadReply
from bot.services.inbound import first_delivery
from bot.services.journey import current_org
from bot.services.suggest import suggestions
from bot.store.db import database_unavailable, driver_reason
from bot.store.models import Identity, Org, Person
from bot.telemetry import telemetry

log = logging.getLogger(__name__)

# The reaction that saves a message as an observation: 👂, as Discord sends it and as Slack names it.
DEFAULT_CAPTURE_EMOJI = ("👂", "ear", ":ear:")

# Longer than any legitimate command (a report's description is capped at 3 000 characters).
MAX_INPUT_CHARS = 4000


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    session: Session
    org: Org | None
    person: Person | None
    language: str
    platform: str
    user_id: str
    channel_id: str
    now: datetime
    catalogue: Catalogue
    tips: Mapping[str, Mapping[int, Tip]]
    tip_order: str = "auto"
    session_factory: sessionmaker[Session] | None = None
    classifier: Classifier | None = None
    capture_emoji: frozenset[str] = frozenset()
    clock: Callable[[], datetime] = utc_now
    deferred: list[Callable[[], object]] = field(default_factory=list)

    def defer(self, task: Callable[[], object]) -> None:
        """Run ``task`` after this command's transaction commits, off the reply's path."""
        self.deferred.append(task)

    def t(self, key: str, /, **values: object) -> str:
        return self.catalogue.text(self.language, key, **values)

    def require_org(self) -> Org:
        if self.org is None:
            raise UserError("common.no_journey")
        return self.org

    def require_person(self) -> Person:
        if self.person is None:
            raise UserError("common.unknown_user", platform=self.platform, user_id=self.user_id)
        return self.person

    def require_admin(self) -> Person:
        person = self.require_person()
        if not person.is_admin:
            raise UserError("common.admin_only")
        return person


CommandHandler = Callable[[Context, str], Reply]
ClickHandler = Callable[[Context, list[str], str], Reply]


@dataclass(frozen=True)
class Command:
    name: str
    handler: CommandHandler
    usage: str  # e.g. "journey [stage]"
    help_key: str
    aliases: tuple[str, ...] = ()
    # Declared for adapters that guard before the core (Discord's Manage Server check); the
    # handler still calls ctx.require_admin(), which is what protects the data.
    admin: bool = False
    admin_words: frozenset[str] = frozenset()

    def for_admins(self, first_word: str) -> bool:
        """Whether this command, followed by ``first_word``, is for admins only."""
        return self.admin or first_word.casefold() in self.admin_words


ReactionHandler = Callable[[Context, Reaction], "Reply | None"]
ReplyHandler = Callable[[Context, ThreadReply], "Reply | None"]
CaptureHandler = Callable[[Context, CaptureRequest], Reply]
FormBuilder = Callable[[Context, list[str]], "Form | Reply"]
FormHandler = Callable[[Context, list[str], dict[str, str]], Reply]


@dataclass
class Registry:
    commands: dict[str, Command] = field(default_factory=dict)
    clicks: dict[str, ClickHandler] = field(default_factory=dict)
    # Every handler sees every reaction or reply; one that answers ends the search.
    reactions: list[ReactionHandler] = field(default_factory=list)
    replies: list[ReplyHandler] = field(default_factory=list)
    capture: CaptureHandler | None = None
    # Forms by id prefix ("report", "resolve"): how to build one, and what its submission does.
    forms: dict[str, tuple[FormBuilder, FormHandler]] = field(default_factory=dict)

    def form(self, prefix: str, build: FormBuilder) -> Callable[[FormHandler], FormHandler]:
        def decorate(handler: FormHandler) -> FormHandler:
            self.forms[prefix] = (build, handler)
            return handler

        return decorate

    def command(
        self, name: str, usage: str, *aliases: str, admin: bool = False, admin_words: Iterable[str] = ()
    ) -> Callable[[CommandHandler], CommandHandler]:
        def decorate(handler: CommandHandler) -> CommandHandler:
            command = Command(name, handler, usage, f"help.cmd.{name}", aliases, admin, frozenset(admin_words))
            for key in (name, *aliases):
                self.commands[key] = command
            return handler

        return decorate

    def click(self, prefix: str) -> Callable[[ClickHandler], ClickHandler]:
        def decorate(handler: ClickHandler) -> ClickHandler:
            self.clicks[prefix] = handler
            return handler

        return decorate

    def listed(self) -> list[Command]:
        seen: dict[str, Command] = {}
        for command in self.commands.values():
            seen.setdefault(command.name, command)
        return list(seen.values())


def parse_command(text: str) -> tuple[str, str]:
    """``"/cx journey Purchase"`` or ``"journey Purchase"`` → ``("journey", "Purchase")``.
    ``/cx`` is a whole word: ``/cxjourney`` is not ``/cx journey``."""
    words = text.strip().split(maxsplit=1)
    if words and words[0].lower() == "/cx":
        words = words[1].split(maxsplit=1) if len(words) > 1 else []
    if not words:
        return "", ""
    return words[0].lower(), words[1].strip() if len(words) > 1 else ""


# Logs never carry what people wrote or who they are by name, key or chat id: the right to
# erasure reaches the database, not log files already shipped elsewhere.
_COMMAND_WORD = re.compile(r"[^\W\d_]{1,20}")


def logged(sub: str) -> str:
    """A command's first word, for a log line: a word like a command's name is shown, anything
    else (text typed where the command should be) is not."""
    return sub if _COMMAND_WORD.fullmatch(sub) else "(not a command word)"


def who(ctx: Context) -> str:
    """Who asked, for a log line: the person's number, which means nothing once they are erased."""
    return f"person {ctx.person.id}" if ctx.person is not None else "an unknown user"


class CxApp:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        registry: Registry | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        content: Content | None = None,
        default_language: str = "sv",
        tip_order: str = "auto",
        classifier: Classifier | None = None,
        run_later: Callable[[Callable[[], object]], object] | None = None,
        capture_emoji: Iterable[str] = DEFAULT_CAPTURE_EMOJI,
    ) -> None:
        from bot.commands import default_registry

        self.session_factory = session_factory
        self.registry = registry or default_registry()
        self.clock = clock
        content = content or default_content()
        self.catalogue = content.catalogue
        self.tips = content.tips
        self.default_language = default_language
        self.tip_order = tip_order
        self.classifier = classifier or OfflineClassifier()
        self.capture_emoji = frozenset(capture_emoji)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self.run_later = run_later or self._in_background

    # --- entry points ------------------------------------------------------------------

    def dispatch(self, invocation: Invocation) -> Reply:
        started = time.perf_counter()
        # Free text is cleaned here, once, for every command (bot.domain.text).
        sub, rest = parse_command(clean_text(invocation.text))
        reply = self._dispatch(invocation, sub, rest)
        # The label is a registered command's name, never typed text: a bounded set of series.
        name = sub if sub in self.registry.commands else "unknown"
        telemetry().command_handled(name, reply.outcome, time.perf_counter() - started)
        return reply

    def _dispatch(self, invocation: Invocation, sub: str, rest: str) -> Reply:

        def handle(ctx: Context) -> Reply:
            delivery = invocation.delivery_id
            if delivery is not None and not first_delivery(ctx.session, ctx.platform, f"cmd:{delivery}", ctx.now):
                telemetry().inbound_deduplicated(ctx.platform)
                log.info("/cx %s from %s %s delivered again; ignored", logged(sub), ctx.platform, who(ctx))
                return Reply(Message())
            return self._route_command(ctx, sub, rest, invocation.text)

        what = f"/cx {logged(sub)}"
        return self._run(invocation.platform, invocation.user_id, invocation.channel_id, what, handle)

    def click(self, click: Click) -> Reply:
        return self._run(
            click.platform,
            click.user_id,
            click.channel_id,
            f"click {click.action_id}",
            lambda ctx: self._route_click(ctx, click),
        )

    def react(self, reaction: Reaction) -> Reply | None:
        """An emoji on a message. None: nothing to say back (the usual case)."""
        return self._run_quiet(
            reaction.platform,
            reaction.user_id,
            reaction.channel_id,
            f"reaction {excerpt(reaction.emoji, 16)}",
            lambda ctx: self._route_reaction(ctx, reaction),
            reaction.delivery_id,
        )

    def replied(self, reply: ThreadReply) -> Reply | None:
        """A reply under one of the bot's messages."""
        return self._run_quiet(
            reply.platform,
            reply.user_id,
            reply.channel_id,
            "thread reply",
            lambda ctx: self._route_reply(ctx, reply),
            reply.delivery_id,
        )

    def form(self, request: FormRequest) -> Form | Reply:
        """The form to show for a command without text or a button that needs details; a Reply
        when there is none to show (not allowed, no journey…)."""
        shown: list[Form] = []

        def build(ctx: Context) -> Reply:
            parts = request.form_id.split(":")
            handlers = self.registry.forms.get(parts[0])
            if handlers is None:
                raise UserError("common.unknown_action")
            result = handlers[0](ctx, parts[1:])
            if isinstance(result, Reply):
                return result
            shown.append(result)
            return Reply(Message())

        reply = self._run(request.platform, request.user_id, request.channel_id, f"form {request.form_id}", build)
        return shown[0] if shown else reply

    def submit(self, submission: FormSubmission) -> Reply:
        def handle(ctx: Context) -> Reply:
            parts = submission.form_id.split(":")
            handlers = self.registry.forms.get(parts[0])
            if handlers is None:
                raise UserError("common.unknown_action")
            longest = max((len(v) for v in submission.values.values()), default=0)
            if longest > MAX_INPUT_CHARS:
                raise UserError("common.too_long", length=longest, limit=MAX_INPUT_CHARS)
            values = {k: clean_text(v) for k, v in submission.values.items()}
            return handlers[1](ctx, parts[1:], values)

        return self._run(
            submission.platform, submission.user_id, submission.channel_id, f"submit {submission.form_id}", handle
        )

    def language_of(self, platform: str, user_id: str) -> str:
        """The language a platform user is answered in, for an adapter that must answer before
        the core runs (Discord's admin guard); the default on any trouble."""
        try:
            with self.session_factory() as session:
                return language_for(person_for(session, platform, user_id), current_org(session), self.default_language)
        except Exception:
            log.exception("looking up a %s user's language failed", platform)
            return self.default_language

    def suggest(self, platform: str, user_id: str, command: str, current: str) -> list[tuple[str, str]]:
        """Autocomplete for a command's argument, in the person's language: only for people the
        core knows, never more than the command would show them; [] on any trouble (a
        suggestion list is never worth an error)."""
        try:
            with self.session_factory() as session:
                org = current_org(session)
                if org is None:
                    return []
                person = person_for(session, platform, user_id)
                language = language_for(person, org, self.default_language)
                known = self.registry.commands.get(command)
                admin_command = known is None or known.for_admins("")
                return suggestions(session, org, person, language, command, current[:100], admin_command=admin_command)
        except Exception:
            log.exception("suggestions for %s failed", command)
            return []

    # --- override hooks ----------------------------------------------------------------

    def on_user_error(self, ctx: Context, error: UserError, what: str) -> Reply:
        log.info("refused %s from %s %s: %s", what, ctx.platform, who(ctx), error.key)
        return Reply(Message(text=ctx.t(error.key, **error.values)), refused=True)

    def on_error(self, ctx: Context, error: Exception, what: str) -> Reply:
        if database_unavailable(error):
            # Not a bug to trace: the database is down or locked. Say so, and that nothing was kept.
            log.error(
                "%s from %s %s: the database is unavailable: %s",
                what,
                ctx.platform,
                who(ctx),
                driver_reason(error),
            )
            return Reply(Message(text=ctx.t("common.database_unavailable")), failure="database_unavailable")
        log.exception("%s from %s %s failed", what, ctx.platform, who(ctx), exc_info=error)
        return Reply(Message(text=ctx.t("common.internal_error")), failure="failed")

    # --- internals ---------------------------------------------------------------------

    def _run(
        self,
        platform: str,
        user_id: str,
        channel_id: str,
        what: str,
        handle: Callable[[Context], Reply],
    ) -> Reply:
        session = self.session_factory()
        ctx = Context(
            session=session,
            org=None,
            person=None,
            language=self.default_language,
            platform=platform,
            user_id=user_id,
            channel_id=channel_id,
            now=self.clock(),
            catalogue=self.catalogue,
            tips=self.tips,
            tip_order=self.tip_order,
            session_factory=self.session_factory,
            classifier=self.classifier,
            capture_emoji=self.capture_emoji,
            clock=self.clock,
        )
        try:
            # Leaving this block by any exception rolls back, so a refused or failed command
            # never leaves anything half-written.
            with session.begin():
                self._identify(ctx)
                reply = handle(ctx)
        except UserError as error:
            return self.on_user_error(ctx, error, what)
        except Exception as error:
            return self.on_error(ctx, error, what)
        finally:
            session.close()
        for task in ctx.deferred:  # committed: now the slower follow-ups
            try:
                self.run_later(task)
            except Exception:  # the work is saved and the clock will pick it up; the user gets the reply
                log.exception("%s: could not schedule follow-up work", what)
        return reply

    def _in_background(self, task: Callable[[], object]) -> None:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cxbot-later")
            pool = self._pool
        pool.submit(self._logged, task)

    def close(self, *, wait: bool = False) -> None:
        """Stop the background pool; what it had not started, the clock picks up later.

        ``wait=True`` lets the follow-ups already queued finish first: a caller about to
        take the database away (a test's teardown, a process's last seconds) needs that.
        """
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=not wait)

    @staticmethod
    def _logged(task: Callable[[], object]) -> None:
        try:
            task()
        except Exception:  # a background task has no one to answer; the log must say it
            log.exception("background task failed")

    def capture(self, request: CaptureRequest) -> Reply:
        """Save a chat message as an observation (a message shortcut)."""
        return self._run(
            request.platform,
            request.user_id,
            request.channel_id,
            "capture",
            lambda ctx: (
                self.registry.capture(ctx, cleaned_capture(request)) if self.registry.capture else Reply(Message())
            ),
        )

    def _run_quiet(
        self,
        platform: str,
        user_id: str,
        channel_id: str,
        what: str,
        handle: Callable[[Context], Reply | None],
        delivery_id: str | None = None,
    ) -> Reply | None:
        """Like _run, for events that usually need no answer. An event the platform delivers
        again (same ``delivery_id``) is recorded with the first delivery's effect and skipped."""
        answer: list[Reply | None] = []

        def capture(ctx: Context) -> Reply:
            if delivery_id is not None and not first_delivery(ctx.session, platform, delivery_id, ctx.now):
                telemetry().inbound_deduplicated(platform)
                log.info("%s: %s event %s delivered again; ignored", what, platform, excerpt(delivery_id, 64))
                answer.append(None)
                return Reply(Message())
            answer.append(handle(ctx))
            return Reply(Message())

        reply = self._run(platform, user_id, channel_id, what, capture)
        return answer[0] if answer else reply

    def _route_reaction(self, ctx: Context, reaction: Reaction) -> Reply | None:
        if reaction.message_text is not None:  # what a capture would store
            reaction = replace(reaction, message_text=clean_text(reaction.message_text))
        for handler in self.registry.reactions:
            answer = handler(ctx, reaction)
            if answer is not None:
                return answer
        return None

    def _route_reply(self, ctx: Context, reply: ThreadReply) -> Reply | None:
        for handler in self.registry.replies:
            answer = handler(ctx, reply)
            if answer is not None:
                return answer
        return None

    def _identify(self, ctx: Context) -> None:
        ctx.org = current_org(ctx.session)
        ctx.person = person_for(ctx.session, ctx.platform, ctx.user_id)
        ctx.language = language_for(ctx.person, ctx.org, self.default_language)

    def _route_command(self, ctx: Context, sub: str, rest: str, raw: str) -> Reply:
        if len(raw) > MAX_INPUT_CHARS:
            raise UserError("common.too_long", length=len(raw), limit=MAX_INPUT_CHARS)
        command = self.registry.commands.get(sub)
        if command is None:
            from bot.commands.general import help_reply

            log.info("unknown command %r from %s %s", logged(sub), ctx.platform, who(ctx))
            return help_reply(ctx, self.registry, unknown=sub if sub else None)
        return command.handler(ctx, rest)

    def _route_click(self, ctx: Context, click: Click) -> Reply:
        parts = click.action_id.split(":")
        handler = self.registry.clicks.get(parts[0])
        if handler is None:
            raise UserError("common.unknown_action")
        return handler(ctx, parts[1:], click.value)


def cleaned_capture(request: CaptureRequest) -> CaptureRequest:
    if request.message_text is None:
        return request
    return replace(request, message_text=clean_text(request.message_text))


def person_for(session: Session, platform: str, user_id: str) -> Person | None:
    """Who a platform user is. Someone removed from the journey map is archived, not deleted:
    they are no one here now."""
    return session.scalar(
        select(Person)
        .join(Identity)
        .where(Identity.platform == platform, Identity.external_user_id == user_id, Person.archived_at.is_(None))
    )


def language_for(person: Person | None, org: Org | None, fallback: str) -> str:
    if person is not None and (person.chosen_language or person.file_language):
        return person.chosen_language or person.file_language or fallback
    return org.language if org is not None else fallback
