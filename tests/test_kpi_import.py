"""Importing KPI numbers from CSV: valid files, idempotence, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.services.journey import current_org
from bot.services.kpi_import import ImportFileError, ImportResult, import_aggregates, import_answers
from bot.store.models import KpiValue, SurveyResponse
from tests.conftest import NOW
from tests.test_cli import cxbot
from tests.test_console import cli_env

GOOD = """answered_at,metric,score,stage,touchpoint,id
2026-11-23T09:15:00,nps,9,usage,monthly-invoice,r1
2026-11-23T10:00:00+01:00,csat,4,support,chat,r2
2026-11-29T23:30:00,ces,6,support,,r3
2026-11-29T23:30:00Z,nps,3,purchase,,r4
"""


def answers(loaded: sessionmaker[Session], text: str | bytes, skip_invalid: bool = False) -> ImportResult:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    with loaded.begin() as session:
        org = current_org(session)
        assert org is not None
        result = import_answers(session, org, raw, "test.csv", skip_invalid=skip_invalid)
        if result.refused:
            session.rollback()
        return result


def stored(loaded: sessionmaker[Session]) -> list[tuple[str, int, str]]:
    with loaded() as session:
        return list(
            session.execute(
                select(SurveyResponse.metric, SurveyResponse.score, SurveyResponse.iso_week).order_by(SurveyResponse.id)
            ).all()
        )


def test_a_good_file_imports_once(loaded: sessionmaker[Session]) -> None:
    first = answers(loaded, GOOD)
    assert (first.rows, first.imported, first.already_there, first.errors) == (4, 4, 0, [])
    # Without an offset the time is Stockholm's: Sunday 23:30 there is still week 48; 23:30 UTC
    # is Monday 00:30 in Stockholm, week 49.
    assert stored(loaded) == [
        ("nps", 9, "2026-W48"),
        ("csat", 4, "2026-W48"),
        ("ces", 6, "2026-W48"),
        ("nps", 3, "2026-W49"),
    ]
    again = answers(loaded, GOOD)
    assert (again.imported, again.already_there) == (0, 4)


def test_rows_without_an_id_are_known_by_their_content(loaded: sessionmaker[Session]) -> None:
    text = "answered_at,metric,score,stage\n2026-11-23T09:15:00,nps,9,usage\n2026-11-23T09:16:00,nps,9,usage\n"
    assert answers(loaded, text).imported == 2
    assert answers(loaded, text).imported == 0


BAD_ROWS = """answered_at,metric,score,stage,touchpoint
2026-11-23T09:15:00,nps,11,usage,
2026-11-23T09:15:00,csat,0,usage,
yesterday,nps,9,usage,
2026-11-23T09:15:00,happiness,9,usage,
2026-11-23T09:15:00,churn,2,usage,
2026-11-23T09:15:00,nps,nine,usage,
2026-11-23T09:15:00,nps,9,mars,
2026-11-23T09:15:00,nps,9,usage,teleporter
2026-11-23T09:15:00,nps,9,usage,chat
2026-11-23T09:15:00,nps,9
2026-11-23T09:15:00,nps,10,usage,
"""


def test_every_invalid_row_is_reported_and_by_default_nothing_is_imported(loaded: sessionmaker[Session]) -> None:
    result = answers(loaded, BAD_ROWS)
    assert result.refused
    assert [(e.line, e.reason) for e in result.errors] == [
        (2, "nps score 11 is outside 0–10"),
        (3, "csat score 0 is outside 1–5"),
        (4, "answered_at 'yesterday' is not an ISO 8601 time"),
        (5, "unknown metric 'happiness'; answers are nps, csat or ces"),
        (6, "churn arrives aggregated; use --aggregates"),
        (7, "score 'nine' is not a whole number"),
        (8, "unknown stage 'mars'"),
        (9, "unknown touchpoint 'teleporter'"),
        (10, "touchpoint 'chat' is not in stage 'usage'"),
        (11, "3 fields; the header has 5"),
    ]
    assert stored(loaded) == []
    skipping = answers(loaded, BAD_ROWS, skip_invalid=True)
    assert (skipping.imported, len(skipping.errors)) == (1, 10)
    assert stored(loaded) == [("nps", 10, "2026-W48")]


@pytest.mark.parametrize(
    ("raw", "line", "reason"),
    [
        (b"", 1, "the file is empty"),
        (b"  \n\n", 1, "the file is empty"),
        (b"answered_at,metric,score,stage\n2026-11-23T09:15:00,nps,9,k\xf6p\n", 2, "the file is not valid UTF-8"),
        (
            b"when,metric,score,stage,colour\n",
            1,
            "wrong columns (missing answered_at; unknown when, colour); "
            "expected answered_at,metric,score,stage[,touchpoint][,id]",
        ),
        (b'answered_at,metric,score,stage\n"2026-11-23,nps,9,usage\n', 2, "malformed CSV: unexpected end of data"),
    ],
)
def test_files_that_cannot_be_read(loaded: sessionmaker[Session], raw: bytes, line: int, reason: str) -> None:
    with pytest.raises(ImportFileError) as caught:
        answers(loaded, raw)
    assert (caught.value.line, caught.value.reason) == (line, reason)


def test_a_bom_is_fine(loaded: sessionmaker[Session]) -> None:
    assert answers(loaded, "\ufeff" + GOOD).imported == 4


def test_aggregates_upsert_per_stage_and_week(loaded: sessionmaker[Session]) -> None:
    text = (
        "week,metric,stage,value,n\n"
        "2026-W47,churn,usage,1.4,5200\n2026-W47,fcr,support,71.5,\n2026-W53,aht,support,6.2,310\n"
    )
    for value in ("1.4", "1.1"):
        with loaded.begin() as session:
            org = current_org(session)
            assert org is not None
            result = import_aggregates(session, org, text.replace("1.4", value).encode(), "agg.csv", NOW)
            assert (result.imported, result.errors) == (3, [])
    with loaded() as session:
        rows = session.execute(
            select(KpiValue.metric, KpiValue.iso_week, KpiValue.value, KpiValue.n).order_by(KpiValue.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("churn", "2026-W47", 1.1, 5200),
        ("fcr", "2026-W47", 71.5, None),
        ("aht", "2026-W53", 6.2, 310),
    ]


def test_bad_aggregates(loaded: sessionmaker[Session]) -> None:
    text = (
        "week,metric,stage,value,n\n2026-W54,churn,usage,1,\n2026-W47,mood,usage,1,\n"
        "2026-W47,churn,mars,1,\n2026-W47,churn,usage,lots,\n2026-W47,churn,usage,1,-3\n"
    )
    with loaded.begin() as session:
        org = current_org(session)
        assert org is not None
        result = import_aggregates(session, org, text.encode(), "agg.csv", NOW)
    assert [(e.line, e.reason) for e in result.errors] == [
        (2, "2026 has weeks 1 to 53; there is no 2026-W54"),
        (3, "unknown metric 'mood'; one of nps, csat, ces, fcr, churn, aht"),
        (4, "unknown stage 'mars'"),
        (5, "value 'lots' is not a number"),
        (6, "n '-3' is not a whole number"),
    ]
    assert result.refused
    with loaded() as session:
        assert session.scalar(select(func.count()).select_from(KpiValue)) == 0


def test_the_command(bare_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(bare_engine, tmp_path)
    assert cxbot("demo", env=env, cwd=tmp_path).returncode == 0
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(GOOD, encoding="utf-8")
    bad.write_text(BAD_ROWS, encoding="utf-8")
    first = cxbot("kpi", "import", str(good), env=env, cwd=tmp_path)
    assert first.returncode == 0 and first.stdout.strip() == f"{good}: imported 4 answers (0 already there)."
    again = cxbot("kpi", "import", str(good), env=env, cwd=tmp_path)
    assert again.stdout.strip() == f"{good}: imported 0 answers (4 already there)."
    refused = cxbot("kpi", "import", str(bad), env=env, cwd=tmp_path)
    assert refused.returncode == 1
    assert f"{bad}:2: nps score 11 is outside 0–10" in refused.stderr
    assert refused.stderr.strip().endswith(
        "10 invalid row(s); nothing was imported (use --skip-invalid to import the rest)"
    )
    skipped = cxbot("kpi", "import", str(bad), "--skip-invalid", env=env, cwd=tmp_path)
    assert skipped.returncode == 0 and skipped.stdout.strip().endswith(
        "imported 1 answers (0 already there), 10 invalid row(s) skipped."
    )
    missing = cxbot("kpi", "import", str(tmp_path / "nope.csv"), env=env, cwd=tmp_path)
    assert (
        missing.returncode == 1
        and missing.stderr.strip() == f"cxbot: {tmp_path / 'nope.csv'}: cannot read the file: No such file or directory"
    )
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"answered_at,metric,score,stage\n2026-11-23T09:15:00,nps,9,k\xf6p\n")
    assert (
        cxbot("kpi", "import", str(latin), env=env, cwd=tmp_path).stderr.strip()
        == f"cxbot: {latin}:2: the file is not valid UTF-8"
    )
    assert "Traceback" not in refused.stderr + skipped.stderr + missing.stderr


def test_the_command_says_which_figures_replace_and_which_answers_hide(bare_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The demo has NPS answers for loyalty every week: an NPS figure for last week is stored
    but not shown, and the output says so; churn has no answers and is shown."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from bot.domain.weeks import iso_week, previous_week

    env = cli_env(bare_engine, tmp_path)
    assert cxbot("demo", env=env, cwd=tmp_path).returncode == 0
    zone = ZoneInfo("Europe/Stockholm")
    week = previous_week(iso_week(datetime.now(UTC), zone), zone)
    figures = tmp_path / "figures.csv"
    figures.write_text(f"week,metric,stage,value,n\n{week},nps,loyalty,12,\n{week},churn,loyalty,1.3,900\n")
    first = cxbot("kpi", "import", str(figures), "--aggregates", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.strip().splitlines()
    # The demo has churn figures for every complete week: this one replaces it.
    assert lines[0] == f"{figures}: imported 2 figures, 1 of them replacing an earlier figure for their week."
    assert len(lines) == 2 and lines[1].startswith(f"{figures}:2: stored but not shown: ")
    assert lines[1].endswith(
        f"survey answers give loyalty's nps for {week}, and answers take precedence over an imported figure"
    )
    again = cxbot("kpi", "import", str(figures), "--aggregates", env=env, cwd=tmp_path)
    assert again.stdout.strip().splitlines()[0] == (
        f"{figures}: imported 2 figures, 2 of them replacing an earlier figure for their week."
    )
