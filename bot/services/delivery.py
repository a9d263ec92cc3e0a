"""Channels as ports: anything that can deliver messages to a client or staff member by chat id.

Adapters (terminal, Telegram, WhatsApp) register a `ChannelSender`; the service and the register
use `Channels.send` for messages that are not a direct reply (handoffs, status updates, follow-up).

Messages owed to people are stored, then sent.

A reply to a client, a relay in a confidant chat (both ways), a confidant's update and a handoff
timeout are written to `owed_messages` (encrypted, with a per-chat sequence) in the SAME unit of
work as the state change that causes it: a receipt exists in the database exactly when its case
does. After the commit the channel sends it at once (the usual, fast path) and marks it sent right
after the messenger's API accepted it (marks are batched into one small UPDATE). At start-up, before
any new update is handled, the channel sends whatever is still owed, per chat in sequence order,
ahead of anything new. So a crash between "API accepted" and "marked sent" can repeat the messages
of the last unwritten batch of marks, never lose one.

Issue 15, several processes: the process that owes rows claims them in the same unit of work
(a lease of `LEASE`, its `holder` id): it sends them right after the commit. Every other path
that sends owed rows (a chat's next message on another process, the start-up scan, the resend
loop) skips rows whose lease is running, sends a chat's rows only in order (never past a leased
one), and takes due rows with a compare-and-set first. Sent rows lose their lease with their
body; a failed send releases it (due at once); a process killed mid-send leaves its rows due
when the lease ends, or at once for a process on the same host that sees its pid is gone (a
restart after a crash). Pages that show rows (the desk) and the web chat's sockets, which hold
the only way to reach their chat, read the rows whatever their lease.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from sqlalchemy.exc import IntegrityError, OperationalError

from flows.handoff import FileOut
from flows.model import Button, OutMessage
from storage import ConcurrentUpdateError, Database, UnitOfWork
from storage.owed import OwedMessage

T = TypeVar("T")
RETRIES = 8  # with the 10 s busy timeout of SQLite: a write lock held for a minute is waited out
# Issue 15: how long a process may take to send the rows it claimed before another may send them.
# Longer than a reply takes (a few API calls, each well under a second; the Graph client gives up
# on one after 60 s, Telegram's pacing holds a chat's burst for seconds), short enough that the
# replies of a killed process reach the client within a minute.
LEASE = timedelta(seconds=60)


@cache
def process_holder() -> str:
    """This process's name on the leases it holds: host, pid and a random part (a restarted
    process with the same pid is another holder)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"


def gone(holder: str | None) -> bool:
    """A holder on this host whose process has ended (a restart after a crash): its leases need
    not be waited out. Elsewhere, or when unsure, False (the lease runs its course)."""
    if not holder:
        return False
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname()[:30] or not pid.isdigit() or holder == process_holder():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


class OwedChannels(set[str]):
    """The channels whose owed rows are stored, and the holder that claims them (tests give two
    services on one database two holders; in `klachtwijzer run` it is the process's)."""

    def __init__(self, names: AbstractSet[str] = frozenset(), holder: str | None = None) -> None:
        super().__init__(names)
        self.holder = holder


def holder_of(owed_channels: AbstractSet[str]) -> str:
    """Who claims the rows a service stores (`OwedChannels.holder`, else this process)."""
    return getattr(owed_channels, "holder", None) or process_holder()


class Addressed(Protocol):
    """Items for one chat (a handoff's `Envelope`)."""

    @property
    def channel(self) -> str: ...

    @property
    def chat_id(self) -> str: ...

    @property
    def items(self) -> Sequence[OutMessage | FileOut]: ...

log = logging.getLogger(__name__)

# How a message that was not a direct reply reached the client: in the chat itself; announced by
# an approved template (WhatsApp outside its 24-hour window: the message itself was not sent, the
# caller keeps it to show when the client writes again); or not at all (the caller falls back to
# the contact the client chose, and the register records which).
Delivery = Literal["sent", "template", "unavailable"]


class ChannelSender(Protocol):
    """Delivers messages to one chat of one channel (e.g. a Telegram chat id)."""

    name: str

    async def send(self, chat_id: str, messages: Sequence[OutMessage]) -> Delivery: ...


@runtime_checkable
class ItemSender(Protocol):
    """A channel that also carries files and marks owed rows (the confidant handoff's relay).

    `deliver` sends messages and files (read from the file store, deleted once passed on) to one
    chat; `owed` are the ids of the owed rows stored with them (aligned with `items`, may be
    empty), marked sent once the messenger accepted each."""

    name: str

    async def deliver(self, chat_id: str, items: Sequence[OutMessage | FileOut],
                      owed: Sequence[int] = ()) -> Delivery: ...


class Channels:
    """The channels running in this process, by name."""

    def __init__(self) -> None:
        self._senders: dict[str, ChannelSender] = {}

    def register(self, sender: ChannelSender) -> None:
        self._senders[sender.name] = sender

    def get(self, name: str) -> ChannelSender | None:
        return self._senders.get(name)

    def names(self) -> frozenset[str]:
        return frozenset(self._senders)

    async def send(self, channel: str, chat_id: str, messages: Sequence[OutMessage]) -> Delivery:
        """Send if that channel runs here; "unavailable" tells the caller to use another way."""
        sender = self._senders.get(channel)
        if sender is None:
            return "unavailable"
        return await sender.send(chat_id, messages)

    async def deliver(self, channel: str, chat_id: str, items: Sequence[OutMessage | FileOut],
                      owed: Sequence[int] = ()) -> Delivery:
        """Messages and files for a chat on any channel (an `Envelope` of the handoff desk).

        A channel that cannot carry files gets the messages only."""
        sender = self._senders.get(channel)
        if sender is None:
            return "unavailable"
        if isinstance(sender, ItemSender):
            return await sender.deliver(chat_id, items, owed)
        messages = [i for i in items if isinstance(i, OutMessage)]
        return await sender.send(chat_id, messages) if messages else "sent"


# --- issue 10: messages owed to people, stored, then sent ---------------------------------------


async def owe(uow: UnitOfWork, owed_channels: AbstractSet[str], channel: str, chat_id: str,
              items: Sequence[OutMessage | FileOut], state: str | None,
              now: datetime) -> tuple[int, ...]:
    """Store what a chat is owed, in the caller's unit of work; the ids (aligned with `items`).

    Only for channels that send owed rows and mark them sent (`owed_channels`); elsewhere nothing
    is stored and the ids are empty (the message is sent after the commit, or lost with a crash).
    The rows are claimed for this process, which sends them after the commit (issue 15)."""
    if channel not in owed_channels or not items:
        return ()
    return tuple(await uow.owed.add(channel, chat_id,
                                    [item_to_json(i, state) for i in items], now,
                                    holder_of(owed_channels), now + LEASE))


async def owe_envelopes(uow: UnitOfWork, owed_channels: AbstractSet[str],
                        envelopes: Sequence[Addressed],
                        now: datetime) -> tuple[tuple[int, ...], ...]:
    """`owe` for each envelope (messages for other chats), aligned with `envelopes`."""
    return tuple([await owe(uow, owed_channels, env.channel, env.chat_id, env.items, None, now)
                  for env in envelopes])


async def retried(attempt: Callable[[], Awaitable[T]]) -> T:
    """A unit of work (that may owe messages) run again from the start when it lost a race (two
    units of work numbering one chat's owed rows) or met a busy database: it rolled back, so
    nothing half-done is ever committed."""
    tries = 1
    while True:
        try:
            return await attempt()
        except (ConcurrentUpdateError, IntegrityError, OperationalError) as exc:
            if not retryable(exc) or tries == RETRIES:
                raise
            log.warning("retrying a unit of work (attempt %d): %s", tries, type(exc).__name__)
            await asyncio.sleep(min(2.0, 0.05 * 2**tries))
            tries += 1


def retryable(exc: Exception) -> bool:
    """A lost race or a busy database: the whole unit of work can simply run again."""
    if isinstance(exc, ConcurrentUpdateError):
        return True
    text = str(getattr(exc, "orig", exc)).lower()
    if isinstance(exc, OperationalError):
        return "database is locked" in text or "deadlock" in text or "could not serialize" in text
    # Two processes creating the same conversation, or inserting the same inbound update id.
    return "unique" in text or "duplicate key" in text


def item_to_json(item: OutMessage | FileOut, state: str | None) -> dict[str, Any]:
    """An item (and the conversation state its buttons belong to) as JSON data to store."""
    if isinstance(item, FileOut):
        return {"file": {"kind": item.kind, "ref": item.ref, "content_type": item.content_type,
                         "caption": item.caption}, "state": state}
    return {"text": item.text, "rtl": item.rtl, "state": state,
            "buttons": [[[b.id, b.label] for b in row] for row in item.buttons]}


def item_from_json(data: dict[str, Any]) -> tuple[OutMessage | FileOut, str | None]:
    """The item stored by `item_to_json`, and its state."""
    state = data.get("state")
    if "file" in data:
        f = data["file"]
        return FileOut(str(f["kind"]), str(f["ref"]), str(f["content_type"]),
                       str(f["caption"])), state
    buttons = tuple(tuple(Button(str(i), str(label)) for i, label in row)
                    for row in data.get("buttons") or [])
    return OutMessage(str(data["text"]), buttons, bool(data.get("rtl"))), state


class OwedMarker:
    """Marks owed messages sent, batched: ids collected while one UPDATE runs go in the next."""

    RECENT = 10_000

    def __init__(self, db: Database, clock: Callable[[], datetime],
                 holder: str | None = None) -> None:
        self.db = db
        self.clock = clock
        self.holder = holder or process_holder()
        self._holders: set[str | None] = set()  # holders on rows whose process has ended
        self._ids: list[int] = []
        self._task: asyncio.Task[None] | None = None
        # Ids marked lately in this process (stored or not yet): a row read as unsent while its
        # mark is still on the way is not sent a second time.
        self._recent: OrderedDict[int, None] = OrderedDict()

    def mark(self, owed_id: int) -> None:
        self._recent[owed_id] = None
        while len(self._recent) > self.RECENT:
            self._recent.popitem(last=False)
        self._ids.append(owed_id)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self._ids:
            ids, self._ids = self._ids, []
            try:
                async with self.db.unit_of_work() as uow:
                    await uow.owed.mark_sent(ids, self.clock())
                    await uow.commit()
            except Exception as exc:  # sent again after a restart: a repeat, never a loss
                log.warning("owed messages not marked sent (%s)", type(exc).__name__)

    async def flush(self) -> None:
        """Wait until every mark so far is stored."""
        while self._task is not None and not self._task.done():
            await asyncio.gather(self._task, return_exceptions=True)

    async def owed(self, channel: str) -> list[OwedMessage]:
        """What is owed on a channel and due (at start-up, and in the resend loop), per chat in
        order, taken for this process: no row whose lease is running, none past such a row."""
        async with self.db.unit_of_work(read_only=True) as uow:
            rows = self._due(await uow.owed.unsent(channel))
        return await self._take(rows)

    async def take_for_chat(self, channel: str, chat_id: str) -> list[OwedMessage]:
        """What one chat is owed and due, in order, taken for this process (one read; a write
        only when there is something to take)."""
        async with self.db.unit_of_work(read_only=True) as uow:
            rows = self._due(await uow.owed.unsent_for_chat(channel, chat_id))
        return await self._take(rows)

    def _due(self, rows: Sequence[OwedMessage]) -> list[OwedMessage]:
        """Per chat, the rows up to the first one being sent (a running lease): a chat's rows
        go in order, so nothing passes a row another process is sending."""
        now = self.clock()
        blocked: set[str] = set()
        due = []
        for row in rows:
            if self.done(row.id):
                continue  # sent by this process, its mark still on the way
            if row.chat_id in blocked or (row.leased(now) and not self._gone(row.claimed_by)):
                blocked.add(row.chat_id)
                continue
            due.append(row)
        return due

    def _gone(self, holder: str | None) -> bool:
        if holder in self._holders:
            return True
        if gone(holder):
            log.info("taking over the owed messages of a process that has ended")
            self._holders.add(holder)
            return True
        return False

    async def _take(self, rows: list[OwedMessage]) -> list[OwedMessage]:
        """Claim the rows (compare-and-set); per chat the ones taken up to the first that was
        not (another process took it between the read and the claim)."""
        if not rows:
            return []
        now = self.clock()
        async with self.db.unit_of_work() as uow:
            dead = [h for h in self._holders if h is not None]
            taken = await uow.owed.claim([row.id for row in rows], self.holder, now, now + LEASE,
                                         dead)
            await uow.commit()
        blocked: set[str] = set()
        out = []
        for row in rows:
            if row.chat_id in blocked or row.id not in taken:
                blocked.add(row.chat_id)
                continue
            out.append(row)
        kept = {row.id for row in out}
        lost = [i for i in taken if i not in kept]
        if lost:
            await self.release(lost)
        return out

    async def release(self, ids: Sequence[int] | None) -> None:
        """Sending these failed or waits: due again at once, for whichever process is next.
        None (at shutdown, after `flush`): every row this process still holds."""
        if ids is not None:
            ids = [i for i in ids if not self.done(i)]
            if not ids:
                return
        try:
            async with self.db.unit_of_work() as uow:
                await uow.owed.release(ids, self.holder)
                await uow.commit()
        except Exception as exc:  # the lease runs out by itself
            log.warning("owed messages not released (%s)", type(exc).__name__)

    def done(self, owed_id: int) -> bool:
        """Marked sent lately in this process (its UPDATE may still be on the way)."""
        return owed_id in self._recent

    async def owed_to(self, channel: str, chat_id: str) -> list[OwedMessage]:
        """What is still owed to one chat, in order (an index-backed query), less what this
        process marked sent already, whatever the rows' leases (the web chat's sockets)."""
        async with self.db.unit_of_work(read_only=True) as uow:
            rows = await uow.owed.unsent_for_chat(channel, chat_id)
        return [row for row in rows if not self.done(row.id)]
