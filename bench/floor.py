"""The floor of any bot that keeps a conversation: one durable transaction per message.

`DurableStore.step` is what the least stateful bot that keeps its promises must do before it
answers: record the update id once and rewrite the chat's row (a ~1 KB blob), in one transaction
(BEGIN IMMEDIATE ... COMMIT) on one aiosqlite connection, with the app's pragmas (WAL,
synchronous=FULL) and the schema of `bench.raw`. The "durable echo" (bench/whatsapp.py) adds it to
the webhook echo: bot / durable echo is then what Klachtwijzer costs above that floor, and durable
echo / echo what durability alone costs.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite

from bench.raw import SCHEMA, app_pragmas


class DurableStore:
    """One SQLite file, one connection; `step` is one message's durable transaction. Steps that
    arrive while a transaction commits share the next one (group commit, as storage/writer.py
    does for the bot), so the floor is not raised by one fsync per message."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection
        self._waiting: list[tuple[str, str, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: Path) -> DurableStore:
        """A new store in `path`, which must not exist yet."""
        connection = await aiosqlite.connect(path, isolation_level=None)
        for pragma in app_pragmas():
            await (await connection.execute(pragma)).fetchall()
        for statement in SCHEMA:
            await connection.execute(statement)
        return cls(connection)

    async def step(self, chat_id: str, update_id: str) -> None:
        """Record `update_id` once and rewrite `chat_id`'s row; returns once committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((chat_id, update_id, done))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    await self._commit([(chat, update) for chat, update, _ in batch])
                except Exception as exc:
                    for _, _, done in batch:
                        done.set_exception(exc)
                else:
                    for _, _, done in batch:
                        done.set_result(None)
        finally:
            self._flusher = None

    async def _commit(self, steps: list[tuple[str, str]]) -> None:
        now = datetime.now(UTC).isoformat(" ")
        await self._db.execute("BEGIN IMMEDIATE")
        try:
            for chat_id, update_id in steps:
                await self._db.execute(
                    "INSERT INTO inbound_updates (channel, update_id, received_at) VALUES "
                    "('whatsapp', ?, ?)", (update_id, now))
                await self._db.execute(
                    "INSERT INTO conversations (channel, chat_id, state, language, data, "
                    "version, created_at, updated_at) VALUES ('whatsapp', ?, 'start', 'nl', ?, 1, "
                    "?, ?) ON CONFLICT (channel, chat_id) DO UPDATE SET data = excluded.data, "
                    "version = conversations.version + 1, updated_at = excluded.updated_at",
                    (chat_id, os.urandom(1024), now, now))
            await self._db.execute("COMMIT")
        except BaseException:
            await self._db.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        await self._db.close()
