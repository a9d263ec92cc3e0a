"""Alembic environment for Klachtwijzer's storage, async-capable.

Normally used programmatically: `storage.db.migrate(url)` opens an async engine and hands its
(sync-facing) connection to Alembic through `config.attributes["connection"]`, following the
Alembic cookbook's "programmatic API use (connection sharing) with asyncio" recipe.

From the CLI the URL comes from `-x url=...`, `sqlalchemy.url` or `KLACHTWIJZER_DATABASE_URL`.
Logging is deliberately not configured here.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from storage.schema import metadata

config = context.config
target_metadata = metadata


def _url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("KLACHTWIJZER_DATABASE_URL")
    )
    if not url:
        raise RuntimeError(
            "no database URL: pass -x url=..., set sqlalchemy.url or KLACHTWIJZER_DATABASE_URL"
        )
    return url


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    from storage.db import create_engine  # same pragmas and file modes as the application

    engine = create_engine(_url(), pool=False)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
