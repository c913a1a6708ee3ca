"""Alembic environment: runs against the engine cxbot hands it (see bot.store.db.upgrade)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from bot.store.models import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # pragma: no cover - only when someone runs the alembic CLI directly
    from bot.config import Settings
    from bot.store.db import make_engine

    engine = make_engine(Settings().database_url)

# Several processes may start at once (bot and clock, or scaled-out bots). On PostgreSQL
# they take turns through a transaction-scoped advisory lock, and the later ones find
# nothing left to do; SQLite serialises writers by itself.
MIGRATION_LOCK = 0x6378626F74  # "cxbot"

with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
