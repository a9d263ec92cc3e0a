"""The WhatsApp channel: the webhook, the per-chat queues, and the `ChannelSender` "whatsapp"."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections import Counter, OrderedDict, deque
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from aiohttp import web

from bot.channels.whatsapp.graph import GraphClient, GraphError, MediaTooBig
from bot.channels.whatsapp.inbound import (
    MEDIA_TYPES,
    Inbound,
    MediaKind,
    _dict,
    _language_hint,
    _list,
    _sha256_matches,
    _text_event,
    signature_ok,
    start_text,
)
from bot.channels.whatsapp.messages import (
    BODY_LIMIT,
    _failed_text,
    _text_messages,
    _unsupported_text,
    parse_button_id,
)
from bot.channels.whatsapp.outbound import CHANNEL, WhatsAppSender
from bot.services.handoff_desk import expire_offers_until
from bot.services.handoffs import SENDER_NAME, HandoffDesk
from bot.services.handoffs import Reply as DeskReply
from bot.services.intake import Reply
from bot.services.staff import StaffCommands, StaffReply, StaffService, staff_command
from flows.model import (
    Attachment,
    AttachmentRefused,
    Choice,
    Command,
    Event,
    Start,
)

if TYPE_CHECKING:
    from bot.channels.ports import ChannelHost
    from storage import StoredConversation

log = logging.getLogger(__name__)

WEBHOOK_PATH: Final = "/webhook"
HANDLE_RETRY_DELAYS: Final = (0.2, 1.0, 3.0)  # on a failed unit of work (e.g. database busy)
MAX_BODY_BYTES: Final = 4 * 1024 * 1024
EXPIRY_SECONDS: Final = 30.0  # how often handoff offers are checked for their timeout
RECENT_IDS: Final = 10_000
# Issue 15: the webhook answers once what it accepted is committed, within this time (Meta sends
# a webhook again when it has no answer within about 20 s); later, 503: Meta delivers it again
# and the database's update ids keep it from being handled twice.
ANSWER_WITHIN: Final = 15.0

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:=+/-]{1,256}$")
_MEDIA_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # goes into a Graph URL path: no dots, no slashes
_CHALLENGE = re.compile(r"^[A-Za-z0-9_.-]{1,256}$")
# WhatsApp takes no text/csv documents: the CSV goes as plain text, its file name says .csv.
CSV_MIME: Final = "text/plain"


class WhatsAppChannel(WhatsAppSender):
    """The webhook, the per-chat queues, and the `ChannelSender` named "whatsapp"."""

    def __init__(self, app: ChannelHost, graph: GraphClient, *, app_secret: str, verify_token: str,
                 phone_number_id: str, staff: StaffCommands | None = None) -> None:
        super().__init__(app, graph)
        self.staff: StaffCommands = staff or StaffService(app)  # /signals and /stats
        self._secret = app_secret.encode("utf-8")
        self._verify_token = verify_token.encode("utf-8")
        self._phone_number_id = phone_number_id
        self._queues: dict[str, deque[Inbound]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        # Issue 15: per message being handled, resolved once it is committed (or needs nothing
        # stored): the webhook's answer waits for it, the Graph API sends do not.
        self._stored: dict[str, asyncio.Future[None]] = {}
        self._reads: set[asyncio.Task[None]] = set()  # read receipts on their way
        self.statuses: Counter[str] = Counter()  # delivery statuses seen, by kind (no ids kept)

    # --- HTTP -----------------------------------------------------------------------------

    def web_app(self) -> web.Application:
        application = web.Application(client_max_size=MAX_BODY_BYTES)
        application.router.add_get(WEBHOOK_PATH, self._verify)
        application.router.add_post(WEBHOOK_PATH, self._webhook)
        return application

    async def _verify(self, request: web.Request) -> web.Response:
        mode = request.query.get("hub.mode")
        token = request.query.get("hub.verify_token", "")
        challenge = request.query.get("hub.challenge", "")
        token_ok = hmac.compare_digest(token.encode("utf-8", "replace"), self._verify_token)
        if mode == "subscribe" and token_ok and _CHALLENGE.fullmatch(challenge):
            log.info("WhatsApp webhook verified")
            return web.Response(text=challenge, content_type="text/plain")
        log.warning("WhatsApp webhook verification refused")
        return web.Response(status=403, text="forbidden")

    async def _webhook(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not signature_ok(self._secret, body, request.headers.get("X-Hub-Signature-256")):
            log.warning("WhatsApp webhook: refused a POST with a missing or wrong signature")
            return web.Response(status=403, text="forbidden")
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            log.warning("WhatsApp webhook: signed POST that is not JSON")
            return web.Response(status=400, text="bad request")
        waits: list[asyncio.Future[None]] = []
        self.accept(payload, waits)
        if waits:
            # 200 only once every message of the POST is committed (a process killed before
            # that did not answer: Meta delivers the POST again, to this or another process).
            # The replies are sent after the commit, so a slow Graph API does not hold it.
            _done, pending = await asyncio.wait(waits, timeout=ANSWER_WITHIN)
            if pending:
                log.warning("WhatsApp webhook: not stored in time; Meta will deliver it again")
                return web.Response(status=503, text="busy")
        return web.Response(text="ok")

    def accept(self, payload: Any, waits: list[asyncio.Future[None]] | None = None) -> int:
        """Queue the messages of a verified payload; count its statuses. Returns how many queued;
        `waits` gets a future per message, resolved once it is committed."""
        queued = 0
        for entry in _list(_dict(payload).get("entry")):
            for change in _list(_dict(entry).get("changes")):
                change = _dict(change)
                value = _dict(change.get("value"))
                if change.get("field") != "messages":
                    continue
                phone_number_id = _dict(value.get("metadata")).get("phone_number_id")
                if phone_number_id is not None and str(phone_number_id) != self._phone_number_id:
                    log.debug("WhatsApp webhook: change for another phone number ignored")
                    continue
                for status in _list(value.get("statuses")):
                    self._status(_dict(status))
                names = {str(_dict(c).get("wa_id")): _dict(_dict(c).get("profile")).get("name")
                         for c in _list(value.get("contacts"))}
                for message in _list(value.get("messages")):
                    queued += self._enqueue(_dict(message), names, waits)
        return queued

    def _status(self, status: dict[str, Any]) -> None:
        """Delivery statuses are counted, never treated as messages; a failure is logged by code."""
        kind = str(status.get("status", "unknown"))[:20]
        self.statuses[kind] += 1
        if kind == "failed":
            codes = [_dict(e).get("code") for e in _list(status.get("errors"))]
            log.warning("WhatsApp reported a message as not delivered (error codes %s)", codes)

    def _enqueue(self, message: dict[str, Any], names: dict[str, Any] | None = None,
                 waits: list[asyncio.Future[None]] | None = None) -> int:
        wa_id, wamid = message.get("from"), message.get("id")
        if not isinstance(wa_id, str) or not isinstance(wamid, str):
            log.warning("WhatsApp webhook: message without sender or id ignored")
            return 0
        if not _SAFE_ID.fullmatch(wa_id) or not _SAFE_ID.fullmatch(wamid):
            log.warning("WhatsApp webhook: message with a malformed sender or id ignored")
            return 0
        if wamid in self._recent:  # redelivered while still queued; the database dedupes the rest
            stored = self._stored.get(wamid)
            if stored is not None and waits is not None:
                waits.append(stored)  # answered once the first delivery is committed
            return 0
        self._recent[wamid] = None
        stored = self._stored[wamid] = asyncio.get_running_loop().create_future()
        if waits is not None:
            waits.append(stored)
        while len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)
        name = (names or {}).get(wa_id)
        self._queues.setdefault(wa_id, deque()).append(
            Inbound(wa_id, wamid, message, name if isinstance(name, str) and name else None))
        if wa_id not in self._workers:
            self._workers[wa_id] = asyncio.create_task(self._drain(wa_id))
        return 1

    async def _drain(self, wa_id: str) -> None:
        """Handle one chat's messages one at a time, in the order they came."""
        queue = self._queues[wa_id]
        try:
            while queue:
                item = queue.popleft()
                try:
                    await self._process(item)
                except Exception as exc:  # one bad message must not stop the chat's queue
                    self._recent.pop(item.wamid, None)
                    log.error("WhatsApp message could not be handled (%s)", type(exc).__name__)
                    log.debug("details", exc_info=True)
                    await self._tell_failed(wa_id)
        finally:
            # No await between the last check of the queue and here: nothing can slip in between.
            self._workers.pop(wa_id, None)
            if not queue:
                self._queues.pop(wa_id, None)

    async def idle(self) -> None:
        """Wait until every accepted message was handled (its reply and read receipt sent)."""
        while self._workers or self._reads:
            await asyncio.wait([*self._workers.values(), *self._reads])

    async def cancel(self) -> None:
        """Stop the chats' workers (at shutdown, after `idle` ran out of time)."""
        tasks = [*self._workers.values(), *self._reads]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- inbound ------------------------------------------------------------------------------

    def _committed(self, wamid: str) -> None:
        """The message is stored (or needs nothing stored): the webhook may answer."""
        stored = self._stored.pop(wamid, None)
        if stored is not None and not stored.done():
            stored.set_result(None)

    async def _process(self, item: Inbound) -> None:
        token = SENDER_NAME.set(item.name)
        try:
            await self._handle_inbound(item)
        finally:
            SENDER_NAME.reset(token)
            self._committed(item.wamid)  # handled, or failed for good (the client was told)
            # Two blue ticks: the client sees that their message arrived (after our reply, so
            # that the reply is not held up by it; in the background, so that the chat's next
            # message is not either). Best effort; a failure changes nothing else.
            task = asyncio.get_running_loop().create_task(self._mark_read(item.wamid))
            self._reads.add(task)
            task.add_done_callback(self._reads.discard)

    async def _mark_read(self, wamid: str) -> None:
        try:
            await self.graph.mark_read(wamid)
        except GraphError as exc:
            log.info("WhatsApp read receipt not sent (status %s)", exc.status)
        except Exception as exc:
            log.info("WhatsApp read receipt not sent (%s)", type(exc).__name__)

    async def _first(self, wa_id: str, stored: StoredConversation | None) -> None:
        """They wrote: the window is open again. What was kept for them comes first (after the
        commit of their message, before its answer: the webhook's 200 does not wait for it)."""
        await self._show_kept(wa_id, stored)
        if stored is not None:
            await self._show_announced(wa_id, stored)

    async def _handle_inbound(self, item: Inbound) -> None:
        stored = await self._load(item.wa_id)
        message = item.message
        kind = str(message.get("type", "unknown"))
        if kind == "text":
            # Staff commands first, from anyone (as on Telegram): a coordinator gets the answer,
            # everybody else (a confidant, a client in their conversation) the polite refusal.
            typed = str(_dict(message.get("text")).get("body") or "")
            command = staff_command(typed)
            if command is not None:
                await self._staff(item, command, typed, stored)
                return
        desk = self.desk
        if desk is not None and desk.is_confidant(CHANNEL, item.wa_id):
            await self._confidant(desk, item, kind, stored)
            return
        if stored is None:
            # A new chat (or one that was erased): any first message opens the conversation.
            first = str(_dict(message.get("text")).get("body", ""))
            await self._run(item.wa_id, Start(_language_hint(first), organisation=start_text(first)),
                            item.wamid)
            return
        if kind == "text":
            body = _dict(message.get("text")).get("body")
            await self._run(item.wa_id, _text_event(str(body or "")), item.wamid)
        elif kind == "interactive":
            interactive = _dict(message.get("interactive"))
            reply = _dict(interactive.get(str(interactive.get("type", ""))))
            if interactive.get("type") in ("button_reply", "list_reply") and "id" in reply:
                await self._run(item.wa_id, parse_button_id(str(reply["id"])), item.wamid)
            else:
                await self._unsupported(item.wa_id, stored)
        elif kind == "button":  # a quick-reply button of a template message
            button = _dict(message.get("button"))
            payload = str(button.get("payload") or "")
            event: Event = (Choice(payload) if payload.startswith("cmd:")
                            else _text_event(str(button.get("text") or "")))
            await self._run(item.wa_id, event, item.wamid)
        elif kind == "request_welcome":
            await self._run(item.wa_id, Start(), item.wamid)
        elif kind in MEDIA_TYPES:
            media = _dict(message.get(kind))
            caption = media.get("caption")
            # Issue 14.10: the words sent with a file travel with it; flows decides what they answer.
            attachment = await self._attachment(
                kind, media, caption if isinstance(caption, str) else None)
            await self._run(item.wa_id, attachment, item.wamid)
        elif kind == "system":
            log.debug("WhatsApp system message ignored")
        else:  # sticker, location, contacts, reaction, unsupported, ...
            await self._unsupported(item.wa_id, stored)

    async def _attachment(self, kind: str, media: dict[str, Any],
                          caption: str | None = None) -> Attachment | AttachmentRefused:
        limit = self.app.settings.max_attachment_bytes
        media_id = media.get("id")
        if not isinstance(media_id, str) or not _MEDIA_ID.fullmatch(media_id):
            return AttachmentRefused("unreadable")
        try:
            info = await self.graph.media_info(media_id)
            size = info.get("file_size")
            if isinstance(size, int) and size > limit:
                return AttachmentRefused("too_big", limit)
            data = await self.graph.download(str(info["url"]), limit)
        except MediaTooBig:
            return AttachmentRefused("too_big", limit)
        except (GraphError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("WhatsApp media could not be fetched (%s)", type(exc).__name__)
            return AttachmentRefused("unreadable")
        digest = media.get("sha256") or info.get("sha256")
        if not data or (isinstance(digest, str) and digest and _sha256_matches(data, digest) is False):
            return AttachmentRefused("unreadable")
        content_type = str(media.get("mime_type") or info.get("mime_type")
                           or "application/octet-stream")[:100]
        media_kind: MediaKind = "other"
        if kind == "image":
            media_kind = "photo"
        elif kind in ("document", "video"):
            media_kind = "document" if kind == "document" else "video"
        elif media.get("voice") or content_type.startswith("audio/ogg"):
            media_kind = "voice"
        ref = await self.app.files.save(data)
        return Attachment(media_kind, ref, len(data), content_type, caption=caption)

    async def _confidant(self, desk: HandoffDesk, item: Inbound, kind: str,
                         stored: StoredConversation | None) -> None:
        """A confidant's message: to the handoff desk; the reply to them, the rest passed on."""
        message = item.message
        event: Event = Command("help")
        if kind == "text":
            event = _text_event(str(_dict(message.get("text")).get("body") or ""))
            if isinstance(event, Command) and event.name != "end":
                event = Command("help")
        elif kind == "interactive":
            interactive = _dict(message.get("interactive"))
            reply = _dict(interactive.get(str(interactive.get("type", ""))))
            if "id" in reply:
                event = Choice(parse_button_id(str(reply["id"])).button_id)
        elif kind in MEDIA_TYPES:
            media = _dict(message.get(kind))
            caption = media.get("caption")
            event = await self._attachment(kind, media, caption if isinstance(caption, str) else None)
            if isinstance(event, AttachmentRefused):
                event = Command("help")
        # One unit of work with what it owes people (issue 10): sent now, marked once taken.
        answer = await desk.confidant_update(
            (CHANNEL, item.wa_id), event, update_id=item.wamid, language=None)
        self._committed(item.wamid)
        await self._first(item.wa_id, stored)
        try:
            async with self._chat_lock(item.wa_id):
                await self._deliver(item.wa_id, answer.messages, None, owed=answer.owed)
        except GraphError as exc:
            log.warning("WhatsApp reply to a confidant not delivered (status %s, code %s)",
                        exc.status, exc.code)
        await self._pass_on(answer)

    async def _staff(self, item: Inbound, command: str, text: str,
                     stored: StoredConversation | None) -> None:
        """/signals and /stats through the staff service (bot/services/staff.py): the text, and
        the CSV uploaded through the media endpoint and sent as a document with its caption."""
        reply = await self.staff.answer(
            (CHANNEL, item.wa_id), command, text, update_id=item.wamid,
            language=stored.language if stored is not None else None)
        self._committed(item.wamid)
        await self._first(item.wa_id, stored)
        if reply.duplicate:
            return
        if reply.refused:
            log.info("refused a staff command from someone who is not a coordinator")
        try:
            async with self._chat_lock(item.wa_id):
                await self._send_staff(item.wa_id, reply, stored)
        except GraphError as exc:
            log.warning("WhatsApp staff answer not delivered (status %s, code %s)",
                        exc.status, exc.code)
            await self._tell_failed(item.wa_id)

    async def _send_staff(self, wa_id: str, reply: StaffReply,
                          stored: StoredConversation | None) -> None:
        for document in reply.documents:  # one CSV per organisation the coordinator serves
            media_id = await self.graph.upload(document.data, CSV_MIME, document.filename)
            await self.graph.send(wa_id, {"type": "document", "document": {
                "id": media_id, "filename": document.filename,
                "caption": document.caption[:BODY_LIMIT]}})
        if reply.messages:
            await self._deliver(wa_id, reply.messages, stored)

    async def _handle(self, wa_id: str, event: Event, update_id: str) -> Reply:
        """The service's unit of work, tried again when it fails (it rolled back, so that is safe)."""
        for delay in (*HANDLE_RETRY_DELAYS, None):
            try:
                return await self.app.service.handle(CHANNEL, wa_id, event, update_id=update_id)
            except Exception as exc:
                if delay is None:
                    raise
                log.warning("WhatsApp event failed (%s), retrying in %.1f s", type(exc).__name__, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _run(self, wa_id: str, event: Event, update_id: str) -> None:
        """One event through the service (committed), then its reply to the client."""
        try:
            reply = await self._handle(wa_id, event, update_id)
        except Exception:
            if isinstance(event, Attachment):
                await self.app.files.delete(event.ref)
            raise
        self._committed(update_id)  # the webhook answers now; the replies follow
        # As committed by the service (read again only when it has none: erased, or a duplicate).
        stored = reply.conversation or await self._load(wa_id)
        await self._first(wa_id, stored)
        if isinstance(event, Attachment) and not reply.relayed and not _keeps(stored, event.ref):
            # Redelivered, or not accepted at this point of the conversation: keep nothing.
            # (A file for the confidant chat belongs to the handoff: passed on, then deleted.)
            await self.app.files.delete(event.ref)
        if reply.duplicate:
            log.debug("WhatsApp message redelivered: ignored")
            return
        try:
            async with self._chat_lock(wa_id):
                await self._deliver(wa_id, reply.messages, stored, state=reply.state,
                                    owed=reply.owed)
        except GraphError as exc:
            log.warning("WhatsApp reply not delivered (status %s, code %s)", exc.status, exc.code)
        await self._pass_on(reply)

    async def _pass_on(self, reply: Reply | DeskReply) -> None:
        """Messages the event produced for other chats (e.g. a confidant): through their channel."""
        for index, envelope in enumerate(reply.others):
            owed = reply.others_owed[index] if index < len(reply.others_owed) else ()
            if await self.app.channels.deliver(envelope.channel, envelope.chat_id, envelope.items,
                                               owed) == "unavailable":
                log.warning("a message for another %s chat could not be delivered", envelope.channel)

    async def _unsupported(self, wa_id: str, stored: StoredConversation) -> None:
        await self._first(wa_id, stored)
        t = self.app.catalogs.get(stored.language)
        await self._send_all(wa_id, _text_messages(_unsupported_text(t)))

    async def _tell_failed(self, wa_id: str) -> None:
        try:
            stored = await self._load(wa_id)
            t = self.app.catalogs.get(stored.language if stored else None)
            await self._send_all(wa_id, _text_messages(_failed_text(t)))
        except Exception as exc:
            log.error("WhatsApp failure notice not sent either (%s)", type(exc).__name__)

    async def expiry_loop(self, stop: asyncio.Event) -> None:
        """Offers nobody accepted in time (also checked by Telegram when it runs: once each)."""
        await expire_offers_until(stop, lambda: self.desk, self._pass_on, EXPIRY_SECONDS)


def _keeps(stored: StoredConversation | None, ref: str) -> bool:
    if stored is None:
        return False
    return any(item.get("ref") == ref for item in _list(stored.data.get("attachments")))
