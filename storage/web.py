"""The web chat's devices and return codes (issue 13).

A browser keeps a random conversation token; only its SHA-256 is stored (the token has 256 bits of
randomness, so a fast hash is enough), with the opaque chat id it opens. A return code is stored as
its locator (the first group, which alone opens nothing) and an Argon2id hash of the whole code;
the hashing happens in the channel, this module only keeps the values. Like every repository,
this one never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Index, Integer, String, Table, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy import insert as sql_insert

from storage.repositories import _Repository
from storage.schema import UTCDateTime, metadata

__all__ = ["ReturnCode", "WebRepository", "web_codes", "web_devices"]

# One row per browser that holds a token for a web chat ("forget this device" deletes it).
web_devices = Table(
    "web_devices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("chat_id", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Index("ix_web_devices_chat_id", "chat_id"),
)

# The return code of a web chat: at most one per chat (a new one replaces the old).
web_codes = Table(
    "web_codes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("chat_id", String(64), nullable=False, unique=True),
    Column("locator", String(8), nullable=False, unique=True),
    Column("code_hash", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


@dataclass(frozen=True)
class ReturnCode:
    """A stored return code: the chat it opens and the Argon2id hash to verify against."""

    chat_id: str
    code_hash: str


class WebRepository(_Repository):
    """Devices (token hashes) and return codes of the web chat."""

    __slots__ = ()

    async def chat_of(self, token_hash: str) -> str | None:
        """The chat a device's token opens, or None."""
        row = (await self._conn.execute(
            select(web_devices.c.chat_id).where(web_devices.c.token_hash == token_hash)
        )).first()
        return None if row is None else str(row[0])

    async def seen(self, token_hash: str, now: datetime) -> None:
        """The device came back (devices not seen for long can be purged)."""
        await self._conn.execute(update(web_devices).where(
            web_devices.c.token_hash == token_hash).values(last_seen_at=now))

    async def add_device(self, token_hash: str, chat_id: str, now: datetime) -> None:
        await self._conn.execute(sql_insert(web_devices).values(
            token_hash=token_hash, chat_id=chat_id, created_at=now, last_seen_at=now))

    async def forget_device(self, token_hash: str) -> bool:
        """The device no longer opens its chat; True when it did."""
        result = await self._conn.execute(
            sql_delete(web_devices).where(web_devices.c.token_hash == token_hash))
        return bool(result.rowcount)

    async def has_code(self, chat_id: str) -> bool:
        return (await self._conn.execute(
            select(web_codes.c.id).where(web_codes.c.chat_id == chat_id))).first() is not None

    async def locator_taken(self, locator: str) -> bool:
        return (await self._conn.execute(
            select(web_codes.c.id).where(web_codes.c.locator == locator))).first() is not None

    async def set_code(self, chat_id: str, locator: str, code_hash: str, now: datetime) -> None:
        """The chat's return code (replacing an older one)."""
        await self._conn.execute(sql_delete(web_codes).where(web_codes.c.chat_id == chat_id))
        await self._conn.execute(sql_insert(web_codes).values(
            chat_id=chat_id, locator=locator, code_hash=code_hash, created_at=now))

    async def code_at(self, locator: str) -> ReturnCode | None:
        row = (await self._conn.execute(
            select(web_codes.c.chat_id, web_codes.c.code_hash).where(
                web_codes.c.locator == locator))).mappings().first()
        return ReturnCode(str(row["chat_id"]), str(row["code_hash"])) if row is not None else None

    async def forget_chat(self, chat_id: str) -> None:
        """Everything of one chat (its dossier was erased): devices and return code."""
        await self._conn.execute(sql_delete(web_devices).where(web_devices.c.chat_id == chat_id))
        await self._conn.execute(sql_delete(web_codes).where(web_codes.c.chat_id == chat_id))

    async def drop_code(self, chat_id: str) -> None:
        """The chat's return code opens nothing any more (its dossier was erased)."""
        await self._conn.execute(sql_delete(web_codes).where(web_codes.c.chat_id == chat_id))
