"""Where KPI figures come from and where else they show: warehouse queries (read-only), the
journey file's ``queries`` and ``min_answers``, the tips' falling-KPI signal, routed issues."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from bot.app import CxApp
from bot.domain.journey_map import parse_journey
from bot.domain.tips import Signal
from bot.i18n import default_catalogue
from bot.services.journey import current_org, load_journey
from bot.services.tips import TipService, default_tips
from bot.services.warehouse import pull_warehouse, warehouse_engine
from bot.store.models import KpiQuery, KpiValue, Stage
from tests.conftest import NOW, Clock, postgres_engine_in_fresh_schema, require_postgres
from tests.test_digest import import_rows, nps_rows
from tests.test_issues import count, outbox_rows, say
from tests.test_journey_map import MINIMAL, problems_of

QUERIES = {
    "churn": "SELECT 100.0 * sum(lost) / sum(at_start) AS value, sum(at_start) AS n FROM churn WHERE week = :week",
    "fcr": "SELECT avg(first_contact) * 100 AS value, count(*) AS n FROM contacts "
    "WHERE at >= :week_start AND at < :week_end",
    "aht": "SELECT minutes AS value FROM handling WHERE week = :week",
}


def with_queries(loaded: sessionmaker[Session], queries: dict[str, str], stage_key: str = "loyalty") -> None:
    with loaded.begin() as session:
        stage = session.scalar(select(Stage).where(Stage.key == stage_key))
        assert stage is not None
        for metric, sql in queries.items():
            session.add(KpiQuery(stage_id=stage.id, metric=metric, sql=sql))


def fill_warehouse(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE churn (week VARCHAR(8), lost INTEGER, at_start INTEGER)"))
        connection.execute(text("INSERT INTO churn VALUES ('2026-W47', 30, 1500), ('2026-W47', 12, 600)"))
        connection.execute(text("CREATE TABLE contacts (at TIMESTAMP, first_contact INTEGER)"))
        # Sunday 23:30 in Stockholm is in the week; Monday 00:30 is not (UTC bounds on both sides).
        connection.execute(
            text(
                "INSERT INTO contacts VALUES ('2026-11-22 22:30:00', 1), ('2026-11-22 23:30:00', 0), "
                "('2026-11-16 10:00:00', 0), ('2026-11-15 22:59:00', 0)"
            )
        )
        connection.execute(text("CREATE TABLE handling (week VARCHAR(8), minutes FLOAT)"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = warehouse_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
        fill_warehouse(engine)
        yield engine
        engine.dispose()
        return
    require_postgres()
    engine, drop = postgres_engine_in_fresh_schema()
    fill_warehouse(engine)
    yield engine
    drop()


def test_warehouse_queries_store_the_weeks_figures_and_report_failures(
    loaded: sessionmaker[Session], warehouse: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with_queries(loaded, QUERIES)
    with caplog.at_level(logging.WARNING):
        report = pull_warehouse(loaded, warehouse, "2026-W47", Clock())
    assert report.stored == ["loyalty/churn", "loyalty/fcr"]
    # AHT: the table is empty that week, so the query returns no row; it is reported, not stored.
    assert report.failed == ["loyalty/aht: the query returned no row"]
    assert "warehouse: loyalty/aht for 2026-W47 gave no figure" in caplog.text
    with loaded() as session:
        rows = {r.metric: (round(r.value, 3), r.n, r.source) for r in session.scalars(select(KpiValue))}
    # Churn: 42 lost of 2 100 at the start = 2 %. FCR: the week is Monday 00:00 to Monday 00:00
    # in Stockholm (15 Nov 23:00 to 22 Nov 23:00 UTC): 2 of the 4 contacts, 1 resolved first time.
    assert rows == {"churn": (2.0, 2100, "warehouse"), "fcr": (50.0, 2, "warehouse")}
    again = pull_warehouse(loaded, warehouse, "2026-W47", Clock())  # weekly reruns replace, never add
    assert again.stored == report.stored and count(loaded, KpiValue) == 2


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT 1 AS other", "the query returned no 'value' column (it returned other)"),
        ("SELECT NULL AS value", "the query's value is NULL (no data for the week?)"),
        ("SELECT 'many' AS value", "the value or n is not a number"),
        ("SELECT 250 AS value", "the value is outside 0…100 for churn"),
        ("SELECT 2 AS value, -5 AS n", "n is negative"),
        ("SELECT value FROM no_such_table", "no such table"),
    ],
)
def test_a_bad_warehouse_answer_stores_nothing(
    loaded: sessionmaker[Session], warehouse: Engine, sql: str, reason: str
) -> None:
    with_queries(loaded, {"churn": sql})
    report = pull_warehouse(loaded, warehouse, "2026-W47", Clock())
    assert report.stored == [] and len(report.failed) == 1
    assert reason in report.failed[0], report.failed
    assert count(loaded, KpiValue) == 0


def test_a_query_cannot_change_the_warehouse(loaded: sessionmaker[Session], warehouse: Engine) -> None:
    # The file's validator lets only SELECT and WITH through, but on PostgreSQL a WITH can carry
    # a DELETE; the read-only connection stops it. On SQLite, the authorizer and PRAGMA
    # query_only stop any write, whatever the statement (the validator is not the only guard).
    if warehouse.dialect.name == "postgresql":
        with_queries(
            loaded, {"churn": "WITH gone AS (DELETE FROM churn RETURNING lost) SELECT count(*) AS value FROM gone"}
        )
        report = pull_warehouse(loaded, warehouse, "2026-W47", Clock())
        assert report.stored == [] and "read-only transaction" in report.failed[0], report.failed
    else:
        with_queries(loaded, {"churn": "DELETE FROM churn"})
        report = pull_warehouse(loaded, warehouse, "2026-W47", Clock())
        assert report.stored == [] and "refused" in report.failed[0], report.failed
    with warehouse.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM churn")).scalar() == 2
    assert count(loaded, KpiValue) == 0


def test_journey_file_queries_are_validated_loaded_and_followed(loaded: sessionmaker[Session]) -> None:
    bad = MINIMAL.replace(
        "    name: {sv: Köp, en: Buy}\n",
        "    name: {sv: Köp, en: Buy}\n    queries:\n      churn: DELETE FROM customers\n"
        "      fcr: SELECT 1; DROP TABLE x\n      mood: SELECT 1\n",
        1,
    )
    problems = problems_of(bad)
    assert any("a query must start with SELECT or WITH" in p for p in problems), problems
    assert any("a query is one statement" in p for p in problems), problems
    assert any("mood" in p for p in problems), problems
    good = MINIMAL.replace(
        "    name: {sv: Köp, en: Buy}\n",
        '    name: {sv: Köp, en: Buy}\n    queries:\n      churn: "SELECT 1.5 AS value;"\n',
        1,
    ).replace("org:\n", "org:\n  min_answers: 50\n", 1)
    result = parse_journey(good, "j.yaml")
    assert result.journey is not None, result.problems
    assert result.journey.stages[0].queries == {"churn": "SELECT 1.5 AS value"}
    with loaded.begin() as session:
        org, _ = load_journey(session, result.journey, NOW)
        assert org.min_answers == 50
        assert [(q.metric, q.sql) for q in session.scalars(select(KpiQuery))] == [("churn", "SELECT 1.5 AS value")]
    without = parse_journey(MINIMAL, "j.yaml").journey
    assert without is not None
    with loaded.begin() as session:
        org, _ = load_journey(session, without, NOW)
        assert org.min_answers == 30
        assert session.scalars(select(KpiQuery)).all() == []  # dropped from the file: gone


def test_a_falling_stage_makes_the_falling_kpi_signal(loaded: sessionmaker[Session]) -> None:
    def signals() -> list[Signal]:
        with loaded() as session:
            org = current_org(session)
            assert org is not None
            return TipService(session, org, default_catalogue(), default_tips(), NOW).signals()

    import_rows(loaded, nps_rows("2026-11-10", 30, 10, 10) + nps_rows("2026-11-17", 28, 12, 10))
    assert Signal.FALLING_KPI not in signals()  # +40 → +36: inside the noise
    import_rows(loaded, [(f"2026-11-18T0{i}:00:00", "nps", 0, "loyalty", "") for i in range(1, 9)] * 5, "more")
    assert Signal.FALLING_KPI in signals()  # 40 more detractors: the intervals part


def test_routed_issues_show_the_stages_figures_beside_the_targets(app: CxApp, loaded: sessionmaker[Session]) -> None:
    import_rows(loaded, nps_rows("2026-11-17", 30, 10, 10))
    say(app, "/cx kpi record churn 1.8 loyalty n=5200", user="elin")
    say(app, "/cx report avtalsförlängning: Förnyelseerbjudandet visar fel pris", user="leila")
    routed = [r for r in outbox_rows(loaded) if (r.topic or "").endswith(":routed")]
    assert routed, "the report was routed"
    context = routed[0].payload["context"]
    assert any(
        c.endswith(
            "Förra veckan (2026-W47): NPS +40.0 (utifrån 50 svar, mål +40.0), "
            "Kundbortfall 1.80 % (utifrån 5200 svar, mål 1.50 %)"
        )
        for c in context
    ), context


def test_an_unreachable_warehouse_does_not_stop_the_digest(loaded: sessionmaker[Session]) -> None:
    from datetime import UTC, datetime

    from bot.content import default_content
    from bot.scheduler import run_weekly_digest
    from bot.services.tips import subscribe
    from bot.store.models import Outbox

    with_queries(loaded, QUERIES)
    with loaded.begin() as session:
        org = current_org(session)
        assert org is not None
        subscribe(session, org, "console", "#cx", ("digest",), 1, NOW)
    nowhere = warehouse_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    report = pull_warehouse(loaded, nowhere, "2026-W47", Clock())
    assert report.stored == [] and len(report.failed) == 3  # each query says why, none raises
    clock = Clock(datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    assert run_weekly_digest(loaded, clock, default_content(), warehouse=nowhere) == 1
    assert count(loaded, Outbox, Outbox.topic == "digest:2026-W48") == 1


def test_a_move_without_an_interval_or_n_is_not_called_a_fall(loaded: sessionmaker[Session]) -> None:
    from bot.domain.kpi import Metric, Trend, from_aggregate, trend

    assert trend(from_aggregate(Metric.AHT, 5.01, None), from_aggregate(Metric.AHT, 5.0, None)) == Trend.UNCERTAIN
    assert trend(from_aggregate(Metric.FCR, 60.0, 4000), from_aggregate(Metric.FCR, 75.0, 4000)) == Trend.WORSE
    with loaded.begin() as session:
        org = current_org(session)
        assert org is not None
        aggregates = b"week,metric,stage,value\n2026-W46,aht,support,5.0\n2026-W47,aht,support,6.5\n"
        from bot.services.kpi_import import import_aggregates

        import_aggregates(session, org, aggregates, "a.csv", NOW)
    with loaded() as session:
        org = current_org(session)
        assert org is not None
        signals = TipService(session, org, default_catalogue(), default_tips(), NOW).signals()
    assert Signal.FALLING_KPI not in signals
