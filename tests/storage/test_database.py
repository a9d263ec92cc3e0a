"""Database files, pragmas, encryption at rest, transactions and conversations."""

from __future__ import annotations

import asyncio
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from storage import (
    CaseRecord,
    Cipher,
    ConcurrentUpdateError,
    Database,
    DecryptionError,
    OutboxItem,
    StoredConversation,
    generate_key,
)
from storage.schema import cases, conversations, outbox

NAME = "Fatima Haddad-Zoubi"
T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def _new_conversation(db: Database, chat_id: str = "4242", **data: object) -> StoredConversation:
    async with db.unit_of_work() as uow:
        saved = await uow.conversations.save(
            StoredConversation(channel="telegram", chat_id=chat_id, state="ask_name", data=dict(data))
        )
        await uow.commit()
    return saved


@pytest.mark.sqlite_only
async def test_database_files_are_private(db: Database, db_path: Path) -> None:
    """The database, its -wal and -shm files are mode 0600 and the data directory 0700."""
    await _new_conversation(db, name=NAME)
    files = [db_path, db_path.with_name(db_path.name + "-wal"), db_path.with_name(db_path.name + "-shm")]
    assert [_mode(p) for p in files] + [_mode(db_path.parent)] == [0o600, 0o600, 0o600, 0o700]


async def test_existing_loose_permissions_are_tightened(tmp_path: Path, cipher: Cipher) -> None:
    """Opening a database file that is world-readable makes it 0600."""
    path = tmp_path / "old.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    database = await Database.open(f"sqlite+aiosqlite:///{path}", cipher)
    await database.close()
    assert _mode(path) == 0o600


@pytest.mark.sqlite_only
async def test_sqlite_pragmas_are_applied(db: Database) -> None:
    """Every connection runs WAL, synchronous=FULL, foreign keys, secure_delete, busy_timeout."""
    names = ["journal_mode", "synchronous", "foreign_keys", "secure_delete", "busy_timeout"]
    async with db.engine.connect() as conn:
        values = [(await conn.exec_driver_sql(f"PRAGMA {n}")).scalar() for n in names]
    assert values == ["wal", 2, 1, 1, 10000]


@pytest.mark.sqlite_only
async def test_personal_data_is_encrypted_at_rest(db: Database, db_path: Path) -> None:
    """A stored name appears nowhere in the SQLite file or WAL; the columns hold Fernet tokens."""
    conv = await _new_conversation(db, name=NAME, story=f"{NAME} was refused food")
    async with db.unit_of_work() as uow:
        await uow.cases.add(
            CaseRecord(
                reference="KW-2026-000001",
                conversation_id=conv.id,
                channel="telegram",
                kind="complaint",
                schema="1",
                language="nl",
                mailbox="klachten@example.org",
                payload={"client": {"name": NAME}},
                created_at=T0,
                updated_at=T0,
            )
        )
        await uow.outbox.add(
            OutboxItem(
                case_reference="KW-2026-000001",
                purpose="case",
                recipient="klachten@example.org",
                message_id="<1@klachtwijzer>",
                raw=f"Subject: complaint\r\n\r\nFrom {NAME}\r\n".encode(),
            )
        )
        await uow.commit()
    async with db.engine.connect() as conn:
        stored = (
            await conn.execute(
                select(conversations.c.data, cases.c.payload, outbox.c.raw).select_from(
                    conversations.join(cases, cases.c.conversation_id == conversations.c.id).join(
                        outbox, outbox.c.case_reference == cases.c.reference
                    )
                )
            )
        ).one()
    on_disk = b"".join(p.read_bytes() for p in db_path.parent.iterdir() if p.name.startswith(db_path.name))
    needles = [NAME.encode("utf-8"), NAME.encode("utf-16-le"), b"Haddad"]
    assert [n in on_disk for n in needles] + [bytes(v[:5]) for v in stored] == [False] * 3 + [b"gAAAA"] * 3


async def test_wrong_key_fails_clearly_on_read(db_url: str, db: Database) -> None:
    """Reading personal data with another key raises DecryptionError, not garbage."""
    await _new_conversation(db, name=NAME)
    other = await Database.open(db_url, Cipher([generate_key()]))
    try:
        async with other.unit_of_work(read_only=True) as uow:
            with pytest.raises(DecryptionError):
                await uow.conversations.get("telegram", "4242")
    finally:
        await other.close()


async def test_conversation_save_get_update_version(db: Database) -> None:
    """save inserts with version 1, updates bump the version, get decrypts the draft."""
    tricky = {
        "name": NAME,
        "nul": "a\x00b",
        "lone": "\udc80",
        "ar": "\u0645\u0631\u062d\u0628\u0627\u200f\u200d",
    }
    first = await _new_conversation(db, **tricky)
    async with db.unit_of_work() as uow:
        loaded = await uow.conversations.get("telegram", "4242")
        assert loaded is not None
        loaded.state = "ask_story"
        loaded.language = "ar"
        loaded.data["step"] = 2
        second = await uow.conversations.save(loaded)
        await uow.commit()
    async with db.unit_of_work(read_only=True) as uow:
        again = await uow.conversations.get("telegram", "4242")
        missing = await uow.conversations.get("whatsapp", "4242")
    assert again is not None
    assert (first.id, first.version, second.version) == (again.id, 1, 2)
    assert (again.state, again.language, again.data, again.version, missing) == (
        "ask_story",
        "ar",
        {**tricky, "step": 2},
        2,
        None,
    )


async def test_stale_version_is_refused(db: Database) -> None:
    """Saving a copy read before another save raises ConcurrentUpdateError."""
    stale = await _new_conversation(db)
    async with db.unit_of_work() as uow:
        await uow.conversations.save(stale)
        await uow.commit()
    async with db.unit_of_work() as uow:
        with pytest.raises(ConcurrentUpdateError):
            await uow.conversations.save(stale)


async def test_second_insert_for_same_chat_is_refused(db: Database) -> None:
    """Inserting a second conversation for the same channel and chat raises ConcurrentUpdateError."""
    await _new_conversation(db)
    with pytest.raises(ConcurrentUpdateError):
        await _new_conversation(db)


async def test_delete_conversation_unlinks_its_cases(db: Database) -> None:
    """delete removes the conversation and its cases keep existing with conversation_id NULL."""
    conv = await _new_conversation(db)
    assert conv.id is not None
    async with db.unit_of_work() as uow:
        await uow.cases.add(
            CaseRecord(
                reference="KW-2026-000009",
                conversation_id=conv.id,
                channel="telegram",
                kind="report",
                schema="1",
                language="uk",
                mailbox="meldingen@example.org",
            )
        )
        deleted = await uow.conversations.delete("telegram", "4242")
        deleted_again = await uow.conversations.delete("telegram", "4242")
        await uow.commit()
    async with db.unit_of_work(read_only=True) as uow:
        gone = await uow.conversations.get("telegram", "4242")
        case = await uow.cases.get("KW-2026-000009")
    assert case is not None
    assert (deleted, deleted_again, gone, case.conversation_id) == (True, False, None, None)


async def test_leaving_without_commit_rolls_back(db: Database) -> None:
    """A unit of work left without commit, or by an exception, stores nothing."""
    async with db.unit_of_work() as uow:
        await uow.conversations.save(StoredConversation(channel="telegram", chat_id="1", state="s"))
    with pytest.raises(RuntimeError, match="boom"):
        async with db.unit_of_work() as uow:
            await uow.conversations.save(StoredConversation(channel="telegram", chat_id="2", state="s"))
            raise RuntimeError("boom")
    async with db.unit_of_work(read_only=True) as uow:
        found = [await uow.conversations.get("telegram", c) for c in ("1", "2")]
    assert found == [None, None]


async def test_repositories_outside_the_block_are_refused(db: Database) -> None:
    """Using a unit of work before entering it raises RuntimeError."""
    with pytest.raises(RuntimeError, match="async with"):
        _ = db.unit_of_work().conversations


async def test_times_are_aware_utc_in_and_out(db: Database) -> None:
    """A +02:00 time comes back as the same instant in UTC; naive datetimes are refused."""
    cest = timezone(timedelta(hours=2))
    async with db.unit_of_work() as uow:
        await uow.audit.record(datetime(2026, 6, 1, 12, 0, tzinfo=cest), "system", "started")
        await uow.commit()
    async with db.unit_of_work() as uow:
        entries = await uow.audit.list()
        with pytest.raises(Exception, match="naive datetime"):
            await uow.audit.record(datetime(2026, 6, 1, 12, 0), "system", "naive")
    assert [e.at for e in entries] == [datetime(2026, 6, 1, 10, 0, tzinfo=UTC)]
    assert entries[0].at.tzinfo is UTC


async def test_concurrent_units_do_not_lose_an_update(db: Database) -> None:
    """Two concurrent read-modify-write units of work: the second waits, both increments land.

    On SQLite the second reads once the first has finished (they then share one durable COMMIT,
    storage/writer.py); on PostgreSQL it waits for the first's COMMIT (row lock).
    """
    await _new_conversation(db, n=0)
    events: list[str] = []

    async def increment(name: str, pause: float) -> None:
        async with db.unit_of_work() as uow:
            conv = await uow.conversations.get("telegram", "4242")
            assert conv is not None
            events.append(f"{name} read {conv.data['n']}")
            await asyncio.sleep(pause)
            conv.data["n"] += 1
            await uow.conversations.save(conv)
            await uow.commit()
            events.append(f"{name} committed")

    first = asyncio.create_task(increment("A", 0.3))
    await asyncio.sleep(0.05)  # A holds the write lock now
    await asyncio.gather(first, increment("B", 0))
    async with db.unit_of_work(read_only=True) as uow:
        final = await uow.conversations.get("telegram", "4242")
    assert final is not None
    assert (events[0], sorted(events[1:]), final.data, final.version) == (
        "A read 0",
        ["A committed", "B committed", "B read 1"],
        {"n": 2},
        3,
    )
    assert events.index("B read 1") > events.index("A read 0")


async def test_save_uses_the_clock(db_url: str, cipher: Cipher) -> None:
    """created_at/updated_at come from the Database's clock."""
    database = await Database.open(db_url, cipher, clock=lambda: T0)
    try:
        saved = await _new_conversation(database)
        async with database.unit_of_work(read_only=True) as uow:
            loaded = await uow.conversations.get("telegram", "4242")
    finally:
        await database.close()
    assert loaded is not None
    assert (saved.created_at, loaded.created_at, loaded.updated_at) == (T0, T0, T0)


async def test_open_without_migrate_leaves_database_empty(tmp_path: Path, cipher: Cipher) -> None:
    """migrate=False connects without creating tables."""
    database = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", cipher, migrate=False)
    try:
        async with database.engine.connect() as conn:
            tables = (
                (await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'")))
                .scalars()
                .all()
            )
    finally:
        await database.close()
    assert tables == []


async def test_errors_and_reprs_do_not_leak_personal_data(db: Database) -> None:
    """Database errors hide statement parameters and record reprs omit chat id and draft."""
    conv = StoredConversation(channel="telegram", chat_id="31612345678", state="s", data={"n": NAME})
    async with db.unit_of_work() as uow:
        await uow.outbox.add(OutboxItem(purpose="case", recipient="a@example.org", message_id="<x>"))
        with pytest.raises(IntegrityError) as info:
            await uow.outbox.add(
                OutboxItem(purpose="case", recipient="a@example.org", message_id="<x>", raw=NAME.encode())
            )
    message = str(info.value)
    assert ("SQL parameters hidden" in message, "<x>" in message) == (True, False)
    assert ("31612345678" in repr(conv), NAME in repr(conv)) == (False, False)


async def test_exclusive_is_held_by_one_process_at_a_time(db: Database, db_url: str,
                                                          cipher: Cipher) -> None:
    """Of two processes' databases on one store, one holds a name; the other after it ends."""
    other = await Database.open(db_url, cipher)
    try:
        async with db.exclusive("scheduler") as first:
            async with other.exclusive("scheduler") as second:
                pass
            async with other.exclusive("another") as unrelated:
                pass
        async with other.exclusive("scheduler") as after:
            pass
    finally:
        await other.close()
    assert (first, second, unrelated, after) == (True, False, True, True)
