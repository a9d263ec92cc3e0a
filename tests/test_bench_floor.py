"""The bench's floor (bench/floor.py): one durable transaction per message, grouped when concurrent."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bench.floor import DurableStore


async def test_every_step_is_on_disk_once_committed(tmp_path: Path) -> None:
    """Concurrent steps of 8 chats all commit; the file holds each update id once and one row per chat."""
    path = tmp_path / "floor.sqlite3"
    store = await DurableStore.open(path)
    try:
        await asyncio.gather(*(store.step(f"chat{i % 8}", f"u{i}") for i in range(40)))
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        updates = db.execute("SELECT COUNT(*) FROM inbound_updates").fetchone()[0]
        versions = db.execute("SELECT SUM(version), COUNT(*) FROM conversations").fetchone()
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    assert (updates, tuple(versions), mode) == (40, (40, 8), "wal")


async def test_a_repeated_update_id_fails_its_step_and_only_its_batch(tmp_path: Path) -> None:
    """An update id seen before is refused, as the bot's inbound table refuses it; later steps go on."""
    store = await DurableStore.open(tmp_path / "floor.sqlite3")
    try:
        await store.step("chat", "u1")
        with pytest.raises(sqlite3.IntegrityError):
            await store.step("chat", "u1")
        await store.step("chat", "u2")
    finally:
        await store.close()
