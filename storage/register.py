"""The register of issue 4: case history, notifications to clients, follow-up answers, retention.

`RegisterRepository` is assembled in layers: `storage/register_cases.py` (cases, history, the
client's chat), `storage/register_retention.py` (retention, the daily run) and this module
(notifications to clients, follow-up answers).

Like every repository it never commits. Notes and follow-up comments are encrypted; all other
columns hold machine values only (statuses, deadline names, delivery ways), so the register can be
listed and counted without decrypting anything. The lifecycle rules live in `flows/register.py`;
callers check a change there before storing it here.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy import insert as sql_insert
from sqlalchemy.engine import RowMapping

from storage.records import CaseRecord, NotFoundError
from storage.register_cases import NOTE_LIMIT, CaseEventRecord, ClientChat
from storage.register_retention import _RetentionQueries
from storage.repositories import CASE_COLUMNS, _new_id, _upsert, case_record
from storage.schema import (
    FOLLOW_UP_ANSWERS,
    NOTIFICATION_DELIVERIES,
    NOTIFICATION_PURPOSES,
    case_notifications,
    cases,
    conversations,
    follow_ups,
)

__all__ = [
    "CaseEventRecord",
    "ClientChat",
    "FollowUpRecord",
    "NotificationRecord",
    "RegisterRepository",
]


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


class RegisterRepository(_RetentionQueries):
    """The register: cases, history and retention (the base classes), notifications to clients
    and follow-up answers (here)."""

    __slots__ = ()

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
        organisation: str | None = None,
    ) -> builtins.list[NotificationRecord]:
        """Notifications, oldest first: of one case, still pending, or manual and not yet done;
        of one organisation's cases (its slug) or, with None, of all."""
        stmt = self._notifications_stmt().order_by(case_notifications.c.id)
        if organisation is not None:
            stmt = stmt.where(cases.c.organisation == organisation)
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

    async def follow_up_due(
        self, closed_before: datetime, *, organisation: str | None = None
    ) -> builtins.list[CaseRecord]:
        """Closed cases to ask about (003 §4): closed before the cut-off and never asked yet; of
        one organisation (its slug) or, with None, of all.

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
        if organisation is not None:
            stmt = stmt.where(cases.c.organisation == organisation)
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

    async def needing_attention(
        self, *, organisation: str | None = None
    ) -> builtins.list[FollowUpRecord]:
        """'No' answers (and 'partly') the coordinator has not dealt with yet (003 §4); of one
        organisation's cases (its slug) or, with None, of all."""
        stmt = (
            select(follow_ups, cases.c.reference)
            .join(cases, cases.c.id == follow_ups.c.case_id)
            .where(follow_ups.c.answer.in_(("no", "partly")), follow_ups.c.attention_done_at.is_(None))
            .order_by(follow_ups.c.answered_at)
        )
        if organisation is not None:
            stmt = stmt.where(cases.c.organisation == organisation)
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
