"""Sending on WhatsApp: replies, the `ChannelSender` and `ItemSender`, the 24-hour window.

As the `ChannelSender` "whatsapp" the channel delivers messages that are not a direct reply: inside
the 24-hour customer-service window as usual ("sent"); outside it as the organisation's approved
template with the case reference as its parameter ("template"; the register keeps the news and it is
shown when the client writes again), or not at all ("unavailable"). As the `ItemSender` it relays
the confidant chat's messages and files: files are uploaded (`POST /{phone-number-id}/media`) and
sent by media id; outside the window the relay is kept (owed rows, encrypted, stored in the unit of
work that caused them), announced by the template and shown, in order, as soon as the client writes.

Issue 10: replies and relays are owed rows (bot/services/delivery.py), sent right after the commit
and marked sent (batched) once the Graph API took them; at start-up what a crash left unsent is
sent per chat in order (where the window allows), and a chat's unsent rows go first when it writes.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from bot.channels.whatsapp.graph import GraphClient, GraphError
from bot.channels.whatsapp.messages import BODY_LIMIT, _text_messages, render, template_message
from bot.services.delivery import (
    LEASE,
    Delivery,
    OwedMarker,
    holder_of,
    item_from_json,
    item_to_json,
)
from bot.services.handoffs import HandoffDesk
from bot.services.intake import LAST_INBOUND
from bot.services.register import announced_news, news_shown
from flows.handoff import Item
from flows.model import OutMessage

if TYPE_CHECKING:
    from bot.channels.ports import ChannelHost
    from storage import StoredConversation
    from storage.owed import OwedMessage

log = logging.getLogger(__name__)

CHANNEL: Final = "whatsapp"

# The customer-service window, with a small margin for clocks and queues.
WINDOW: Final = timedelta(hours=24) - timedelta(minutes=5)
# Graph error codes: "re-engagement message" (the window is closed) and "template not in language".
REENGAGEMENT_ERROR: Final = 131047
TEMPLATE_LANGUAGE_ERROR: Final = 132001
TEMPLATE_LANGUAGES: Final = {"nl": "nl", "uk": "uk", "ar": "ar", "en": "en"}

# A relayed file as a Graph media message: our kind -> WhatsApp's type, and a default mime type.
MEDIA_OUT: Final = {"photo": ("image", "image/jpeg"), "voice": ("audio", "audio/ogg"),
                    "video": ("video", "video/mp4")}

_REFERENCE = re.compile(r"\bKW-\d{4}-\d{6}\b")


class WhatsAppSender:
    """The sending half of the channel: the `ChannelSender` and `ItemSender` named "whatsapp"."""

    name = CHANNEL

    def __init__(self, app: ChannelHost, graph: GraphClient) -> None:
        self.app = app
        self.graph = graph
        self._closed = False
        # Issue 10: owed rows (replies, relays) are marked sent in batches once the Graph API took
        # them; one chat's owed rows are sent by one task at a time (the lock), in order.
        self.marker = OwedMarker(app.db, app.clock, holder_of(app.service.owed_channels))
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary())

    def close(self) -> None:
        """After this, proactive sends answer "unavailable" (the HTTP session is going away)."""
        self._closed = True

    # --- shared with the webhook side ---------------------------------------------------------

    async def _load(self, wa_id: str) -> StoredConversation | None:
        async with self.app.db.unit_of_work(read_only=True) as uow:
            return await uow.conversations.get(CHANNEL, wa_id)

    @property
    def desk(self) -> HandoffDesk | None:
        """The process's handoff desk (shared with Telegram), while this channel runs."""
        return self.app.service.handoffs

    # --- what was kept while the window was closed, shown when the client writes --------------

    async def _show_announced(self, wa_id: str, stored: StoredConversation) -> None:
        """News that a template announced while the window was closed, now that it is open.
        The register keeps it until it was shown, so neither a failure here nor a restart loses
        it (the client's own message is handled all the same)."""
        try:
            news = await announced_news(self.app, CHANNEL, wa_id)
            if news:
                await self._deliver(wa_id, [message for _, message in news], stored)
                await news_shown(self.app, [notification for notification, _ in news])
        except Exception as exc:
            log.warning("announced news not shown yet (%s)", type(exc).__name__)

    async def _show_kept(self, wa_id: str, stored: StoredConversation | None) -> None:
        """What this chat is still owed and due, in order, now that the window is open: confidant
        messages kept while it was closed, and anything a crash or a failed send left unsent
        (issue 10). Rows another process is sending (a running lease, issue 15) are left to it,
        and so is everything after them. Each is marked sent once the Graph API took it."""
        async with self._chat_lock(wa_id):
            try:
                rows = await self.marker.take_for_chat(CHANNEL, wa_id)
            except Exception as exc:
                log.warning("kept messages not read (%s)", type(exc).__name__)
                return
            await self._send_rows(wa_id, rows, stored)

    async def _send_rows(self, wa_id: str, rows: Sequence[OwedMessage],
                         stored: StoredConversation | None) -> None:
        """Rows this process took, in order; after a failure the rest are released (due again
        for the next message or the resend loop). Call with the chat's lock held."""
        for index, row in enumerate(rows):
            if self.marker.done(row.id):
                continue  # sent meanwhile (a relay that held the chat's lock)
            try:
                item, state = item_from_json(row.body)
                await self._send_owed(wa_id, item, stored, state, row.id)
            except Exception as exc:
                log.warning("kept messages not all shown yet (%s)", type(exc).__name__)
                await self.marker.release([r.id for r in rows[index:]])
                return

    async def send_owed(self) -> int:
        """What is owed and due (a crash, a failed send, a process killed mid-send), per chat in
        order, where it can be sent now (a confidant's chat, or a client whose window is open);
        the rest is released and waits until they write. At start-up and every half lease."""
        try:
            rows = await self.marker.owed(CHANNEL)
        except Exception as exc:
            log.warning("owed WhatsApp messages not read (%s)", type(exc).__name__)
            return 0
        sent = 0
        for chat_id in dict.fromkeys(row.chat_id for row in rows):
            mine = [row for row in rows if row.chat_id == chat_id]
            stored = await self._load(chat_id)
            desk = self.desk
            staff = desk is not None and desk.is_confidant(CHANNEL, chat_id)
            if staff or (stored is not None and _window_open(stored, self.app.clock())):
                async with self._chat_lock(chat_id):
                    await self._send_rows(chat_id, mine, stored)
                sent += 1
            else:
                await self.marker.release([row.id for row in mine])
        if rows:
            log.info("%d owed WhatsApp message(s) due", len(rows))
        return sent

    async def resend_loop(self, stop: asyncio.Event) -> None:
        """`send_owed` now and every half lease: rows of a process that died mid-send, or whose
        send failed, are due again when their lease ends (issue 15)."""
        period = LEASE.total_seconds() / 2
        while not stop.is_set():
            await self.send_owed()
            try:
                await asyncio.wait_for(stop.wait(), period)
            except TimeoutError:
                pass

    def _chat_lock(self, chat_id: str) -> asyncio.Lock:
        lock = self._locks.get(chat_id)
        if lock is None:
            lock = self._locks[chat_id] = asyncio.Lock()
        return lock

    async def _send_owed(self, chat_id: str, item: Item, stored: StoredConversation | None,
                         state: str | None, owed_id: int | None) -> None:
        """One item; its owed row marked sent once the Graph API took it, or when it never can
        be (refused for good: not sent again at every message). Raises on other failures."""
        try:
            if isinstance(item, OutMessage):
                await self._deliver(chat_id, [item], stored, state=state)
            else:
                await self._send_item(chat_id, item, stored)
        except GraphError as exc:
            if owed_id is not None and _refused_for_good(exc):
                log.warning("WhatsApp refused an owed message (status %s, code %s): given up",
                            exc.status, exc.code)
                self.marker.mark(owed_id)
            raise
        if owed_id is not None:
            self.marker.mark(owed_id)

    # --- outbound -----------------------------------------------------------------------------

    async def _send_all(self, wa_id: str, parts: Sequence[dict[str, Any]]) -> None:
        for part in parts:
            await self.graph.send(wa_id, part)

    async def _deliver(self, wa_id: str, messages: Sequence[OutMessage],
                       stored: StoredConversation | None, *, state: str | None = None,
                       owed: Sequence[int] = ()) -> None:
        """Messages in order; buttons carry the state the conversation is in now. `owed`: their
        owed rows (aligned), each marked sent once its last part was accepted."""
        t = self.app.catalogs.get(stored.language if stored else None)
        if state is None and stored is not None:
            state = stored.state
        for index, message in enumerate(messages):
            owed_id = owed[index] if index < len(owed) else None
            if owed_id is not None and self.marker.done(owed_id):
                continue
            try:
                await self._send_all(wa_id, render(message, t, state))
            except GraphError as exc:
                if owed_id is not None and _refused_for_good(exc):
                    self.marker.mark(owed_id)
                await self.marker.release(owed[index:])  # due again for the next message
                raise
            except Exception:
                await self.marker.release(owed[index:])
                raise
            if owed_id is not None:
                self.marker.mark(owed_id)

    async def send(self, chat_id: str, messages: Sequence[OutMessage]) -> Delivery:
        """`ChannelSender`: in the 24-hour window as usual, else the template, else "unavailable"."""
        if self._closed:
            return "unavailable"
        try:
            stored = await self._load(chat_id)
            if stored is None:
                return "unavailable"
            if _window_open(stored, self.app.clock()):
                try:
                    await self._deliver(chat_id, messages, stored)
                    return "sent"
                except GraphError as exc:
                    if exc.code != REENGAGEMENT_ERROR:
                        log.warning("WhatsApp message not delivered (status %s, code %s)",
                                    exc.status, exc.code)
                        return "unavailable"
            return await self._template(chat_id, messages, stored)
        except Exception as exc:  # the caller falls back to another way and records it
            log.error("WhatsApp message not delivered (%s)", type(exc).__name__)
            return "unavailable"

    async def deliver(self, chat_id: str, items: Sequence[Item],
                      owed: Sequence[int] = ()) -> Delivery:
        """`ItemSender` (the confidant chat's relay): messages and files in the 24-hour window,
        each owed row marked sent once taken; outside it they stay owed (stored with the state
        change that caused them), announced by the template and shown when the client writes."""
        if self._closed:
            await self.marker.release(owed)  # for the next process to send
            return "unavailable"
        try:
            stored = await self._load(chat_id)
            desk = self.desk
            staff = desk is not None and desk.is_confidant(CHANNEL, chat_id)
            if stored is None and not staff:
                return "unavailable"
            rest = list(items)
            ids: list[int | None] = [owed[i] if i < len(owed) else None for i in range(len(rest))]
            if staff or (stored is not None and _window_open(stored, self.app.clock())):
                async with self._chat_lock(chat_id):
                    try:
                        while rest:
                            if ids[0] is None or not self.marker.done(ids[0]):
                                await self._send_owed(chat_id, rest[0], stored, None, ids[0])
                            rest.pop(0)
                            ids.pop(0)
                        return "sent"
                    except GraphError as exc:
                        await self.marker.release([i for i in ids if i is not None])
                        if exc.code != REENGAGEMENT_ERROR:
                            log.warning("WhatsApp relay not delivered (status %s, code %s)",
                                        exc.status, exc.code)
                            return "unavailable"
            else:  # kept for when the client writes: whichever process they reach shows them
                await self.marker.release([i for i in ids if i is not None])
            if any(i is None for i in ids):  # not stored by the caller: keep them now
                await self._keep(chat_id, [item for item, i in zip(rest, ids, strict=True)
                                           if i is None])
            if stored is None:
                return "unavailable"
            return await self._template(chat_id, [i for i in rest if isinstance(i, OutMessage)],
                                        stored)
        except Exception as exc:
            log.error("WhatsApp relay not delivered (%s)", type(exc).__name__)
            return "unavailable"

    async def _keep(self, chat_id: str, items: Sequence[Item]) -> None:
        """Items a caller did not store as owed (it opened no unit of work for them): kept now,
        encrypted, for when the client writes. (Every door of the handoff desk stores them with
        its state change; this is for a caller that does not.)"""
        async with self.app.db.unit_of_work() as uow:
            await uow.owed.add(CHANNEL, chat_id, [item_to_json(i, None) for i in items],
                               self.app.clock())
            await uow.commit()

    async def _send_item(self, chat_id: str, item: Item,
                         stored: StoredConversation | None) -> None:
        if isinstance(item, OutMessage):
            await self._deliver(chat_id, [item], stored)
            return
        data = await self.app.files.read(item.ref)
        kind, default = MEDIA_OUT.get(item.kind, ("document", "application/octet-stream"))
        mime = item.content_type or default
        extension = {"image": "jpg", "audio": "ogg", "video": "mp4"}.get(kind, "bin")
        media_id = await self.graph.upload(data, mime, f"file.{extension}")
        media: dict[str, Any] = {"id": media_id}
        if kind == "audio":  # a voice note has no caption: who sent it comes first, as text
            if item.caption:
                await self._send_all(chat_id, _text_messages(item.caption + ":"))
        elif item.caption:
            media["caption"] = item.caption[:BODY_LIMIT]
        if kind == "document":
            media["filename"] = f"file.{extension}"
        await self.graph.send(chat_id, {"type": kind, kind: media})
        await self.app.files.delete(item.ref)  # relayed files are not kept

    async def _template(self, chat_id: str, messages: Sequence[OutMessage],
                        stored: StoredConversation) -> Delivery:
        name = self.app.organisation.whatsapp_template
        if not name:
            return "unavailable"
        reference = _reference(messages) or stored.data.get("last_reference")
        if not isinstance(reference, str) or not reference:
            return "unavailable"
        languages = [TEMPLATE_LANGUAGES.get(stored.language or "", "nl")]
        if "nl" not in languages:
            languages.append("nl")  # the organisation's own language always has the template
        for language in languages:
            try:
                await self.graph.send(chat_id, template_message(name, language, reference))
            except GraphError as exc:
                log.warning("WhatsApp template not delivered (status %s, code %s)", exc.status,
                            exc.code)
                if exc.code == TEMPLATE_LANGUAGE_ERROR:
                    continue
                return "unavailable"
            # The news itself follows when the client writes again (the window opens): the
            # register keeps it (`announced_news`), this channel keeps nothing.
            return "template"
        return "unavailable"



def _refused_for_good(exc: GraphError) -> bool:
    """A 4xx other than "too many requests" and "window closed": sending again will not help."""
    return 400 <= exc.status < 500 and exc.status != 429 and exc.code != REENGAGEMENT_ERROR


def _window_open(stored: StoredConversation, now: datetime) -> bool:
    raw = stored.data.get(LAST_INBOUND)
    if not isinstance(raw, str):
        return False
    try:
        last = datetime.fromisoformat(raw)
    except ValueError:
        return False
    return now - last < WINDOW


def _reference(messages: Sequence[OutMessage]) -> str | None:
    for message in messages:
        match = _REFERENCE.search(message.text)
        if match:
            return match.group(0)
    return None
