"""The ten tips: the files, the choice, the weekly post (once per channel and week), engagement."""

from __future__ import annotations

import shutil
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.app import CxApp
from bot.config import REPO_CONTENT
from bot.domain.tips import LABELS, MAX_BODY_WORDS, Order, Signal, TipsFileError, choose_tip, load_tips, parse_tips
from bot.domain.weeks import iso_week, parse_week, previous_week, week_start
from bot.messages import Reaction, ThreadReply
from bot.outbox import drain
from bot.scheduler import due_this_week, run_weekly_tips
from bot.store.models import Outbox, TipEngagement, TipPost
from tests.conftest import NOW, Clock
from tests.test_console import run_cxbot
from tests.test_issues import say

STOCKHOLM = ZoneInfo("Europe/Stockholm")


# --- the files ---------------------------------------------------------------------------------


def test_the_shipped_tips_are_complete_in_both_languages() -> None:
    tips = load_tips(REPO_CONTENT / "tips")
    assert set(tips) == {"sv", "en"}
    for language, by_number in tips.items():
        assert sorted(by_number) == list(range(1, 11))
        for tip in by_number.values():
            assert len(tip.body.split()) <= MAX_BODY_WORDS
            assert tip.question.endswith("?"), (language, tip.number)
            assert tip.title and tip.action
    assert tips["en"][4].title == "Give every touchpoint an owner"
    assert tips["sv"][7].title == "Gör det tryggt att misslyckas"
    assert tips["en"][10].title == "Measure to change"


def one_tip(number: int, body: str = "A short body.", language: str = "en") -> str:
    discuss, try_label = LABELS[language]
    return f"## {number}. Title {number}\n{body}\n\n{discuss} Why?\n\n{try_label} Do it.\n\n"


def ten(**overrides: str) -> str:
    return "# Tips\n\n" + "".join(overrides.get(str(n), one_tip(n)) for n in range(1, 11))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# nothing here\n", "t.md:1: no tips found"),
        (ten(**{"3": "## 3. No labels\nJust a body.\n\n"}), "t.md:17: tip 3: needs exactly one"),
        (ten(**{"2": one_tip(2, "word " * 121)}), "t.md:10: tip 2: the body has 121 words; at most 120"),
        (ten(**{"5": one_tip(4)}), "t.md:31: tip 4: tip 4 appears twice"),
        (ten().replace(one_tip(7), ""), "t.md:1: expected tips 1 to 10, found 1, 2, 3, 4, 5, 6, 8, 9, 10"),
        (
            ten(**{"9": "## 9. Backwards\nBody.\n\n**Try this week:** Do.\n\n**Discuss:** Why?\n\n"}),
            "t.md:59: tip 9: '**Discuss:**' must come before '**Try this week:**'",
        ),
        (ten(**{"1": "## 1. Empty\n\n**Discuss:** Why?\n\n**Try this week:** Do.\n\n"}), "t.md:3: tip 1: the body"),
    ],
)
def test_a_broken_tips_file_names_the_line_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(TipsFileError) as caught:
        parse_tips(text, "en", "t.md")
    assert str(caught.value).startswith(message)


def test_missing_and_undecodable_tips_files(tmp_path: Path) -> None:
    with pytest.raises(TipsFileError, match=r"sv\.md: cannot read the tips file"):
        load_tips(tmp_path)
    (tmp_path / "sv.md").write_bytes(b"## 1. \xff\n")
    with pytest.raises(TipsFileError, match=r"sv\.md: the tips file is not valid UTF-8"):
        load_tips(tmp_path, ["sv"])


def test_a_broken_tips_file_stops_the_bot_at_start(tmp_path: Path, bare_engine: Engine) -> None:
    content = tmp_path / "content"
    shutil.copytree(REPO_CONTENT, content)
    (content / "tips" / "en.md").write_text(ten(**{"6": ""}), encoding="utf-8")
    result = run_cxbot(
        bare_engine,
        tmp_path,
        "/cx tip\n",
        "run",
        "--adapter",
        "console",
        "--demo",
        env={"CXBOT_CONTENT_DIR": str(content)},
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == f"cxbot: {content / 'tips' / 'en.md'}:1: expected tips 1 to 10, found 1, 2, 3, 4, 5, 7, 8, 9, 10"
    )


# --- weeks -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "week"),
    [
        (datetime(2025, 12, 29, 12, tzinfo=UTC), "2026-W01"),
        (datetime(2026, 12, 28, 12, tzinfo=UTC), "2026-W53"),
        (datetime(2027, 1, 3, 12, tzinfo=UTC), "2026-W53"),
        (datetime(2027, 1, 4, 12, tzinfo=UTC), "2027-W01"),
        # Midnight in Stockholm, not in UTC, starts the week.
        (datetime(2026, 11, 29, 22, 59, tzinfo=UTC), "2026-W48"),
        (datetime(2026, 11, 29, 23, 0, tzinfo=UTC), "2026-W49"),
        # The night the clocks go back (Sunday 25 October 2026).
        (datetime(2026, 10, 25, 22, 59, tzinfo=UTC), "2026-W43"),
        (datetime(2026, 10, 25, 23, 0, tzinfo=UTC), "2026-W44"),
    ],
)
def test_iso_weeks_in_the_org_time_zone(moment: datetime, week: str) -> None:
    assert iso_week(moment, STOCKHOLM) == week


def test_parse_weeks() -> None:
    assert parse_week("2026-W53") == "2026-W53"
    assert parse_week(" 2026-w5 ") == "2026-W05"
    assert week_start("2026-W53", STOCKHOLM) == datetime(2026, 12, 28, tzinfo=STOCKHOLM)
    assert previous_week("2026-W01", STOCKHOLM) == "2025-W52"
    assert previous_week("2027-W01", STOCKHOLM) == "2026-W53"
    for bad in ("2026-W54", "2027-W53", "2026-W00", "2026W47", "week 47", ""):
        with pytest.raises(ValueError):
            parse_week(bad)


# --- choosing ----------------------------------------------------------------------------------


def test_rotation_uses_every_tip_once_per_cycle() -> None:
    used: list[int] = []
    for _ in range(10):
        choice = choose_tip(used, [], Order.ROTATION)
        assert not choice.new_cycle
        used.append(choice.number)
    assert used == list(range(1, 11))
    restart = choose_tip(used, [], Order.ROTATION)
    assert (restart.number, restart.new_cycle) == (1, True)


def test_adaptive_follows_the_weakest_signal_among_unused_tips() -> None:
    assert choose_tip([], [Signal.UNOWNED_TOUCHPOINTS], Order.ADAPTIVE).number == 4
    assert choose_tip([4], [Signal.UNOWNED_TOUCHPOINTS], Order.ADAPTIVE).number == 1
    assert choose_tip([4, 1], [Signal.UNOWNED_TOUCHPOINTS, Signal.NOBODY_SPEAKING_UP], Order.ADAPTIVE).number == 8
    fallback = choose_tip([4, 1], [Signal.UNOWNED_TOUCHPOINTS], Order.ADAPTIVE)
    assert (fallback.number, fallback.signal) == (2, None)
    assert choose_tip([], [Signal.UNOWNED_TOUCHPOINTS], Order.ROTATION).number == 1  # rotation ignores signals
    every = [choose_tip(list(range(1, 11)), [Signal.FALLING_KPI], Order.ADAPTIVE)]
    assert (every[0].number, every[0].new_cycle) == (10, True)


def test_adaptive_never_repeats_within_a_cycle() -> None:
    used: list[int] = []
    for _ in range(10):
        used.append(choose_tip(used, list(Signal), Order.ADAPTIVE).number)
    assert sorted(used) == list(range(1, 11))


# --- the weekly post ---------------------------------------------------------------------------


def subscribe(app: CxApp, channel: str = "#cx") -> None:
    from bot.messages import Invocation

    reply = app.dispatch(Invocation("console", "console", "erik", channel, "/cx subscribe tips"))
    assert reply.message.text is not None and reply.message.text.startswith(f"{channel} får nu")


def posts(session_factory: sessionmaker[Session]) -> list[tuple[str, str, int, str | None]]:
    with session_factory() as session:
        return list(
            session.execute(
                select(TipPost.channel_ref, TipPost.iso_week, TipPost.number, TipPost.signal).order_by(TipPost.id)
            ).all()
        )


def monday_nine(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=STOCKHOLM).replace(hour=9).astimezone(UTC)


def test_the_weekly_tip_is_posted_once_per_channel_and_week(
    app: CxApp, loaded: sessionmaker[Session], clock: Clock
) -> None:
    subscribe(app, "#cx")
    subscribe(app, "#ledning")
    clock.now = monday_nine(date(2026, 11, 30))
    assert run_weekly_tips(loaded, clock, "adaptive") == 2
    assert run_weekly_tips(loaded, clock, "adaptive") == 0  # a rerun
    clock.now += timedelta(days=2)  # a restart on Wednesday
    assert run_weekly_tips(loaded, clock, "adaptive") == 0
    rows = posts(loaded)
    # The example map has an unowned touchpoint: tip 4, and the post says why.
    assert rows == [("#cx", "2026-W49", 4, "unowned_touchpoints"), ("#ledning", "2026-W49", 4, "unowned_touchpoints")]
    [post] = [r for r in _outbox(loaded) if r.target_ref == "#cx"]
    assert post.idempotency_key == "tip:console:#cx:2026-W49"
    assert post.payload["header"] == "CX-råd 4 av 10: Ge varje kontaktpunkt en ägare"
    assert (
        post.payload["context"][0] == "Valt den här veckan eftersom några kontaktpunkter i kundresekartan saknar ägare."
    )


def _outbox(session_factory: sessionmaker[Session]) -> list[Outbox]:
    with session_factory() as session:
        return list(session.scalars(select(Outbox).where(Outbox.topic.like("tip:%")).order_by(Outbox.id)))


def test_auto_order_rotates_until_there_is_data_then_adapts(
    app: CxApp, loaded: sessionmaker[Session], clock: Clock
) -> None:
    subscribe(app)
    clock.now = monday_nine(date(2026, 11, 30))
    run_weekly_tips(loaded, clock)  # no issue has ever been reported: 1 → 10
    say(app, "/cx report faktura: fel moms")
    clock.now = monday_nine(date(2026, 12, 7))
    run_weekly_tips(loaded, clock)  # now there is data: the unowned touchpoint decides
    assert [(n, s) for _, _, n, s in posts(loaded)] == [(1, None), (4, "unowned_touchpoints")]


def test_ten_weeks_use_ten_tips_then_a_new_cycle_begins(
    app: CxApp, loaded: sessionmaker[Session], clock: Clock
) -> None:
    subscribe(app)
    start = date(2026, 11, 30)
    for week in range(12):
        clock.now = monday_nine(start + timedelta(weeks=week))
        assert run_weekly_tips(loaded, clock, order="rotation") == 1
    numbers = [number for _, _, number, _ in posts(loaded)]
    assert numbers[:10] == list(range(1, 11))
    assert numbers[10:] == [1, 2]
    with loaded() as session:
        cycles = session.scalars(select(TipPost.cycle).order_by(TipPost.id)).all()
    assert cycles == [1] * 10 + [2, 2]
    # The year turns into 2026-W53 and 2027-W01 without a gap or a double.
    weeks = [week for _, week, _, _ in posts(loaded)]
    assert "2026-W53" in weeks and "2027-W01" in weeks and len(set(weeks)) == 12


def test_adaptive_order_says_why_each_week(app: CxApp, loaded: sessionmaker[Session], clock: Clock) -> None:
    subscribe(app)
    for week in range(4):
        clock.now = monday_nine(date(2026, 11, 30) + timedelta(weeks=week))
        run_weekly_tips(loaded, clock, order="adaptive")
    # The unowned touchpoint speaks first (tips 4, then 1); then nobody reporting anything
    # calls for the listening tip (8), then its companion (3).
    assert [(n, s) for _, _, n, s in posts(loaded)] == [
        (4, "unowned_touchpoints"),
        (1, "unowned_touchpoints"),
        (8, "nobody_speaking_up"),
        (3, "nobody_speaking_up"),
    ]


def test_the_weekly_trigger_keeps_nine_oclock_across_daylight_saving() -> None:
    trigger = CronTrigger.from_crontab("0 9 * * mon", timezone="Europe/Stockholm")
    before = trigger.get_next_fire_time(None, datetime(2026, 10, 13, tzinfo=UTC))
    after = trigger.get_next_fire_time(None, before + timedelta(minutes=1))
    assert before == datetime(2026, 10, 19, 7, 0, tzinfo=UTC)  # 09:00 summer time
    assert after == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)  # 09:00 winter time


def test_posting_across_the_october_change(app: CxApp, loaded: sessionmaker[Session], clock: Clock) -> None:
    subscribe(app)
    for moment in (datetime(2026, 10, 19, 7, 0, tzinfo=UTC), datetime(2026, 10, 26, 8, 0, tzinfo=UTC)):
        clock.now = moment
        assert run_weekly_tips(loaded, clock) == 1
    assert [w for _, w, _, _ in posts(loaded)] == ["2026-W43", "2026-W44"]


def test_a_clock_that_was_down_catches_up_during_the_week() -> None:
    trigger = CronTrigger.from_crontab("0 9 * * mon", timezone="Europe/Stockholm")
    assert not due_this_week(trigger, datetime(2026, 11, 30, 7, 59, tzinfo=UTC), STOCKHOLM)  # Monday 08:59
    assert due_this_week(trigger, datetime(2026, 11, 30, 8, 0, tzinfo=UTC), STOCKHOLM)
    assert due_this_week(trigger, datetime(2026, 12, 2, 12, 0, tzinfo=UTC), STOCKHOLM)  # Wednesday
    assert due_this_week(trigger, datetime(2026, 11, 29, 22, 0, tzinfo=UTC), STOCKHOLM)  # Sunday 23:00: still W48
    assert not due_this_week(trigger, datetime(2026, 11, 29, 23, 30, tzinfo=UTC), STOCKHOLM)  # Monday 00:30: W49


def test_two_clocks_post_once(loaded: sessionmaker[Session], clock: Clock) -> None:
    pg_loaded = loaded
    app = CxApp(pg_loaded, clock=clock, default_language="sv")
    for channel in ("#cx", "#a", "#b", "#c"):
        subscribe(app, channel)
    clock.now = monday_nine(date(2026, 11, 30))
    counts: list[int] = []
    barrier = threading.Barrier(2)

    def clock_process() -> None:
        barrier.wait()
        counts.append(run_weekly_tips(pg_loaded, clock))

    threads = [threading.Thread(target=clock_process) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(counts) == 4
    assert len(posts(pg_loaded)) == 4
    assert len(_outbox(pg_loaded)) == 4


# --- commands and engagement --------------------------------------------------------------------


def test_tip_commands(app: CxApp, loaded: sessionmaker[Session]) -> None:
    app.tip_order = "adaptive"
    assert say(app, "/cx tip 7", "fatima").message.header == "CX tip 7 of 10: Make it safe to fail"
    this_week = say(app, "/cx tip")
    assert this_week.message.header == "CX-råd 4 av 10: Ge varje kontaktpunkt en ägare"
    upcoming = say(app, "/cx tip next")
    assert upcoming.message.context[:2] == [
        "Näst på tur för den här kanalen (inte postat än):",
        "Valt den här veckan eftersom några kontaktpunkter i kundresekartan saknar ägare.",
    ]
    for bad in ("/cx tip 11", "/cx tip 0", "/cx tip soon"):
        text = say(app, bad).message.text
        assert text is not None and text.endswith("Prova `/cx tip`, `/cx tip 4` eller `/cx tip next`.")
    assert posts(loaded) == []  # looking never posts


def test_only_admins_subscribe(app: CxApp, loaded: sessionmaker[Session]) -> None:
    assert say(app, "/cx subscribe tips", "anna").message.text == "Det är bara administratörer som kan göra det."
    assert say(app, "/cx subscribe everything", "erik").message.text == (
        "”everything” går inte att prenumerera på. Skriv `tips`, `digest` eller `all`."
    )
    assert say(app, "/cx subscribe all", "erik").message.text == "#cx får nu: veckans råd och veckosammanfattningen."
    assert say(app, "/cx subscribe tips", "erik").message.text == "#cx får redan: veckans råd."
    assert say(app, "/cx unsubscribe digest", "erik").message.text == "#cx får inte längre: veckosammanfattningen."
    assert say(app, "/cx unsubscribe digest", "erik").message.text == "#cx fick inte: veckosammanfattningen."


def test_reactions_and_replies_to_a_tip_are_counted_once(
    app: CxApp, loaded: sessionmaker[Session], clock: Clock
) -> None:
    subscribe(app)
    clock.now = monday_nine(date(2026, 11, 30))
    run_weekly_tips(loaded, clock)

    class Sender:
        def send(self, post):  # type: ignore[no-untyped-def]
            return "C1-1764.001" if post.idempotency_key.startswith("tip:") else f"C1-{post.id}"

    drain(loaded, "console", Sender(), clock)
    for user, emoji in (("anna", "👍"), ("anna", "👍"), ("erik", "👍"), ("anna", "🎉")):
        assert app.react(Reaction("console", "console", user, "#cx", "C1-1764.001", emoji)) is None
    app.replied(ThreadReply("console", "console", "sara", "#cx", "C1-1764.001", "r1"))
    app.react(Reaction("console", "console", "anna", "#cx", "not-a-tip", "👍"))
    with loaded() as session:
        counted = session.scalar(select(func.count()).select_from(TipEngagement))
        from bot.i18n import default_catalogue
        from bot.services.journey import current_org
        from bot.services.tips import TipService, default_tips

        org = current_org(session)
        assert org is not None
        summary = TipService(session, org, default_catalogue(), default_tips(), clock.now).engagement("2026-W49")
    assert counted == 4
    assert summary == {"reaction": 3, "reply": 1}


def test_the_console_reacts_to_a_tip(app: CxApp, loaded: sessionmaker[Session], clock: Clock) -> None:
    import io

    from adapters.console import ConsoleAdapter

    subscribe(app)
    clock.now = monday_nine(date(2026, 11, 30))
    run_weekly_tips(loaded, clock)
    out = io.StringIO()
    console = ConsoleAdapter(app, loaded, "sara", out=out, clock=clock)
    console.run([])  # shows the queued posts, the tip among them
    tip_ref = next(line for line in out.getvalue().splitlines() if line.endswith(" till #cx]"))[1:].split(" ")[0]
    console.run([f"/react {tip_ref} 👍", f"/reply {tip_ref} Vi provar!", "/react console-x", "/reply"])
    text = out.getvalue()
    assert f"Du reagerade med 👍 på {tip_ref}." in text
    assert f"Du svarade under {tip_ref}." in text
    assert text.count("Skriv /react console-12 👍") == 2
    with loaded() as session:
        assert session.scalar(select(func.count()).select_from(TipEngagement)) == 2
    assert clock.now > NOW
