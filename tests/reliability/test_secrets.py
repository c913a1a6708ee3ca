"""Security: no credential in a URL reaches a log or an error line. One function masks them
(``bot.store.db.safe_url``), for every URL cxbot prints: the database, the warehouse,
SLACK_API_BASE_URL, OPENAI_BASE_URL."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import Engine

from bot.store.db import MASK, safe_url

SECRET = "s3cr3t-Val_ue"  # in every URL below wherever a credential goes; never in the output

SHAPES = [
    # userinfo
    f"postgresql://bob:{SECRET}@db.example.com:5432/cx",
    f"postgresql+psycopg://bob:{SECRET}@db.example.com/cx?sslmode=require",
    f"postgres://bob:{SECRET}@[::1]:5432/cx",
    f"postgresql://bob:p%40ss{SECRET}@db/cx",  # an encoded @ in the password
    f"postgresql://bob:p@ss{SECRET}@db/cx",  # an unencoded one
    f"postgresql://bob:pa/ss{SECRET}@db/cx",  # an unencoded slash
    f"postgresql://bob:{SECRET}/x@db:5432/cx?sslmode=require",
    f"mysql+pymysql://root:{SECRET}@localhost/cx",
    f"https://{SECRET}@api.example.com/v1",  # a token as the user of an HTTP URL
    f"https://user:{SECRET}@slack.example.com/api/",
    # query parameters, in any case and spelling
    f"postgresql://bob@db/cx?password={SECRET}",
    f"postgresql://bob@db/cx?sslmode=require&PASSWORD={SECRET}&application_name=cx",
    f"postgresql://db/cx?passwd={SECRET}",
    f"postgresql://db/cx?pwd={SECRET}",
    f"postgresql://db/cx?sslpassword={SECRET}",
    f"postgresql://db/cx?user=bob&password={SECRET}&password={SECRET}",
    f"https://api.example.com/v1?api_key={SECRET}",
    f"https://api.example.com/v1?apikey={SECRET}&model=x",
    f"https://api.example.com/v1?key={SECRET}",
    f"https://api.example.com/v1?access_token={SECRET}",
    f"https://api.example.com/v1?token={SECRET}",
    f"https://api.example.com/v1?client_secret={SECRET}",
    f"https://api.example.com/v1?auth={SECRET}",
    f"https://api.example.com/v1?Authorization=Bearer%20{SECRET}",
    f"https://api.example.com/v1?X-Amz-Signature={SECRET}&X-Amz-Credential={SECRET}",
    f"https://api.example.com/v1?sig={SECRET}",
    f"https://api.example.com/v1?pass%77ord={SECRET}",  # an encoded name
    f"https://api.example.com/v1;token={SECRET}",
    # fragments
    f"https://api.example.com/v1#{SECRET}",
    f"https://api.example.com/v1#access_token={SECRET}&x=1",
    f"postgresql://db/cx?application_name=cx%23{SECRET}",  # SQLAlchemy's rendering of a fragment
    # tokens where a path goes
    f"https://slack.example.com/api/xoxb-{SECRET}/",
    f"https://openai.example.com/v1/sk-{SECRET}",
    # not URLs at all, or broken ones
    f"bob:{SECRET}@db",
    f"postgresql://bob:{SECRET}@[db/cx",
    f"://:{SECRET}@",
]


@pytest.mark.parametrize("url", SHAPES)
def test_safe_url_masks_every_credential(url: str) -> None:
    shown = safe_url(url)
    assert SECRET not in shown and SECRET.casefold() not in shown.casefold(), shown
    assert "Val_ue" not in shown, shown  # not even a part of it


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite:///cxbot.db", "sqlite:///cxbot.db"),
        ("sqlite:////var/lib/cxbot/cxbot.db", "sqlite:////var/lib/cxbot/cxbot.db"),
        (
            "postgresql+psycopg://cx@db.example.com:5432/cx?sslmode=require&application_name=bot",
            "postgresql+psycopg://cx@db.example.com:5432/cx?sslmode=require&application_name=bot",
        ),
        ("postgresql://bob:pw@db/cx?password=pw", f"postgresql://bob:{MASK}@db/cx?password={MASK}"),
        ("https://slack.com/api/", "https://slack.com/api/"),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
        ("https://discord.example.com/api/users/@me", "https://discord.example.com/api/users/@me"),
    ],
)
def test_safe_url_keeps_what_helps_find_the_server(url: str, shown: str) -> None:
    assert safe_url(url) == shown


def test_safe_url_is_the_only_masking_function() -> None:
    """No code outside ``safe_url`` renders a URL with SQLAlchemy's own masking (which leaves
    ``?password=`` in clear) or has a masking function of its own."""
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for path in [*(root / "bot").rglob("*.py"), *(root / "adapters").rglob("*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        allowed: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == "safe_url" and path.name == "db.py":
                allowed = {id(n) for n in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in allowed:
                continue
            masking = not (
                isinstance(node, ast.keyword) and isinstance(node.value, ast.Constant) and not node.value.value
            )
            if isinstance(node, ast.keyword) and node.arg == "hide_password" and masking:
                offenders.append(f"{path.relative_to(root)}:{node.value.lineno}")
            if (
                isinstance(node, ast.FunctionDef)
                and "url" in node.name
                and ("safe" in node.name or "mask" in node.name)
            ):
                offenders.append(f"{path.relative_to(root)}:{node.lineno} {node.name}")
    assert offenders == [], offenders


def test_an_unreachable_database_url_with_a_password_parameter_prints_no_secret(tmp_path: Path) -> None:
    from tests.test_cli import CXBOT

    url = (
        f"postgresql://bob:user-{SECRET}@127.0.0.1:1/cx?password=query-{SECRET}"
        f"&sslpassword=ssl-{SECRET}&application_name=cx"
    )
    env = cli_env_without_database()
    env.update(CXBOT_DATABASE_URL=url, CXBOT_DATABASE_WAIT="1", CXBOT_LOG_LEVEL="DEBUG")
    run = subprocess.run([CXBOT, "db", "upgrade"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert run.returncode == 1
    assert "127.0.0.1:1" in run.stderr  # the error says where it looked…
    assert SECRET not in run.stdout + run.stderr, run.stderr  # …and nothing to get in


def cli_env_without_database() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("CXBOT_", "SLACK_", "DISCORD_", "OPENAI_"))}


def test_a_refused_warehouse_url_prints_no_secret(bare_engine: Engine, tmp_path: Path) -> None:
    from tests.test_console import cli_env, run_cxbot

    own = cli_env(bare_engine, tmp_path)["CXBOT_DATABASE_URL"]
    separator = "&" if "?" in own else "?"
    warehouse = own + f"{separator}password={SECRET}" if bare_engine.dialect.name == "postgresql" else own
    run = run_cxbot(bare_engine, tmp_path, "", "kpi", "pull", env={"CXBOT_WAREHOUSE_URL": warehouse})
    assert run.returncode == 1 and "refused" in run.stderr, run.stderr
    assert SECRET not in run.stdout + run.stderr


@pytest.mark.parametrize(
    "warehouse",
    [
        f"mysql://reader:{SECRET}@127.0.0.1/warehouse",  # a dialect SQLAlchemy knows, its driver not installed
        f"mssql+pyodbc://reader:{SECRET}@127.0.0.1/warehouse",
        f"nosuchdb://reader:{SECRET}@127.0.0.1/warehouse",
    ],
)
def test_a_warehouse_url_cxbot_cannot_open_is_one_line_without_its_secret(
    bare_engine: Engine, tmp_path: Path, warehouse: str
) -> None:
    from tests.test_console import run_cxbot

    run = run_cxbot(bare_engine, tmp_path, "", "kpi", "pull", env={"CXBOT_WAREHOUSE_URL": warehouse})
    assert run.returncode == 1, run.stderr
    assert run.stderr.strip().count("\n") == 0 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith("cxbot: CXBOT_WAREHOUSE_URL") and SECRET not in run.stdout + run.stderr
