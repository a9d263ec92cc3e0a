"""The register of issue 4: case history, notifications to clients, follow-up answers, retention.

Like every repository it never commits. Notes and follow-up comments are encrypted; all other
columns hold machine values only (statuses, deadline names, delivery ways), so the register can be
listed and counted without decrypting anything. The lifecycle rules live in `flows/register.py`;
callers check a change there before storing it here.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy import insert as sql_insert
from sqlalchemy.engine import RowMapping

from storage.records import CaseRecord, NotFoundError
from storage.repositories import CASE_COLUMNS, _clip, _new_id, _Repository, _upsert, case_record
from storage.schema import (
    CASE_EVENT_ACTIONS,
    CASE_KINDS,
    FOLLOW_UP_ANSWERS,
    NOTIFICATION_DELIVERIES,
    NOTIFICATION_PURPOSES,
    case_events,
    case_notifications,
    cases,
    conversations,
    counters,
    follow_ups,
    outbox,
)

__all__ = [
    "CaseEventRecord",
    "ClientChat",
    "FollowUpRecord",
    "NotificationRecord",
    "RegisterRepository",
]

NOTE_LIMIT = 5000
DAILY_COUNTER = "register:daily"


@dataclass(kw_only=True, frozen=True)
class CaseEventRecord:
    id: int
    at: datetime
    actor: str
    action: str
    value: str | None
    note: str | None = field(default=None, repr=False)


@dataclass(kw_only=True, frozen=True)
class NotificationRecord:
    id: int
    reference: str
    purpose: str
    status: str | None
    created_at: datetime
    delivered_at: datetime | None
    delivery: str | None
    method: str | None
    resolved_at: datetime | None
    event_id: int | None = None  # purpose "message": the event with the text


@dataclass(kw_only=True, frozen=True)
class FollowUpRecord:
    reference: str
    answer: str
    answered_at: datetime
    comment: str | None = field(default=None, repr=False)
    attention_done_at: datetime | None = None


@dataclass(kw_only=True, frozen=True)
class ClientChat:
    """Where a case's client can be reached in chat, and what they chose as contact."""

    conversation_id: int
    channel: str
    chat_id: str = field(repr=False)
    language: str | None
    data: dict[str, Any] = field(repr=False)


class RegisterRepository(_Repository):
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
    ) -> builtins.list[CaseRecord]:
        """Cases, oldest first, optionally by status and creation time [from, before)."""
        stmt = select(*CASE_COLUMNS).order_by(cases.c.created_at, cases.c.id)
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

    # --- notifications -------------------------------------------------------------------------

    async def add_notification(
        self, reference: str, purpose: str, at: datetime, *, status: str | None = None,
        event_id: int | None = None,
    ) -> int:
        if purpose not in NOTIFICATION_PURPOSES:
            raise ValueError(f"unknown notification purpose {purpose!r}")
        result = await self._conn.execute(
            sql_insert(case_notifications).values(
                case_id=await self._id(reference), purpose=purpose, status=status, created_at=at,
                event_id=event_id,
            )
        )
        return _new_id(result)

    async def set_delivery(
        self, notification_id: int, at: datetime, delivery: str, method: str | None
    ) -> None:
        """How the message reached the client: sent, template, or manual (then `method`)."""
        if delivery not in NOTIFICATION_DELIVERIES:
            raise ValueError(f"unknown delivery {delivery!r}")
        result = await self._conn.execute(
            update(case_notifications)
            .where(case_notifications.c.id == notification_id)
            .values(delivered_at=at, delivery=delivery, method=method)
        )
        if result.rowcount != 1:
            raise NotFoundError(f"no notification {notification_id}")

    def _notifications_stmt(self) -> Any:
        return select(case_notifications, cases.c.reference).join(
            cases, cases.c.id == case_notifications.c.case_id
        )

    @staticmethod
    def _notification(row: RowMapping) -> NotificationRecord:
        return NotificationRecord(
            id=row["id"],
            reference=row["reference"],
            purpose=row["purpose"],
            status=row["status"],
            created_at=row["created_at"],
            delivered_at=row["delivered_at"],
            delivery=row["delivery"],
            method=row["method"],
            resolved_at=row["resolved_at"],
            event_id=row["event_id"],
        )

    async def notifications(
        self,
        reference: str | None = None,
        *,
        pending: bool = False,
        open_manual: bool = False,
        purpose: str | None = None,
    ) -> builtins.list[NotificationRecord]:
        """Notifications, oldest first: of one case, still pending, or manual and not yet done."""
        stmt = self._notifications_stmt().order_by(case_notifications.c.id)
        if reference is not None:
            stmt = stmt.where(cases.c.reference == reference)
        if pending:
            stmt = stmt.where(case_notifications.c.delivered_at.is_(None))
        if open_manual:
            stmt = stmt.where(
                case_notifications.c.delivery == "manual",
                case_notifications.c.resolved_at.is_(None),
            )
        if purpose is not None:
            stmt = stmt.where(case_notifications.c.purpose == purpose)
        rows = (await self._conn.execute(stmt)).mappings().all()
        return [self._notification(row) for row in rows]

    async def resolve_manual(self, reference: str, at: datetime) -> int:
        """Staff made the manual contact: close the case's open manual notifications."""
        case_id = await self._id(reference)
        result = await self._conn.execute(
            update(case_notifications)
            .where(
                case_notifications.c.case_id == case_id,
                case_notifications.c.delivery == "manual",
                case_notifications.c.resolved_at.is_(None),
            )
            .values(resolved_at=at)
        )
        return result.rowcount

    async def announced(self, channel: str, chat_id: str) -> builtins.list[NotificationRecord]:
        """Notifications of this chat's cases that only a template announced (WhatsApp outside
        its 24-hour window) and whose news the client has not been shown yet, oldest first."""
        stmt = (
            self._notifications_stmt()
            .join(conversations, conversations.c.id == cases.c.conversation_id)
            .where(
                conversations.c.channel == channel,
                conversations.c.chat_id == chat_id,
                case_notifications.c.delivery == "template",
                case_notifications.c.resolved_at.is_(None),
            )
            .order_by(case_notifications.c.id)
        )
        rows = (await self._conn.execute(stmt)).mappings().all()
        return [self._notification(row) for row in rows]

    async def shown(self, notification_id: int, at: datetime) -> None:
        """The news of a template-announced notification reached the client."""
        await self._conn.execute(
            update(case_notifications)
            .where(case_notifications.c.id == notification_id,
                   case_notifications.c.delivery == "template")
            .values(resolved_at=at)
        )

    async def follow_up_due(self, closed_before: datetime) -> builtins.list[CaseRecord]:
        """Closed cases to ask about (003 §4): closed before the cut-off and never asked yet.

        Reports and signals are left out (registration only), and so are cases without a chat.
        """
        asked = exists().where(
            case_notifications.c.case_id == cases.c.id,
            case_notifications.c.purpose == "follow_up",
        )
        stmt = (
            select(*CASE_COLUMNS)
            .where(
                cases.c.status == "closed",
                cases.c.closed_at <= closed_before,
                cases.c.kind.not_in(("report", "signal")),
                cases.c.erased_at.is_(None),
                ~asked,
            )
            .order_by(cases.c.closed_at, cases.c.id)
        )
        rows = (await self._conn.execute(stmt)).mappings().all()
        return [case_record(row) for row in rows]

    # --- follow-up answers ---------------------------------------------------------------------

    async def record_follow_up(
        self, reference: str, answer: str, at: datetime, comment: str | None = None
    ) -> None:
        """Store the client's answer; a later answer replaces it, a comment is added to it."""
        if answer not in FOLLOW_UP_ANSWERS:
            raise ValueError(f"unknown follow-up answer {answer!r}")
        blob = None if comment is None else self._cipher.encrypt(comment[:NOTE_LIMIT].encode())
        values: dict[str, Any] = {"answer": answer, "answered_at": at, "attention_done_at": None}
        if blob is not None:
            values["comment"] = blob
        stmt = (
            _upsert(self._conn, follow_ups)
            .values(case_id=await self._id(reference), **values)
            .on_conflict_do_update(index_elements=[follow_ups.c.case_id], set_=values)
        )
        await self._conn.execute(stmt)

    async def follow_up(self, reference: str) -> FollowUpRecord | None:
        stmt = (
            select(follow_ups, cases.c.reference)
            .join(cases, cases.c.id == follow_ups.c.case_id)
            .where(cases.c.reference == reference)
        )
        row = (await self._conn.execute(stmt)).mappings().one_or_none()
        return None if row is None else self._follow_up(row)

    def _follow_up(self, row: RowMapping) -> FollowUpRecord:
        comment = row["comment"]
        return FollowUpRecord(
            reference=row["reference"],
            answer=row["answer"],
            answered_at=row["answered_at"],
            comment=None if comment is None else self._cipher.decrypt(comment).decode(),
            attention_done_at=row["attention_done_at"],
        )

    async def follow_up_answers(self) -> dict[int, str]:
        """Every recorded answer by case id (for the anonymised export)."""
        result = await self._conn.execute(select(follow_ups.c.case_id, follow_ups.c.answer))
        return {int(row.case_id): str(row.answer) for row in result.all()}

    async def needing_attention(self) -> builtins.list[FollowUpRecord]:
        """'No' answers (and 'partly') the coordinator has not dealt with yet (003 §4)."""
        stmt = (
            select(follow_ups, cases.c.reference)
            .join(cases, cases.c.id == follow_ups.c.case_id)
            .where(follow_ups.c.answer.in_(("no", "partly")), follow_ups.c.attention_done_at.is_(None))
            .order_by(follow_ups.c.answered_at)
        )
        rows = (await self._conn.execute(stmt)).mappings().all()
        return [self._follow_up(row) for row in rows]

    async def attention_done(self, reference: str, at: datetime) -> int:
        result = await self._conn.execute(
            update(follow_ups)
            .where(follow_ups.c.case_id == await self._id(reference),
                   follow_ups.c.attention_done_at.is_(None))
            .values(attention_done_at=at)
        )
        return result.rowcount

    # --- retention (001 art. 17.4) ---------------------------------------------------------------

    async def retention_due(self, ended_before: datetime) -> builtins.list[CaseRecord]:
        """Cases whose dossier is still there and that ended (closed, withdrawn, lapsed) before.

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

    async def delete_old_outbox(self, before: datetime) -> int:
        """Mails without a case (digests) older than `before`, once they are no longer pending."""
        result = await self._conn.execute(
            sql_delete(outbox).where(
                outbox.c.case_reference.is_(None),
                outbox.c.created_at < before,
                outbox.c.status != "pending",
            )
        )
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
