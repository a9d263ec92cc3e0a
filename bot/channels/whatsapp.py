"""The WhatsApp channel: the same conversation over the WhatsApp Business Cloud API (issue 5).

A thin adapter, no conversation logic: it turns webhook payloads into events for
`IntakeService.handle("whatsapp", wa_id, event, update_id=wamid)` and the engine's `OutMessage`s into
WhatsApp messages.

* `GET /webhook` answers Meta's verification (`hub.mode=subscribe`, `hub.verify_token` compared in
  constant time, `hub.challenge` echoed); anything else gets 403.
* `POST /webhook` is checked against `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the app
  secret, `hmac.compare_digest`): a missing or wrong signature gets 403 and changes nothing. A signed
  POST is answered 200 at once; its messages are handled in the background, one at a time per chat
  and in order (the service commits before we send its reply). Meta delivers at least once, so the
  message id (wamid) is the service's `update_id`: a redelivered message is a no-op.
* Buttons follow WhatsApp's limits: up to 3 reply buttons (title <= 20 characters), more as list
  messages (<= 10 rows, row title <= 24). A label too long for its limit is shortened at a word
  boundary with an ellipsis, and then every choice is also written out in full, numbered, in the
  message body: a typed number or label works as well (the engine accepts both). Button ids carry
  the state they were shown in (`<state>|<button id>`), so the engine refuses stale or forged ones.
* Images, documents, audio (voice notes) and videos are fetched through the media endpoint
  (GET /{media-id} -> url, GET url with the bearer token), at most `max_attachment_bytes`, checked
  against their SHA-256, and kept encrypted under a random name (`app.files`).
* As the `ChannelSender` "whatsapp" it delivers messages that are not a direct reply: inside the
  24-hour customer-service window as usual ("sent"); outside it as the organisation's approved
  template with the case reference as its parameter ("template"; the register keeps the news and
  it is shown when the client writes again), or not at all ("unavailable").
* The live confidant chat (bot/services/handoffs.py, shared with Telegram): a client's messages
  reach the handoff desk through the intake service; a confidant's WhatsApp number (organisation
  config) goes to `HandoffDesk.from_confidant`. As the `ItemSender` it relays messages and files
  from the other side: files are uploaded (`POST /{phone-number-id}/media`) and sent by media id.
  Outside the 24-hour window the relay is kept (owed rows, encrypted) and announced by the
  template; it is shown, in order, as soon as the client writes.

Logs never contain phone numbers, message ids, names or texts.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
from collections import Counter, OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

import aiohttp
from aiohttp import web

from bot.services.delivery import Delivery, item_from_json, item_to_json
from bot.services.handoffs import SENDER_NAME, HandoffDesk, leave_desk, open_desk
from bot.services.intake import LAST_INBOUND, Reply
from bot.services.register import announced_news, news_shown
from flows.handoff import Item
from flows.i18n import FSI, PDI, Translator
from flows.model import (
    Attachment,
    AttachmentRefused,
    Choice,
    Command,
    Event,
    OutMessage,
    Start,
    Text,
)

if TYPE_CHECKING:
    from bot.channels.ports import ChannelHost
    from storage import StoredConversation

__all__ = [
    "CHANNEL",
    "WEBHOOK_PATH",
    "GraphClient",
    "GraphError",
    "WhatsAppChannel",
    "parse_button_id",
    "render",
    "run_whatsapp",
    "shorten",
    "signature_ok",
    "split_text",
]

log = logging.getLogger(__name__)

CHANNEL: Final = "whatsapp"
WEBHOOK_PATH: Final = "/webhook"

# WhatsApp's limits (Cloud API, interactive messages), counted in UTF-16 code units to be safe.
TEXT_LIMIT: Final = 4096
BODY_LIMIT: Final = 1024
MAX_BUTTONS: Final = 3
BUTTON_TITLE_LIMIT: Final = 20
MAX_ROWS: Final = 10
ROW_TITLE_LIMIT: Final = 24
ROW_DESCRIPTION_LIMIT: Final = 72
LIST_BUTTON_LIMIT: Final = 20
BUTTON_ID_LIMIT: Final = 256
ROW_ID_LIMIT: Final = 200
ELLIPSIS: Final = "…"
STATE_SEPARATOR: Final = "|"

# The customer-service window, with a small margin for clocks and queues.
WINDOW: Final = timedelta(hours=24) - timedelta(minutes=5)
# Graph error codes: "re-engagement message" (the window is closed) and "template not in language".
REENGAGEMENT_ERROR: Final = 131047
TEMPLATE_LANGUAGE_ERROR: Final = 132001
TEMPLATE_LANGUAGES: Final = {"nl": "nl", "uk": "uk", "ar": "ar", "en": "en"}

SEND_RETRY_DELAYS: Final = (0.5, 2.0, 5.0)  # on 429, 5xx and connection errors
HANDLE_RETRY_DELAYS: Final = (0.2, 1.0, 3.0)  # on a failed unit of work (e.g. database busy)
DRAIN_SECONDS: Final = 20.0  # at shutdown: time for events already accepted
MAX_BODY_BYTES: Final = 4 * 1024 * 1024
EXPIRY_SECONDS: Final = 30.0  # how often handoff offers are checked for their timeout
# A relayed file as a Graph media message: our kind -> WhatsApp's type, and a default mime type.
MEDIA_OUT: Final = {"photo": ("image", "image/jpeg"), "voice": ("audio", "audio/ogg"),
                    "video": ("video", "video/mp4")}
RECENT_IDS: Final = 10_000

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:=+/-]{1,256}$")
_MEDIA_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # goes into a Graph URL path: no dots, no slashes
_CHALLENGE = re.compile(r"^[A-Za-z0-9_.-]{1,256}$")
_REFERENCE = re.compile(r"\bKW-\d{4}-\d{6}\b")
_ARABIC = re.compile("[\u0600-\u06ff]")
_CYRILLIC = re.compile("[\u0400-\u04ff]")

MediaKind = Literal["photo", "document", "voice", "video", "other"]
MEDIA_TYPES: Final = ("image", "document", "audio", "video")


# --- client-facing texts of the adapter itself ----------------------------------------------------


def _unsupported_text(t: Translator) -> str:
    return t._(
        "I can only read text, buttons, photos, documents and voice messages. "
        "Please type your answer or use the buttons."
    )


def _failed_text(t: Translator) -> str:
    return t._("Sorry, something went wrong on our side. Please send your last message again.")


# --- rendering: OutMessage -> WhatsApp message objects ------------------------------------------


def _units(text: str) -> int:
    """Length in UTF-16 code units: what the Graph API counts, never less than `len(text)`."""
    return len(text.encode("utf-16-le")) // 2


def _fit(text: str, limit: int) -> int:
    """The largest prefix length (in characters) of `text` that fits in `limit` units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _balance_isolates(text: str) -> str:
    """Close Unicode isolates that a cut left open, so the rest of the line keeps its direction."""
    missing = text.count(FSI) - text.count(PDI)
    return text + PDI * missing if missing > 0 else text


def shorten(label: str, limit: int) -> str:
    """`label` in at most `limit` units: whole words and an ellipsis; a single huge word is cut."""
    label = " ".join(label.split())
    if _units(label) <= limit:
        return label
    room = limit - _units(ELLIPSIS)
    kept = ""
    for word in label.split(" "):
        candidate = f"{kept} {word}" if kept else word
        if _units(_balance_isolates(candidate)) > room:
            break
        kept = candidate
    kept = kept.rstrip(" ,.;:-–—")
    if not kept:  # the first word alone is too long: cutting it is the only way
        kept = label[: _fit(label, room - label.count(FSI))]
    return _balance_isolates(kept) + ELLIPSIS


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """`text` in pieces of at most `limit` units, cut at a line break, else a space, else hard."""
    pieces: list[str] = []
    rest = text.strip("\n")
    while _units(rest) > limit:
        end = _fit(rest, limit)
        window = rest[:end]
        cut = window.rfind("\n")
        if cut < end // 2:
            cut = window.rfind(" ")
        if cut < end // 2:
            cut = end
        piece = rest[:cut].rstrip()
        if piece:
            pieces.append(piece)
        rest = rest[cut:].lstrip("\n ")
    if rest.strip():
        pieces.append(rest)
    return pieces


def _button_id(button_id: str, state: str | None, limit: int) -> str:
    """Our stable button id, with the state it was shown in when that fits."""
    if state:
        tagged = f"{state}{STATE_SEPARATOR}{button_id}"
        if len(tagged) <= limit:
            return tagged
    return button_id[:limit]


def parse_button_id(raw: str) -> Choice:
    """A button or list reply as a `Choice`; the engine refuses it if the state or id is wrong."""
    raw = raw[:BUTTON_ID_LIMIT]
    state, separator, button_id = raw.partition(STATE_SEPARATOR)
    if not separator:
        return Choice(raw)
    return Choice(button_id, state=state)


def _titles(labels: Sequence[str], limit: int, offset: int) -> list[str]:
    """Shortened titles, unique within one message (WhatsApp refuses duplicates)."""
    titles = [shorten(label, limit) for label in labels]
    for index, title in enumerate(titles):
        if titles.count(title) > 1 or not title:
            titles[index] = shorten(f"{offset + index + 1}. {labels[index]}", limit)
    return titles


def _chunks(count: int, size: int) -> list[range]:
    """`count` items in as few groups of at most `size` as possible, of about equal length."""
    groups = max(1, -(-count // size))
    base, extra = divmod(count, groups)
    ranges: list[range] = []
    start = 0
    for group in range(groups):
        length = base + (1 if group < extra else 0)
        ranges.append(range(start, start + length))
        start += length
    return ranges


def _text_messages(text: str) -> list[dict[str, Any]]:
    return [
        {"type": "text", "text": {"body": piece, "preview_url": False}}
        for piece in split_text(text, TEXT_LIMIT)
    ]


def _with_body(text: str, lines: list[str], t: Translator) -> tuple[list[dict[str, Any]], str]:
    """Text messages to send first (if any) and the body of the interactive message (<= 1024)."""
    listing = "\n".join(lines)
    body = "\n\n".join(part for part in (text.strip("\n"), listing) if part)
    if body and _units(body) <= BODY_LIMIT:
        return [], body
    # Too long for an interactive body: the text goes first; the body keeps its last paragraph.
    head, _sep, tail = text.strip("\n").rpartition("\n")
    tail_body = "\n\n".join(part for part in (tail.strip(), listing) if part)
    if head.strip() and tail.strip() and _units(tail_body) <= BODY_LIMIT:
        return _text_messages(head), tail_body
    fallback = listing or t._("Please choose one of the buttons.")
    if _units(fallback) > BODY_LIMIT:
        return [*_text_messages(text), *_text_messages(listing)], t._(
            "Please choose one of the buttons."
        )
    return _text_messages(text), fallback


def render(message: OutMessage, t: Translator, state: str | None = None) -> list[dict[str, Any]]:
    """One engine message as WhatsApp message objects (without `to`), within every limit."""
    buttons = [button for row in message.buttons for button in row]
    if not buttons:
        return _text_messages(message.text)
    as_list = len(buttons) > MAX_BUTTONS
    title_limit = ROW_TITLE_LIMIT if as_list else BUTTON_TITLE_LIMIT
    labels = [" ".join(b.label.split()) for b in buttons]
    titles = _titles(labels, title_limit, 0)
    # Nothing hidden: when a title had to be shortened, every choice is written out, numbered.
    full = any(title != label for title, label in zip(titles, labels, strict=True))
    lines = [f"{n}. {label}" for n, label in enumerate(labels, start=1)] if full else []
    if not as_list:
        before, body = _with_body(message.text, lines, t)
        action = {
            "buttons": [
                {"type": "reply",
                 "reply": {"id": _button_id(b.id, state, BUTTON_ID_LIMIT), "title": title}}
                for b, title in zip(buttons, titles, strict=True)
            ]
        }
        return [*before, {"type": "interactive",
                          "interactive": {"type": "button", "body": {"text": body},
                                          "action": action}}]
    out: list[dict[str, Any]] = []
    # The language picker opens before a language is known: a globe says it in every language.
    list_button = shorten(t._("Choose") if state != "language" else "🌐", LIST_BUTTON_LIMIT)
    for number, group in enumerate(_chunks(len(buttons), MAX_ROWS)):
        group_lines = [lines[i] for i in group] if lines else []
        if number == 0:
            before, body = _with_body(message.text, group_lines, t)
            out.extend(before)
        else:
            body = "\n\n".join([t._("More choices:"), *(["\n".join(group_lines)] if group_lines else [])])
        rows: list[dict[str, Any]] = []
        for i in group:
            row: dict[str, Any] = {"id": _button_id(buttons[i].id, state, ROW_ID_LIMIT),
                                   "title": titles[i]}
            if titles[i] != labels[i]:
                row["description"] = shorten(labels[i], ROW_DESCRIPTION_LIMIT)
            rows.append(row)
        out.append({"type": "interactive",
                    "interactive": {"type": "list", "body": {"text": body},
                                    "action": {"button": list_button,
                                               "sections": [{"rows": rows}]}}})
    return out


def template_message(name: str, language: str, reference: str) -> dict[str, Any]:
    """The organisation's approved template, with the case reference as its one body parameter."""
    return {
        "type": "template",
        "template": {
            "name": name,
            "language": {"code": language},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": reference}]}],
        },
    }


# --- the Graph API ----------------------------------------------------------------------------


class GraphError(Exception):
    """The Graph API refused a request; `code` is Meta's error code when it gave one."""

    def __init__(self, status: int, code: int | None = None, title: str = "") -> None:
        super().__init__(f"Graph API error {status} (code {code}): {title}")
        self.status = status
        self.code = code

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


class MediaTooBig(Exception):
    """The media file is larger than the limit."""


class GraphClient:
    """The few Graph API calls the channel needs; the token travels only in the header."""

    def __init__(self, session: aiohttp.ClientSession, base: str, phone_number_id: str, token: str):
        self._session = session
        self._base = base.rstrip("/")
        self._phone_number_id = phone_number_id
        self._headers = {"Authorization": f"Bearer {token}"}

    @staticmethod
    async def _error(response: aiohttp.ClientResponse) -> GraphError:
        code: int | None = None
        title = ""
        try:
            raw = await response.json(content_type=None)
            error = raw.get("error", {}) if isinstance(raw, dict) else {}
            code = int(error["code"]) if isinstance(error.get("code"), int) else None
            title = str(error.get("error_user_title") or error.get("type") or "")[:100]
        except (ValueError, aiohttp.ContentTypeError):
            pass
        return GraphError(response.status, code, title)

    async def send(self, to: str, message: dict[str, Any]) -> str:
        """Send one message; retried on 429, 5xx and connection errors. Returns its wamid."""
        payload = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                   **message}
        url = f"{self._base}/{self._phone_number_id}/messages"
        for delay in (*SEND_RETRY_DELAYS, None):
            try:
                async with self._session.post(url, json=payload, headers=self._headers) as response:
                    if response.status < 300:
                        raw = await response.json(content_type=None)
                        messages = raw.get("messages") if isinstance(raw, dict) else None
                        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
                            return str(messages[0].get("id", ""))
                        return ""
                    error = await self._error(response)
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = GraphError(0, None, type(exc).__name__)
            if delay is None or not (error.retryable or error.status == 0):
                raise error
            log.warning("WhatsApp send failed (%s), retrying in %.1f s", error.status or "no connection",
                        delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def upload(self, data: bytes, mime_type: str, filename: str) -> str:
        """POST /{phone-number-id}/media (multipart): the media id to send the file by."""
        url = f"{self._base}/{self._phone_number_id}/media"
        for delay in (*SEND_RETRY_DELAYS, None):
            form = aiohttp.FormData()
            form.add_field("messaging_product", "whatsapp")
            form.add_field("type", mime_type)
            form.add_field("file", data, filename=filename, content_type=mime_type)
            try:
                async with self._session.post(url, data=form, headers=self._headers) as response:
                    if response.status < 300:
                        raw = await response.json(content_type=None)
                        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                            return str(raw["id"])
                        raise GraphError(response.status, None, "no media id")
                    error = await self._error(response)
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = GraphError(0, None, type(exc).__name__)
            if delay is None or not (error.retryable or error.status == 0):
                raise error
            log.warning("WhatsApp upload failed (%s), retrying in %.1f s",
                        error.status or "no connection", delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def mark_read(self, wamid: str) -> None:
        """Mark a client's message (and the ones before it) as read; no retries."""
        payload = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
        url = f"{self._base}/{self._phone_number_id}/messages"
        try:
            async with self._session.post(url, json=payload, headers=self._headers) as response:
                if response.status >= 300:
                    raise await self._error(response)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GraphError(0, None, type(exc).__name__) from None

    async def media_info(self, media_id: str) -> dict[str, Any]:
        """GET /{media-id}: the download url, mime type, sha256 and size of a client's file."""
        async with self._session.get(f"{self._base}/{media_id}", headers=self._headers) as response:
            if response.status >= 300:
                raise await self._error(response)
            raw = await response.json(content_type=None)
        if not isinstance(raw, dict) or not isinstance(raw.get("url"), str):
            raise GraphError(response.status, None, "no url")
        return raw

    async def download(self, url: str, limit: int) -> bytes:
        """GET the media url with the bearer token; stops as soon as the file exceeds `limit`."""
        async with self._session.get(url, headers=self._headers) as response:
            if response.status >= 300:
                raise await self._error(response)
            if response.content_length is not None and response.content_length > limit:
                raise MediaTooBig
            data = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                data.extend(chunk)
                if len(data) > limit:
                    raise MediaTooBig
        return bytes(data)


# --- the webhook --------------------------------------------------------------------------------


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    """Meta's `X-Hub-Signature-256: sha256=<hex>` over the raw body, compared in constant time."""
    if not header:
        return False
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), header.strip().encode("utf-8", "replace"))


@dataclass(frozen=True)
class Inbound:
    """One message from the webhook, waiting in its chat's queue."""

    wa_id: str
    wamid: str
    message: dict[str, Any]
    name: str | None = field(default=None, repr=False)  # the profile name; only for "share"


def _language_hint(text: str) -> str | None:
    """A first guess from the script of the first message; the client still picks the language."""
    arabic = len(_ARABIC.findall(text))
    cyrillic = len(_CYRILLIC.findall(text))
    if arabic > cyrillic:
        return "ar"
    if cyrillic:
        return "uk"
    return None


def _text_event(body: str) -> Event:
    stripped = body.strip()
    if stripped.startswith("/") and len(stripped) > 1 and " " not in stripped:
        return Command(stripped[1:].lower())
    return Text(body)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


class WhatsAppChannel:
    """The webhook, the per-chat queues, and the `ChannelSender` named "whatsapp"."""

    name = CHANNEL

    def __init__(self, app: ChannelHost, graph: GraphClient, *, app_secret: str, verify_token: str,
                 phone_number_id: str) -> None:
        self.app = app
        self.graph = graph
        self._secret = app_secret.encode("utf-8")
        self._verify_token = verify_token.encode("utf-8")
        self._phone_number_id = phone_number_id
        self._queues: dict[str, deque[Inbound]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._closed = False
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
        self.accept(payload)
        return web.Response(text="ok")

    def accept(self, payload: Any) -> int:
        """Queue the messages of a verified payload; count its statuses. Returns how many queued."""
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
                    queued += self._enqueue(_dict(message), names)
        return queued

    def _status(self, status: dict[str, Any]) -> None:
        """Delivery statuses are counted, never treated as messages; a failure is logged by code."""
        kind = str(status.get("status", "unknown"))[:20]
        self.statuses[kind] += 1
        if kind == "failed":
            codes = [_dict(e).get("code") for e in _list(status.get("errors"))]
            log.warning("WhatsApp reported a message as not delivered (error codes %s)", codes)

    def _enqueue(self, message: dict[str, Any], names: dict[str, Any] | None = None) -> int:
        wa_id, wamid = message.get("from"), message.get("id")
        if not isinstance(wa_id, str) or not isinstance(wamid, str):
            log.warning("WhatsApp webhook: message without sender or id ignored")
            return 0
        if not _SAFE_ID.fullmatch(wa_id) or not _SAFE_ID.fullmatch(wamid):
            log.warning("WhatsApp webhook: message with a malformed sender or id ignored")
            return 0
        if wamid in self._recent:  # redelivered while still queued; the database dedupes the rest
            return 0
        self._recent[wamid] = None
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
        """Wait until every accepted message was handled (and its reply sent)."""
        while self._workers:
            await asyncio.wait(list(self._workers.values()))

    async def cancel(self) -> None:
        """Stop the chats' workers (at shutdown, after `idle` ran out of time)."""
        tasks = list(self._workers.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        """After this, proactive sends answer "unavailable" (the HTTP session is going away)."""
        self._closed = True

    # --- inbound ------------------------------------------------------------------------------

    async def _load(self, wa_id: str) -> StoredConversation | None:
        async with self.app.db.unit_of_work(read_only=True) as uow:
            return await uow.conversations.get(CHANNEL, wa_id)

    @property
    def desk(self) -> HandoffDesk | None:
        """The process's handoff desk (shared with Telegram), while this channel runs."""
        return self.app.service.handoffs

    async def _process(self, item: Inbound) -> None:
        token = SENDER_NAME.set(item.name)
        try:
            await self._handle_inbound(item)
        finally:
            SENDER_NAME.reset(token)
            # Two blue ticks: the client sees that their message arrived (after our reply, so
            # that the reply is not held up by it). Best effort; a failure changes nothing else.
            try:
                await self.graph.mark_read(item.wamid)
            except GraphError as exc:
                log.info("WhatsApp read receipt not sent (status %s)", exc.status)

    async def _handle_inbound(self, item: Inbound) -> None:
        stored = await self._load(item.wa_id)
        # They wrote: the window is open again. What was kept for them comes first.
        await self._show_kept(item.wa_id, stored)
        if stored is not None:
            await self._show_announced(item.wa_id, stored)
        message = item.message
        kind = str(message.get("type", "unknown"))
        desk = self.desk
        if desk is not None and desk.is_confidant(CHANNEL, item.wa_id):
            await self._confidant(desk, item, kind)
            return
        if stored is None:
            # A new chat (or one that was erased): any first message opens the conversation.
            hint = _language_hint(str(_dict(message.get("text")).get("body", "")))
            await self._run(item.wa_id, Start(hint), item.wamid)
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

    async def _confidant(self, desk: HandoffDesk, item: Inbound, kind: str) -> None:
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
        replies, others = await desk.from_confidant(
            (CHANNEL, item.wa_id), event, update_id=item.wamid, language=None)
        t = self.app.catalogs.get(None)
        for out in replies:
            await self._send_all(item.wa_id, render(out, t))
        for envelope in others:
            if await self.app.channels.deliver(envelope.channel, envelope.chat_id,
                                               envelope.items) == "unavailable":
                log.warning("a handoff message for a %s chat was not delivered", envelope.channel)

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
        stored = await self._load(wa_id)
        if isinstance(event, Attachment) and not reply.relayed and not _keeps(stored, event.ref):
            # Redelivered, or not accepted at this point of the conversation: keep nothing.
            # (A file for the confidant chat belongs to the handoff: passed on, then deleted.)
            await self.app.files.delete(event.ref)
        if reply.duplicate:
            log.debug("WhatsApp message redelivered: ignored")
            return
        try:
            await self._deliver(wa_id, reply.messages, stored, state=reply.state)
        except GraphError as exc:
            log.warning("WhatsApp reply not delivered (status %s, code %s)", exc.status, exc.code)
        await self._pass_on(reply)

    async def _pass_on(self, reply: Reply) -> None:
        """Messages the event produced for other chats (e.g. a confidant): through their channel."""
        for index, envelope in enumerate(reply.others):
            owed = reply.others_owed[index] if index < len(reply.others_owed) else ()
            if await self.app.channels.deliver(envelope.channel, envelope.chat_id, envelope.items,
                                               owed) == "unavailable":
                log.warning("a message for another %s chat could not be delivered", envelope.channel)

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
        """Confidant messages kept while the window was closed, in order, now that it is open.
        Each is marked sent once the Graph API took it; the rest stays for the next time."""
        try:
            async with self.app.db.unit_of_work(read_only=True) as uow:
                rows = [row for row in await uow.owed.unsent(CHANNEL) if row.chat_id == wa_id]
        except Exception as exc:
            log.warning("kept messages not read (%s)", type(exc).__name__)
            return
        shown: list[int] = []
        try:
            for row in rows:
                item, _state = item_from_json(row.body)
                await self._send_item(wa_id, item, stored)
                shown.append(row.id)
        except Exception as exc:
            log.warning("kept messages not all shown yet (%s)", type(exc).__name__)
        if shown:
            async with self.app.db.unit_of_work() as uow:
                await uow.owed.mark_sent(shown, self.app.clock())
                await uow.commit()

    async def _unsupported(self, wa_id: str, stored: StoredConversation) -> None:
        t = self.app.catalogs.get(stored.language)
        await self._send_all(wa_id, _text_messages(_unsupported_text(t)))

    async def _tell_failed(self, wa_id: str) -> None:
        try:
            stored = await self._load(wa_id)
            t = self.app.catalogs.get(stored.language if stored else None)
            await self._send_all(wa_id, _text_messages(_failed_text(t)))
        except Exception as exc:
            log.error("WhatsApp failure notice not sent either (%s)", type(exc).__name__)

    # --- outbound -----------------------------------------------------------------------------

    async def _send_all(self, wa_id: str, parts: Sequence[dict[str, Any]]) -> None:
        for part in parts:
            await self.graph.send(wa_id, part)

    async def _deliver(self, wa_id: str, messages: Sequence[OutMessage],
                       stored: StoredConversation | None, *, state: str | None = None) -> None:
        """Messages in order; buttons carry the state the conversation is in now."""
        t = self.app.catalogs.get(stored.language if stored else None)
        if state is None and stored is not None:
            state = stored.state
        for message in messages:
            await self._send_all(wa_id, render(message, t, state))

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
        """`ItemSender` (the confidant chat's relay): messages and files in the 24-hour window;
        outside it they are kept and announced by the template, shown when the client writes."""
        if self._closed:
            return "unavailable"
        try:
            stored = await self._load(chat_id)
            desk = self.desk
            staff = desk is not None and desk.is_confidant(CHANNEL, chat_id)
            if stored is None and not staff:
                return "unavailable"
            rest = list(items)
            if staff or (stored is not None and _window_open(stored, self.app.clock())):
                try:
                    while rest:
                        await self._send_item(chat_id, rest[0], stored)
                        rest.pop(0)
                    return "sent"
                except GraphError as exc:
                    if exc.code != REENGAGEMENT_ERROR:
                        log.warning("WhatsApp relay not delivered (status %s, code %s)",
                                    exc.status, exc.code)
                        return "unavailable"
            return await self._keep(chat_id, rest, stored)
        except Exception as exc:
            log.error("WhatsApp relay not delivered (%s)", type(exc).__name__)
            return "unavailable"

    async def _keep(self, chat_id: str, items: Sequence[Item],
                    stored: StoredConversation | None) -> Delivery:
        """Outside the window: keep the items (encrypted) for when they write, announce them."""
        async with self.app.db.unit_of_work() as uow:
            await uow.owed.add(CHANNEL, chat_id, [item_to_json(i, None) for i in items],
                               self.app.clock())
            await uow.commit()
        if stored is None:
            return "unavailable"
        messages = [i for i in items if isinstance(i, OutMessage)]
        return await self._template(chat_id, messages, stored)

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

    async def expiry_loop(self, stop: asyncio.Event) -> None:
        """Offers nobody accepted in time (also checked by Telegram when it runs: once each)."""
        while not stop.is_set():
            desk = self.desk
            try:
                for envelope in await desk.expire() if desk is not None else ():
                    await self.app.channels.deliver(envelope.channel, envelope.chat_id,
                                                    envelope.items)
            except Exception as exc:
                log.error("checking handoff timeouts failed (%s)", type(exc).__name__)
            try:
                await asyncio.wait_for(stop.wait(), EXPIRY_SECONDS)
            except TimeoutError:
                pass

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


def _sha256_matches(data: bytes, digest: str) -> bool:
    """Meta gives the hash as hex (or base64 in some versions): compare with either."""
    import base64

    raw = hashlib.sha256(data).digest()
    return digest.lower() == raw.hex() or digest == base64.b64encode(raw).decode("ascii")


def _keeps(stored: StoredConversation | None, ref: str) -> bool:
    if stored is None:
        return False
    return any(item.get("ref") == ref for item in _list(stored.data.get("attachments")))


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


# --- running it ---------------------------------------------------------------------------------


async def run_whatsapp(app: ChannelHost, stop: asyncio.Event) -> None:
    """Serve the webhook on WHATSAPP_LISTEN_HOST:PORT until `stop` is set, then finish what came in."""
    settings = app.settings
    if not (settings.whatsapp_token and settings.whatsapp_phone_number_id
            and settings.whatsapp_app_secret and settings.whatsapp_verify_token):
        raise RuntimeError("WhatsApp needs WHATSAPP_TOKEN, WHATSAPP_PHONE_NUMBER_ID, "
                           "WHATSAPP_APP_SECRET and WHATSAPP_VERIFY_TOKEN")
    timeout = aiohttp.ClientTimeout(total=60, connect=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        graph = GraphClient(session, settings.whatsapp_api_base, settings.whatsapp_phone_number_id,
                            settings.whatsapp_token.get_secret_value())
        channel = WhatsAppChannel(
            app,
            graph,
            app_secret=settings.whatsapp_app_secret.get_secret_value(),
            verify_token=settings.whatsapp_verify_token.get_secret_value(),
            phone_number_id=settings.whatsapp_phone_number_id,
        )
        app.channels.register(channel)
        desk = open_desk(app, app.service, CHANNEL)  # clients here may chat with a confidant
        expiry = asyncio.create_task(channel.expiry_loop(stop))
        # No access log: Meta's verification request carries the verify token in its query string.
        runner = web.AppRunner(channel.web_app(), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, settings.whatsapp_listen_host, settings.whatsapp_listen_port)
            await site.start()
            log.info("WhatsApp webhook listening on %s:%s%s", settings.whatsapp_listen_host,
                     settings.whatsapp_listen_port, WEBHOOK_PATH)
            await stop.wait()
        finally:
            await runner.cleanup()  # stop taking requests; what was accepted is finished below
            try:
                async with asyncio.timeout(DRAIN_SECONDS):
                    await channel.idle()
            except TimeoutError:
                log.warning("WhatsApp: stopped with messages still being handled")
                await channel.cancel()
            channel.close()
            expiry.cancel()
            await asyncio.gather(expiry, return_exceptions=True)
            leave_desk(app.service, desk, CHANNEL)
