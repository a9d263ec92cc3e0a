"""Shared fixtures: a real SQLite database file under pytest's tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import Cipher, Database, generate_key


@pytest.fixture
def cipher() -> Cipher:
    return Cipher([generate_key()])


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "klachtwijzer.db"


@pytest.fixture
def db_url(database_url: str) -> str:
    """The test's own database (tests/conftest.py: SQLite file, or PostgreSQL in CI's second run)."""
    return database_url


@pytest.fixture
async def db(db_url: str, cipher: Cipher) -> AsyncIterator[Database]:
    database = await Database.open(db_url, cipher)
    try:
        yield database
    finally:
        await database.close()
