"""The console adapter: cxbot in a terminal, or driven by a script through stdin.

You are one person from the journey map (``--as KEY``, ``/as KEY`` to switch). You type the same
``/cx …`` commands as in Slack or Discord, and see the replies plus every post the bot makes to
other channels and people, each labelled with where it went. Buttons are numbered: type the
number to press one.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.app import CxApp, excerpt, language_for, utc_now
from bot.domain.durations import parse_duration
from bot.domain.numbers import NotANumber, whole_number
from bot.domain.text import clean_text
from bot.messages import Button, Click, Invocation, Message, Reaction, Reply, ThreadReply, Visibility
from bot.outbox import Post, drain
from bot.services.journey import current_org
from bot.store.models import Attachment, Identity, Person

log = logging.getLogger(__name__)

PLATFORM = "console"
WORKSPACE = "console"
RULE = "-" * 72
MAX_ROUNDS = 100  # of delivery after a command: more than any one command causes


def render_message(message: Message, number_button: Callable[[Button], int]) -> list[str]:
    """A Message as terminal lines; buttons get numbers from ``number_button``."""
    lines: list[str] = []
    if message.header:
        lines.append(f"## {message.header}")
    if message.text:
        lines.extend(message.text.splitlines())
    for field in message.fields:
        value_lines = field.value.splitlines() or [""]
        if len(field.label) + len(value_lines[0]) < 70 and len(value_lines) == 1:
            lines.append(f"  {field.label}: {value_lines[0]}")
        else:
            lines.append(f"  {field.label}:")
            lines.extend(f"      {v}" for v in value_lines)
    if message.image is not None:
        where = message.image.path or message.image.url or ""
        lines.append(f"  [image: {message.image.alt}] {where}".rstrip())
    lines.extend(f"  > {c}" for c in message.context)
    if message.buttons:
        lines.append("  " + "  ".join(f"[{number_button(b)}] {b.label}" for b in message.buttons))
    return lines


class ConsoleClock:
    """The real time, which ``/clock +2h`` can move forward to see deadlines pass."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utc_now() + self.offset


@dataclass(frozen=True)
class NumberedButton:
    button: Button
    channel_id: str
    message_ref: str | None


class ConsoleAdapter:
    def __init__(
        self,
        app: CxApp,
        session_factory: sessionmaker[Session],
        person_key: str,
        *,
        out: TextIO = sys.stdout,
        channel_id: str = "#cx",
        echo: bool = False,
        clock: Callable[[], datetime] | None = None,
        on_tick: Callable[[], object] | None = None,
    ) -> None:
        self.app = app
        self.session_factory = session_factory
        self.person_key = person_key
        self.out = out
        self.channel_id = channel_id
        self.echo = echo
        self.clock = clock or app.clock
        # What the clock process would do now (the SLA sweep); run after /clock moves time.
        self.on_tick = on_tick
        self.buttons: dict[int, NumberedButton] = {}
        self.replies = 0
        self.said = 0
        # What was said with /say, and what the bot posted: ref → (author, text), for capture.
        self.messages: dict[str, tuple[str | None, str]] = {}

    # --- the loop ----------------------------------------------------------------------

    def run(self, lines: Iterable[str]) -> int:
        """Nothing is shown before the first line: what waits is shown after the first reply.
        Everything due is shown after each line and before leaving, so the end of piped input
        loses nothing."""
        try:
            for raw in lines:
                if not self.handle_line(raw):
                    break
        finally:
            self.deliver_posts()
        return 0

    def banner(self) -> str:
        """Who you are here, and how to be someone else or read another language."""
        with self.session_factory() as session:
            person = self.me(session)
            others = session.scalars(
                select(Person.key)
                .join(Identity)
                .where(Identity.platform == PLATFORM, Person.key != self.person_key)
                .order_by(Person.is_admin, Person.key)
                .limit(1)
            ).all()
            language = language_for(person, current_org(session), self.app.default_language)
        return self.app.catalogue.text(
            language,
            "console.banner",
            name=person.name if person is not None else self.person_key,
            key=self.person_key,
            other=others[0] if others else self.person_key,
            other_language=(other := "sv" if language == "en" else "en"),
            other_language_name=self.app.catalogue.text(language, f"console.language_name_{other}"),
        )

    def prompt(self) -> str:
        return f"{self.person_key}> "

    def handle_line(self, raw: str) -> bool:
        """Handle one typed line; False means the user asked to quit."""
        line = raw.strip()
        if self.echo and line:
            self.write(f"{self.prompt()}{excerpt(line, 200)}")
        if not line:
            return True
        # Commands are whole words: "/saying" is not "/say", "/asdf" is not "/as df".
        word, _, rest = line.partition(" ")
        word, rest = word.casefold(), rest.strip()
        if word in ("/quit", "/exit"):
            return False
        if word in ("/cx", "cx"):
            self.show(self.app.dispatch(self.invocation(line)), "you")
        elif word == "/as":
            self.switch_person(rest)
        elif word in ("/help", "/?"):
            self.write(self.console_help())
        elif word == "/clock":
            self.move_clock(rest)
        elif word in ("/react", "/reply"):
            self.respond_to_post(line)
        elif word == "/say":
            self.say(clean_text(rest))
        elif word.startswith("/"):
            log.info("console: unknown console command (%s characters)", len(word))
            self.write(self.app.catalogue.text(self.language_hint(), "console.unknown_command", command=excerpt(word)))
        elif line.lstrip("+-#")[:1].isnumeric():  # meant as a button's number, even if it is not one
            self.press_typed(line)
        else:
            log.info("console: not a command (%s characters)", len(line))  # what was typed is theirs
            self.write(self.app.catalogue.text(self.language_hint(), "console.not_a_command"))
        self.deliver_posts()
        return True

    # --- actions -----------------------------------------------------------------------

    def invocation(self, text: str) -> Invocation:
        return Invocation(
            platform=PLATFORM,
            workspace_id=WORKSPACE,
            user_id=self.person_key,
            channel_id=self.channel_id,
            text=text,
        )

    def press_typed(self, text: str) -> None:
        """A button's number as typed: ``3``, never ``³`` or ``٣`` (bot.domain.numbers)."""
        try:
            number = whole_number(text, 1)  # a number past the last button: press() says so
        except NotANumber as refused:
            log.info("console: no button %s", excerpt(text, 16))
            self.write(self.app.catalogue.text(self.language_hint(), refused.key, **refused.values))
            return
        self.press(number)

    def press(self, number: int) -> None:
        numbered = self.buttons.get(number)
        if numbered is None:
            log.info("console: no button %s", number)
            self.write(self.app.catalogue.text(self.language_hint(), "console.no_button", number=number))
            return
        click = Click(
            platform=PLATFORM,
            workspace_id=WORKSPACE,
            user_id=self.person_key,
            channel_id=numbered.channel_id,
            action_id=numbered.button.action_id,
            value=numbered.button.value,
            message_ref=numbered.message_ref,
        )
        self.show(self.app.click(click), "you")

    def switch_person(self, key: str) -> None:
        with self.session_factory() as session:
            known = session.scalar(
                select(Identity.external_user_id).where(Identity.platform == PLATFORM, Identity.external_user_id == key)
            )
            everyone = session.scalars(
                select(Person.key).join(Identity).where(Identity.platform == PLATFORM).order_by(Person.key)
            ).all()
        if not key or known is None:
            log.info("console: /as an unknown person")
            self.write(
                self.app.catalogue.text(
                    self.language_hint(),
                    "console.unknown_person",
                    key=excerpt(key) or "–",
                    people=", ".join(everyone),
                )
            )
            return
        self.person_key = key
        self.write(self.app.catalogue.text(self.language_hint(), "console.now_as", key=key))

    def respond_to_post(self, line: str) -> None:
        """``/react console-12 👍`` or ``/reply console-12 <text>``: what chat users do to a post."""
        command, _, rest = line.partition(" ")
        ref, _, detail = rest.strip().partition(" ")
        language = self.language_hint()
        if not ref.startswith(("console-", "msg-")) or not detail.strip():
            log.info("console: bad %s", command)
            self.write(self.app.catalogue.text(language, "console.respond_usage"))
            return
        if command == "/react":
            said = self.messages.get(ref)
            answer = self.app.react(
                Reaction(
                    PLATFORM,
                    WORKSPACE,
                    self.person_key,
                    self.channel_id,
                    ref,
                    detail.strip()[:32],
                    message_text=said[1] if said else None,
                    message_author=said[0] if said else None,
                )
            )
            note = self.app.catalogue.text(language, "console.reacted", emoji=detail.strip()[:32], ref=ref)
        else:
            self.replies += 1
            answer = self.app.replied(
                ThreadReply(PLATFORM, WORKSPACE, self.person_key, self.channel_id, ref, f"console-reply-{self.replies}")
            )
            note = self.app.catalogue.text(language, "console.replied", ref=ref)
        self.write(note)
        if answer is not None and (answer.message.text or answer.message.header):
            self.show(answer, "you")

    def say(self, text: str) -> None:
        """Post a chat message as yourself, as a colleague would: others can capture it (👂)."""
        if not text:
            self.write(self.app.catalogue.text(self.language_hint(), "console.say_usage"))
            return
        self.said += 1
        ref = f"msg-{self.said}"
        self.messages[ref] = (self.person_key, text)
        self.write(f"{RULE}\n[{ref} in {self.channel_id}] {self.person_key}: {text}")

    def move_clock(self, amount: str) -> None:
        language = self.language_hint()
        if not isinstance(self.clock, ConsoleClock):
            self.write(self.app.catalogue.text(language, "console.clock_fixed"))
            return
        try:
            step = parse_duration(amount.lstrip("+")) if amount else timedelta(0)
        except ValueError:
            log.info("console: bad /clock amount %r", excerpt(amount))
            self.write(self.app.catalogue.text(language, "console.clock_usage"))
            return
        try:
            self.clock.offset += step
            self.clock()
        except OverflowError:  # past the calendar's end
            self.clock.offset -= step
            self.write(self.app.catalogue.text(language, "console.clock_usage"))
            return
        if self.on_tick is not None:
            self.on_tick()
        shown = self.clock().astimezone(self.zone()).strftime("%Y-%m-%d %H:%M")
        self.write(self.app.catalogue.text(language, "console.clock_now", now=shown))

    def zone(self) -> ZoneInfo:
        with self.session_factory() as session:
            org = current_org(session)
            return ZoneInfo(org.time_zone if org is not None else "UTC")

    def deliver_posts(self) -> None:
        """Show everything due now. One round of the outbox sends one new post per place (posts
        to one place keep their order) and no edit of a post sent in the same round: rounds
        follow until nothing is left, so nothing waits for the next command to be shown."""
        for _ in range(MAX_ROUNDS):
            if not drain(self.session_factory, PLATFORM, self, self.clock, limit=1000):
                return
        log.warning("console: posts still due after %s rounds; the rest come after the next command", MAX_ROUNDS)

    # --- the Sender seam for the outbox --------------------------------------------------

    def send(self, post: Post) -> str | None:
        where = f"@{post.target.ref}" if post.target.kind == "user" else post.target.ref
        if post.edit_ref is not None:
            # Chat platforms edit the earlier message in place; a terminal can only say so.
            self.write_block(
                self.own_words("console.post_updated", ref=post.edit_ref, where=where),
                post.message,
                channel_id=where,
                message_ref=post.edit_ref,
            )
            return post.edit_ref
        ref = f"console-{post.id}"
        post = self.with_image_file(post)
        self.write_block(
            self.own_words("console.post_to", ref=ref, where=where), post.message, channel_id=where, message_ref=ref
        )
        self.messages[ref] = (None, "\n".join(render_message(post.message, lambda b: 0)))
        return ref

    def with_image_file(self, post: Post) -> Post:
        """A terminal shows no pictures: a stored one is written to a file whose path is printed."""
        image = post.message.image
        if image is None or not image.attachment:
            return post
        with self.session_factory() as session:
            stored = session.scalar(select(Attachment).where(Attachment.key == image.attachment))
            if stored is None:
                log.warning("console: attachment %s is gone", image.attachment)
                return post
            data, filename = stored.data, stored.filename
        folder = Path(tempfile.gettempdir()) / "cxbot"
        try:
            folder.mkdir(exist_ok=True)
            path = folder / filename
            path.write_bytes(data)
        except OSError as exc:
            log.warning("console: cannot write %s: %s", filename, exc.strerror)
            return post
        message = post.message.model_copy(update={"image": image.model_copy(update={"path": str(path)})})
        return replace(post, message=message)

    # --- output --------------------------------------------------------------------------

    def show(self, reply: Reply, audience: str) -> None:
        if reply.visibility is Visibility.EPHEMERAL:
            label = self.own_words("console.to_you")
        else:
            label = self.own_words("console.in_channel", channel=self.channel_id)
        self.write_block(label, reply.message, channel_id=self.channel_id, message_ref=None)

    def write_block(self, label: str, message: Message, *, channel_id: str, message_ref: str | None) -> None:
        def number(button: Button) -> int:
            n = len(self.buttons) + 1
            self.buttons[n] = NumberedButton(button, channel_id, message_ref)
            return n

        self.write(f"{RULE}\n[{label}]")
        self.write("\n".join(render_message(message, number)))

    def write(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def own_words(self, key: str, **values: object) -> str:
        """The console's own words, in the language of the person at the keyboard."""
        return self.app.catalogue.text(self.language_hint(), key, **values)

    def console_help(self) -> str:
        return self.app.catalogue.text(self.language_hint(), "console.help")

    def me(self, session: Session) -> Person | None:
        """The person the console is now."""
        return session.scalar(
            select(Person)
            .join(Identity)
            .where(Identity.platform == PLATFORM, Identity.external_user_id == self.person_key)
        )

    def language_hint(self) -> str:
        with self.session_factory() as session:
            return language_for(self.me(session), current_org(session), self.app.default_language)


def interactive_lines(adapter: ConsoleAdapter) -> Iterable[str]:
    """Lines typed at a terminal, with a prompt and line editing. Before each prompt but the
    first, what the clock posted meanwhile is shown (the first screen is the banner alone)."""
    with contextlib.suppress(ImportError):  # not on every platform
        import readline  # noqa: F401  (history and line editing for input())
    first = True
    while True:
        if not first:
            adapter.deliver_posts()
        first = False
        try:
            yield input(adapter.prompt())
        except EOFError:
            print(file=adapter.out)
            return
        except KeyboardInterrupt:
            print(file=adapter.out)
            return
