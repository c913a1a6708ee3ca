"""Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from bot.store.db import upgrade
from bot.store.models import Base


def test_upgrade_matches_the_models_and_is_repeatable(bare_engine: Engine) -> None:
    upgrade(bare_engine)
    upgrade(bare_engine)  # a second run is a no-op, as on every `cxbot run`
    with bare_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
        tables = set(inspect(connection).get_table_names())
    assert differences == []
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
