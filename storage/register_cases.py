"""The register's cases, their history and the client's chat: the base of `RegisterRepository`.

`storage/register.py` builds the register's repository on this (notifications, follow-up answers)
and on `storage/register_retention.py` (retention, the daily run). Notes are encrypted; every
other column holds machine values only.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert as sql_insert
from sqlalchemy import select, update
from sqlalchemy.engine import RowMapping

from storage.records import CaseRecord, NotFoundError
from storage.repositories import CASE_COLUMNS, _clip, _new_id, _Repository, case_record
from storage.schema import (
    CASE_EVENT_ACTIONS,
    CASE_KINDS,
    case_events,
    cases,
    conversations,
)

__all__ = ["NOTE_LIMIT", "CaseEventRecord", "ClientChat"]

NOTE_LIMIT = 5000


@dataclass(kw_only=True, frozen=True)
class CaseEventRecord:
    id: int
    at: datetime
    actor: str
    action: str
    value: str | None
    note: str | None = field(default=None, repr=False)


@dataclass(kw_only=True, frozen=True)
class ClientChat:
    """Where a case's client can be reached in chat, and what they chose as contact."""

    conversation_id: int
    channel: str
    chat_id: str = field(repr=False)
    language: str | None
    data: dict[str, Any] = field(repr=False)


class _CaseQueries(_Repository):
    """Cases, their history and the client's chat (the part of the register the others build on)."""

    __slots__ = ()

    # --- cases ---------------------------------------------------------------------------------

    async def get(self, reference: str) -> CaseRecord | None:
        stmt = select(*CASE_COLUMNS).where(cases.c.reference == reference)
        if self._lock:
            stmt = stmt.with_for_update()
        row = (await self._conn.execute(stmt)).mappings().one_or_none()
        return None if row is None else case_record(row)

    async def _id(self, reference: str) -> int:
        case_id = (
            await self._conn.execute(select(cases.c.id).where(cases.c.reference == reference))
        ).scalar_one_or_none()
        if case_id is None:
            raise NotFoundError(f"no case {reference}")
        return int(case_id)

    async def cases(
        self,
        *,
        statuses: tuple[str, ...] | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
        organisation: str | None = None,
    ) -> builtins.list[CaseRecord]:
        """Cases, oldest first, optionally by status, creation time [from, before) and
        organisation (its slug; None: every organisation's)."""
        stmt = select(*CASE_COLUMNS).order_by(cases.c.created_at, cases.c.id)
        if organisation is not None:
            stmt = stmt.where(cases.c.organisation == organisation)
        if statuses is not None:
            stmt = stmt.where(cases.c.status.in_(statuses))
        if created_from is not None:
            stmt = stmt.where(cases.c.created_at >= created_from)
        if created_before is not None:
            stmt = stmt.where(cases.c.created_at < created_before)
        rows = (await self._conn.execute(stmt)).mappings().all()
        return [case_record(row) for row in rows]

    async def add_signal(
        self,
        *,
        reference: str,
        kind: str,
        schema: str,
        category: str | None,
        language: str,
        channel: str,
        location: str | None,
        status: str,
        at: datetime,
        organisation: str = "default",
    ) -> CaseRecord:
        """A case registered by staff (003 §5: also what was solved on the spot); no personal data."""
        if kind not in CASE_KINDS:
            raise ValueError(f"unknown case kind {kind!r}")
        final = status in ("closed", "withdrawn", "lapsed")
        result = await self._conn.execute(
            sql_insert(cases).values(
                reference=reference,
                conversation_id=None,
                channel=channel,
                kind=kind,
                schema=schema,
                category=category,
                language=language,
                status=status,
                mailbox="",
                payload=None,
                created_at=at,
                updated_at=at,
                location=_clip(location, 64),
                closed_at=at if final else None,
                organisation=organisation[:64],
            )
        )
        case = await self.get(reference)
        if case is None or case.id != _new_id(result):  # pragma: no cover - defensive
            raise RuntimeError("the new case could not be read back")
        return case

    async def change_status(
        self,
        reference: str,
        status: str,
        at: datetime,
        *,
        actor: str,
        outcome: str | None = None,
        note: str | None = None,
    ) -> CaseRecord:
        """Store a status change (already checked by flows.register.check_change) and its event.

        Keeps the anonymised facts the statistics need after the dossier is gone: when the case
        was first answered (acknowledged_at), decided, and closed (closed, withdrawn, lapsed).
        """
        case = await self.get(reference)
        if case is None:
            raise NotFoundError(f"no case {reference}")
        values: dict[str, Any] = {"status": status, "updated_at": at}
        if case.acknowledged_at is None and status not in ("withdrawn", "lapsed"):
            values["acknowledged_at"] = at
        if status == "decided":
            values["decided_at"] = at
            values["outcome"] = outcome
        if status in ("closed", "withdrawn", "lapsed"):
            values["closed_at"] = at
        if status == "withdrawn":
            values["withdrawn_at"] = at
        await self._conn.execute(update(cases).where(cases.c.id == case.stored_id).values(**values))
        await self._add_event(case.stored_id, at, actor, "status", status, note)
        refreshed = await self.get(reference)
        if refreshed is None:  # pragma: no cover - we hold the row
            raise NotFoundError(f"no case {reference}")
        return refreshed

    # --- history -------------------------------------------------------------------------------

    async def _add_event(
        self, case_id: int, at: datetime, actor: str, action: str, value: str | None,
        note: str | None,
    ) -> int:
        if action not in CASE_EVENT_ACTIONS:
            raise ValueError(f"unknown case event {action!r}")
        result = await self._conn.execute(
            sql_insert(case_events).values(
                case_id=case_id,
                at=at,
                actor=actor[:64],
                action=action,
                value=_clip(value, 64),
                note=None if note is None else self._cipher.encrypt(note[:NOTE_LIMIT].encode()),
            )
        )
        return _new_id(result)

    async def add_event(
        self,
        reference: str,
        at: datetime,
        *,
        actor: str,
        action: str,
        value: str | None = None,
        note: str | None = None,
    ) -> int:
        return await self._add_event(await self._id(reference), at, actor, action, value, note)

    async def event_note(self, event_id: int) -> str | None:
        """One event's note, decrypted (None once the dossier was destroyed)."""
        raw = (await self._conn.execute(
            select(case_events.c.note).where(case_events.c.id == event_id))).scalar_one_or_none()
        return None if raw is None else self._cipher.decrypt(raw).decode()

    async def events(self, reference: str) -> builtins.list[CaseEventRecord]:
        """The case's history, oldest first, notes decrypted."""
        stmt = (
            select(case_events)
            .join(cases, cases.c.id == case_events.c.case_id)
            .where(cases.c.reference == reference)
            .order_by(case_events.c.at, case_events.c.id)
        )
        rows = (await self._conn.execute(stmt)).mappings().all()
        return [self._event(row) for row in rows]

    async def events_by_case(self, case_ids: builtins.list[int]) -> dict[int, builtins.list[CaseEventRecord]]:
        """Histories of many cases at once (notes are not decrypted here)."""
        found: dict[int, builtins.list[CaseEventRecord]] = {i: [] for i in case_ids}
        if not case_ids:
            return found
        stmt = (
            select(case_events.c.id, case_events.c.case_id, case_events.c.at, case_events.c.actor,
                   case_events.c.action, case_events.c.value)
            .where(case_events.c.case_id.in_(case_ids))
            .order_by(case_events.c.at, case_events.c.id)
        )
        for row in (await self._conn.execute(stmt)).mappings().all():
            found[row["case_id"]].append(
                CaseEventRecord(id=row["id"], at=row["at"], actor=row["actor"],
                                action=row["action"], value=row["value"])
            )
        return found

    def _event(self, row: RowMapping) -> CaseEventRecord:
        note = row["note"]
        return CaseEventRecord(
            id=row["id"],
            at=row["at"],
            actor=row["actor"],
            action=row["action"],
            value=row["value"],
            note=None if note is None else self._cipher.decrypt(note).decode(),
        )

    # --- the client's chat ---------------------------------------------------------------------

    async def client_chat(self, reference: str) -> ClientChat | None:
        """The conversation of the case's client, if it still exists (not erased, not a signal)."""
        stmt = (
            select(conversations)
            .join(cases, cases.c.conversation_id == conversations.c.id)
            .where(cases.c.reference == reference)
        )
        row = (await self._conn.execute(stmt)).mappings().one_or_none()
        if row is None:
            return None
        return ClientChat(
            conversation_id=row["id"],
            channel=row["channel"],
            chat_id=row["chat_id"],
            language=row["language"],
            data=self._cipher.decrypt_json(row["data"]),
        )

    async def payload(self, reference: str) -> dict[str, Any] | None:
        """The case's complaint.json (decrypted), or None after erasure."""
        raw = (
            await self._conn.execute(select(cases.c.payload).where(cases.c.reference == reference))
        ).scalar_one_or_none()
        return None if raw is None else self._cipher.decrypt_json(raw)
