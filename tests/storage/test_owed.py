"""Messages owed to people (issue 10): the owed repository on SQLite and on PostgreSQL (CI)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from storage import Database
from storage.schema import owed_messages

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
SECRET = "Mijn begeleider schreeuwde tegen mij"


def _body(n: int, chat: str = "1") -> dict[str, object]:
    return {"text": f"{SECRET} {chat}/{n}", "rtl": False, "state": None, "buttons": []}


async def _add(db: Database, channel: str, chat_id: str, bodies: list[dict[str, object]]) -> list[int]:
    async with db.unit_of_work() as uow:
        ids = await uow.owed.add(channel, chat_id, bodies, T0)
        await uow.commit()
    return ids


async def test_add_numbers_each_chat_in_order(db: Database) -> None:
    """Rows of one chat get consecutive seq numbers, continuing after earlier ones; chats are apart."""
    first = await _add(db, "telegram", "1", [_body(1), _body(2)])
    await _add(db, "telegram", "2", [_body(1, "2")])
    second = await _add(db, "telegram", "1", [_body(3)])
    async with db.unit_of_work(read_only=True) as uow:
        rows = await uow.owed.unsent_for_chat("telegram", "1")
    assert [r.id for r in rows] == [*first, *second]
    assert [r.seq for r in rows] == [1, 2, 3]
    assert [r.body["text"] for r in rows] == [f"{SECRET} 1/{n}" for n in (1, 2, 3)]


async def test_unsent_for_chat_reads_only_that_chat_unsent(db: Database) -> None:
    """The per-chat query skips sent rows, other chats and the same chat id on another channel."""
    ids = await _add(db, "whatsapp", "3161", [_body(1), _body(2), _body(3)])
    await _add(db, "whatsapp", "3162", [_body(1, "3162")])
    await _add(db, "telegram", "3161", [_body(1, "tg")])
    async with db.unit_of_work() as uow:
        assert await uow.owed.mark_sent([ids[0]], T0) == 1
        await uow.commit()
    async with db.unit_of_work(read_only=True) as uow:
        rows = await uow.owed.unsent_for_chat("whatsapp", "3161")
        nobody = await uow.owed.unsent_for_chat("whatsapp", "3169")
    assert [(r.channel, r.chat_id, r.seq) for r in rows] == [("whatsapp", "3161", 2),
                                                             ("whatsapp", "3161", 3)]
    assert nobody == []


async def test_unsent_lists_a_channel_per_chat_in_order(db: Database) -> None:
    """At start-up: every unsent row of the channel, grouped by chat, each chat in seq order."""
    await _add(db, "telegram", "9", [_body(1, "9")])
    await _add(db, "telegram", "10", [_body(1, "10"), _body(2, "10")])
    await _add(db, "telegram", "9", [_body(2, "9")])
    await _add(db, "whatsapp", "9", [_body(1, "wa")])
    async with db.unit_of_work(read_only=True) as uow:
        rows = await uow.owed.unsent("telegram")
    assert [(r.chat_id, r.seq) for r in rows] == [("10", 1), ("10", 2), ("9", 1), ("9", 2)]


async def test_mark_sent_drops_the_content_once(db: Database) -> None:
    """Marked sent: sent_at set, body gone; marking again (a repeat after a restart) changes nothing."""
    ids = await _add(db, "telegram", "1", [_body(1), _body(2)])
    async with db.unit_of_work() as uow:
        assert await uow.owed.mark_sent(ids, T0) == 2
        assert await uow.owed.mark_sent(ids, T0 + timedelta(seconds=1)) == 0
        assert await uow.owed.mark_sent([], T0) == 0
        await uow.commit()
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(owed_messages.c.body, owed_messages.c.sent_at))).all()
    assert [(body, sent_at is not None) for body, sent_at in rows] == [(None, True), (None, True)]
    async with db.unit_of_work(read_only=True) as uow:
        assert await uow.owed.unsent_for_chat("telegram", "1") == []


async def test_content_is_encrypted_at_rest(db: Database) -> None:
    """The stored body is ciphertext: the text never appears in the table."""
    await _add(db, "whatsapp", "3161", [_body(1)])
    async with db.engine.connect() as conn:
        stored = (await conn.execute(select(owed_messages.c.body))).scalar_one()
    assert SECRET.encode() not in stored


async def test_rolled_back_rows_are_not_owed(db: Database) -> None:
    """Rows added in a unit of work that does not commit are gone with it."""
    async with db.unit_of_work() as uow:
        await uow.owed.add("telegram", "1", [_body(1)], T0)
    async with db.unit_of_work(read_only=True) as uow:
        assert await uow.owed.unsent("telegram") == []


async def test_prune_forgets_only_old_sent_rows(db: Database) -> None:
    """prune deletes sent rows older than the cut-off and never an unsent one."""
    ids = await _add(db, "telegram", "1", [_body(1), _body(2), _body(3)])
    async with db.unit_of_work() as uow:
        await uow.owed.mark_sent([ids[0]], T0)
        await uow.owed.mark_sent([ids[1]], T0 + timedelta(days=10))
        assert await uow.owed.prune(T0 + timedelta(days=1)) == 1
        await uow.commit()
    async with db.engine.connect() as conn:
        left = (await conn.execute(select(owed_messages.c.seq).order_by(owed_messages.c.seq))).all()
    assert [row.seq for row in left] == [2, 3]


@pytest.mark.sqlite_only
async def test_per_chat_query_uses_the_partial_index(db: Database) -> None:
    """SQLite plans the per-chat query on ix_owed_messages_unsent_chat, not a table scan."""
    from storage.owed import _UNSENT_FOR_CHAT

    async with db.engine.connect() as conn:
        sql = str(_UNSENT_FOR_CHAT.compile(conn.engine))
        sql = sql.replace("?", "'whatsapp'", 1).replace("?", "'3161'", 1)
        plan = " ".join(str(row[-1]) for row in (
            await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))).all())
    assert "ix_owed_messages_unsent_chat" in plan, plan
