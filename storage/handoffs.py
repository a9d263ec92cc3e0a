"""Handoffs of issue 3: confidant offers, who accepted, the relayed messages.

The claim of an offer is one conditional UPDATE (`status = 'offered'` and the confidant has no other
active handoff), so when several confidants press "Accept" at once exactly one wins, on SQLite
(`BEGIN IMMEDIATE`) and on PostgreSQL alike. Everything about the client is encrypted in `data`
and in the messages' `body`. Like every repository, this one never commits.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, exists, or_, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy import insert as sql_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.sql.elements import ColumnElement

from storage.records import NotFoundError
from storage.repositories import _new_id, _Repository
from storage.schema import HANDOFF_STATUSES, cases, conversations, handoff_messages, handoffs

__all__ = ["HandoffMessage", "HandoffRecord", "HandoffRepository"]

OPEN_STATUSES = ("offered", "active")

# A handoff with where its client is. Built once: the open-handoff check runs for every client
# message, and a prebuilt statement skips SQLAlchemy's per-call cache-key and IN-list work.
_SELECT = select(
    handoffs, conversations.c.channel.label("client_channel"),
    conversations.c.chat_id.label("client_chat_id"),
).join(conversations, conversations.c.id == handoffs.c.conversation_id)
_OPEN_FOR_CONVERSATION = _SELECT.where(
    handoffs.c.conversation_id == bindparam("conversation_id"),
    or_(*(handoffs.c.status == status for status in OPEN_STATUSES)),
).order_by(handoffs.c.id)


@dataclass(kw_only=True)
class HandoffRecord:
    """One handoff. `data` (encrypted) holds the pseudonym, who got the offer, what was shared."""

    id: int | None = None
    conversation_id: int
    case_reference: str | None = None
    status: str = "offered"
    preference: str
    confidant_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict, repr=False)
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None = None
    ended_at: datetime | None = None
    # Filled in from the conversation by the queries that route messages to the client.
    client_channel: str | None = None
    client_chat_id: str | None = field(default=None, repr=False)
    # Where the confidant who accepted chats (kept encrypted in `data["confidant_address"]`;
    # a handoff stored before addresses existed was accepted on Telegram, by `confidant_id`).
    confidant_channel: str | None = None
    confidant_chat_id: str | None = field(default=None, repr=False)


@dataclass(kw_only=True, frozen=True)
class HandoffMessage:
    """One relayed message: who sent it and what (text, or a marker such as a photo)."""

    id: int
    at: datetime
    sender: str
    body: dict[str, Any] = field(repr=False)
    delivered: bool


class HandoffRepository(_Repository):
    __slots__ = ()

    def _select(self) -> Any:
        return _SELECT

    def _from_row(self, row: RowMapping) -> HandoffRecord:
        data = self._cipher.decrypt_json(row["data"])
        address = data.get("confidant_address")
        channel = chat = None
        if isinstance(address, list) and len(address) == 2:
            channel, chat = str(address[0]), str(address[1])
        elif row["confidant_id"] is not None:
            channel, chat = "telegram", str(row["confidant_id"])
        return HandoffRecord(
            id=row["id"],
            conversation_id=row["conversation_id"],
            case_reference=row["case_reference"],
            status=row["status"],
            preference=row["preference"],
            confidant_id=row["confidant_id"],
            data=data,
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            accepted_at=row["accepted_at"],
            ended_at=row["ended_at"],
            client_channel=row.get("client_channel"),
            client_chat_id=row.get("client_chat_id"),
            confidant_channel=channel,
            confidant_chat_id=chat,
        )

    async def _one(self, *where: ColumnElement[bool]) -> HandoffRecord | None:
        stmt = self._select().where(*where).order_by(handoffs.c.id.desc()).limit(1)
        row = (await self._conn.execute(stmt)).mappings().first()
        return None if row is None else self._from_row(row)

    async def add(self, record: HandoffRecord) -> HandoffRecord:
        if record.status not in HANDOFF_STATUSES:
            raise ValueError(f"unknown handoff status {record.status!r}")
        result = await self._conn.execute(
            sql_insert(handoffs).values(
                conversation_id=record.conversation_id,
                case_reference=record.case_reference,
                status=record.status,
                preference=record.preference,
                confidant_id=record.confidant_id,
                data=self._cipher.encrypt_json(record.data),
                created_at=record.created_at,
                expires_at=record.expires_at,
                accepted_at=record.accepted_at,
                ended_at=record.ended_at,
            )
        )
        record.id = _new_id(result)
        return record

    async def get(self, handoff_id: int) -> HandoffRecord | None:
        return await self._one(handoffs.c.id == handoff_id)

    async def latest_for_conversation(self, conversation_id: int) -> HandoffRecord | None:
        """The conversation's newest handoff, whatever its status."""
        return await self._one(handoffs.c.conversation_id == conversation_id)

    async def active_for_confidant(self, confidant_id: int) -> HandoffRecord | None:
        return await self._one(handoffs.c.confidant_id == confidant_id, handoffs.c.status == "active")

    async def claim(self, handoff_id: int, confidant_id: int, at: datetime) -> bool:
        """Atomically make `confidant_id` the one who accepted; False if someone else was first.

        Also False when the offer expired or ended, or when this confidant is already in another
        live conversation (one relay per confidant, so their replies always have one destination).
        """
        busy = exists().where(
            handoffs.c.confidant_id == confidant_id, handoffs.c.status == "active"
        )
        result = await self._conn.execute(
            update(handoffs)
            .where(handoffs.c.id == handoff_id, handoffs.c.status == "offered", ~busy)
            .values(status="active", confidant_id=confidant_id, accepted_at=at)
        )
        return result.rowcount == 1

    async def transition(
        self, handoff_id: int, from_statuses: tuple[str, ...], status: str, at: datetime
    ) -> bool:
        """Conditional status change (e.g. active -> ended); False if the status was not one of those."""
        if status not in HANDOFF_STATUSES:
            raise ValueError(f"unknown handoff status {status!r}")
        values: dict[str, Any] = {"status": status}
        if status in ("ended", "expired"):
            values["ended_at"] = at
        result = await self._conn.execute(
            update(handoffs)
            .where(handoffs.c.id == handoff_id, handoffs.c.status.in_(from_statuses))
            .values(**values)
        )
        return result.rowcount == 1

    async def save_data(self, handoff_id: int, data: dict[str, Any]) -> None:
        result = await self._conn.execute(
            update(handoffs).where(handoffs.c.id == handoff_id)
            .values(data=self._cipher.encrypt_json(data))
        )
        if result.rowcount != 1:
            raise NotFoundError(f"no handoff {handoff_id}")

    async def due(self, now: datetime) -> builtins.list[HandoffRecord]:
        """Offers nobody accepted before their deadline."""
        stmt = self._select().where(
            and_(handoffs.c.status == "offered", handoffs.c.expires_at <= now)
        ).order_by(handoffs.c.id)
        rows = (await self._conn.execute(stmt)).mappings().all()
        return [self._from_row(row) for row in rows]

    async def offered(self) -> builtins.list[HandoffRecord]:
        """Offers still waiting for a confidant, oldest first (the desk filters by address)."""
        stmt = self._select().where(handoffs.c.status == "offered").order_by(handoffs.c.id)
        rows = (await self._conn.execute(stmt)).mappings().all()
        return [self._from_row(row) for row in rows]

    async def open_for_conversation(self, conversation_id: int) -> builtins.list[HandoffRecord]:
        rows = (await self._conn.execute(
            _OPEN_FOR_CONVERSATION, {"conversation_id": conversation_id})).mappings().all()
        return [self._from_row(row) for row in rows]

    # --- messages -----------------------------------------------------------------------------

    async def add_message(
        self, handoff_id: int, at: datetime, sender: str, body: dict[str, Any], *, delivered: bool
    ) -> None:
        await self._conn.execute(
            sql_insert(handoff_messages).values(
                handoff_id=handoff_id, at=at, sender=sender,
                body=self._cipher.encrypt_json(body), delivered=int(delivered),
            )
        )

    async def messages(self, handoff_id: int) -> builtins.list[HandoffMessage]:
        stmt = (
            select(handoff_messages)
            .where(handoff_messages.c.handoff_id == handoff_id)
            .order_by(handoff_messages.c.id)
        )
        rows = (await self._conn.execute(stmt)).mappings().all()
        return [
            HandoffMessage(
                id=row["id"], at=row["at"], sender=row["sender"],
                body=self._cipher.decrypt_json(row["body"]), delivered=bool(row["delivered"]),
            )
            for row in rows
        ]

    async def mark_delivered(self, handoff_id: int) -> None:
        await self._conn.execute(
            update(handoff_messages).where(handoff_messages.c.handoff_id == handoff_id)
            .values(delivered=1)
        )

    async def delete_messages(self, handoff_id: int) -> int:
        result = await self._conn.execute(
            sql_delete(handoff_messages).where(handoff_messages.c.handoff_id == handoff_id)
        )
        return result.rowcount

    async def attach_transcript(self, reference: str, transcript: builtins.list[dict[str, Any]]) -> bool:
        """Put the relay transcript into the case's (encrypted) dossier; False if it was erased."""
        row = (
            await self._conn.execute(select(cases.c.payload).where(cases.c.reference == reference))
        ).first()
        if row is None or row[0] is None:
            return False
        payload = self._cipher.decrypt_json(row[0])
        payload.setdefault("confidant_conversations", []).append(transcript)
        await self._conn.execute(
            update(cases).where(cases.c.reference == reference)
            .values(payload=self._cipher.encrypt_json(payload))
        )
        return True
