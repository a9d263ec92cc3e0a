"""Telegram: what python-telegram-bot and aiogram share (`run.py` starts one of them).

The two adapters (ptb_adapter.py, aiogram_adapter.py beside this file) only receive updates
(polling or webhook) and call Bot API methods; everything else happens here, once, for both:

* `parse_update` turns an update (the Bot API's JSON, as both libraries can give it) into
  `Incoming`; only private chats are served;
* `CallbackCodec` puts `button id | state code | MAC` into `callback_data` (at most 64 bytes): the
  MAC binds a button to its chat and cannot be forged without the bot token; the state code makes a
  button from an older question stale (the engine refuses it politely);
* `Pacer` sends at most ~1 message per second per chat (short bursts allowed), one chat's messages
  in order, and waits out 429 `retry_after`;
* `TelegramCore` routes an update: coordinators' staff commands, confidants (bot/services/handoffs.py),
  clients (the intake service, exactly once per `update_id`), with a per-chat flood limit, a typing
  indicator and attachments (downloaded, size-limited, stored encrypted under random names).

Nothing here logs names, texts, chat ids or the token.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import hashlib
import hmac
import io
import logging
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from bot.services.delivery import Delivery, OwedMarker, item_from_json
from bot.services.handoffs import SENDER_NAME, Envelope, HandoffDesk, leave_desk, open_desk
from flows.handoff import CONFIDANT_LANGUAGE, FileOut, Item, parse_button
from flows.i18n import N_, Translator
from flows.model import (
    LANGUAGES,
    Attachment,
    AttachmentRefused,
    Choice,
    Command,
    Event,
    OutMessage,
    Start,
    Text,
)
from flows.texts import GLOBAL_ACTIONS

if TYPE_CHECKING:
    from bot.channels.ports import ChannelHost

log = logging.getLogger(__name__)
T = TypeVar("T")

CHANNEL = "telegram"
MENU_COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", N_("Start or continue")),
    ("help", GLOBAL_ACTIONS["help"]),
    ("language", GLOBAL_ACTIONS["language"]),
    ("dossier", GLOBAL_ACTIONS["dossier"]),
    ("withdraw", GLOBAL_ACTIONS["withdraw"]),
    ("erase", GLOBAL_ACTIONS["erase"]),
)
STAFF_COMMANDS = ("signals", "stats")
# Staff see their own menu in their private chat with the bot (Telegram's per-chat command scope).
COORDINATOR_MENU: tuple[tuple[str, str], ...] = (
    ("signals", N_("Download the anonymised signals (CSV)")),
    ("stats", N_("Signal counts")),
)
CONFIDANT_MENU: tuple[tuple[str, str], ...] = (
    ("end", N_("End the conversation")),
    ("help", GLOBAL_ACTIONS["help"]),
)
MAX_CALLBACK_BYTES = 64
MAX_TEXT = 4000  # Telegram's limit is 4096; keep a margin
RLM = "\u200f"
ALLOWED_UPDATES = ["message", "callback_query"]  # what the bot asks Telegram for (both libraries)
TYPING_AFTER = 0.3  # seconds: a reply that comes sooner needs no "typing…" indicator
NOISY_LOGGERS = ("httpx", "httpcore", "telegram.ext.Updater", "telegram.Bot", "telegram.request",
                 "tornado.access", "aiohttp.access", "aiogram.event")
RECENT_UPDATES = 10_000  # update ids remembered to recognise redeliveries before flood counting
SIGNAL_FIELDS = ("reference", "kind", "schema", "language", "channel", "month", "status")


# --- settings for one run ------------------------------------------------------------------------


@dataclass(frozen=True)
class TelegramOptions:
    """Timing and limits; the defaults are for production, tests make them small."""

    poll_timeout: int = 30  # seconds of long polling per getUpdates
    per_chat_rate: float = 1.0  # messages per second to one chat, after a burst
    per_chat_burst: int = 3
    flood_max: int = 20  # incoming updates per chat per window
    flood_window: float = 60.0
    expiry_interval: float = 30.0  # how often handoff offers are checked for their timeout
    retry_attempts: int = 5  # 429 answers waited out per call
    time_scale: float = 1.0  # multiplies retry_after waits (tests: small)


# --- errors the adapters raise (their libraries' exceptions, translated) -------------------------


class TelegramApiError(Exception):
    """A Bot API call failed. The message never holds the token or personal data."""


class TelegramRetryAfter(TelegramApiError):
    """429: wait `seconds` before the next call."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"flood control: retry after {seconds} s")
        self.seconds = seconds


class TelegramUnavailable(TelegramApiError):
    """The chat cannot be reached (blocked the bot, deleted, never started it)."""


class TelegramFileTooBig(TelegramApiError):
    """The Bot API will not hand out this file (it is bigger than it allows)."""


# --- what the adapters implement ------------------------------------------------------------------

Keyboard = list[list[tuple[str, str]]]  # rows of (label, callback_data)


class BotApi(Protocol):
    """The Bot API methods the core needs, implemented once per library."""

    async def send_message(self, chat_id: int, text: str, keyboard: Keyboard | None) -> int: ...

    async def edit_message(self, chat_id: int, message_id: int, text: str | None) -> None:
        """Remove the keyboard; when `text` is given, replace the text too."""

    async def answer_callback(self, callback_id: str, text: str | None) -> None: ...

    async def send_typing(self, chat_id: int) -> None: ...

    async def download(self, file_id: str, limit: int) -> bytes:
        """getFile and the file itself; TelegramFileTooBig above `limit` bytes."""

    async def send_file(
        self, chat_id: int, kind: str, data: bytes, filename: str, caption: str | None
    ) -> int: ...

    async def set_commands(self, commands: Sequence[tuple[str, str]], language: str | None,
                           chat_id: int | None = None) -> None:
        """setMyCommands for everyone, or (`chat_id`) for one private chat only."""


class Adapter(Protocol):
    """A library's side: the API, and starting/stopping the flow of updates into the core."""

    @property
    def api(self) -> BotApi: ...

    async def start(self, core: TelegramCore) -> None: ...

    async def stop(self) -> None: ...


# --- updates ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IncomingFile:
    kind: Literal["photo", "document", "voice", "video", "other"]
    file_id: str
    size: int | None
    content_type: str


@dataclass(frozen=True)
class Incoming:
    """One update, reduced to what we use. `user_id` is the numeric id; never the username."""

    update_id: int
    chat_id: int
    user_id: int
    language_code: str | None = None
    display_name: str = field(default="", repr=False)
    text: str | None = field(default=None, repr=False)
    caption: str | None = field(default=None, repr=False)
    file: IncomingFile | None = None
    unsupported: bool = False
    callback_id: str | None = None
    callback_data: str | None = None
    message_id: int | None = None
    message_text: str | None = field(default=None, repr=False)
    pressed_label: str | None = field(default=None, repr=False)

    @property
    def command(self) -> str | None:
        """`/start@bot payload` -> "start"; None if the text is not a command."""
        if not self.text or not self.text.startswith("/"):
            return None
        word = self.text[1:].split(maxsplit=1)[0] if len(self.text) > 1 else ""
        name = word.split("@", 1)[0].lower()
        return name if name.isascii() and name.replace("_", "").isalnum() else None


def _name(user: dict[str, Any]) -> str:
    parts = [str(user.get("first_name") or ""), str(user.get("last_name") or "")]
    name = " ".join(p for p in parts if p).strip()
    if user.get("username"):
        name = f"{name} (@{user['username']})".strip()
    return name


def _file(message: dict[str, Any]) -> IncomingFile | None:
    if message.get("photo"):
        best = message["photo"][-1]
        return IncomingFile("photo", str(best["file_id"]), best.get("file_size"), "image/jpeg")
    for key, kind, default in (("document", "document", "application/octet-stream"),
                               ("voice", "voice", "audio/ogg"),
                               ("video", "video", "video/mp4")):
        item = message.get(key)
        if item:
            mime = str(item.get("mime_type") or default)
            if not mime.isascii() or len(mime) > 100 or "/" not in mime:
                mime = default
            return IncomingFile(kind, str(item["file_id"]), item.get("file_size"), mime)  # type: ignore[arg-type]
    return None


def parse_update(raw: dict[str, Any]) -> Incoming | None:
    """The update as `Incoming`; None for what we do not serve (groups, channels, edits)."""
    update_id = raw.get("update_id")
    if not isinstance(update_id, int):
        return None
    if "callback_query" in raw:
        cq = raw["callback_query"]
        message = cq.get("message") or {}
        chat = message.get("chat") or {}
        user = cq.get("from") or {}
        if chat.get("type") != "private" or not isinstance(user.get("id"), int):
            return None
        label = None
        for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
            for b in row:
                if b.get("callback_data") == cq.get("data"):
                    label = str(b.get("text"))
        return Incoming(
            update_id=update_id, chat_id=int(chat["id"]), user_id=int(user["id"]),
            language_code=user.get("language_code"), display_name=_name(user),
            callback_id=str(cq.get("id")), callback_data=str(cq.get("data") or ""),
            message_id=message.get("message_id"), message_text=message.get("text"),
            pressed_label=label,
        )
    message = raw.get("message")
    if not isinstance(message, dict):
        return None
    chat = message.get("chat") or {}
    user = message.get("from") or {}
    if chat.get("type") != "private" or not isinstance(user.get("id"), int) or user.get("is_bot"):
        return None
    file = _file(message)
    text = message.get("text")
    unsupported = file is None and not isinstance(text, str)
    return Incoming(
        update_id=update_id, chat_id=int(chat["id"]), user_id=int(user["id"]),
        language_code=user.get("language_code"), display_name=_name(user),
        text=text if isinstance(text, str) else None,
        caption=message.get("caption"), file=file, unsupported=unsupported,
        message_id=message.get("message_id"),
    )


# --- buttons ------------------------------------------------------------------------------------


def state_code(state: str) -> str:
    return base64.b32encode(hashlib.sha256(state.encode()).digest()).decode()[:5].lower()


class CallbackCodec:
    """`callback_data` = `<button id>|<state code>|<MAC>`, at most 64 bytes."""

    def __init__(self, token: str, states: Sequence[str]) -> None:
        self._key = hashlib.sha256(b"klachtwijzer callback\x00" + token.encode()).digest()
        self._states = {state_code(s): s for s in states}

    def _mac(self, chat_id: int, code: str, button_id: str) -> str:
        digest = hmac.new(self._key, f"{chat_id}|{code}|{button_id}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()[:8]).decode().rstrip("=")

    def encode(self, chat_id: int, button_id: str, state: str | None) -> str:
        code = state_code(state) if state else ""
        data = f"{button_id}|{code}|{self._mac(chat_id, code, button_id)}"
        if len(data.encode()) > MAX_CALLBACK_BYTES or "|" in button_id:
            raise ValueError("button id too long for callback_data")
        return data

    def decode(self, chat_id: int, data: str) -> tuple[str, str | None] | None:
        """(button id, state) for a button we made for this chat; None if forged or foreign.

        An unknown state code (a procedure that changed since) comes back as a state that never
        matches, so the engine treats the button as stale.
        """
        parts = data.rsplit("|", 2)
        if len(parts) != 3:
            return None
        button_id, code, mac = parts
        if not hmac.compare_digest(mac, self._mac(chat_id, code, button_id)):
            return None
        if not code:
            return button_id, None
        return button_id, self._states.get(code, "?" + code)


# --- outgoing -----------------------------------------------------------------------------------


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split a long text at line breaks (or hard, for one huge line) into Telegram-sized parts."""
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    parts.append(current)
    return [p for p in parts if p] or [""]


class Pacer:
    """Per-chat ordered sending with a token bucket, and waiting out 429 `retry_after`."""

    def __init__(self, options: TelegramOptions,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.options = options
        self._sleep = sleep
        self._queues: dict[int, deque[tuple[Callable[[], Awaitable[Any]], asyncio.Future[Any]]]] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._buckets: dict[int, tuple[float, float]] = {}
        self.retry_waits: list[float] = []  # seconds asked by 429 answers (figures for tests)
        self.pacing_waits: list[float] = []

    async def call(self, factory: Callable[[], Awaitable[T]]) -> T:
        """One API call, repeated after each 429 (up to `retry_attempts` times)."""
        for attempt in range(self.options.retry_attempts + 1):
            try:
                return await factory()
            except TelegramRetryAfter as exc:
                if attempt == self.options.retry_attempts:
                    raise
                self.retry_waits.append(exc.seconds)
                log.warning("Telegram asked to slow down for %s s", exc.seconds)
                await self._sleep(exc.seconds * self.options.time_scale)
        raise AssertionError("unreachable")  # pragma: no cover

    def submit(self, chat_id: int, factory: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        """Queue a message for one chat; the future resolves when it was sent."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(chat_id, deque()).append((factory, future))
        if chat_id not in self._workers:
            self._workers[chat_id] = asyncio.create_task(self._work(chat_id))
        return future

    async def _token(self, chat_id: int) -> None:
        rate, burst = self.options.per_chat_rate, float(self.options.per_chat_burst)
        now = time.monotonic()
        tokens, last = self._buckets.get(chat_id, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens < 1:
            wait = (1 - tokens) / rate
            self.pacing_waits.append(wait)
            await self._sleep(wait)
            now = time.monotonic()
            tokens = min(burst, tokens + wait * rate)
        self._buckets[chat_id] = (tokens - 1, now)

    async def _work(self, chat_id: int) -> None:
        queue = self._queues[chat_id]
        try:
            while queue:
                factory, future = queue.popleft()
                await self._token(chat_id)
                try:
                    result = await self.call(factory)
                except Exception as exc:  # handed to whoever awaits the future
                    if not future.done():
                        future.set_exception(exc)
                else:
                    if not future.done():
                        future.set_result(result)
        finally:
            self._workers.pop(chat_id, None)
            if not queue:
                self._queues.pop(chat_id, None)

    async def drain(self) -> None:
        """Wait until everything queued so far was sent (or failed)."""
        while self._workers:
            await asyncio.gather(*list(self._workers.values()), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._workers.values()):
            task.cancel()
        await asyncio.gather(*list(self._workers.values()), return_exceptions=True)


class TelegramSender:
    """The `ChannelSender` "telegram": proactive messages from other parts (register, handoffs)."""

    name = CHANNEL

    def __init__(self, core: TelegramCore) -> None:
        self.core = core

    async def send(self, chat_id: str, messages: Sequence[OutMessage]) -> Delivery:
        try:
            futures = self.core.queue(int(chat_id), messages, state=None)
            await asyncio.gather(*futures)
        except (TelegramUnavailable, ValueError):
            return "unavailable"
        except TelegramApiError as exc:
            log.warning("Telegram send failed: %s", type(exc).__name__)
            return "unavailable"
        return "sent"

    async def deliver(self, chat_id: str, items: Sequence[Item],
                      owed: Sequence[int] = ()) -> Delivery:
        """`ItemSender`: messages and files from another channel (a handoff relay), owed rows
        marked sent as the Bot API accepts them."""
        try:
            futures = self.core.queue(int(chat_id), items, state=None, owed=owed)
            await asyncio.gather(*futures)
        except (TelegramUnavailable, ValueError):
            return "unavailable"
        except TelegramApiError as exc:
            log.warning("Telegram send failed: %s", type(exc).__name__)
            return "unavailable"
        return "sent"


# --- the core -----------------------------------------------------------------------------------


class FloodLimit:
    """At most `limit` updates per chat per `window` seconds; tells the client once per window."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[int, deque[float]] = {}
        self._told: dict[int, float] = {}

    def full(self, chat_id: int) -> bool:
        """Whether the next update of this chat would be over the limit (nothing is counted)."""
        now = time.monotonic()
        seen = self._seen.get(chat_id, ())
        return sum(1 for at in seen if now - at <= self.window) >= self.limit

    def check(self, chat_id: int) -> Literal["ok", "notice", "drop"]:
        now = time.monotonic()
        seen = self._seen.setdefault(chat_id, deque())
        while seen and now - seen[0] > self.window:
            seen.popleft()
        if len(seen) < self.limit:
            seen.append(now)
            return "ok"
        if now - self._told.get(chat_id, -1e9) > self.window:
            self._told[chat_id] = now
            return "notice"
        return "drop"


class TelegramCore:
    """Routes every update; shared by both adapters."""

    def __init__(self, app: ChannelHost, api: BotApi, options: TelegramOptions, token: str) -> None:
        self.app = app
        self.api = api
        self.options = options
        self.pacer = Pacer(options)
        self.codec = CallbackCodec(token, sorted(app.engine.edges))
        self.flood = FloodLimit(options.flood_max, options.flood_window)
        # The process's one handoff desk (WhatsApp may have opened it already); `serve` joins it.
        self.desk: HandoffDesk = app.service.handoffs or HandoffDesk(
            app.organisation, app.catalogs, app.db, app.clock, files=app.files)
        self.coordinators = frozenset(app.organisation.coordinators)
        self._pending: set[asyncio.Future[Any]] = set()
        # Offers sent to confidants, by handoff id: (chat, message id, text), to close them when
        # one confidant accepts (in memory: after a restart a late Accept is still refused).
        self._offers: dict[int, list[tuple[int, int, str]]] = {}
        self._chat_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = (
            weakref.WeakValueDictionary())
        self.processed: deque[int] = deque(maxlen=10_000)  # update ids handled (monitoring, tests)
        # Issue 10: owed messages are marked sent once accepted; updates wait (`ready`) until what
        # was still owed at start-up is queued ahead of them.
        self.marker = OwedMarker(app.db, app.clock)
        self.ready = asyncio.Event()
        self.ready.set()
        # Update ids that arrived lately: a redelivered update is not counted by the flood limit.
        self._arrived: OrderedDict[int, None] = OrderedDict()

    # --- setup ---------------------------------------------------------------------------------

    async def setup(self) -> None:
        """The command menu in each language (and English for any other); staff get their own."""
        for language in (*LANGUAGES, None):
            t = self.app.catalogs.get(language or "en")
            commands = [(name, t._(description)) for name, description in MENU_COMMANDS]
            await self.pacer.call(partial(self.api.set_commands, commands, language))
        for user_id, menu in self._staff_menus().items():
            for language in (*LANGUAGES, None):
                st = self.app.catalogs.get(language or "nl")
                commands = [(name, st._(description)) for name, description in menu]
                try:
                    await self.pacer.call(
                        partial(self.api.set_commands, commands, language, user_id))
                except TelegramApiError as exc:  # e.g. they never opened a chat with the bot
                    log.info("a staff command menu could not be set: %s", type(exc).__name__)
                    break

    def _staff_menus(self) -> dict[int, tuple[tuple[str, str], ...]]:
        """Each coordinator's and confidant's menu (both, for someone who is both)."""
        menus: dict[int, tuple[tuple[str, str], ...]] = {}
        for confidant in self.app.organisation.confidants:
            if confidant.telegram_id is not None:
                menus[confidant.telegram_id] = CONFIDANT_MENU
        for coordinator in self.coordinators:
            menus[coordinator] = menus.get(coordinator, ()) + COORDINATOR_MENU
        return menus

    def translator(self, language_code: str | None) -> Translator:
        code = (language_code or "").split("-")[0].lower()
        return self.app.catalogs.get(code if code in LANGUAGES else "en")

    # --- sending -------------------------------------------------------------------------------

    def _keyboard(self, chat_id: int, message: OutMessage, state: str | None) -> Keyboard | None:
        if not message.buttons:
            return None
        return [[(b.label, self.codec.encode(chat_id, b.id, state)) for b in row]
                for row in message.buttons]

    def queue(self, chat_id: int, messages: Sequence[Item],
              state: str | None, owed: Sequence[int] = ()) -> list[asyncio.Future[Any]]:
        """Queue messages (and files) for one chat, in order; returns their futures.

        `owed`: the owed rows of the messages (aligned), each marked sent once its last part
        was accepted by the Bot API."""
        futures: list[asyncio.Future[Any]] = []
        for index, message in enumerate(messages):
            first = len(futures)
            self._queue_one(chat_id, message, state, futures)
            if index < len(owed) and len(futures) > first:
                futures[-1].add_done_callback(partial(self._owed_done, owed[index]))
        for future in futures:
            self._pending.add(future)
            future.add_done_callback(self._done)
        return futures

    def _owed_done(self, owed_id: int, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is None or isinstance(error, TelegramUnavailable):  # sent, or never can be
            self.marker.mark(owed_id)

    async def send_owed(self) -> int:
        """At start-up: queue what is still owed, per chat in order, ahead of any new update."""
        try:
            rows = await self.marker.owed(CHANNEL)
            for row in rows:
                if not row.chat_id.lstrip("-").isdigit():
                    continue
                item, state = item_from_json(row.body)
                self.queue(int(row.chat_id), [item], state, owed=(row.id,))
            if rows:
                log.info("sending %d owed message(s) from before the restart", len(rows))
            return len(rows)
        finally:
            self.ready.set()

    def _queue_one(self, chat_id: int, message: Item, state: str | None,
                   futures: list[asyncio.Future[Any]]) -> None:
        if isinstance(message, FileOut):
            futures.append(self.pacer.submit(chat_id, partial(self._send_file, chat_id, message)))
            return
        keyboard = self._keyboard(chat_id, message, state)
        offer = _offer_of(message)
        parts = split_text(message.text)
        for index, part in enumerate(parts):
            text = (RLM + part) if message.rtl and not part.startswith(RLM) else part
            kb = keyboard if index == len(parts) - 1 else None
            future = self.pacer.submit(
                chat_id, partial(self.api.send_message, chat_id, text, kb))
            if offer is not None and kb is not None:
                future.add_done_callback(partial(self._remember_offer, offer, chat_id, text))
            futures.append(future)

    def _remember_offer(self, handoff_id: int, chat_id: int, text: str,
                        future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            self._offers.setdefault(handoff_id, []).append((chat_id, int(future.result()), text))

    def _close_offers(self, handoff_id: int, accepted_in: int) -> None:
        """Someone accepted: the other confidants' offers lose their Accept button and say so."""
        st = self.app.catalogs.get(CONFIDANT_LANGUAGE)
        note = st._("This request is no longer open. Another confidant accepted it, or the time "
                    "ran out.")
        for chat_id, message_id, text in self._offers.pop(handoff_id, []):
            if chat_id == accepted_in:
                continue  # the pressed offer is marked like any pressed button
            closed = f"{text}\n\n{note}"
            new_text = closed if len(closed) <= MAX_TEXT else None
            self.pacer.submit(chat_id, partial(self._edit, chat_id, message_id, new_text))

    def _done(self, future: asyncio.Future[Any]) -> None:
        self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.warning("Telegram message not delivered: %s", type(future.exception()).__name__)

    async def _send_file(self, chat_id: int, item: FileOut) -> int:
        try:
            data = await self.app.files.read(item.ref)
            kind = item.kind if item.kind in ("photo", "voice") else "document"
            extension = {"photo": "jpg", "voice": "ogg"}.get(kind, "bin")
            return await self.api.send_file(chat_id, kind, data, f"file.{extension}", item.caption)
        finally:
            await self.app.files.delete(item.ref)  # relayed files are not kept

    def deliver(self, envelopes: Sequence[Envelope],
                owed: Sequence[Sequence[int]] = ()) -> None:
        """Envelopes for Telegram chats are queued here; the others go to their own channel
        (a WhatsApp client of a Telegram confidant) in the background."""
        for index, env in enumerate(envelopes):
            ids = owed[index] if index < len(owed) else ()
            if env.channel == CHANNEL and env.chat_id.lstrip("-").isdigit():
                self.queue(int(env.chat_id), env.items, state=None, owed=ids)
            elif env.channel != CHANNEL:
                task = asyncio.ensure_future(self._elsewhere(env, ids))
                self._pending.add(task)
                task.add_done_callback(self._done)

    async def _elsewhere(self, env: Envelope, owed: Sequence[int]) -> None:
        if await self.app.channels.deliver(env.channel, env.chat_id, env.items,
                                           owed) == "unavailable":
            log.warning("a handoff message for a %s chat could not be delivered", env.channel)

    async def idle(self) -> None:
        """Wait until every queued message was sent (tests, and a clean shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        await self.pacer.drain()
        await self.marker.flush()

    async def _quietly(self, factory: Callable[[], Awaitable[Any]]) -> None:
        try:
            await self.pacer.call(factory)
        except TelegramApiError as exc:
            log.info("Telegram call failed: %s", type(exc).__name__)

    # --- receiving -----------------------------------------------------------------------------

    async def on_update(self, raw: dict[str, Any]) -> None:
        """One update from either library (polling or webhook).

        The libraries hand updates over concurrently, so conversations do not wait for each
        other; updates of one chat are handled one at a time in the order they arrived (the
        per-chat lock is FIFO and is the first thing an update waits for).
        """
        try:
            await self.ready.wait()
            incoming = parse_update(raw)
            if incoming is not None:
                async with self._chat_lock(incoming.chat_id):
                    await self._on_update(incoming)
        finally:
            update_id = raw.get("update_id")
            if isinstance(update_id, int):
                self.processed.append(update_id)

    def _chat_lock(self, chat_id: int) -> asyncio.Lock:
        lock = self._chat_locks.get(chat_id)
        if lock is None:
            lock = self._chat_locks[chat_id] = asyncio.Lock()
        return lock

    def _background(self, factory: Callable[[], Awaitable[Any]]) -> None:
        """A Bot API call nobody waits for (typing indicator, answering a button press)."""
        task = asyncio.ensure_future(self._quietly(factory))
        self._pending.add(task)
        task.add_done_callback(self._done)

    async def _redelivered(self, incoming: Incoming) -> bool:
        """Whether this update came before: seen lately in this process, or (only when the chat
        is at its flood limit, to keep the usual path free of a query) stored as handled."""
        update_id = incoming.update_id
        if update_id in self._arrived:
            return True
        self._arrived[update_id] = None
        while len(self._arrived) > RECENT_UPDATES:
            self._arrived.popitem(last=False)
        if not self.flood.full(incoming.chat_id):
            return False
        async with self.app.db.unit_of_work(read_only=True) as uow:
            return await uow.inbound.known(CHANNEL, str(update_id))

    async def _on_update(self, incoming: Incoming) -> None:
        # Duplicates are recognised before counting: a redelivered update never trips the limit
        # (the service then ignores it, by its stored update id).
        verdict = "ok" if await self._redelivered(incoming) else self.flood.check(incoming.chat_id)
        if verdict != "ok":
            if verdict == "notice":
                t = self.translator(incoming.language_code)
                self.queue(incoming.chat_id, [OutMessage(t._(
                    "You sent many messages very quickly. I could not read the last ones. "
                    "Please wait a minute, then send them again."), rtl=t.rtl)], state=None)
            if incoming.callback_id:
                self._background(lambda: self.api.answer_callback(str(incoming.callback_id), None))
            log.info("flood limit: update dropped")
            return
        token = SENDER_NAME.set(incoming.display_name or None)
        try:
            await self._route(incoming)
        except Exception:
            log.exception("a Telegram update could not be handled")
            t = self.translator(incoming.language_code)
            self.queue(incoming.chat_id, [OutMessage(t._(
                "Sorry, something went wrong on our side. Nothing was lost. Please try again "
                "in a moment."), rtl=t.rtl)], state=None)
        finally:
            SENDER_NAME.reset(token)

    async def _route(self, incoming: Incoming) -> None:
        command = incoming.command
        if command in STAFF_COMMANDS:
            await self._staff(incoming, command)
            return
        if self.desk.is_confidant(CHANNEL, str(incoming.user_id)):
            await self._confidant(incoming)
            return
        await self._client(incoming)

    async def _event(self, incoming: Incoming, t: Translator) -> Event | None:
        """The domain event of an update; None when the update was answered here already."""
        if incoming.callback_id is not None:
            decoded = self.codec.decode(incoming.chat_id, incoming.callback_data or "")
            if decoded is None:
                log.info("refused a forged or foreign button")
                await self._quietly(lambda: self.api.answer_callback(
                    str(incoming.callback_id), t._("This button is no longer valid. Please use "
                                                  "the buttons below.")))
                return None
            self._background(lambda: self.api.answer_callback(str(incoming.callback_id), None))
            await self._mark(incoming)
            return Choice(decoded[0], decoded[1])
        if incoming.file is not None:
            return await self._attachment(incoming.file, incoming.caption)
        if incoming.unsupported:
            self.queue(incoming.chat_id, [OutMessage(t._(
                "I can read text, photos, documents and voice messages. Please send one of "
                "those."), rtl=t.rtl)], state=None)
            return None
        command = incoming.command
        if command == "start":
            return Start(incoming.language_code)
        if command is not None:
            return Command(command)
        return Text(incoming.text or "")

    async def _mark(self, incoming: Incoming) -> None:
        """A pressed button's keyboard is removed; the message shows what was chosen."""
        if incoming.message_id is None:
            return
        text = None
        if incoming.message_text and incoming.pressed_label:
            label = incoming.pressed_label.removeprefix("✓ ")
            candidate = f"{incoming.message_text}\n\n✓ {label}"
            text = candidate if len(candidate) <= MAX_TEXT else None
        message_id = int(incoming.message_id)
        self.pacer.submit(incoming.chat_id, lambda: self._edit(incoming.chat_id, message_id, text))

    async def _edit(self, chat_id: int, message_id: int, text: str | None) -> None:
        with contextlib.suppress(TelegramApiError):
            await self.api.edit_message(chat_id, message_id, text)

    async def _attachment(self, file: IncomingFile, caption: str | None) -> Event:
        limit = self.app.settings.max_attachment_bytes
        if file.size is not None and file.size > limit:
            return AttachmentRefused("too_big", limit)
        try:
            data = await self.pacer.call(lambda: self.api.download(file.file_id, limit))
        except TelegramFileTooBig:
            return AttachmentRefused("too_big", limit)
        except TelegramApiError as exc:
            log.info("file download failed: %s", type(exc).__name__)
            return AttachmentRefused("unreadable")
        if len(data) > limit:
            return AttachmentRefused("too_big", limit)
        if not data:
            return AttachmentRefused("unreadable")
        ref = await self.app.files.save(data)
        # Issue 14.10: the words sent with a file travel with it; flows decides what they answer.
        return Attachment(file.kind, ref, len(data), file.content_type, caption=caption)

    @contextlib.contextmanager
    def _typing(self, chat_id: int) -> Iterator[None]:
        """Show "typing…" while the bot works, if that takes long enough to be noticed."""
        shown = asyncio.get_running_loop().call_later(
            TYPING_AFTER, self._background, lambda: self.api.send_typing(chat_id))
        try:
            yield
        finally:
            shown.cancel()

    async def _client(self, incoming: Incoming) -> None:
        t = self.translator(incoming.language_code)
        with self._typing(incoming.chat_id):
            event = await self._event(incoming, t)
            if event is None:
                return
            await self._handle(incoming.chat_id, event, str(incoming.update_id),
                               incoming.language_code)

    async def _handle(self, chat_id: int, event: Event, update_id: str,
                      hint: str | None = None) -> None:
        reply = await self.app.service.handle(CHANNEL, str(chat_id), event, update_id=update_id,
                                              hint=hint)
        if reply.duplicate:
            log.info("duplicate update ignored")
            if isinstance(event, Attachment):
                await self.app.files.delete(event.ref)
            return
        self.queue(chat_id, reply.messages, state=reply.state, owed=reply.owed)
        self.deliver(reply.others, reply.others_owed)

    async def _confidant(self, incoming: Incoming) -> None:
        st = self.app.catalogs.get(self._staff_language(incoming))
        event = await self._event(incoming, st)
        if event is None:
            return
        if isinstance(event, Start | Command) and not (
            isinstance(event, Command) and event.name == "end"
        ):
            event = Command("help")
        reply, others = await self.desk.from_confidant(
            (CHANNEL, str(incoming.user_id)), event, update_id=str(incoming.update_id),
            language=self._staff_language(incoming),
        )
        self.queue(incoming.chat_id, reply, state=None)
        self.deliver(others)
        pressed = parse_button(event.button_id) if isinstance(event, Choice) else None
        if pressed is not None and pressed[0] == "accept":
            self._close_offers(pressed[1], accepted_in=incoming.chat_id)

    def _staff_language(self, incoming: Incoming) -> str:
        code = (incoming.language_code or "").split("-")[0].lower()
        return code if code in LANGUAGES else "nl"

    # --- coordinators --------------------------------------------------------------------------

    async def _staff(self, incoming: Incoming, command: str) -> None:
        now = self.app.clock()
        allowed = incoming.user_id in self.coordinators
        actor = f"telegram:{incoming.user_id}"  # numeric id, audit log only
        async with self.app.db.unit_of_work() as uow:
            if await uow.inbound.seen(CHANNEL, str(incoming.update_id), now):
                return
            await uow.audit.record(now, actor, f"staff_{command}" if allowed
                                   else "staff_command_refused", None, command)
            await uow.commit()
        if not allowed:
            log.info("refused a staff command from someone who is not a coordinator")
            t = self.translator(incoming.language_code)
            self.queue(incoming.chat_id, [OutMessage(t._(
                "This command is only for staff of the organisation."), rtl=t.rtl)], state=None)
            return
        st = self.app.catalogs.get(self._staff_language(incoming))
        with self._typing(incoming.chat_id):
            rows = await self._signal_rows(incoming.text or "")
        if command == "signals":
            data = signals_csv(rows)
            caption = st.ngettext("{count} signal, anonymised.", "{count} signals, anonymised.",
                                  len(rows)).format(count=len(rows))
            filename = f"signals-{self.app.clock().date().isoformat()}.csv"
            self.pacer.submit(incoming.chat_id, lambda: self.api.send_file(
                incoming.chat_id, "document", data, filename, caption))
            return
        self.queue(incoming.chat_id, [OutMessage(stats_text(st, rows, self.app.clock().date()))],
                   state=None)

    async def _signal_rows(self, text: str) -> list[dict[str, object]]:
        from bot.services.register import anonymised_rows

        start, end = period(text)
        return await anonymised_rows(
            self.app.db, start, end, organisation=self.app.organisation.name,
            deadlines=self.app.organisation.procedure.deadlines,
        )

    # --- handoff timeouts ----------------------------------------------------------------------

    async def expire_handoffs(self) -> None:
        self.deliver(await self.desk.expire())

    async def expiry_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.expire_handoffs()
            except Exception:
                log.exception("checking handoff timeouts failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.options.expiry_interval)


def period(text: str) -> tuple[date | None, date | None]:
    """`/signals 2026-01-01 2026-03-31` -> the dates; anything unreadable means "everything"."""
    dates: list[date] = []
    for word in text.split()[1:3]:
        try:
            dates.append(date.fromisoformat(word))
        except ValueError:
            return None, None
    if len(dates) == 1:
        return dates[0], None
    if len(dates) == 2:
        return min(dates), max(dates)
    return None, None


def signals_csv(rows: Sequence[dict[str, object]]) -> bytes:
    """Anonymised signals: no names, no free text, no account ids."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(SIGNAL_FIELDS)
    for row in rows:
        writer.writerow(["" if row.get(k) is None else str(row.get(k)) for k in SIGNAL_FIELDS])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def stats_text(t: Translator, rows: Sequence[dict[str, object]], today: date) -> str:
    """Counts for coordinators: in total, by kind, by status, by channel."""
    def counts(key: str) -> str:
        tally: dict[str, int] = {}
        for row in rows:
            value = str(row.get(key) or "-")
            tally[value] = tally.get(value, 0) + 1
        return ", ".join(f"{k}: {v}" for k, v in sorted(tally.items())) or "-"

    lines = [
        t._("Signals on {date}: {count} in total.").format(date=today.isoformat(), count=len(rows)),
        t._("By kind: {counts}").format(counts=counts("kind")),
        t._("By status: {counts}").format(counts=counts("status")),
        t._("By channel: {counts}").format(counts=counts("channel")),
        t._("By language: {counts}").format(counts=counts("language")),
    ]
    return "\n".join(lines)


# --- logging ------------------------------------------------------------------------------------


class RedactToken(logging.Filter):
    """Replace the bot token in any log record that reaches a handler (URLs in library logs)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.token:
            return True
        message = record.getMessage()
        if self.token in message:
            record.msg = message.replace(self.token, "<token>")
            record.args = None
        if record.exc_text and self.token in record.exc_text:
            record.exc_text = record.exc_text.replace(self.token, "<token>")
        return True


def quiet_logging(token: str) -> None:
    """Libraries log request URLs (with the token) and update contents: keep them at WARNING."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    redact = RedactToken(token)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactToken) for f in handler.filters):
            handler.addFilter(redact)


# --- running ------------------------------------------------------------------------------------


class TelegramConfigError(ValueError):
    """The Telegram settings cannot work; the message says what to fix."""


def check_settings(app: ChannelHost) -> None:
    s = app.settings
    if s.telegram_mode == "webhook":
        if not s.telegram_webhook_url:
            raise TelegramConfigError("TELEGRAM_MODE=webhook needs TELEGRAM_WEBHOOK_URL")
        if s.telegram_webhook_secret is None or not s.telegram_webhook_secret.get_secret_value():
            raise TelegramConfigError("TELEGRAM_MODE=webhook needs TELEGRAM_WEBHOOK_SECRET")


async def serve(app: ChannelHost, stop: asyncio.Event, adapter: Adapter, token: str,
                options: TelegramOptions,
                started: Callable[[TelegramCore], None] | None = None) -> None:
    """Run one adapter until `stop` is set: menu, updates, handoff timeouts, clean shutdown."""
    core = TelegramCore(app, adapter.api, options, token)
    core.desk = open_desk(app, app.service, CHANNEL)
    app.channels.register(TelegramSender(core))
    app.service.owed_channels.add(CHANNEL)
    core.ready.clear()  # updates wait until what is still owed is queued ahead of them
    await adapter.start(core)
    try:
        await core.send_owed()
        await core.setup()
        if started is not None:
            started(core)
        log.info("Telegram is running (%s, %s)", app.settings.telegram_library,
                 app.settings.telegram_mode)
        await core.expiry_loop(stop)
    finally:
        await adapter.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(core.idle(), 5)
        await core.pacer.close()
        await core.marker.flush()
        app.service.owed_channels.discard(CHANNEL)
        leave_desk(app.service, core.desk, CHANNEL)
        log.info("Telegram stopped")


def _offer_of(message: Item) -> int | None:
    """The handoff id of a confidant offer (a message with its Accept button), else None."""
    if not isinstance(message, OutMessage):
        return None
    for button_id in message.button_ids():
        parsed = parse_button(button_id)
        if parsed is not None and parsed[0] == "accept":
            return parsed[1]
    return None
