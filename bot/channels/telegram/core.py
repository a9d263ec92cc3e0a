"""Telegram: what python-telegram-bot and aiogram share (`run.py` starts one of them).

The two adapters (ptb_adapter.py, aiogram_adapter.py beside this file) only receive updates
(polling or webhook) and call Bot API methods; everything else happens in this package, once, for
both (this module re-exports the names of its siblings, as before the split):

* `api.py`: the `BotApi` each adapter implements, its errors, `TelegramOptions`, `split_text`;
* `updates.py`: `parse_update` turns an update (the Bot API's JSON, as both libraries can give
  it) into `Incoming`, only private chats are served; `CallbackCodec` puts
  `button id | state code | MAC` into `callback_data` (at most 64 bytes): the MAC binds a button
  to its chat and cannot be forged without the bot token; the state code makes a button from an
  older question stale (the engine refuses it politely);
* `pacing.py`: `Pacer` sends at most ~1 message per second per chat (short bursts allowed), one
  chat's messages in order, and waits out 429 `retry_after`; `FloodLimit` caps incoming updates;
* `logs.py`: library loggers kept quiet, the token redacted;
* `TelegramCore` (here) routes an update: coordinators' staff commands (bot/services/staff.py),
  confidants (bot/services/handoffs.py), clients (the intake service, exactly once per
  `update_id`), with a per-chat flood limit, a typing indicator and attachments (downloaded,
  size-limited, stored encrypted under random names);
* `serve.py`: the `ChannelSender` "telegram", the settings check, and `serve` (one adapter).

Nothing here logs names, texts, chat ids or the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from bot.channels.telegram.api import (
    ALLOWED_UPDATES,
    MAX_TEXT,
    RLM,
    BotApi,
    Keyboard,
    TelegramApiError,
    TelegramFileTooBig,
    TelegramOptions,
    TelegramRetryAfter,
    TelegramUnavailable,
    split_text,
)
from bot.channels.telegram.logs import NOISY_LOGGERS, RedactToken, quiet_logging
from bot.channels.telegram.pacing import FloodLimit, Pacer
from bot.channels.telegram.updates import (
    MAX_CALLBACK_BYTES,
    CallbackCodec,
    Incoming,
    IncomingFile,
    parse_update,
    state_code,
)
from bot.services.delivery import OwedMarker, item_from_json
from bot.services.handoff_desk import expire_offers_until
from bot.services.handoffs import SENDER_NAME, Envelope, HandoffDesk
from bot.services.handoffs import Reply as DeskReply
from bot.services.staff import (
    SIGNAL_FIELDS,
    STAFF_COMMANDS,
    StaffCommands,
    StaffService,
    period,
    signals_csv,
    stats_text,
)
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
    supported_language,
)
from flows.texts import GLOBAL_ACTIONS

if TYPE_CHECKING:
    from bot.channels.ports import ChannelHost

__all__ = [
    "ALLOWED_UPDATES",
    "CHANNEL",
    "CONFIDANT_MENU",
    "COORDINATOR_MENU",
    "MAX_CALLBACK_BYTES",
    "MAX_TEXT",
    "MENU_COMMANDS",
    "NOISY_LOGGERS",
    "RECENT_UPDATES",
    "RLM",
    "SIGNAL_FIELDS",
    "STAFF_COMMANDS",
    "TYPING_AFTER",
    "Adapter",
    "BotApi",
    "CallbackCodec",
    "FloodLimit",
    "Incoming",
    "IncomingFile",
    "Keyboard",
    "Pacer",
    "RedactToken",
    "TelegramApiError",
    "TelegramCore",
    "TelegramFileTooBig",
    "TelegramOptions",
    "TelegramRetryAfter",
    "TelegramUnavailable",
    "parse_update",
    "period",
    "quiet_logging",
    "signals_csv",
    "split_text",
    "state_code",
    "stats_text",
]

log = logging.getLogger(__name__)

CHANNEL = "telegram"
MENU_COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", N_("Start or continue")),
    ("help", GLOBAL_ACTIONS["help"]),
    ("language", GLOBAL_ACTIONS["language"]),
    ("dossier", GLOBAL_ACTIONS["dossier"]),
    ("withdraw", GLOBAL_ACTIONS["withdraw"]),
    ("erase", GLOBAL_ACTIONS["erase"]),
)
# Staff see their own menu in their private chat with the bot (Telegram's per-chat command scope).
COORDINATOR_MENU: tuple[tuple[str, str], ...] = (
    ("signals", N_("Download the anonymised signals (CSV)")),
    ("stats", N_("Signal counts")),
)
CONFIDANT_MENU: tuple[tuple[str, str], ...] = (
    ("end", N_("End the conversation")),
    ("help", GLOBAL_ACTIONS["help"]),
)
TYPING_AFTER = 0.3  # seconds: a reply that comes sooner needs no "typing…" indicator
RECENT_UPDATES = 10_000  # update ids remembered to recognise redeliveries before flood counting


class Adapter(Protocol):
    """A library's side: the API, and starting/stopping the flow of updates into the core."""

    @property
    def api(self) -> BotApi: ...

    async def start(self, core: TelegramCore) -> None: ...

    async def stop(self) -> None: ...


class TelegramCore:
    """Routes every update; shared by both adapters."""

    def __init__(self, app: ChannelHost, api: BotApi, options: TelegramOptions, token: str) -> None:
        self.app = app
        self.api = api
        self.options = options
        self.pacer = Pacer(options)
        # Buttons carry the state they were shown in: the states of every organisation's procedure.
        self.codec = CallbackCodec(token, sorted({state for engine in app.service.engines.values()
                                                  for state in engine.edges}))
        self.flood = FloodLimit(options.flood_max, options.flood_window)
        # The process's one handoff desk (WhatsApp may have opened it already); `serve` joins it.
        self.desk: HandoffDesk = app.service.handoffs or HandoffDesk(
            app.deployment, app.catalogs, app.db, app.clock, files=app.files)
        # Coordinators of every organisation; StaffCommands answers each for their own only.
        self.coordinators = frozenset(c for o in app.deployment.organisations for c in o.coordinators)
        self.staff: StaffCommands = StaffService(app)  # /signals and /stats
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
        for confidant in self.desk.confidants.values():
            if confidant.telegram_id is not None:
                menus[confidant.telegram_id] = CONFIDANT_MENU
        for coordinator in self.coordinators:
            menus[coordinator] = menus.get(coordinator, ()) + COORDINATOR_MENU
        return menus

    def translator(self, language_code: str | None) -> Translator:
        return self.app.catalogs.get(supported_language(language_code) or "en")

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
        if command == "start":  # issue 11: a deep link t.me/<bot>?start=<slug> names the organisation
            return Start(incoming.language_code, organisation=incoming.start_payload)
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
        # One unit of work with what it owes people (issue 10): queued now, marked once accepted.
        answer = await self.desk.confidant_update(
            (CHANNEL, str(incoming.user_id)), event, update_id=str(incoming.update_id),
            language=self._staff_language(incoming),
        )
        self.queue(incoming.chat_id, answer.messages, state=None, owed=answer.owed)
        self.deliver(answer.others, answer.others_owed)
        pressed = parse_button(event.button_id) if isinstance(event, Choice) else None
        if pressed is not None and pressed[0] == "accept":
            self._close_offers(pressed[1], accepted_in=incoming.chat_id)

    def _staff_language(self, incoming: Incoming) -> str:
        return supported_language(incoming.language_code) or "nl"

    # --- coordinators --------------------------------------------------------------------------

    async def _staff(self, incoming: Incoming, command: str) -> None:
        """/signals and /stats through the staff service (bot/services/staff.py)."""
        with self._typing(incoming.chat_id):
            reply = await self.staff.answer(
                (CHANNEL, str(incoming.user_id)), command, incoming.text or "",
                update_id=str(incoming.update_id), language=incoming.language_code)
        if reply.duplicate:
            return
        if reply.refused:
            log.info("refused a staff command from someone who is not a coordinator")
        for document in reply.documents:  # one CSV per organisation the coordinator serves
            self.pacer.submit(incoming.chat_id, partial(
                self.api.send_file, incoming.chat_id, "document", document.data, document.filename,
                document.caption))
        if reply.messages:
            self.queue(incoming.chat_id, reply.messages, state=None)

    # --- handoff timeouts ----------------------------------------------------------------------

    async def expire_handoffs(self) -> None:
        await self._pass_on_expired(await self.desk.expire_owed())

    async def _pass_on_expired(self, expired: DeskReply) -> None:
        self.deliver(expired.others, expired.others_owed)

    async def expiry_loop(self, stop: asyncio.Event) -> None:
        await expire_offers_until(stop, lambda: self.desk, self._pass_on_expired,
                                  self.options.expiry_interval)


def _offer_of(message: Item) -> int | None:
    """The handoff id of a confidant offer (a message with its Accept button), else None."""
    if not isinstance(message, OutMessage):
        return None
    for button_id in message.button_ids():
        parsed = parse_button(button_id)
        if parsed is not None and parsed[0] == "accept":
            return parsed[1]
    return None
