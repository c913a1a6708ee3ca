"""``cxbot`` on the command line (Typer).

This is the composition root: settings → engine → migrations → app → adapter. It is the only
module under bot/ that reaches into adapters/, and only inside ``run``, so the core still never
imports a platform library. A user mistake prints one line and exits non-zero, never a traceback.

Only Typer is imported up here: `cxbot --help` must answer at once, so each command imports what
it needs (the database, the scheduler, OpenAI, matplotlib, a platform) when it runs; see
tests/test_startup.py and benchmarks/startup.py.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO, NoReturn
from zoneinfo import ZoneInfo

import typer

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from bot.config import Settings
    from bot.content import Content
    from bot.llm import Classifier, Summariser
    from bot.outbox import Sender
    from bot.scheduler import Leadership
    from bot.services.journey import LoadReport, OrgDefaults
    from bot.services.kpi_import import ImportResult
    from bot.store.models import Org

app = typer.Typer(
    help="cxbot: the CX culture bot. Customer experience is everybody's job.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
journey_app = typer.Typer(help="The customer-journey map file.", no_args_is_help=True)
kpi_app = typer.Typer(help="Customer-journey KPIs.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(journey_app, name="journey")
app.add_typer(kpi_app, name="kpi")

log = logging.getLogger("cxbot")


class AdapterName(StrEnum):
    AUTO = "auto"
    CONSOLE = "console"
    SLACK = "slack"
    DISCORD = "discord"


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"cxbot: {message}", err=True)
    raise typer.Exit(code)


def load_settings() -> Settings:
    from pydantic import ValidationError

    from bot.config import Settings

    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"bad setting {'.'.join(str(p) for p in first['loc'])}: {first['msg']}")


DEFAULT_PORT = 8080
PAYLOAD_LOGGERS = ("slack_sdk", "slack_bolt", "discord", "openai", "httpx", "httpcore", "urllib3", "aiohttp")


def setup_logging(settings: Settings, console: bool = False) -> None:
    """Logs to stderr; for the console bot, to cxbot.log, with only warnings on stderr, so the
    conversation on the terminal stays readable and every log line is still kept."""
    level = settings.log_level.upper()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if console:
        handlers[0].setLevel(logging.WARNING)
        handlers.append(logging.FileHandler("cxbot.log", encoding="utf-8"))
    logging.basicConfig(
        level=level, handlers=handlers, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    # Alembic narrates every migration step at INFO; a user only needs to hear of problems.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # At DEBUG the platform libraries log whole requests: people's words and chat ids, which no
    # log may hold. Our own DEBUG lines stay; theirs start at INFO.
    for library in PAYLOAD_LOGGERS:
        logging.getLogger(library).setLevel(max(logging.getLevelNamesMapping()[level], logging.INFO))


def open_database(settings: Settings) -> tuple[Engine, sessionmaker[Session]]:
    """Connect and bring the schema up to date (a no-op when it already is)."""
    from bot.store.db import DatabaseError, make_engine, make_session_factory, upgrade, wait_for_database

    try:
        engine = make_engine(settings.database_url)
        wait_for_database(engine, settings.database_wait)
        upgrade(engine)
    except DatabaseError as exc:
        fail(str(exc))
    return engine, make_session_factory(engine)


def read_content(settings: Settings) -> Content:
    """The catalogue and the tips from CXBOT_CONTENT_DIR; a broken file is one line and exit 1."""
    from bot.content import load_content
    from bot.domain.tips import TipsFileError
    from bot.i18n import CatalogueError

    try:
        return load_content(settings.content_dir)
    except (CatalogueError, TipsFileError) as exc:
        fail(str(exc))


def load_chart_library() -> None:
    """A long-running process imports matplotlib at start, not inside its first digest's transaction."""
    from bot.services.chart import load_matplotlib

    load_matplotlib()


def classifier_from(settings: Settings) -> Classifier:
    from bot.llm import build_classifier
    from bot.store.db import safe_url

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if key and settings.openai_base_url:
        log.info("openai: API at %s", safe_url(settings.openai_base_url))
    return build_classifier(key, settings.openai_base_url, settings.openai_model, settings.openai_timeout)


def summariser_from(settings: Settings) -> Summariser:
    from bot.llm import build_summariser

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return build_summariser(key, settings.openai_base_url, settings.openai_model, max(settings.openai_timeout, 20.0))


def warehouse_from(settings: Settings) -> Engine | None:
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from bot.services.warehouse import warehouse_engine
    from bot.services.warehouse_guard import WarehouseRefused, check_warehouse
    from bot.store.db import safe_url

    if settings.warehouse_url is None:
        return None
    url = settings.warehouse_url.get_secret_value()
    try:
        engine = warehouse_engine(url)
    except (ArgumentError, NoSuchModuleError, ValueError):
        fail(f"CXBOT_WAREHOUSE_URL {safe_url(url)!r} is not a database URL SQLAlchemy can use")
    except ImportError as exc:  # a dialect SQLAlchemy knows, whose driver is not installed (mysql://)
        fail(f"CXBOT_WAREHOUSE_URL {safe_url(url)!r} needs the database driver {exc.name or 'it names'}, not installed")
    try:
        check_warehouse(engine, settings.database_url)
    except WarehouseRefused as exc:
        fail(f"CXBOT_WAREHOUSE_URL {safe_url(url)!r} refused: {exc}")
    return engine


def check_schedules(settings: Settings, time_zone: str) -> None:
    """A malformed crontab is a start-up error naming its setting, not a silent weekly miss."""
    from apscheduler.triggers.cron import CronTrigger

    for name, value in (
        ("CXBOT_TIP_SCHEDULE", settings.tip_schedule),
        ("CXBOT_DIGEST_SCHEDULE", settings.digest_schedule),
    ):
        try:
            CronTrigger.from_crontab(value, timezone=time_zone)
        except ValueError as exc:  # APScheduler's word for a malformed crontab
            fail(f"bad {name} {value!r}: {exc}")


def org_defaults(settings: Settings) -> OrgDefaults:
    from bot.services.journey import OrgDefaults

    return OrgDefaults(time_zone=settings.time_zone, language=settings.language)


def load_journey_into(
    session_factory: sessionmaker[Session],
    settings: Settings,
    content: Content,
    file: Path,
    platforms: tuple[str, ...] = (),
) -> LoadReport:
    from bot.app import utc_now
    from bot.services.setup import apply_journey, read_journey

    journey = read_journey(file)
    with session_factory.begin() as session:
        _, report = apply_journey(session, journey, utc_now(), content.catalogue, platforms, org_defaults(settings))
    return report


def load_demo(session_factory: sessionmaker[Session], settings: Settings, content: Content) -> None:
    """The example journey map, then a few days of issues (each capability adds its demo data)."""
    from bot.app import utc_now
    from bot.services.demo import (
        last_post_id,
        mark_demo_posts_as_history,
        seed_demo_answers,
        seed_demo_issues,
        seed_demo_observations,
        subscribe_demo_channel,
    )
    from bot.services.journey import current_org

    example = settings.content_dir / "journey.example.yaml"
    with session_factory() as session:
        first_post = last_post_id(session)
    load_journey_into(session_factory, settings, content, example, ("console",))
    with session_factory.begin() as session:
        org = current_org(session)
        assert org is not None
        seed_demo_issues(session, org, content.catalogue, utc_now())
        seed_demo_observations(session, org, content.catalogue, utc_now())
        seed_demo_answers(session, org, utc_now())
        subscribe_demo_channel(session, org, utc_now())
        # Setting the demo up (the admins' "journey loaded" notices too) is history on the
        # console, not news: its first screen is the user's own. Slack and Discord admins still
        # hear that the journey was loaded.
        mark_demo_posts_as_history(session, first_post, utc_now(), console_only=True)


@app.command()
def run(
    adapter: Annotated[
        AdapterName,
        typer.Option(help="Where to talk: auto picks Slack or Discord when their tokens are set, else the console."),
    ] = AdapterName.AUTO,
    demo: Annotated[bool, typer.Option("--demo", help="Load the example journey map and demo data first.")] = False,
    as_person: Annotated[
        str | None, typer.Option("--as", help="Console: the person (key from the journey map) you are.")
    ] = None,
    no_clock: Annotated[bool, typer.Option("--no-clock", help="Do not run the scheduler in this process.")] = False,
    channel: Annotated[str, typer.Option(help="Console: the channel you type in.")] = "#cx",
    slack_http: Annotated[
        bool, typer.Option("--slack-http", help="Slack: serve /slack/events over HTTP instead of Socket Mode.")
    ] = False,
    port: Annotated[
        int | None,
        typer.Option(
            help="The web server's port (health, metrics, Slack's HTTP events); default: PORT, else 8080.",
            min=1,
            max=65535,
        ),
    ] = None,
    lang: Annotated[
        str | None, typer.Option("--lang", help="Console: sv or en, the language you are answered in (as /cx lang).")
    ] = None,
) -> None:
    """Run the bot: adapters and (unless --no-clock) the scheduler."""
    from bot.app import CxApp
    from bot.services.journey import current_org, ensure_platform_presence
    from bot.services.setup import JourneyFileError

    if lang is not None and lang not in ("sv", "en"):
        fail(f"--lang must be sv or en, not {lang!r}")
    settings = load_settings()
    chosen = adapter
    if chosen is AdapterName.AUTO:
        chosen = (
            AdapterName.SLACK
            if settings.slack_bot_token
            else AdapterName.DISCORD
            if settings.discord_token
            else AdapterName.CONSOLE
        )
    if adapter is AdapterName.AUTO and settings.slack_bot_token and settings.discord_token:
        if lang is not None:
            fail("--lang is for the console; in Slack and Discord each person chooses with /cx lang")
        run_chat(settings, slack=True, discord=True, demo=demo, no_clock=no_clock, http=slack_http, port=port)
        return
    if lang is not None and chosen is not AdapterName.CONSOLE:
        fail("--lang is for the console; in Slack and Discord each person chooses with /cx lang")
    if chosen in (AdapterName.SLACK, AdapterName.DISCORD):
        slack, discord = chosen is AdapterName.SLACK, chosen is AdapterName.DISCORD
        run_chat(settings, slack=slack, discord=discord, demo=demo, no_clock=no_clock, http=slack_http, port=port)
        return
    interactive = sys.stdin.isatty()
    setup_logging(settings, console=True)
    content = read_content(settings)
    load_chart_library()
    engine, session_factory = open_database(settings)
    from adapters.console import ConsoleAdapter, ConsoleClock, interactive_lines  # composition root

    clock_now = ConsoleClock()
    try:
        if demo:
            load_demo(session_factory, settings, content)
        elif settings.journey_file is not None:
            # The file is the source of truth: every start brings the database in line with it.
            load_journey_into(session_factory, settings, content, settings.journey_file, ("console",))
        with session_factory.begin() as session:
            org = current_org(session)
            if org is None:
                fail("no journey map is loaded; run `cxbot journey load FILE` or add --demo")
            ensure_platform_presence(session, org, "console")
            person = pick_console_person(session, org.id, as_person)
            if lang is not None:  # what /cx lang would do, before the first command
                choose_language(session, org.id, person, lang)
            language, time_zone = org.language, org.time_zone
        cx = CxApp(
            session_factory,
            clock=clock_now,
            content=content,
            default_language=language or settings.language,
            tip_order=settings.tip_order,
            classifier=classifier_from(settings),
            capture_emoji=settings.capture_emoji_set,
            # A terminal waits for its answer anyway: follow-up work (a journey picture, a
            # classification) is done before the next prompt, so what it posts shows at once.
            run_later=lambda task: task(),
        )
    except JourneyFileError as exc:
        fail(str(exc))
    console = ConsoleAdapter(
        cx,
        session_factory,
        person,
        echo=not interactive,
        channel_id=channel,
        clock=clock_now,
        on_tick=lambda: run_clock_jobs(session_factory, clock_now, settings, content),
    )
    scheduler = None
    if not no_clock:
        # The week's tip and digest are not caught up at start: they come when the user runs the
        # clock (/clock), not in the middle of their first command.
        scheduler, leadership = start_scheduler(
            engine, session_factory, clock_now, time_zone, settings, content, blocking=False, catch_up_at_start=False
        )
    typer.echo(console.banner())
    try:
        code = console.run(interactive_lines(console) if interactive else sys.stdin)
    finally:
        cx.close()
        if scheduler is not None:
            scheduler.shutdown(wait=True)  # a job still running finishes, and what it posted is shown
            leadership.release()
            console.deliver_posts()
    raise typer.Exit(code)


def run_chat(
    settings: Settings, *, slack: bool, discord: bool, demo: bool, no_clock: bool, http: bool, port: int | None
) -> None:
    """Slack (Socket Mode, or HTTP with --slack-http) and/or Discord in one process, each with
    its outbox drain, the web server (health, metrics, Slack's HTTP events), and unless
    --no-clock the scheduler too. SIGTERM: the web server stops accepting and finishes what is
    in flight, the drains stop after their current post, the platforms close; exit 0."""
    import signal
    import threading

    from bot.app import CxApp, utc_now
    from bot.outbox import drain_until
    from bot.services.journey import current_org
    from bot.services.setup import JourneyFileError

    slack_token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else None
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    discord_token = settings.discord_token.get_secret_value() if settings.discord_token else None
    if slack and not slack_token:
        fail("SLACK_BOT_TOKEN is not set (xoxb-…; see README, Slack setup)")
    if slack and http and not secret:
        fail("HTTP mode needs SLACK_SIGNING_SECRET to verify that requests come from Slack")
    if slack and not http and not app_token:
        fail("Socket Mode needs SLACK_APP_TOKEN (xapp-…); or run with --slack-http")
    if discord and not discord_token:
        fail("DISCORD_TOKEN is not set (the bot's token; see README, Discord setup)")
    setup_logging(settings)
    content = read_content(settings)
    load_chart_library()
    engine, session_factory = open_database(settings)
    try:
        if demo:
            load_demo(session_factory, settings, content)
        elif settings.journey_file is not None:
            load_journey_into(session_factory, settings, content, settings.journey_file, ())
    except JourneyFileError as exc:
        fail(str(exc))
    with session_factory() as session:
        org = current_org(session)
        if org is None:
            fail("no journey map is loaded; run `cxbot journey load FILE` or set CXBOT_JOURNEY_FILE")
        language, time_zone = org.language, org.time_zone
    cx = CxApp(
        session_factory,
        content=content,
        default_language=language,
        tip_order=settings.tip_order,
        classifier=classifier_from(settings),
        capture_emoji=settings.capture_emoji_set,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    closers: list[Callable[[], object]] = []
    senders: dict[str, Sender] = {}
    drains: list[threading.Thread] = []
    scheduler = leadership = web = None
    web_port = port or settings.port or DEFAULT_PORT
    platforms: dict[str, Callable[[], bool]] = {}
    slack_app = None
    try:
        if slack:
            from adapters.slack.bot import SlackBot, make_client  # composition root
            from adapters.slack.sender import SlackSender
            from adapters.slack.socket_mode import SocketModeRefused, connect_socket_mode

            client = make_client(slack_token or "", settings.slack_api_base_url)
            bot = SlackBot(cx, client, signing_secret=secret, capture_emoji=settings.capture_emoji_set)
            closers.append(bot.close)
            if http:
                slack_app = bot.app
                platforms["slack"] = lambda: True  # nothing to keep connected: Slack calls us
            else:
                try:
                    handler = connect_socket_mode(bot.app, app_token or "")
                except SocketModeRefused as exc:  # a refused or revoked token: one line, as for Discord
                    fail(f"Slack: {exc}")
                closers.append(handler.close)
                platforms["slack"] = handler.client.is_connected
            sender_client = make_client(slack_token or "", settings.slack_api_base_url, retries=False)
            senders["slack"] = SlackSender(sender_client, session_factory)
            if settings.slack_api_base_url:
                from bot.store.db import safe_url

                log.info("slack: API at %s", safe_url(settings.slack_api_base_url))
            typer.echo(
                f"cxbot: Slack adapter running ({'HTTP on port ' + str(web_port) if http else 'Socket Mode'}).",
                err=True,
            )
        if discord:
            from adapters.discord.bot import CxDiscord, command_help
            from adapters.discord.runtime import point_at, start_in_thread
            from adapters.discord.sender import DiscordSender

            discord_bot = CxDiscord(
                cx,
                guild_ids=settings.discord_guild_id_list,
                admin_role_ids=settings.discord_admin_role_id_list,
                capture_emoji=settings.capture_emoji_set,
                command_help=command_help(cx, language),
            )
            try:
                point_at(settings.discord_api_base_url, settings.discord_gateway_url)
                running = start_in_thread(discord_bot, discord_token or "")
            except Exception as exc:  # a bad token, an unreachable Discord: one line
                fail(f"Discord: could not log in: {exc}")
            closers.append(running.stop)
            platforms["discord"] = lambda: discord_bot.is_ready() and not discord_bot.is_closed()
            senders["discord"] = DiscordSender(discord_bot, session_factory)
            typer.echo("cxbot: Discord adapter running.", err=True)
        if not no_clock:
            scheduler, leadership = start_scheduler(
                engine, session_factory, utc_now, time_zone, settings, content, blocking=False
            )
        from adapters.web.runtime import start_web  # composition root

        try:
            web = start_web(settings, engine, web_port, platforms=platforms, slack_app=slack_app)
        except OSError as exc:
            fail(f"cannot serve on port {web_port}: {exc}")
        typer.echo(f"cxbot: web server on port {web.port} (/healthz, /readyz, /metrics).", err=True)
        drains += [
            threading.Thread(
                target=drain_until,
                args=(session_factory, name, sender, utc_now, stop),
                name=f"{name}-drain",
                daemon=True,
            )
            for name, sender in senders.items()
        ]
        for drain_thread in drains:
            drain_thread.start()
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if web is not None:
            web.stop()  # first: no new requests, and those in flight finish
        for drain_thread in drains:
            drain_thread.join(10)
        for close in reversed(closers):
            try:
                close()
            except Exception:
                log.warning("shutdown: a closer failed", exc_info=True)
        cx.close()
        if scheduler is not None and leadership is not None:
            scheduler.shutdown(wait=False)
            leadership.release()


def choose_language(session: Session, org_id: int, key: str, language: str) -> None:
    """``--lang``: the console person's own choice of language, as ``/cx lang`` stores it."""
    from sqlalchemy import select

    from bot.store.models import Person

    person = session.scalar(select(Person).where(Person.org_id == org_id, Person.key == key))
    if person is not None:
        person.chosen_language = language


def pick_console_person(session: Session, org_id: int, wanted: str | None) -> str:
    from sqlalchemy import select

    from bot.store.models import Person

    people = session.scalars(
        select(Person)
        .where(Person.org_id == org_id, Person.archived_at.is_(None))
        .order_by(Person.is_admin.desc(), Person.key)
    ).all()
    if not people:
        fail("the journey map has no people; add some under `people:`")
    if wanted is None:
        return people[0].key
    if wanted not in {p.key for p in people}:
        keys = ", ".join(sorted(p.key for p in people))
        fail(f"there is no person {wanted!r} in the journey map; choose one of: {keys}")
    return wanted


@app.command()
def clock() -> None:
    """Run the scheduler alone (weekly tip, weekly digest, SLA sweep)."""
    from bot.app import utc_now
    from bot.services.journey import current_org

    settings = load_settings()
    setup_logging(settings)
    # Read the content now: a broken tips file is a start-up error, not a Monday-morning one.
    content = read_content(settings)
    load_chart_library()
    engine, session_factory = open_database(settings)
    with session_factory() as session:
        org = current_org(session)
        time_zone = org.time_zone if org is not None else settings.time_zone
    log.info("clock: starting (time zone %s)", time_zone)
    try:
        _, leadership = start_scheduler(engine, session_factory, utc_now, time_zone, settings, content, blocking=True)
    except (KeyboardInterrupt, SystemExit):
        return
    leadership.release()


def start_scheduler(
    engine: Engine,
    session_factory: sessionmaker[Session],
    clock: Callable[[], datetime],
    time_zone: str,
    settings: Settings,
    content: Content,
    *,
    blocking: bool,
    catch_up_at_start: bool = True,
) -> tuple[BaseScheduler, Leadership]:
    from bot.scheduler import build_scheduler

    check_schedules(settings, time_zone)
    scheduler, leadership = build_scheduler(
        engine,
        session_factory,
        clock,
        time_zone,
        blocking=blocking,
        catch_up_at_start=catch_up_at_start,
        tip_schedule=settings.tip_schedule,
        tip_order=settings.tip_order,
        content=content,
        classifier=classifier_from(settings),
        digest_schedule=settings.digest_schedule,
        summariser=summariser_from(settings),
        warehouse=warehouse_from(settings),
    )
    scheduler.start()  # returns only when a blocking scheduler stops
    return scheduler, leadership


def run_clock_jobs(
    session_factory: sessionmaker[Session], clock: Callable[[], datetime], settings: Settings, content: Content
) -> None:
    """What the clock would do at this moment: the SLA sweep, and the weekly tip and digest if due."""
    from apscheduler.triggers.cron import CronTrigger

    from bot.scheduler import due_this_week, run_sla_sweep, run_weekly_digest, run_weekly_tips
    from bot.services.journey import current_org
    from bot.services.observations import classify_pending

    run_sla_sweep(session_factory, clock, content)
    classify_pending(session_factory, classifier_from(settings), clock)
    with session_factory() as session:
        org = current_org(session)
        zone = ZoneInfo(org.time_zone if org is not None else settings.time_zone)
    trigger = CronTrigger.from_crontab(settings.tip_schedule, timezone=zone)
    if due_this_week(trigger, clock(), zone):
        run_weekly_tips(session_factory, clock, settings.tip_order, content)
    if due_this_week(CronTrigger.from_crontab(settings.digest_schedule, timezone=zone), clock(), zone):
        run_weekly_digest(session_factory, clock, content, summariser_from(settings), warehouse_from(settings))


@app.command("demo")
def demo_command() -> None:
    """Load the example journey map and demo data into the database."""
    from bot.services.setup import JourneyFileError
    from bot.store.db import safe_url

    settings = load_settings()
    setup_logging(settings)
    content = read_content(settings)
    _, session_factory = open_database(settings)
    try:
        load_demo(session_factory, settings, content)
    except JourneyFileError as exc:
        fail(str(exc))
    typer.echo(f"Demo data loaded into {safe_url(settings.database_url)}.")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the latest version."""
    settings = load_settings()
    setup_logging(settings)
    open_database(settings)
    typer.echo("Database schema is up to date.")


@journey_app.command("validate")
def journey_validate(file: Annotated[Path, typer.Argument(help="The journey map YAML file.")]) -> None:
    """Check a journey map file; every problem is shown with its line."""
    from bot.domain.journey_map import load_journey_file

    result = load_journey_file(str(file))
    for problem in result.problems:
        typer.echo(str(problem), err=problem.severity == "error")
    if result.journey is None:
        raise typer.Exit(1)
    journey = result.journey
    touchpoints = sum(len(s.touchpoints) for s in journey.stages)
    typer.echo(
        f"{file}: OK: {len(journey.stages)} stages, {touchpoints} touchpoints, "
        f"{len(journey.teams)} teams, {len(journey.people)} people, {len(result.warnings)} warning(s)"
    )


@journey_app.command("picture")
def journey_picture(
    out: Annotated[Path, typer.Option("--out", help="The PNG file to write.")],
    week: Annotated[str | None, typer.Option(help="An ISO week like 2026-W47; default: the last complete one.")] = None,
    stage: Annotated[str | None, typer.Option(help="Only this stage (key or name); default: the whole map.")] = None,
    language: Annotated[str | None, typer.Option(help="sv or en; default: the org's language.")] = None,
) -> None:
    """Draw the journey map as a picture: each touchpoint's health, owner, issues and observations."""
    from sqlalchemy import select

    from bot.app import utc_now
    from bot.services.journey import active_stages, current_org, find_stage
    from bot.services.journey_picture import alt_text, picture_for
    from bot.services.picture_delivery import store_picture, words
    from bot.store.models import Attachment

    _, content, session_factory, org = open_loaded(language)
    chosen = week_option(week, org) if week else None
    with session_factory.begin() as session:
        org = current_org(session)
        assert org is not None
        lang = language or org.language
        key = None
        if stage is not None:
            found = find_stage(active_stages(session, org), stage)
            if found is None:
                fail(f"there is no stage {stage!r}")
            key = found.key
        picture = picture_for(session, org, lang, utc_now(), week=chosen, stage=key)
        stored = store_picture(session, picture, content.catalogue, utc_now())
        png = session.scalar(select(Attachment.data).where(Attachment.key == stored))
    try:
        out.write_bytes(png)
    except OSError as exc:
        fail(f"{out}: cannot write the picture: {exc.strerror}")
    alt = alt_text(picture, words(content.catalogue, lang))
    typer.echo(content.catalogue.text(lang, "picture.cli_written", path=out, size=len(png), alt=alt))


@journey_app.command("load")
def journey_load(file: Annotated[Path, typer.Argument(help="The journey map YAML file.")]) -> None:
    """Load a journey map into the database (idempotent; removed touchpoints are archived)."""
    from bot.app import utc_now
    from bot.services.setup import JourneyFileError, apply_journey, load_summary, read_journey

    settings = load_settings()
    setup_logging(settings)
    try:
        journey = read_journey(file)
    except JourneyFileError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(1) from None
    content = read_content(settings)
    _, session_factory = open_database(settings)
    with session_factory.begin() as session:
        org, report = apply_journey(session, journey, utc_now(), content.catalogue, (), org_defaults(settings))
        summary = load_summary(content.catalogue, org.language, org.name, report)
    typer.echo(f"{file}: {summary}")


@kpi_app.command("import")
def kpi_import(
    file: Annotated[Path, typer.Argument(help="A CSV file.")],
    aggregates: Annotated[
        bool, typer.Option("--aggregates", help="week,metric,stage,value[,n] instead of raw answers.")
    ] = False,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Import the valid rows even when some are not.")
    ] = False,
) -> None:
    """Import survey answers (answered_at,metric,score,stage[,touchpoint][,id]) or aggregated figures."""
    from bot.app import utc_now
    from bot.services.journey import current_org
    from bot.services.kpi_import import ImportFileError, import_aggregates

    settings = load_settings()
    setup_logging(settings)
    try:
        # Read as it is imported, never whole: an endless line is refused at its first 64 KiB.
        raw = file.open("rb")
    except OSError as exc:
        fail(f"{file}: cannot read the file: {exc.strerror}")
    _, session_factory = open_database(settings)
    with raw, session_factory.begin() as session:
        org = current_org(session)
        if org is None:
            fail("no journey map is loaded; run `cxbot journey load FILE` first")
        try:
            if aggregates:
                result = import_aggregates(session, org, raw, file.name, utc_now(), skip_invalid=skip_invalid)
            else:
                result = _import_with_progress(session, org, raw, file.name, skip_invalid)
        except ImportFileError as exc:
            fail(f"{file}:{exc.line}: {exc.reason}")
        if result.refused:
            session.rollback()
    for error in result.errors:
        typer.echo(f"{file}:{error.line}: {error.reason}", err=True)
    if result.refused:
        fail(f"{len(result.errors)} invalid row(s); nothing was imported (use --skip-invalid to import the rest)")
    skipped = f", {len(result.errors)} invalid row(s) skipped" if result.errors else ""
    if not aggregates:
        typer.echo(f"{file}: imported {result.imported} answers ({result.already_there} already there){skipped}.")
        return
    replaced = f", {result.replaced} of them replacing an earlier figure for their week" if result.replaced else ""
    typer.echo(f"{file}: imported {result.imported} figures{replaced}{skipped}.")
    for hidden in result.hidden:
        typer.echo(
            f"{file}:{hidden.line}: stored but not shown: {hidden.answers} survey answers give {hidden.stage}'s "
            f"{hidden.metric} for {hidden.week}, and answers take precedence over an imported figure"
        )


def _import_with_progress(session: Session, org: Org, raw: BinaryIO, name: str, skip_invalid: bool) -> ImportResult:
    from bot.services.kpi_import import import_answers

    if not sys.stderr.isatty():
        return import_answers(session, org, raw, name, skip_invalid=skip_invalid)
    from rich.progress import Progress

    lines = sum(chunk.count(b"\n") for chunk in iter(lambda: raw.read(1 << 20), b""))
    raw.seek(0)
    with Progress(transient=True) as progress:
        task = progress.add_task("importing", total=lines)
        return import_answers(
            session, org, raw, name, skip_invalid=skip_invalid, progress=lambda n: progress.advance(task, n)
        )


@kpi_app.command("pull")
def kpi_pull(
    week: Annotated[str | None, typer.Option(help="An ISO week like 2026-W47; default: the last complete one.")] = None,
) -> None:
    """Run the journey file's warehouse queries for a week now (the clock does it weekly)."""
    from bot.app import utc_now
    from bot.services.warehouse import pull_warehouse

    settings = load_settings()
    setup_logging(settings)
    warehouse = warehouse_from(settings)
    if warehouse is None:
        fail("CXBOT_WAREHOUSE_URL is not set; the queries have nowhere to run")
    _, session_factory = open_database(settings)
    org = require_loaded_org(session_factory)
    chosen = week_option(week, org)
    report = pull_warehouse(session_factory, warehouse, chosen, utc_now)
    for problem in report.failed:
        typer.echo(f"{chosen}: {problem}", err=True)
    typer.echo(f"{chosen}: stored {len(report.stored)} figure(s), {len(report.failed)} query(ies) failed.")
    if report.failed:
        raise typer.Exit(1)


def open_loaded(language: str | None) -> tuple[Settings, Content, sessionmaker[Session], Org]:
    """What a command on the loaded journey needs; a bad --language or no journey ends it politely."""
    settings = load_settings()
    setup_logging(settings)
    content = read_content(settings)
    if language not in (None, "sv", "en"):
        fail(f"--language must be sv or en, not {language!r}")
    _, session_factory = open_database(settings)
    return settings, content, session_factory, require_loaded_org(session_factory)


def require_loaded_org(session_factory: sessionmaker[Session]) -> Org:
    from bot.services.journey import current_org

    with session_factory() as session:
        org = current_org(session)
        if org is None:
            fail("no journey map is loaded; run `cxbot journey load FILE` first")
        session.expunge(org)
        return org


def week_option(week: str | None, org: Org) -> str:
    from bot.app import utc_now
    from bot.domain.weeks import BadWeek, parse_week
    from bot.services.kpi import last_complete_week

    zone = ZoneInfo(org.time_zone)
    if week is None:
        return last_complete_week(utc_now(), zone)
    try:
        return parse_week(week)
    except BadWeek as exc:
        fail(f"--week: {exc}")


@app.command("digest")
def digest_command(
    week: Annotated[str | None, typer.Option(help="An ISO week like 2026-W47; default: the last complete one.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the digest's data as JSON (schema in README).")
    ] = False,
    post: Annotated[bool, typer.Option("--post", help="Queue it to the channels subscribed to the digest.")] = False,
    chart: Annotated[Path | None, typer.Option(help="Also write the trend chart to this PNG file.")] = None,
    language: Annotated[str | None, typer.Option(help="sv or en; default: the org's language.")] = None,
) -> None:
    """Print a week's CX digest (rendered, or as JSON); --post queues it to subscribed channels."""
    from bot.app import utc_now
    from bot.services.digest import build_digest, digest_chart, digest_message, post_digest
    from bot.services.journey import current_org

    settings, content, session_factory, org = open_loaded(language)
    chosen = week_option(week, org)
    with session_factory.begin() as session:
        org = current_org(session)
        assert org is not None
        digest = build_digest(
            session,
            org,
            chosen,
            catalogue=content.catalogue,
            tips=content.tips,
            now=utc_now(),
            summariser=summariser_from(settings),
        )
        lang = language or org.language
        if chart is not None:
            png = digest_chart(digest, lang)
            if png is None:
                typer.echo(f"{chosen}: no KPI figures in the last eight weeks, so no chart was drawn.", err=True)
            else:
                try:
                    chart.write_bytes(png)
                except OSError as exc:
                    fail(f"{chart}: cannot write the chart: {exc.strerror}")
        if as_json:
            typer.echo(json.dumps(digest.as_json(), ensure_ascii=False, indent=2))
        else:
            typer.echo(digest_message(content.catalogue, lang, digest).plain_text())
        if post:
            queued = post_digest(session, org, digest, content.catalogue, utc_now())
            typer.echo(
                f"{chosen}: queued for {queued} channel(s) (a channel that already has it is skipped).", err=True
            )


def database_errors() -> tuple[type[Exception], ...]:
    """SQLAlchemy's error class if SQLAlchemy was loaded: a command that never opened the
    database cannot have raised it, and `--help` must not pay for importing SQLAlchemy."""
    loaded = sys.modules.get("sqlalchemy.exc")
    return (loaded.SQLAlchemyError,) if loaded is not None else ()


def main() -> None:
    try:
        app()
    except database_errors() as exc:
        # The database went away or refused mid-command: one line for the user, the rest logged.
        log.exception("database error")
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        typer.echo(f"cxbot: database error: {reason}", err=True)
        sys.exit(1)
