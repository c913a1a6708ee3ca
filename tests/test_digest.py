"""KPIs per stage and week, /cx kpi, and the weekly digest: figures, sections, posting once."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.app import CxApp
from bot.content import default_content
from bot.domain.kpi import Figure, Metric, Trend
from bot.domain.weeks import iso_week, previous_week, week_bounds
from bot.llm import ObservationText, OpenAISummariser, build_summariser
from bot.scheduler import run_weekly_digest
from bot.services.chart import ChartWords, StageTrend, trend_png
from bot.services.digest import Digest, build_digest, digest_chart, digest_message
from bot.services.journey import current_org
from bot.services.kpi import stage_reports
from bot.services.kpi_import import import_aggregates, import_answers
from bot.services.tips import subscribe
from bot.store.db import make_session_factory
from bot.store.models import Attachment, KpiValue, Outbox, Person, SurveyResponse
from tests.conftest import NOW, Clock
from tests.test_issues import count, say
from tests.test_observations import Stub

STOCKHOLM = ZoneInfo("Europe/Stockholm")
HEADER = "answered_at,metric,score,stage,touchpoint,id\n"


def answers_csv(rows: list[tuple[str, str, int, str, str]], prefix: str = "r") -> bytes:
    lines = [
        f"{at},{metric},{score},{stage},{touchpoint},{prefix}{i}"
        for i, (at, metric, score, stage, touchpoint) in enumerate(rows)
    ]
    return (HEADER + "\n".join(lines) + "\n").encode()


def import_rows(loaded: sessionmaker[Session], rows: list[tuple[str, str, int, str, str]], prefix: str = "r") -> None:
    """Import answers; ids are the prefix and the row's number, so a second batch needs its own prefix."""
    with loaded.begin() as session:
        org = current_org(session)
        assert org is not None
        result = import_answers(session, org, answers_csv(rows, prefix), "test.csv")
        assert not result.errors, result.errors


def weeks_of(loaded: sessionmaker[Session]) -> dict[str, str]:
    with loaded() as session:
        return {r.external_id.split(":")[1]: r.iso_week for r in session.scalars(select(SurveyResponse))}


def digest_for(loaded: sessionmaker[Session], week: str, now: datetime = NOW) -> Digest:
    content = default_content()
    with loaded() as session:
        org = current_org(session)
        assert org is not None
        return build_digest(session, org, week, catalogue=content.catalogue, tips=content.tips, now=now)


def nps_rows(week_day: str, promoters: int, passives: int, detractors: int, stage: str = "loyalty") -> list:
    return (
        [(f"{week_day}T12:00:00", "nps", 10, stage, "")] * promoters
        + [(f"{week_day}T12:00:00", "nps", 8, stage, "")] * passives
        + [(f"{week_day}T12:00:00", "nps", 3, stage, "")] * detractors
    )


# --- weeks: midnight, daylight saving, 2026-W53 ---------------------------------------------


def test_a_week_ends_at_midnight_in_the_orgs_time_zone(loaded: sessionmaker[Session]) -> None:
    import_rows(
        loaded,
        [
            ("2026-11-22T23:59:59", "nps", 9, "usage", ""),  # Sunday night, Stockholm: week 47
            ("2026-11-23T00:00:00", "nps", 9, "usage", ""),  # Monday 00:00 Stockholm: week 48
            ("2026-11-22T23:30:00Z", "nps", 9, "usage", ""),  # 00:30 on Monday in Stockholm: week 48
            ("2026-11-22T22:59:59+00:00", "nps", 9, "usage", ""),  # 23:59:59 on Sunday in Stockholm
        ],
    )
    assert weeks_of(loaded) == {"r0": "2026-W47", "r1": "2026-W48", "r2": "2026-W48", "r3": "2026-W47"}


def test_weeks_with_a_daylight_saving_change_are_an_hour_longer_or_shorter(loaded: sessionmaker[Session]) -> None:
    autumn_start, autumn_end = week_bounds("2026-W43", STOCKHOLM)  # clocks go back on 25 October
    assert autumn_end - autumn_start == timedelta(hours=169)
    assert autumn_start == datetime(2026, 10, 18, 22, 0, tzinfo=UTC)  # Monday 00:00 CEST
    assert autumn_end == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)  # Monday 00:00 CET
    spring_start, spring_end = week_bounds("2026-W13", STOCKHOLM)  # clocks go forward on 29 March
    assert spring_end - spring_start == timedelta(hours=167)
    import_rows(
        loaded,
        [
            ("2026-10-25T02:30:00", "csat", 5, "support", ""),  # the hour that happens twice
            ("2026-10-25T23:30:00+00:00", "csat", 5, "support", ""),  # 00:30 Monday CET: week 44
            ("2026-10-25T22:30:00+00:00", "csat", 5, "support", ""),  # 23:30 Sunday CET: week 43
        ],
    )
    assert weeks_of(loaded) == {"r0": "2026-W43", "r1": "2026-W44", "r2": "2026-W43"}


def test_iso_week_53_of_2026_is_a_week_of_its_own(loaded: sessionmaker[Session]) -> None:
    import_rows(
        loaded,
        [
            ("2026-12-27T23:00:00", "nps", 10, "loyalty", ""),  # Sunday: 2026-W52
            ("2026-12-28T08:00:00", "nps", 10, "loyalty", ""),  # Monday 28 December: 2026-W53
            ("2027-01-01T10:00:00", "nps", 3, "loyalty", ""),  # New Year's Day: still 2026-W53
            ("2027-01-03T23:59:00", "nps", 9, "loyalty", ""),  # Sunday 3 January: 2026-W53
            ("2027-01-04T00:00:00", "nps", 9, "loyalty", ""),  # 2027-W01
        ],
    )
    assert weeks_of(loaded) == {
        "r0": "2026-W52",
        "r1": "2026-W53",
        "r2": "2026-W53",
        "r3": "2026-W53",
        "r4": "2027-W01",
    }
    assert previous_week("2027-W01", STOCKHOLM) == "2026-W53"
    digest = digest_for(loaded, "2026-W53", now=datetime(2027, 1, 5, tzinfo=UTC))
    loyalty = next(s for s in digest.kpis if s.key == "loyalty")
    nps = next(m for m in loyalty.metrics if m.metric == Metric.NPS)
    # 2 promoters, 1 detractor of 3: NPS +33.3; the week before had one promoter: +100.
    assert (nps.current.value, nps.current.n, nps.previous.value, nps.previous.n) == (33.3, 3, 100.0, 1)
    assert digest.previous_week == "2026-W52" and digest.trend_weeks[-1] == "2026-W53"


# --- figures per stage and touchpoint -------------------------------------------------------


def test_stage_figures_beside_last_week_with_targets_and_noise(loaded: sessionmaker[Session]) -> None:
    # Loyalty (NPS target 40): last week 30 promoters, 10 passives, 10 detractors → +40 on n 50;
    # this week 10, 10, 30 → −40. Adjusted Wald by hand: pP = 10.75/53, pD = 30.75/53,
    # SE = √((pP + pD − (pP − pD)²)/53) = 0.10994, so −40 ± … → −59.3 … −16.2; last week's is
    # +16.2 … +59.3. The intervals do not overlap: a change, for the worse.
    import_rows(loaded, nps_rows("2026-11-17", 30, 10, 10) + nps_rows("2026-11-23", 10, 10, 30))
    with loaded() as session:
        org = current_org(session)
        assert org is not None
        reports = {r.key: r for r in stage_reports(session, org, "2026-W48")}
    nps = next(m for m in reports["loyalty"].metrics if m.metric == Metric.NPS)
    assert (nps.current.value, nps.current.n, nps.previous.value, nps.delta) == (-40.0, 50, 40.0, -80.0)
    assert (nps.current.ci_low, nps.current.ci_high) == (-59.3, -16.2)
    assert (nps.previous.ci_low, nps.previous.ci_high) == (16.2, 59.3)
    assert nps.trend == Trend.WORSE and nps.target == 40.0 and nps.met is False
    # A target with no figure is still listed (churn 1.5 for loyalty), with no value.
    churn = next(m for m in reports["loyalty"].metrics if m.metric == Metric.CHURN)
    assert churn.current.value is None and churn.target == 1.5 and churn.met is None
    # Stages without answers or targets list nothing (awareness has targets: listed, empty).
    assert [m.current.value for m in reports["awareness"].metrics] == [None, None]


def test_touchpoint_figures_count_for_their_stage_and_aggregates_fill_in(loaded: sessionmaker[Session]) -> None:
    import_rows(
        loaded,
        [("2026-11-23T10:00:00", "csat", 5, "support", "chat")] * 3
        + [("2026-11-23T10:00:00", "csat", 2, "support", "chat")]
        + [("2026-11-23T10:00:00", "csat", 1, "support", "")] * 4,
    )
    with loaded.begin() as session:
        org = current_org(session)
        assert org is not None
        aggregates = b"week,metric,stage,value,n\n2026-W48,fcr,support,71.5,400\n2026-W48,csat,support,99,10\n"
        assert import_aggregates(session, org, aggregates, "agg.csv", NOW).imported == 2
    with loaded() as session:
        org = current_org(session)
        assert org is not None
        support = next(r for r in stage_reports(session, org, "2026-W48") if r.key == "support")
    csat = next(m for m in support.metrics if m.metric == Metric.CSAT)
    assert (csat.current.value, csat.current.n) == (37.5, 8)  # the answers win over an aggregate CSAT
    fcr = next(m for m in support.metrics if m.metric == Metric.FCR)
    assert (fcr.current.value, fcr.current.n, fcr.current.low_n) == (71.5, 400, False)
    assert [tp.key for tp in support.touchpoints] == ["chat"]
    chat_csat = support.touchpoints[0].metrics[0]
    assert (chat_csat.metric, chat_csat.current.value, chat_csat.current.n) == (Metric.CSAT, 75.0, 4)


# --- /cx kpi and /cx kpi record -------------------------------------------------------------


def test_kpi_command_shows_this_week_and_last_for_everyone(app: CxApp, loaded: sessionmaker[Session]) -> None:
    import_rows(loaded, nps_rows("2026-11-17", 30, 10, 10) + nps_rows("2026-11-23", 10, 10, 30))
    reply = say(app, "/cx kpi", user="leila")
    assert reply.message.header == "Nyckeltal, 2026-W48 hittills (bredvid 2026-W47)"
    text = reply.message.text or ""
    assert (
        "Förnyelse och lojalitet\n• NPS -40.0 (troligen mellan -59.3 och -16.2, utifrån 50 svar) · "
        "sämre än förra veckan (+40.0) · når inte målet +40.0" in text
    )
    one = say(app, "/cx kpi lojalitet", user="leila")
    assert (one.message.text or "").startswith("Förnyelse och lojalitet\n• NPS -40.0")
    assert "Medvetenhet" not in (one.message.text or "")
    unknown = say(app, "/cx kpi månen", user="leila")
    assert (unknown.message.text or "").startswith("Det finns inget steg som heter ”månen”")


def test_kpi_command_without_figures_says_how_to_get_them(app: CxApp) -> None:
    reply = say(app, "/cx kpi", user="leila")
    assert reply.message.text is not None and reply.message.text.startswith("Inga nyckeltal ännu")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/cx kpi record", "Skriv så här: `/cx kpi record churn 1.8 <steg> 2026-W47"),
        ("/cx kpi record churn", "Skriv så här:"),
        ("/cx kpi record happiness 3 loyalty", "”happiness” är inget nyckeltal jag känner till"),
        ("/cx kpi record churn mycket loyalty", "”mycket” är inget tal"),
        ("/cx kpi record churn nan loyalty", "”nan” är inget tal"),
        ("/cx kpi record nps 140 loyalty", "140 kan inte vara ett värde för NPS"),
        ("/cx kpi record ces 0 support", "0 kan inte vara ett värde för CES"),
        ("/cx kpi record churn 1.2 loyalty 2026-W54", "”2026-W54” finns inte: 2026 har veckorna 1 till 53"),
        ("/cx kpi record churn 1.2 loyalty 2025-W53", "”2025-W53” finns inte: 2025 har veckorna 1 till 52"),
        ("/cx kpi record churn 1.2 loyalty n=många", "”n=många” är inget antal svar"),
        ("/cx kpi record churn 1.2", "Vilket steg gäller siffran?"),
        ("/cx kpi record churn 1.2 månen", "Det finns inget steg som heter ”månen”"),
    ],
)
def test_kpi_record_refuses_bad_input_politely(
    app: CxApp, loaded: sessionmaker[Session], text: str, expected: str
) -> None:
    reply = say(app, text, user="elin")
    assert reply.message.text is not None and reply.message.text.startswith(expected), reply.message.text
    assert count(loaded, KpiValue) == 0


def test_kpi_record_is_for_admins_and_replaces_the_weeks_figure(app: CxApp, loaded: sessionmaker[Session]) -> None:
    refused = say(app, "/cx kpi record churn 1.8 loyalty", user="leila")
    assert refused.message.text is not None and "administratör" in refused.message.text.casefold()
    assert count(loaded, KpiValue) == 0
    first = say(app, "/cx kpi record churn 1,8 lojalitet n=5200", user="elin")
    # Nothing was there before: the reply does not claim to replace anything.
    assert first.message.text == (
        "Registrerade Kundbortfall 1.80 % för Förnyelse och lojalitet, vecka 2026-W47 (5200 svar)."
    )
    second = say(app, "/cx kpi record churn 2.1 loyalty 2026-w47", user="elin")
    assert second.message.text == (
        "Registrerade Kundbortfall 2.10 % för Förnyelse och lojalitet, vecka 2026-W47 (okänt antal svar). "
        "Den ersätter den tidigare siffran, 1.80 %."
    )
    with loaded() as session:
        rows = list(session.scalars(select(KpiValue)))
    assert [(r.metric, r.iso_week, r.value, r.n, r.source) for r in rows] == [
        ("churn", "2026-W47", 2.1, None, "chat:elin")
    ]


def test_a_recorded_figure_hidden_by_survey_answers_says_so(app: CxApp, loaded: sessionmaker[Session]) -> None:
    """Answers for the same stage, metric and week are what /cx kpi and the digest show: a figure
    recorded beside them is stored, and the admin is told it will not be shown."""
    import_rows(loaded, nps_rows("2026-11-17", 30, 10, 10))  # 50 NPS answers for loyalty, 2026-W47
    hidden = say(app, "/cx kpi record nps 55 loyalty", user="elin")
    assert hidden.message.text == (
        "Registrerade NPS +55.0 för Förnyelse och lojalitet, vecka 2026-W47 (okänt antal svar). "
        "Den kommer inte att visas: "
        "50 enkätsvar ger NPS för Förnyelse och lojalitet vecka 2026-W47, och svaren går före en registrerad siffra."
    )
    assert count(loaded, KpiValue) == 1  # stored all the same: answers may be withdrawn
    with loaded() as session:
        elin = session.scalar(select(Person).where(Person.key == "elin"))
        assert elin is not None
        elin.chosen_language = "en"
        session.commit()
    english = say(app, "/cx kpi record nps 56 loyalty", user="elin").message.text
    assert english == (
        "Recorded NPS +56.0 for Renewal and loyalty, week 2026-W47 (number of answers not known). "
        "It replaces the earlier figure, +55.0. "
        "It will not be shown: 50 survey answers give Renewal and loyalty's NPS for week 2026-W47, and answers "
        "take precedence over a recorded figure."
    )
    shown = say(app, "/cx kpi record nps 30 loyalty 2026-W46", user="elin").message.text
    # No answers that week: shown.
    assert shown == "Recorded NPS +30.0 for Renewal and loyalty, week 2026-W46 (number of answers not known)."
    kpis = say(app, "/cx kpi loyalty", user="elin").message.text or ""
    assert "+56.0" not in kpis  # indeed not shown


def test_importing_aggregates_reports_replaced_and_hidden_figures(loaded: sessionmaker[Session]) -> None:
    import_rows(loaded, nps_rows("2026-11-17", 30, 10, 10))
    text = b"week,metric,stage,value,n\n2026-W47,churn,loyalty,1.4,5200\n2026-W47,nps,loyalty,12,\n"
    results = []
    for _ in range(2):
        with loaded.begin() as session:
            org = current_org(session)
            assert org is not None
            results.append(import_aggregates(session, org, text, "agg.csv", NOW))
    assert [r.replaced for r in results] == [0, 2]
    assert [(h.line, h.week, h.stage, h.metric, h.answers) for h in results[0].hidden] == [
        (3, "2026-W47", "loyalty", "nps", 50)
    ]


# --- the digest -----------------------------------------------------------------------------


def test_a_week_without_data_gets_a_short_note(loaded: sessionmaker[Session]) -> None:
    digest = digest_for(loaded, "2026-W40")
    assert digest.empty
    message = digest_message(default_content().catalogue, "en", digest)
    assert message.header == "CX this week: 2026-W40"
    assert message.text is not None and message.text.startswith("A quiet week: no survey answers")
    assert message.image is None and not message.fields


def busy_week(app: CxApp, loaded: sessionmaker[Session], clock: Clock) -> None:
    """W48: answers, two issues (one acknowledged after 2 h and resolved after 6 h), observations."""
    import_rows(loaded, nps_rows("2026-11-17", 30, 10, 10) + nps_rows("2026-11-23", 10, 10, 30))
    say(app, "/cx report faktura: Dubbla fakturor till kunder i Umeå", user="leila")
    say(app, "/cx report anonymous chatt: Chattboten svarar på fel språk", user="sara")
    say(app, "/cx observe Tre kunder ringde om dubbla fakturor i dag", user="leila")
    say(app, "/cx observe anonymous Kunden fick vänta 40 minuter i telefonkön", user="jonas")
    say(app, "/cx observe Appen visar fel förbrukning för solkunder", user="mikael")
    with loaded.begin() as session:  # link the first observation to the issue it raised
        from bot.store.models import Observation

        first = session.get(Observation, 1)
        assert first is not None
        first.issue_id = 1
    clock.now = NOW + timedelta(hours=2)
    say(app, "/cx issue 1 ack", user="fatima")
    clock.now = NOW + timedelta(hours=6)
    say(app, "/cx issue 1 resolve system: Dubblettkörningen stoppad och kunderna krediterade", user="fatima")


def test_the_digest_has_every_section_with_data(app: CxApp, loaded: sessionmaker[Session], clock: Clock) -> None:
    busy_week(app, loaded, clock)
    digest = digest_for(loaded, "2026-W48", now=clock.now)
    data = digest.as_json()
    assert data["schema"] == "cxbot.digest/1" and data["week"] == "2026-W48" and data["empty"] is False
    # Only what was measured: no stage without figures, no target without a figure.
    assert list(data["kpis"]) == ["loyalty"]  # type: ignore[arg-type]
    assert list(data["kpis"]["loyalty"]["metrics"]) == ["nps"]  # type: ignore[index]
    loyalty_nps = data["kpis"]["loyalty"]["metrics"]["nps"]  # type: ignore[index]
    assert loyalty_nps == {
        "value": -40.0,
        "n": 50,
        "ci_low": -59.3,
        "ci_high": -16.2,
        "previous": 40.0,
        "previous_n": 50,
        "delta": -80.0,
        "trend": "worse",
        "target": 40.0,
        "target_met": False,
        "low_n": False,
    }
    issues = data["issues"]
    assert issues["opened"] == 2 and issues["resolved"] == 1  # type: ignore[index]
    assert issues["time_to_acknowledge"] == {"median_hours": 2.0, "p90_hours": 2.0, "n": 1}  # type: ignore[index]
    assert issues["time_to_resolve"] == {"median_hours": 6.0, "p90_hours": 6.0, "n": 1}  # type: ignore[index]
    observations = data["observations"]
    assert observations["count"] == 3 and observations["summary_by"] == "offline"  # type: ignore[index]
    # Shout-outs: Leila and Mikael shared with their names; Jonas's anonymous one is never thanked.
    assert [s["person"] for s in data["shout_outs"]] == ["leila", "mikael"]  # type: ignore[union-attr,index]
    we_did = data["you_said_we_did"]
    assert len(we_did) == 1 and we_did[0]["issue"] == 1 and we_did[0]["root_cause"] == "system"  # type: ignore[index]
    assert we_did[0]["action"] == "Dubblettkörningen stoppad och kunderna krediterade"  # type: ignore[index]
    assert we_did[0]["observations"] == ["Tre kunder ringde om dubbla fakturor i dag"]  # type: ignore[index]
    assert data["unowned_touchpoints"] == ["price-comparison"]
    assert len(data["trend"]["weeks"]) == 8  # type: ignore[index]
    json.dumps(data)  # the schema is plain JSON

    message = digest_message(default_content().catalogue, "sv", digest, chart="digest-chart:2026-W48:sv")
    text = message.text or ""
    for heading in ("📊 Nyckeltal per steg", "🛠 Ärenden", "👂 Observationer", "✅ Ni sa, vi gjorde", "🙌 Tack", "❓"):
        assert heading in text, heading
    assert "Jonas" not in text  # anonymous stays anonymous
    assert "#1 Månadsfaktura: ”Dubbla fakturor till kunder i Umeå” → Dubblettkörningen stoppad" in text
    assert message.image is not None and message.image.attachment == "digest-chart:2026-W48:sv"
    assert "💡" not in text  # no tip was posted that week: the section is left out


def test_sections_without_data_are_left_out(loaded: sessionmaker[Session]) -> None:
    import_rows(loaded, nps_rows("2026-11-23", 5, 0, 0))  # only KPI figures, on a small sample
    message = digest_message(default_content().catalogue, "en", digest_for(loaded, "2026-W48"))
    text = message.text or ""
    assert "📊 KPIs per stage" in text and "too few answers to be sure: 5 of the 30 needed" in text
    for absent in ("🛠", "👂", "✅", "🙌", "💡"):
        assert absent not in text, absent


def test_the_chart_is_a_png_drawn_the_same_way_twice_and_never_empty(loaded: sessionmaker[Session]) -> None:
    import_rows(loaded, nps_rows("2026-11-17", 30, 10, 10) + nps_rows("2026-11-23", 10, 10, 30))
    digest = digest_for(loaded, "2026-W48")
    png = digest_chart(digest, "sv")
    assert png is not None and png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    assert digest_chart(digest, "sv") == png
    empty = StageTrend("a", "A", 0, {Metric.NPS: [Figure(Metric.NPS, None, 0)] * 2}, {})
    assert trend_png(["2026-W47", "2026-W48"], [empty], ChartWords("t", "", "", ""), 30) is None


def test_the_digest_posts_once_per_channel_and_week(app: CxApp, loaded: sessionmaker[Session], clock: Clock) -> None:
    busy_week(app, loaded, clock)
    content = default_content()
    with loaded.begin() as session:
        org = current_org(session)
        assert org is not None
        elin = session.scalar(select(Person).where(Person.key == "elin"))
        assert elin is not None
        subscribe(session, org, "console", "#cx", ("digest",), elin.id, NOW)
        subscribe(session, org, "slack", "C0ALL", ("digest", "tips"), elin.id, NOW)
    clock.now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Monday 09:00 in Stockholm: W48 is complete
    assert run_weekly_digest(loaded, clock, content) == 2
    assert run_weekly_digest(loaded, clock, content) == 0  # a rerun, a restart, a catch-up
    rows = [r for r in outbox_digests(loaded)]
    assert sorted((r.platform, r.target_ref) for r in rows) == [("console", "#cx"), ("slack", "C0ALL")]
    payload = rows[0].payload
    assert payload["header"] == "CX den här veckan: 2026-W48"
    assert payload["image"]["attachment"] == "digest-chart:2026-W48:sv"
    # Beside it, the journey picture of the same week: drawn once, posted to each channel once.
    with loaded() as session:
        pictures = list(session.scalars(select(Outbox).where(Outbox.topic == "digest-journey:2026-W48")))
    assert sorted((r.platform, r.target_ref) for r in pictures) == [("console", "#cx"), ("slack", "C0ALL")]
    assert {r.payload["image"]["attachment"] for r in pictures} == {pictures[0].payload["image"]["attachment"]}
    assert pictures[0].payload["image"]["attachment"].startswith("journey-picture:2026-W48:sv:all:")
    assert "Utan ägare: Prisjämförelsesajter" in pictures[0].payload["image"]["alt"]
    assert count(loaded, Attachment) == 2


def outbox_digests(loaded: sessionmaker[Session]) -> list[Outbox]:
    with loaded() as session:
        return list(session.scalars(select(Outbox).where(Outbox.topic.like("digest:%")).order_by(Outbox.id)))


class CountingSummariser:
    def __init__(self) -> None:
        self.calls = 0

    def summarise(self, observations: object, language: str) -> object:
        from bot.llm import Summary

        self.calls += 1
        return Summary("sammanfattat", "offline")


def test_a_week_already_posted_everywhere_is_not_built_again(
    app: CxApp, loaded: sessionmaker[Session], clock: Clock
) -> None:
    busy_week(app, loaded, clock)
    with loaded.begin() as session:
        org = current_org(session)
        assert org is not None
        subscribe(session, org, "console", "#cx", ("digest",), 1, NOW)
    clock.now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    summariser = CountingSummariser()
    assert run_weekly_digest(loaded, clock, default_content(), summariser) == 1  # type: ignore[arg-type]
    assert run_weekly_digest(loaded, clock, default_content(), summariser) == 0  # type: ignore[arg-type]
    assert summariser.calls == 1  # OpenAI (when configured) is asked once a week, not per restart


@pytest.mark.postgres
def test_two_clocks_post_the_digest_once(pg_loaded: sessionmaker[Session]) -> None:
    with pg_loaded.begin() as session:
        org = current_org(session)
        assert org is not None
        subscribe(session, org, "console", "#cx", ("digest",), 1, NOW)
    import_rows(pg_loaded, nps_rows("2026-11-23", 30, 10, 10))
    clock = Clock(datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    results: list[int] = []
    errors: list[BaseException] = []

    def one_clock() -> None:
        try:
            results.append(run_weekly_digest(pg_loaded, clock, default_content()))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one_clock) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Both may build it; the unique outbox key lets one insert win. A loser may also fail on the
    # chart's unique key, which rolls its attempt back whole: never a second post.
    assert sum(results) == 1 and len(outbox_digests(pg_loaded)) == 1, (results, errors)


def test_digest_preview_is_private_and_for_admins(app: CxApp, loaded: sessionmaker[Session], clock: Clock) -> None:
    busy_week(app, loaded, clock)
    clock.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    refused = say(app, "/cx digest preview", user="leila")
    assert refused.message.text is not None and "administratör" in refused.message.text.casefold()
    reply = say(app, "/cx digest preview", user="elin")
    assert reply.visibility.value == "ephemeral"
    assert reply.message.header == "CX den här veckan: 2026-W48"
    assert reply.message.context[0].startswith("Förhandsvisning: bara du ser den här")
    assert reply.message.image is not None and reply.message.image.attachment == "digest-chart:2026-W48:sv"
    assert count(loaded, Attachment) == 1
    assert outbox_digests(loaded) == []  # a preview posts nothing
    for text, expected in [
        ("/cx digest", "Skriv /cx digest preview"),
        ("/cx digest preview 2026-W54", "”2026-W54” finns inte"),
        ("/cx digest preview 2026-W47 extra", "Jag förstod inte ”extra” där"),
    ]:
        bad = say(app, text, user="elin")
        assert bad.message.text is not None and bad.message.text.startswith(expected), bad.message.text


# --- the observations' summary --------------------------------------------------------------


def test_the_offline_summary_quotes_employees_and_openai_summarises_when_configured() -> None:
    texts = [
        ObservationText("Fakturan kom två gånger", ("billing",)),
        ObservationText("Dubbel faktura igen, och kunden var arg", ("billing", "wait")),
        ObservationText("Lång kö i telefon", ("wait",)),
    ]
    offline = build_summariser(None, None, "m").summarise(texts, "sv")
    assert offline.by == "offline"
    assert offline.text.splitlines() == [  # a theme by its name in the language; a free tag as it is
        "fakturering (2): “Fakturan kom två gånger”",
        "wait (2): “Lång kö i telefon”",
    ]
    assert build_summariser(None, None, "m").summarise(texts, "en").text.startswith("billing (2): ")
    stub = Stub()
    try:
        stub.text = "Kunderna  fick dubbla fakturor och väntade länge i telefon."
        online = build_summariser("key", stub.base_url, "gpt-test", timeout=2)
        assert isinstance(online, OpenAISummariser)
        summary = online.summarise(texts, "sv")
        assert (summary.by, summary.text) == ("openai", "Kunderna fick dubbla fakturor och väntade länge i telefon.")
        assert "Swedish" in stub.requests[-1]["messages"][0]["content"]
        stub.mode = "429"
        fallback = build_summariser("key", stub.base_url, "gpt-test", timeout=2, retries=0).summarise(texts, "sv")
        assert fallback.by == "offline" and fallback.note == "OpenAI failed (rate limited (429))"
        assert fallback.text == offline.text
    finally:
        stub.close()


def test_cli_digest_prints_json_refuses_bad_weeks_and_posts_once(bare_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.test_cli import cxbot
    from tests.test_console import cli_env

    env = cli_env(bare_engine, tmp_path)
    assert cxbot("demo", env=env, cwd=tmp_path).returncode == 0  # the demo subscribes the console's #cx
    answers = tmp_path / "w10.csv"
    answers.write_bytes(answers_csv(nps_rows("2026-03-03", 30, 10, 10)))
    assert cxbot("kpi", "import", str(answers), env=env, cwd=tmp_path).returncode == 0
    printed = cxbot("digest", "--week", "2026-W10", "--json", "--chart", str(tmp_path / "c.png"), env=env, cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    data = json.loads(printed.stdout)
    assert data["week"] == "2026-W10" and data["kpis"]["loyalty"]["metrics"]["nps"]["value"] == 40.0
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")
    rendered = cxbot("digest", "--week", "2026-W10", "--language", "en", env=env, cwd=tmp_path)
    assert rendered.stdout.startswith("CX this week: 2026-W10\n📊 KPIs per stage (beside 2026-W09)")
    for args, expected in [
        (("--week", "2026-W54"), "cxbot: --week: 2026 has weeks 1 to 53; there is no 2026-W54"),
        (("--week", "next"), "cxbot: --week: 'next' is not a week; write it like 2026-W47"),
        (("--language", "fi"), "cxbot: --language must be sv or en, not 'fi'"),
    ]:
        bad = cxbot("digest", *args, env=env, cwd=tmp_path)
        assert bad.returncode == 1 and bad.stderr.strip() == expected, bad.stderr
    first = cxbot("digest", "--week", "2026-W10", "--post", env=env, cwd=tmp_path)
    again = cxbot("digest", "--week", "2026-W10", "--post", env=env, cwd=tmp_path)
    assert "queued for 1 channel(s)" in first.stderr and "queued for 0 channel(s)" in again.stderr
    with make_session_factory(bare_engine)() as session:
        keys = session.scalars(select(Outbox.idempotency_key).where(Outbox.topic == "digest:2026-W10")).all()
    assert keys == ["digest:2026-W10:console:#cx"]


def test_iso_week_helper_is_consistent_with_bounds() -> None:
    start, end = week_bounds("2026-W48", STOCKHOLM)
    assert iso_week(start, STOCKHOLM) == "2026-W48" and iso_week(end, STOCKHOLM) == "2026-W49"
    assert iso_week(end - timedelta(microseconds=1), STOCKHOLM) == "2026-W48"
