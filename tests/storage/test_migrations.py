"""The Alembic migrations build exactly storage.schema."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from storage import Database, migrate
from storage.schema import metadata


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_migration_equals_schema(db: Database) -> None:
    """compare_metadata finds no difference between the migrated database and schema.py."""
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == []


async def test_migrate_is_idempotent_and_at_head(db: Database, db_url: str) -> None:
    """migrate(url) on a migrated database changes nothing and leaves it at the head revision."""
    from alembic.script import ScriptDirectory

    from storage.db import alembic_config

    await migrate(db_url)
    async with db.engine.connect() as conn:
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        tables = await conn.run_sync(lambda c: sorted(inspect(c).get_table_names()))
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert (version, tables) == (head, sorted(["alembic_version", *metadata.tables]))


async def test_processes_that_start_together_all_migrate(db_url: str) -> None:
    """Three processes migrating one empty database at the same moment: all end at head."""
    import asyncio

    results = await asyncio.gather(*(migrate(db_url) for _ in range(3)), return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
