"""The web chat's channel: one WebSocket per open browser tab, its frames, the client messages
through the intake service, return codes and devices (sending: outbound.py).

Exactly once, both ways:

* in: each client message carries a random id from the browser, which becomes the service's
  `update_id` (scoped to the chat); the browser keeps a message until its "ack" and sends it again
  after a reconnect, so a repeat is a no-op for the service and is acknowledged again;
* out: replies, relays and staff news are owed rows (bot/services/delivery.py), stored with the
  state change that caused them, each with a per-chat `seq`. They go to every open socket of the
  chat and are marked sent only when the browser acknowledges the `seq`; a reconnecting browser
  gets every row not yet acknowledged, and shows a `seq` it has seen only once.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import TYPE_CHECKING, Final

from aiohttp import WSMsgType, web

import bot.channels.web.codes as codes
import bot.channels.web.protocol as protocol
from bot.channels.web.outbound import CHANNEL, Connection, WebSender, token_hash
from bot.channels.web.texts import (
    CODE_GIVEN,
    CODE_OK,
    CODE_THROTTLED,
    CODE_WRONG,
    FAILED,
    FILE_TYPE,
    NO_CODE_YET,
    TOO_FAST,
    TOO_LONG,
)
from bot.services.handoff_desk import expire_offers_until
from bot.services.intake import Reply
from flows.model import (
    Attachment,
    AttachmentRefused,
    Choice,
    Command,
    Event,
    Start,
    Text,
    supported_language,
)

if TYPE_CHECKING:
    from bot.channels.ports import ChannelHost

log = logging.getLogger(__name__)

RATE: Final = (30, 30.0)  # at most 30 client messages in 30 seconds per socket
MAX_HELLOS: Final = 5  # per socket (each hello without a token makes a device row)
MAX_BAD_FRAMES: Final = 5  # then the socket is closed
HANDLE_RETRY_DELAYS: Final = (0.2, 1.0, 3.0)
_DUMMY_HASH: list[str] = []  # verified against when a locator is unknown (same time either way)


class WebChat(WebSender):
    """The channel "web": the sockets' frames, client messages, return codes and devices."""

    def __init__(self, app: ChannelHost, throttle: codes.Throttle | None = None) -> None:
        super().__init__(app)
        self.throttle = throttle or codes.Throttle()
        self.rate = RATE

    # --- the socket -------------------------------------------------------------------------

    async def serve(self, ws: web.WebSocketResponse, address: str) -> None:
        """Read one socket's frames until it closes; one frame at a time, in order."""
        conn = Connection(ws, address)
        self._open.add(conn)
        bad = 0
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    bad += 1
                    await self._notice(conn, None)
                else:
                    try:
                        parsed = protocol.parse(msg.data, self.app.settings.max_attachment_bytes)
                    except protocol.BadFrame as exc:
                        log.info("web chat: refused a frame (%s)", exc)
                        bad += 1
                    else:
                        await self._frame(conn, parsed)
                if bad >= MAX_BAD_FRAMES:
                    await ws.close(code=1008, message=b"protocol")
                    break
        finally:
            self._unbind(conn)
            self._open.discard(conn)

    async def _frame(self, conn: Connection, frame: protocol.Frame) -> None:
        if isinstance(frame, protocol.Hello):
            conn.hellos += 1
            if conn.hellos > MAX_HELLOS:
                await ws_close(conn)
                return
            await self._hello(conn, frame)
        elif conn.chat_id is None:
            log.info("web chat: a frame before hello refused")
        elif isinstance(frame, protocol.Ack):
            self._ack(conn, frame.seq)
        elif isinstance(frame, protocol.Redeem):
            await self._redeem(conn, frame.code)
        elif isinstance(frame, protocol.Forget):
            await self._forget(conn)
        elif isinstance(frame, protocol.NewCode):
            await self._new_code(conn, conn.chat_id)
        else:
            await self._client(conn, conn.chat_id, frame)

    async def _hello(self, conn: Connection, hello: protocol.Hello) -> None:
        now = self.app.clock()
        conn.language = supported_language(hello.language)
        conn.organisation = hello.organisation
        async with self.app.db.unit_of_work() as uow:
            known = (await uow.web.chat_of(token_hash(hello.token))
                     if hello.token is not None else None)
            fresh = known is None
            if hello.token is not None and known is not None:
                token, chat_id = hello.token, known
                await uow.web.seen(token_hash(token), now)
            else:
                token, chat_id = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
                await uow.web.add_device(token_hash(token), chat_id, now)
            stored = await uow.conversations.get(CHANNEL, chat_id)
            await uow.commit()
        if stored is not None and stored.language:
            conn.language = stored.language
        self._bind(conn, chat_id, token)
        await self._send(conn, protocol.frame("ready", token=token, fresh=fresh,
                                              lang=conn.language))
        await self._push(chat_id)

    # --- in: client messages ------------------------------------------------------------------

    def _too_fast(self, conn: Connection) -> bool:
        now = time.monotonic()
        limit, window = self.rate
        while conn.times and conn.times[0] <= now - window:
            conn.times.popleft()
        if len(conn.times) >= limit:
            return True
        conn.times.append(now)
        return False

    async def _notice(self, conn: Connection, text: str | None, **extra: object) -> None:
        t = self.app.catalogs.get(conn.language)
        await self._send(conn, protocol.frame("notice", text=text or t._(FILE_TYPE), **extra))

    async def _client(self, conn: Connection, chat_id: str,
                      message: protocol.ClientMessage) -> None:
        t = self.app.catalogs.get(conn.language)
        if self._too_fast(conn):
            await self._notice(conn, t._(TOO_FAST), retry=message.id)
            return
        event = await self._event(conn, message)
        if event is None:
            await self._send(conn, protocol.frame("ack", id=message.id))
            return
        try:
            reply = await self._handle(chat_id, event, f"{chat_id}:{message.id}")
        except Exception as exc:
            log.error("web chat message could not be handled (%s)", type(exc).__name__)
            log.debug("details", exc_info=True)
            if isinstance(event, Attachment):
                await self.app.files.delete(event.ref)
            await self._notice(conn, t._(FAILED), retry=message.id)
            return
        await self._after(conn, chat_id, event, reply)
        await self._send(conn, protocol.frame("ack", id=message.id))

    async def _event(self, conn: Connection, message: protocol.ClientMessage) -> Event | None:
        """The flows event of a client message; None when it was refused here (with a notice)."""
        t = self.app.catalogs.get(conn.language)
        if message.kind == "start":
            return Start(language_hint=conn.language, organisation=conn.organisation)
        if message.kind == "text":
            if len(message.text) > protocol.MAX_TEXT:
                await self._notice(conn, t._(TOO_LONG).format(length=len(message.text),
                                                             limit=protocol.MAX_TEXT))
                return None
            typed = message.text.strip()
            if typed.startswith("/") and len(typed) > 1 and " " not in typed:
                return Command(typed[1:].lower())  # the help text names /help, /end, ...
            return Text(message.text)
        if message.kind == "choice":
            return Choice(message.button, message.state)
        if message.kind == "command":
            return Command(message.text)
        limit = self.app.settings.max_attachment_bytes
        if message.too_big:
            return AttachmentRefused("too_big", limit)
        kind = protocol.FILE_TYPES.get(message.content_type)
        if kind is None:
            await self._notice(conn, t._(FILE_TYPE))
            return None
        if not message.data:
            return AttachmentRefused("unreadable")
        ref = await self.app.files.save(message.data)
        return Attachment(kind, ref, len(message.data), message.content_type)  # type: ignore[arg-type]

    async def _handle(self, chat_id: str, event: Event, update_id: str) -> Reply:
        """The service's unit of work, tried again when it fails (it rolled back, so that is safe)."""
        for delay in (*HANDLE_RETRY_DELAYS, None):
            try:
                return await self.app.service.handle(CHANNEL, chat_id, event, update_id=update_id)
            except Exception as exc:
                if delay is None:
                    raise
                log.warning("web chat event failed (%s), retrying in %.1f s",
                            type(exc).__name__, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _after(self, conn: Connection, chat_id: str, event: Event, reply: Reply) -> None:
        """After the commit: the reply to the chat's sockets, a return code with the first
        receipt, the language the page follows, and the messages for other chats."""
        async with self.app.db.unit_of_work(read_only=True) as uow:
            stored = await uow.conversations.get(CHANNEL, chat_id)
            has_case = stored is not None and stored.id is not None and bool(
                await uow.cases.for_conversation(stored.id))
            has_code = await uow.web.has_code(chat_id)
        if isinstance(event, Attachment) and not reply.relayed and not any(
                item.get("ref") == event.ref for item in
                (stored.data.get("attachments") or [] if stored is not None else [])):
            await self.app.files.delete(event.ref)  # redelivered or not taken here: keep nothing
        if reply.duplicate:
            await self._push(chat_id)
            return
        language = stored.language if stored is not None else None
        if language and language != conn.language:
            for other in self._live.get(chat_id, ()):
                other.language = language
                await self._send(other, protocol.frame("lang", lang=language))
        await self._push(chat_id)
        if has_case and not has_code:
            await self.give_code(conn, chat_id)
        elif stored is None and has_code:  # erased: the code opens nothing any more
            async with self.app.db.unit_of_work() as uow:
                await uow.web.drop_code(chat_id)
                await uow.commit()
        await self._pass_on(reply)

    # --- return codes and devices ---------------------------------------------------------------

    async def give_code(self, conn: Connection, chat_id: str) -> None:
        """A new return code for the chat (replacing an older one), shown once on this socket."""
        code = codes.new_code()
        code_hash = await codes.hashed(code)
        async with self.app.db.unit_of_work() as uow:
            for _ in range(20):
                if not await uow.web.locator_taken(codes.locator(code)):
                    break
                code = codes.new_code()
                code_hash = await codes.hashed(code)
            await uow.web.set_code(chat_id, codes.locator(code), code_hash, self.app.clock())
            await uow.commit()
        t = self.app.catalogs.get(conn.language)
        await self._send(conn, protocol.frame(
            "code", code=codes.shown(code),
            text=t._(CODE_GIVEN), rtl=t.rtl))

    async def _new_code(self, conn: Connection, chat_id: str) -> None:
        """A new code on request, once the chat has a case (before, there is nothing to read)."""
        async with self.app.db.unit_of_work(read_only=True) as uow:
            stored = await uow.conversations.get(CHANNEL, chat_id)
            has_case = stored is not None and stored.id is not None and bool(
                await uow.cases.for_conversation(stored.id))
        if has_case:
            await self.give_code(conn, chat_id)
        else:
            t = self.app.catalogs.get(conn.language)
            await self._send(conn, protocol.frame("notice", text=t._(NO_CODE_YET)))

    async def _redeem(self, conn: Connection, typed: str) -> None:
        t = self.app.catalogs.get(conn.language)
        if not self.throttle.allowed(conn.address):
            log.warning("web chat: return code guessing throttled")
            await self._send(conn, protocol.frame("refused", text=t._(CODE_THROTTLED)))
            return
        code = codes.normalised(typed)
        found = None
        if code is not None:
            async with self.app.db.unit_of_work(read_only=True) as uow:
                found = await uow.web.code_at(codes.locator(code))
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(await codes.hashed(codes.new_code()))
        ok = await codes.matches(found.code_hash if found else _DUMMY_HASH[0], code or "")
        if found is None or not ok:
            self.throttle.failed(conn.address)
            await self._send(conn, protocol.frame("refused", text=t._(CODE_WRONG)))
            return
        now = self.app.clock()
        token = secrets.token_urlsafe(32)
        async with self.app.db.unit_of_work() as uow:
            await uow.web.add_device(token_hash(token), found.chat_id, now)
            stored = await uow.conversations.get(CHANNEL, found.chat_id)
            await uow.audit.record(now, "client", "web_return_code_used")
            await uow.commit()
        if stored is not None and stored.language:
            conn.language = stored.language
        t = self.app.catalogs.get(conn.language)
        self._bind(conn, found.chat_id, token)
        await self._send(conn, protocol.frame("ready", token=token, fresh=False,
                                              lang=conn.language, restored=True))
        await self._send(conn, protocol.frame("notice", text=t._(CODE_OK)))
        await self._push(found.chat_id)

    async def _forget(self, conn: Connection) -> None:
        if conn.token is not None:
            async with self.app.db.unit_of_work() as uow:
                await uow.web.forget_device(token_hash(conn.token))
                await uow.commit()
        self._unbind(conn)
        conn.token = None
        await self._send(conn, protocol.frame("forgotten"))

    async def expiry_loop(self, stop: asyncio.Event, every: float = 30.0) -> None:
        """Handoff offers nobody accepted in time (when no other channel checks them)."""
        await expire_offers_until(stop, lambda: self.app.service.handoffs, self._pass_on, every)


async def ws_close(conn: Connection) -> None:
    """Close a socket that floods the server (the browser reconnects at its own pace)."""
    log.info("web chat: a socket sent too many frames and was closed")
    await conn.ws.close(code=1008, message=b"too fast")
