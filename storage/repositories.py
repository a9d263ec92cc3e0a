"""Thin repositories over one transaction's connection. They never commit.

Encryption and decryption happen here, so callers only see plaintext dataclasses. Upserts use
the dialect's INSERT ... ON CONFLICT, which SQLite and PostgreSQL spell the same way.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy import insert as sql_insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.crypto import Cipher
from storage.records import (
    AuditEntry,
    CaseRecord,
    ConcurrentUpdateError,
    NotFoundError,
    OutboxItem,
    StoredConversation,
)
from storage.schema import (
    CASE_KINDS,
    OUTBOX_PURPOSES,
    OUTBOX_STATUSES,
    audit_log,
    cases,
    conversations,
    counters,
    inbound_updates,
    outbox,
)
from storage.writer import WriterUnit

__all__ = [
    "AuditRepository",
    "CaseRepository",
    "ConversationRepository",
    "InboundRepository",
    "OutboxRepository",
]

Clock = Callable[[], datetime]
# What repositories run statements on: a pooled async connection, or SQLite's writer unit.
Executor = AsyncConnection | WriterUnit
REFERENCE_PREFIX = "KW"
TEXT_LIMIT = 500


def _clip(text: str | None, limit: int = TEXT_LIMIT) -> str | None:
    return None if text is None else text[:limit]


def _new_id(result: CursorResult[Any]) -> int:
    """The primary key of the row an INSERT just created."""
    key = result.inserted_primary_key
    if key is None or not isinstance(key[0], int):
        raise RuntimeError("the database did not report the new row's id")
    return key[0]


def _upsert(conn: Executor, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT supporting ON CONFLICT for the connection's dialect."""
    name = conn.dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"storage does not support the {name} dialect")


# The statements of every inbound message, built once: building a statement and its cache key
# costs more than running it on SQLite (the bench's profile), so the hot path only binds values.
_GET_CONVERSATION = select(conversations).where(
    conversations.c.channel == bindparam("channel"), conversations.c.chat_id == bindparam("chat_id")
)
_GET_CONVERSATION_FOR_UPDATE = _GET_CONVERSATION.with_for_update()
_UPDATE_CONVERSATION = (
    update(conversations)
    .where(conversations.c.id == bindparam("row_id"),
           conversations.c.version == bindparam("read_version"))
    .values(
        state=bindparam("state"),
        language=bindparam("language"),
        data=bindparam("data"),
        version=bindparam("version"),
        updated_at=bindparam("updated_at"),
    )
)
_SEEN = {
    dialect.__name__.rsplit(".", 1)[-1]: dialect.insert(inbound_updates)
    .values(channel=bindparam("channel"), update_id=bindparam("update_id"),
            received_at=bindparam("received_at"))
    .on_conflict_do_nothing(index_elements=[inbound_updates.c.channel, inbound_updates.c.update_id])
    .returning(inbound_updates.c.update_id)
    for dialect in (sqlite, postgresql)
}
# The inserts of a new conversation and of a registered case (its case, counter, mail and audit
# row): bare INSERTs bound to a dict of values compile once (per set of keys) and are then only
# bound, where `.values(...)` built and keyed a new statement every time.
_INSERT_CONVERSATION = sql_insert(conversations)
_INSERT_CASE = sql_insert(cases)
_INSERT_OUTBOX = sql_insert(outbox)
_INSERT_AUDIT = sql_insert(audit_log)
_NEXT_REFERENCE = {
    dialect.__name__.rsplit(".", 1)[-1]: dialect.insert(counters)
    .values(name=bindparam("name"), value=1)
    .on_conflict_do_update(index_elements=[counters.c.name],
                           set_={"value": counters.c.value + 1})
    .returning(counters.c.value)
    for dialect in (sqlite, postgresql)
}

class _Repository:
    __slots__ = ("_cipher", "_clock", "_conn", "_lock")

    def __init__(self, conn: Executor, cipher: Cipher, clock: Clock, *, lock: bool) -> None:
        self._conn = conn
        self._cipher = cipher
        self._clock = clock
        self._lock = lock  # SELECT ... FOR UPDATE where the backend has it (not SQLite)


class ConversationRepository(_Repository):
    __slots__ = ()

    def _from_row(self, row: RowMapping) -> StoredConversation:
        return StoredConversation(
            id=row["id"],
            channel=row["channel"],
            chat_id=row["chat_id"],
            state=row["state"],
            language=row["language"],
            data=self._cipher.decrypt_json(row["data"]),
            version=row["version"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    async def get(self, channel: str, chat_id: str) -> StoredConversation | None:
        stmt = _GET_CONVERSATION_FOR_UPDATE if self._lock else _GET_CONVERSATION
        params = {"channel": channel, "chat_id": chat_id}
        row = (await self._conn.execute(stmt, params)).mappings().one_or_none()
        return None if row is None else self._from_row(row)

    async def save(self, conversation: StoredConversation) -> StoredConversation:
        """Insert (id None) or update (id and version as read); returns it with the new version.

        Raises ConcurrentUpdateError if the row changed since it was read, or if a conversation
        for the same channel and chat already exists when inserting.
        """
        now = self._clock()
        blob = self._cipher.encrypt_json(conversation.data)
        if conversation.id is None:
            try:
                result = await self._conn.execute(_INSERT_CONVERSATION, {
                    "channel": conversation.channel,
                    "chat_id": conversation.chat_id,
                    "state": conversation.state,
                    "language": conversation.language,
                    "data": blob,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                })
            except IntegrityError:
                raise ConcurrentUpdateError("conversation already exists") from None
            return replace(conversation, id=_new_id(result), version=1, created_at=now, updated_at=now)

        version = conversation.version + 1
        result = await self._conn.execute(
            _UPDATE_CONVERSATION,
            {
                "row_id": conversation.id,
                "read_version": conversation.version,
                "state": conversation.state,
                "language": conversation.language,
                "data": blob,
                "version": version,
                "updated_at": now,
            },
        )
        if result.rowcount != 1:
            raise ConcurrentUpdateError("conversation was changed or deleted concurrently")
        return replace(conversation, version=version, updated_at=now)

    async def delete(self, channel: str, chat_id: str) -> bool:
        """Delete the conversation; True if there was one. Its cases lose the link."""
        result = await self._conn.execute(
            sql_delete(conversations).where(
                conversations.c.channel == channel, conversations.c.chat_id == chat_id
            )
        )
        return result.rowcount > 0


# A case's columns but the payload: the register lists and counts cases without decrypting.
CASE_COLUMNS = [c for c in cases.c if c.name != "payload"]


def case_record(row: RowMapping, payload: dict[str, Any] | None = None) -> CaseRecord:
    """A `cases` row as the record (its fields are named as the columns); `payload` decrypted."""
    return CaseRecord(**{c.name: row[c.name] for c in CASE_COLUMNS}, payload=payload)


class CaseRepository(_Repository):
    __slots__ = ()

    def _from_row(self, row: RowMapping) -> CaseRecord:
        payload = row["payload"]
        return case_record(row, None if payload is None else self._cipher.decrypt_json(payload))

    async def next_reference(self, year: int) -> str:
        """The next case reference of `year`, e.g. KW-2026-000001 (atomic counter upsert)."""
        if not 1000 <= year <= 9999:
            raise ValueError("year must have four digits")
        stmt = _NEXT_REFERENCE[self._conn.dialect.name]
        value = (await self._conn.execute(stmt, {"name": f"reference:{year}"})).scalar_one()
        return f"{REFERENCE_PREFIX}-{year:04d}-{value:06d}"

    async def add(self, case: CaseRecord) -> CaseRecord:
        if case.kind not in CASE_KINDS:
            raise ValueError(f"unknown case kind {case.kind!r}")
        payload = None if case.payload is None else self._cipher.encrypt_json(case.payload)
        result = await self._conn.execute(_INSERT_CASE, {
            "reference": case.reference,
            "conversation_id": case.conversation_id,
            "channel": case.channel,
            "kind": case.kind,
            "schema": case.schema,
            "category": case.category,
            "language": case.language,
            "status": case.status,
            "mailbox": case.mailbox,
            "payload": payload,
            "location": case.location,
            "outcome": case.outcome,
            "created_at": case.created_at,
            "updated_at": case.updated_at,
            "acknowledged_at": case.acknowledged_at,
            "decided_at": case.decided_at,
            "closed_at": case.closed_at,
            "withdrawn_at": case.withdrawn_at,
            "erased_at": case.erased_at,
            "organisation": case.organisation,
        })
        return replace(case, id=_new_id(result))

    async def get(self, reference: str) -> CaseRecord | None:
        stmt = select(cases).where(cases.c.reference == reference)
        row = (await self._conn.execute(stmt)).mappings().one_or_none()
        return None if row is None else self._from_row(row)

    async def for_conversation(self, conversation_id: int) -> builtins.list[CaseRecord]:
        stmt = select(cases).where(cases.c.conversation_id == conversation_id).order_by(cases.c.id)
        rows = (await self._conn.execute(stmt)).mappings().all()
        return [self._from_row(row) for row in rows]

    async def set_status(self, reference: str, status: str, at: datetime) -> None:
        """Change the status; status 'withdrawn' also sets withdrawn_at."""
        values: dict[str, Any] = {"status": status, "updated_at": at}
        if status == "withdrawn":
            values["withdrawn_at"] = at
        await self._update(reference, values)

    async def _update(self, reference: str, values: dict[str, Any]) -> None:
        result = await self._conn.execute(
            update(cases).where(cases.c.reference == reference).values(**values)
        )
        if result.rowcount != 1:
            raise NotFoundError(f"no case {reference}")


class OutboxRepository(_Repository):
    __slots__ = ()

    def _from_row(self, row: Mapping[Any, Any]) -> OutboxItem:
        raw = row["raw"]
        return OutboxItem(
            id=row["id"],
            case_reference=row["case_reference"],
            purpose=row["purpose"],
            recipient=row["recipient"],
            message_id=row["message_id"],
            raw=None if raw is None else self._cipher.decrypt(raw),
            status=row["status"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            last_error=row["last_error"],
            created_at=row["created_at"],
            sent_at=row["sent_at"],
        )

    async def add(self, item: OutboxItem) -> int:
        if item.purpose not in OUTBOX_PURPOSES:
            raise ValueError(f"unknown outbox purpose {item.purpose!r}")
        if item.status not in OUTBOX_STATUSES:
            raise ValueError(f"unknown outbox status {item.status!r}")
        result = await self._conn.execute(_INSERT_OUTBOX, {
            "case_reference": item.case_reference,
            "purpose": item.purpose,
            "recipient": item.recipient,
            "message_id": item.message_id,
            "raw": None if item.raw is None else self._cipher.encrypt(item.raw),
            "status": item.status,
            "attempts": item.attempts,
            "next_attempt_at": item.next_attempt_at,
            "last_error": _clip(item.last_error),
            "created_at": item.created_at,
            "sent_at": item.sent_at,
        })
        return _new_id(result)

    async def get(self, item_id: int) -> OutboxItem | None:
        stmt = select(outbox).where(outbox.c.id == item_id)
        row = (await self._conn.execute(stmt)).mappings().one_or_none()
        return None if row is None else self._from_row(row)

    async def due(self, now: datetime, limit: int = 20) -> builtins.list[OutboxItem]:
        """Pending messages whose next attempt is due, oldest first."""
        stmt = (
            select(outbox)
            .where(outbox.c.status == "pending", outbox.c.next_attempt_at <= now)
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
            .limit(limit)
        )
        if self._lock:
            stmt = stmt.with_for_update(skip_locked=True)
        rows = (await self._conn.execute(stmt)).mappings().all()
        return [self._from_row(row) for row in rows]

    async def lease(self, item_ids: Sequence[int], until: datetime) -> None:
        """Claimed by this process: not due for anyone else before `until` (the worker's lease;
        `mark_sent`, `mark_retry` or `mark_failed` end it, a process that died lets it run out)."""
        if item_ids:
            await self._conn.execute(update(outbox).where(
                outbox.c.id.in_(builtins.list(item_ids)), outbox.c.status == "pending")
                .values(next_attempt_at=until))

    async def mark_sent(self, item_id: int, at: datetime) -> None:
        await self._update(item_id, {"status": "sent", "sent_at": at, "raw": None})

    async def mark_retry(self, item_id: int, next_attempt_at: datetime, error: str) -> None:
        """A failed attempt to try again later. `error` must not contain message content."""
        await self._update(
            item_id,
            {
                "attempts": outbox.c.attempts + 1,
                "next_attempt_at": next_attempt_at,
                "last_error": _clip(error),
            },
        )

    async def mark_failed(self, item_id: int, error: str) -> None:
        """Give up (counts as a failed attempt). `raw` is kept for a manual resend."""
        await self._update(
            item_id,
            {"status": "failed", "attempts": outbox.c.attempts + 1, "last_error": _clip(error)},
        )

    async def cancel_for_case(self, reference: str) -> int:
        """Cancel the case's unsent (pending or failed) messages and drop their content."""
        result = await self._conn.execute(
            update(outbox)
            .where(
                outbox.c.case_reference == reference,
                outbox.c.status.in_(("pending", "failed")),
            )
            .values(status="cancelled", raw=None)
        )
        return result.rowcount

    async def failed(
        self, reference: str | None = None
    ) -> builtins.list[tuple[OutboxItem, datetime]]:
        """Mails marked 'failed' (of one case, or all), oldest first, each with when it failed.

        That is the time of its 'mail_failed' audit entry (the first one for the same case and
        error since the mail was queued), else when it was queued. The content is not loaded
        (`raw` is None here; the row keeps it for a manual resend).
        """
        query = (select(*[c for c in outbox.c if c.name != "raw"])
                 .where(outbox.c.status == "failed").order_by(outbox.c.id))
        audits = (select(audit_log.c.reference, audit_log.c.detail, audit_log.c.at)
                  .where(audit_log.c.action == "mail_failed").order_by(audit_log.c.id))
        if reference is not None:
            query = query.where(outbox.c.case_reference == reference)
            audits = audits.where(audit_log.c.reference == reference)
        rows = (await self._conn.execute(query)).mappings().all()
        audited = (await self._conn.execute(audits)).all()
        found = []
        for row in rows:
            item = self._from_row({**row, "raw": None})
            times = [entry.at for entry in audited
                     if entry.reference == item.case_reference and entry.detail == item.last_error
                     and entry.at >= item.created_at]
            found.append((item, times[0] if times else item.created_at))
        return found

    async def count_by_status(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTBOX_STATUSES, 0)
        stmt = select(outbox.c.status, func.count()).group_by(outbox.c.status)
        for status, count in (await self._conn.execute(stmt)).all():
            counts[status] = count
        return counts

    async def _update(self, item_id: int, values: dict[str, Any]) -> None:
        result = await self._conn.execute(update(outbox).where(outbox.c.id == item_id).values(**values))
        if result.rowcount != 1:
            raise NotFoundError(f"no outbox item {item_id}")


class AuditRepository(_Repository):
    __slots__ = ()

    async def record(
        self,
        at: datetime,
        actor: str,
        action: str,
        reference: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Append to the audit log. `detail` must never hold personal data."""
        await self._conn.execute(_INSERT_AUDIT, {
            "at": at, "actor": actor, "action": action, "reference": reference,
            "detail": _clip(detail)})

    async def list(self, limit: int = 100) -> builtins.list[AuditEntry]:
        """The most recent entries, newest first."""
        stmt = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        rows = (await self._conn.execute(stmt)).mappings().all()
        return [
            AuditEntry(
                id=row["id"],
                at=row["at"],
                actor=row["actor"],
                action=row["action"],
                reference=row["reference"],
                detail=row["detail"],
            )
            for row in rows
        ]


class InboundRepository(_Repository):
    __slots__ = ()

    async def seen(self, channel: str, update_id: str, at: datetime) -> bool:
        """Record an inbound update; False the first time, True if it was seen before."""
        stmt = _SEEN[self._conn.dialect.name]
        params = {"channel": channel, "update_id": update_id, "received_at": at}
        inserted = (await self._conn.execute(stmt, params)).first()
        return inserted is None

    async def known(self, channel: str, update_id: str) -> bool:
        """Whether this update was recorded as handled (read only)."""
        stmt = select(inbound_updates.c.update_id).where(
            inbound_updates.c.channel == channel, inbound_updates.c.update_id == update_id)
        return (await self._conn.execute(stmt)).first() is not None

    async def prune(self, before: datetime) -> int:
        """Forget update ids received before `before`; returns how many."""
        result = await self._conn.execute(
            sql_delete(inbound_updates).where(inbound_updates.c.received_at < before)
        )
        return result.rowcount
