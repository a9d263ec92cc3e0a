"""Sending in the web chat: the sockets of each chat, owed rows pushed to them and marked sent when
the browser acknowledges them; the `ChannelSender` and `ItemSender` named "web"."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from aiohttp import web

import bot.channels.web.protocol as protocol
from bot.services.delivery import Delivery, OwedMarker, item_from_json, item_to_json
from bot.services.handoffs import Reply as DeskReply
from bot.services.intake import Reply
from flows.handoff import FileOut, Item
from flows.model import OutMessage

if TYPE_CHECKING:
    from bot.channels.ports import ChannelHost

log = logging.getLogger(__name__)

CHANNEL: Final = "web"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


@dataclass(eq=False)
class Connection:
    """One open WebSocket: the chat it is bound to, what it was sent, its rate."""

    ws: web.WebSocketResponse
    address: str
    chat_id: str | None = None
    token: str | None = None
    language: str | None = None
    organisation: str | None = None
    sent_seq: int = 0
    rows: dict[int, tuple[int, str | None]] = field(default_factory=dict)  # seq -> (id, file)
    times: deque[float] = field(default_factory=deque)
    hellos: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class WebSender:
    """The sending half of the channel "web": sockets by chat, owed rows pushed and acknowledged."""

    name = CHANNEL

    def __init__(self, app: ChannelHost) -> None:
        self.app = app
        self.marker = OwedMarker(app.db, app.clock)
        self._live: dict[str, set[Connection]] = {}
        self._open: set[Connection] = set()
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary())

    async def close_all(self) -> None:
        """At shutdown: close every socket (browsers reconnect and get what they are owed)."""
        for conn in list(self._open):
            await conn.ws.close(code=1001, message=b"restart")

    def _bind(self, conn: Connection, chat_id: str, token: str) -> None:
        self._unbind(conn)
        conn.chat_id, conn.token = chat_id, token
        conn.sent_seq, conn.rows = 0, {}
        self._live.setdefault(chat_id, set()).add(conn)

    def _unbind(self, conn: Connection) -> None:
        if conn.chat_id is not None:
            live = self._live.get(conn.chat_id)
            if live is not None:
                live.discard(conn)
                if not live:
                    del self._live[conn.chat_id]
        conn.chat_id = None

    async def _send(self, conn: Connection, data: str) -> None:
        if not conn.ws.closed:
            try:
                await conn.ws.send_str(data)
            except (ConnectionError, RuntimeError) as exc:
                log.info("web chat: a socket went away while sending (%s)", type(exc).__name__)

    # --- out: owed rows to every socket of a chat, marked sent on ack --------------------------

    def _chat_lock(self, chat_id: str) -> asyncio.Lock:
        lock = self._locks.get(chat_id)
        if lock is None:
            lock = self._locks[chat_id] = asyncio.Lock()
        return lock

    async def _push(self, chat_id: str) -> bool:
        """Send what the chat is owed to each of its sockets (what each has not had yet)."""
        live = list(self._live.get(chat_id, ()))
        if not live:
            return False
        async with self._chat_lock(chat_id):
            rows = await self.marker.owed_to(CHANNEL, chat_id)
            for conn in live:
                for row in rows:
                    if row.seq <= conn.sent_seq:
                        continue
                    item, state = item_from_json(row.body)
                    if isinstance(item, FileOut):
                        try:
                            data = await self.app.files.read(item.ref)
                        except (OSError, ValueError) as exc:  # gone: say so in its place
                            log.warning("web chat: a relayed file is gone (%s)", type(exc).__name__)
                            data = b""
                        text = protocol.file_frame(row.seq, item, data)
                        conn.rows[row.seq] = (row.id, item.ref)
                    else:
                        text = protocol.message_frame(row.seq, item, state)
                        conn.rows[row.seq] = (row.id, None)
                    conn.sent_seq = row.seq
                    await self._send(conn, text)
        return True

    def _ack(self, conn: Connection, seq: int) -> None:
        entry = conn.rows.pop(seq, None)
        if entry is None:
            return
        owed_id, ref = entry
        if not self.marker.done(owed_id):
            self.marker.mark(owed_id)
            if ref is not None:  # a relayed file is not kept once shown
                asyncio.get_running_loop().create_task(self.app.files.delete(ref))

    async def _keep(self, chat_id: str, items: Sequence[Item], state: str | None = None) -> None:
        async with self.app.db.unit_of_work() as uow:
            await uow.owed.add(CHANNEL, chat_id, [item_to_json(i, state) for i in items],
                               self.app.clock())
            await uow.commit()

    async def send(self, chat_id: str, messages: Sequence[OutMessage]) -> Delivery:
        """`ChannelSender`: kept as owed rows, shown at once in an open browser of the chat, else
        as soon as the client is back (with the token or the return code): "sent" either way,
        as the chat is the only way to reach an anonymous web client."""
        try:
            await self._keep(chat_id, messages)
            await self._push(chat_id)
            return "sent"
        except Exception as exc:
            log.error("web chat message not kept (%s)", type(exc).__name__)
            return "unavailable"

    async def deliver(self, chat_id: str, items: Sequence[Item],
                      owed: Sequence[int] = ()) -> Delivery:
        """`ItemSender` (the confidant chat): stored rows pushed; rows not stored yet kept first.
        "sent": the client sees them now, or as soon as they are back."""
        try:
            missing = [item for index, item in enumerate(items) if index >= len(owed)]
            if missing:
                await self._keep(chat_id, missing)
            await self._push(chat_id)
            return "sent"
        except Exception as exc:
            log.error("web chat relay not kept (%s)", type(exc).__name__)
            return "unavailable"

    async def _pass_on(self, reply: Reply | DeskReply) -> None:
        for index, envelope in enumerate(reply.others):
            owed = reply.others_owed[index] if index < len(reply.others_owed) else ()
            if await self.app.channels.deliver(envelope.channel, envelope.chat_id, envelope.items,
                                               owed) == "unavailable":
                log.warning("a message for another %s chat could not be delivered",
                            envelope.channel)
