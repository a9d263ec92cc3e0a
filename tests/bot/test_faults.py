"""Faults at the service: redelivered updates, concurrent duplicates, private files on disk."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from bot.root.app import App
from flows.model import Choice, Start, Text


async def to_summary(app: App, chat: str) -> None:
    """Drive one client to the summary of a formal complaint (one update id per step)."""
    steps = [Start("en"), Choice("lang_en"), Choice("help"), Choice("skip_to_complaint"),
             Text("Client"), Choice("staff_unknown"),
             Text("It went wrong."), Choice("when_unknown"), Choice("tried_nothing"),
             Choice("contact_chat")]
    for number, event in enumerate(steps):
        await app.service.handle("telegram", chat, event, update_id=f"{chat}-{number}")


async def counts(app: App) -> tuple[int, int]:
    """(outbox mails, cases) of client c1."""
    async with app.db.unit_of_work(read_only=True) as uow:
        outbox = await uow.outbox.count_by_status()
    return sum(outbox.values()), len(await _cases(app))


async def _cases(app: App) -> list[Any]:
    async with app.db.unit_of_work(read_only=True) as uow:
        stored = await uow.conversations.get("telegram", "c1")
        assert stored is not None and stored.id is not None
        return await uow.cases.for_conversation(stored.id)


async def test_same_update_five_times_in_a_row(app_factory: Any, settings_for: Any) -> None:
    """The same confirming update delivered 5 times registers one case and one mail."""
    app: App = await app_factory(settings_for())
    await to_summary(app, "c1")
    replies = [await app.service.handle("telegram", "c1", Choice("confirm"), update_id="confirm-1")
               for _ in range(5)]
    assert [r.duplicate for r in replies] == [False, True, True, True, True]
    assert await counts(app) == (1, 1)


async def test_same_update_ten_times_at_once(app_factory: Any, settings_for: Any) -> None:
    """The same confirming update delivered 10 times concurrently has exactly one effect."""
    app: App = await app_factory(settings_for())
    await to_summary(app, "c1")
    replies = await asyncio.gather(*(
        app.service.handle("telegram", "c1", Choice("confirm"), update_id="confirm-1")
        for _ in range(10)))
    assert sorted(r.duplicate for r in replies) == [False] + [True] * 9
    assert await counts(app) == (1, 1)


async def test_two_quick_taps_submit_once(app_factory: Any, settings_for: Any) -> None:
    """Two different updates pressing 'Send' at once (a double tap) submit once; the second is stale."""
    app: App = await app_factory(settings_for())
    await to_summary(app, "c1")
    _first, second = await asyncio.gather(
        app.service.handle("telegram", "c1", Choice("confirm"), update_id="tap-1"),
        app.service.handle("telegram", "c1", Choice("confirm"), update_id="tap-2"))
    assert await counts(app) == (1, 1)
    assert "no longer valid" in second.messages[0].text


@pytest.mark.sqlite_only
async def test_database_key_and_files_are_private(app_factory: Any, settings_for: Any) -> None:
    """Database, WAL, key and attachment files are created with mode 0600."""
    app: App = await app_factory(settings_for())
    await to_summary(app, "c1")
    ref = await app.files.save(b"\x89PNG fake photo")
    data_dir: Path = app.settings.data_dir
    paths = [data_dir / "klachtwijzer.db", data_dir / "klachtwijzer.db-wal", data_dir / "secret.key",
             data_dir / "files" / ref]
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in paths} == {
        p.name: "0o600" for p in paths}
    assert await app.files.read(ref) == b"\x89PNG fake photo"
    assert b"fake photo" not in (data_dir / "files" / ref).read_bytes()


@pytest.mark.slow
@pytest.mark.sqlite_only
async def test_write_lock_held_for_ten_seconds(app_factory: Any, settings_for: Any) -> None:
    """Another process holds the SQLite write lock for 10 s: the bot waits, then answers; nothing lost."""
    app: App = await app_factory(settings_for())
    await to_summary(app, "c1")
    path = app.settings.data_dir / "klachtwijzer.db"
    locked = asyncio.Event()

    def hold_lock() -> None:
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            loop.call_soon_threadsafe(locked.set)
            time.sleep(10)
            db.execute("COMMIT")
        finally:
            db.close()

    loop = asyncio.get_running_loop()
    holder = asyncio.create_task(asyncio.to_thread(hold_lock))
    await locked.wait()
    started = time.monotonic()
    reply = await app.service.handle("telegram", "c1", Choice("confirm"), update_id="confirm-1")
    waited = time.monotonic() - started
    await holder
    assert reply.duplicate is False and "KW-2026-000001" in "\n".join(m.text for m in reply.messages)
    assert await counts(app) == (1, 1)
    print(f"the bot waited {waited:.1f} s for the lock")
