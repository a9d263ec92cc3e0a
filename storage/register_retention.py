"""Retention (001 art. 17.4) and the claim of the daily run: part of `RegisterRepository`.

Destroying a dossier keeps the anonymised columns of the case (for the statistics) and drops
everything personal: payload, notes, follow-up comment, outbox copies, the link to the chat.
"""

from __future__ import annotations

import builtins
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy import delete as sql_delete

from storage.records import CaseRecord
from storage.register_cases import ClientChat, _CaseQueries
from storage.repositories import CASE_COLUMNS, _upsert, case_record
from storage.schema import (
    case_events,
    cases,
    conversations,
    counters,
    follow_ups,
    outbox,
)

__all__ = ["DAILY_COUNTER"]

DAILY_COUNTER = "register:daily"


class _RetentionQueries(_CaseQueries):
    """Retention and the daily run, on top of the case queries."""

    __slots__ = ()

    # --- retention (001 art. 17.4) ---------------------------------------------------------------

    async def retention_due(
        self, ended_before: datetime, *, organisation: str | None = None
    ) -> builtins.list[CaseRecord]:
        """Cases whose dossier is still there and that ended (closed, withdrawn, lapsed) before;
        of one organisation (its slug) or, with None, of all.

        A report or signal that was never closed counts from its registration: nothing is
        handled for it (001 art. 17.5).
        """
        ended = func.coalesce(cases.c.closed_at, cases.c.withdrawn_at)
        stmt = (
            select(*CASE_COLUMNS)
            .where(
                or_(
                    ended < ended_before,
                    and_(ended.is_(None), cases.c.kind.in_(("report", "signal")),
                         cases.c.created_at < ended_before),
                ),
                or_(
                    cases.c.erased_at.is_(None),
                    cases.c.conversation_id.is_not(None),
                    exists().where(outbox.c.case_reference == cases.c.reference),
                    exists().where(case_events.c.case_id == cases.c.id,
                                   case_events.c.note.is_not(None)),
                    exists().where(follow_ups.c.case_id == cases.c.id,
                                   follow_ups.c.comment.is_not(None)),
                ),
            )
            .order_by(cases.c.id)
        )
        if organisation is not None:
            stmt = stmt.where(cases.c.organisation == organisation)
        rows = (await self._conn.execute(stmt)).mappings().all()
        return [case_record(row) for row in rows]

    async def destroy_dossier(self, reference: str, at: datetime) -> int:
        """Destroy everything personal about the case; keep the anonymised columns.

        Drops the payload and the link to the conversation, the notes and the follow-up comment,
        and deletes the case's outbox rows (mails and their copies). Returns how many outbox rows
        went. Attachments are files: the caller deletes them (it reads the payload first).
        """
        case_id = await self._id(reference)
        await self._conn.execute(
            update(cases)
            .where(cases.c.id == case_id)
            .values(payload=None, conversation_id=None, updated_at=at,
                    erased_at=func.coalesce(cases.c.erased_at, at))
        )
        await self._conn.execute(
            update(case_events).where(case_events.c.case_id == case_id).values(note=None)
        )
        await self._conn.execute(
            update(follow_ups).where(follow_ups.c.case_id == case_id).values(comment=None)
        )
        result = await self._conn.execute(
            sql_delete(outbox).where(outbox.c.case_reference == reference)
        )
        return result.rowcount

    async def stale_conversations(self, before: datetime) -> builtins.list[ClientChat]:
        """Conversations untouched since `before` whose cases are all destroyed (or that have none)."""
        live_case = exists().where(
            cases.c.conversation_id == conversations.c.id, cases.c.erased_at.is_(None)
        )
        stmt = select(conversations).where(conversations.c.updated_at < before, ~live_case)
        rows = (await self._conn.execute(stmt)).mappings().all()
        return [
            ClientChat(conversation_id=row["id"], channel=row["channel"], chat_id=row["chat_id"],
                       language=row["language"], data=self._cipher.decrypt_json(row["data"]))
            for row in rows
        ]

    async def delete_conversation(self, conversation_id: int) -> None:
        await self._conn.execute(
            sql_delete(conversations).where(conversations.c.id == conversation_id)
        )

    async def delete_old_outbox(
        self, before: datetime, *, recipients: builtins.list[str] | None = None
    ) -> int:
        """Mails without a case (digests) older than `before`, once they are no longer pending;
        only those to `recipients` when given (one organisation's mailboxes)."""
        stmt = sql_delete(outbox).where(
            outbox.c.case_reference.is_(None),
            outbox.c.created_at < before,
            outbox.c.status != "pending",
        )
        if recipients is not None:
            stmt = stmt.where(outbox.c.recipient.in_(recipients))
        result = await self._conn.execute(stmt)
        return result.rowcount

    # --- the scheduler -----------------------------------------------------------------------------

    async def claim_daily_run(self, now: datetime, day_start: datetime, lease: timedelta) -> bool:
        """Claim today's daily run at `now` (one atomic upsert, so one process wins).

        False when today's run finished already, or another process started it less than
        `lease` ago. A run that started earlier today and never finished (its process died
        halfway) may be claimed again, so a crash does not skip a day. The counter holds the
        minute the run started, or after `finish_daily_run` the minute the day ends.
        """
        threshold = max(_minute(day_start), _minute(now - lease))
        stmt = (
            _upsert(self._conn, counters)
            .values(name=DAILY_COUNTER, value=_minute(now))
            .on_conflict_do_update(
                index_elements=[counters.c.name],
                set_={"value": _minute(now)},
                where=counters.c.value < threshold,
            )
            .returning(counters.c.value)
        )
        return (await self._conn.execute(stmt)).first() is not None

    async def finish_daily_run(self, started: datetime, day_end: datetime) -> bool:
        """Mark the run claimed at `started` as done: no process claims one again before
        `day_end`. False if another process took the claim over in the meantime."""
        result = await self._conn.execute(
            update(counters)
            .where(counters.c.name == DAILY_COUNTER, counters.c.value == _minute(started))
            .values(value=_minute(day_end))
        )
        return result.rowcount == 1


def _minute(at: datetime) -> int:
    """Minutes since 1970 (fits the counter's 32-bit integer until the year 6053)."""
    return int(at.timestamp() // 60)
