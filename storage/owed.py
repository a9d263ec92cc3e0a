"""Messages owed to people (issue 10), in their own table: added in the unit of work of the change
that owes them, marked sent after the messenger took them; issue 15: leased by the process that
sends them. Like every repository here, it never commits.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy import insert as sql_insert
from sqlalchemy.engine import RowMapping

from storage.repositories import _new_id, _Repository
from storage.schema import owed_messages

__all__ = ["OwedMessage", "OwedRepository"]

# Issue 10: what a reply owes its chat, numbered after what the chat is owed already (built once,
# like the statements above: this runs for every reply on an owed channel).
_LAST_OWED_SEQ = select(func.max(owed_messages.c.seq)).where(
    owed_messages.c.channel == bindparam("channel"), owed_messages.c.chat_id == bindparam("chat_id"))
_INSERT_OWED = sql_insert(owed_messages).values(
    channel=bindparam("channel"), chat_id=bindparam("chat_id"), seq=bindparam("seq"),
    body=bindparam("body"), created_at=bindparam("created_at"),
    claimed_by=bindparam("claimed_by"), claimed_until=bindparam("claimed_until"))

# Issue 10: the unsent rows of one chat, in order (index ix_owed_messages_unsent_chat).
_UNSENT_FOR_CHAT = (
    select(owed_messages)
    .where(owed_messages.c.channel == bindparam("channel"),
           owed_messages.c.chat_id == bindparam("chat_id"), owed_messages.c.sent_at.is_(None))
    .order_by(owed_messages.c.seq)
)


@dataclass(frozen=True)
class OwedMessage:
    """One message owed to a chat, decrypted: `body` is the channel-neutral item as JSON data."""

    id: int
    channel: str
    chat_id: str
    seq: int
    body: Any
    claimed_by: str | None = None
    claimed_until: datetime | None = None

    def leased(self, now: datetime) -> bool:
        """Being sent by a process (this one or another) whose lease has not run out (issue 15)."""
        return self.claimed_until is not None and self.claimed_until > now


class OwedRepository(_Repository):
    """Messages owed to people (issue 10): added with the state change, marked sent after.
    Issue 15: a row's lease (`claimed_by`, `claimed_until`) is set by the process that sends it
    (`add`, `claim`); others skip it until the lease ends (`OwedMessage.leased`)."""

    __slots__ = ()

    async def add(self, channel: str, chat_id: str, bodies: Sequence[Any], at: datetime,
                  holder: str | None = None,
                  until: datetime | None = None) -> builtins.list[int]:
        """Owe these messages to the chat, after all it is owed already (claimed by `holder`
        until `until` when given); their ids."""
        if not bodies:
            return []
        last = (await self._conn.execute(
            _LAST_OWED_SEQ, {"channel": channel, "chat_id": chat_id})).scalar_one_or_none() or 0
        claimed = holder if until is not None else None
        ids = []
        for offset, body in enumerate(bodies, start=1):
            result = await self._conn.execute(_INSERT_OWED, {
                "channel": channel, "chat_id": chat_id, "seq": last + offset,
                "body": self._cipher.encrypt_json(body), "created_at": at,
                "claimed_by": claimed, "claimed_until": until if claimed else None})
            ids.append(_new_id(result))
        return ids

    async def claim(self, ids: Sequence[int], holder: str, now: datetime, until: datetime,
                    dead: Sequence[str] = ()) -> set[int]:
        """Take unsent rows for `holder` until `until` where no lease runs, or one of `dead`
        holders' (compare-and-set; on PostgreSQL a second process's update waits for the
        first's commit); the ids taken."""
        if not ids:
            return set()
        c = owed_messages.c
        result = await self._conn.execute(
            update(owed_messages)
            .where(c.id.in_(builtins.list(ids)), c.sent_at.is_(None),
                   or_(c.claimed_until.is_(None), c.claimed_until <= now,
                       c.claimed_by.in_(builtins.list(dead))))
            .values(claimed_by=holder, claimed_until=until)
            .returning(c.id))
        return {int(row[0]) for row in result.all()}

    async def release(self, ids: Sequence[int] | None, holder: str) -> int:
        """Sending failed or the process stops: `holder`'s lease on these unsent rows (None: all
        it holds) ends now, for the chat's next message or a resend loop."""
        c = owed_messages.c
        where = [c.sent_at.is_(None), c.claimed_by == holder, c.claimed_until.is_not(None)]
        if ids is not None:
            if not ids:
                return 0
            where.append(c.id.in_(builtins.list(ids)))
        result = await self._conn.execute(
            update(owed_messages).where(*where).values(claimed_until=None))
        return result.rowcount

    async def unsent(self, channel: str) -> builtins.list[OwedMessage]:
        """Everything still owed on a channel, per chat in order (start-up)."""
        stmt = (select(owed_messages)
                .where(owed_messages.c.sent_at.is_(None), owed_messages.c.channel == channel)
                .order_by(owed_messages.c.chat_id, owed_messages.c.seq))
        return self._owed((await self._conn.execute(stmt)).mappings().all())

    async def unsent_for_chat(self, channel: str, chat_id: str) -> builtins.list[OwedMessage]:
        """What is still owed to one chat, in order, leased or not (served by the partial index
        on unsent rows); senders decide with `OwedMessage.leased`, the desk shows them all."""
        return self._owed((await self._conn.execute(
            _UNSENT_FOR_CHAT, {"channel": channel, "chat_id": chat_id})).mappings().all())

    def _owed(self, rows: Sequence[RowMapping]) -> builtins.list[OwedMessage]:
        return [OwedMessage(row["id"], row["channel"], row["chat_id"], row["seq"],
                            self._cipher.decrypt_json(row["body"]), row["claimed_by"],
                            row["claimed_until"]) for row in rows]

    async def mark_sent(self, ids: Sequence[int], at: datetime) -> int:
        """Sent: the content is dropped at once (the row keeps only machine values)."""
        if not ids:
            return 0
        result = await self._conn.execute(
            update(owed_messages).where(owed_messages.c.id.in_(builtins.list(ids)),
                                        owed_messages.c.sent_at.is_(None))
            .values(sent_at=at, body=None, claimed_until=None))
        return result.rowcount

    async def prune(self, before: datetime) -> int:
        """Forget sent rows older than `before`."""
        result = await self._conn.execute(sql_delete(owed_messages).where(
            owed_messages.c.sent_at.is_not(None), owed_messages.c.sent_at < before))
        return result.rowcount
