"""Simulated clients against a Telegram bot on the in-process Bot API stand-in.

`run_load` starts one bot (this project's Telegram adapter with its full path, or a minimal echo
bot on the same library) polling a fresh `BotApiStub` (tests/bot/telegram_stub.py), lets
`chats` clients walk the conversation of bench/script.py at the same time, each waiting for its
replies before it sends the next update (a closed loop), and returns messages per second and the
latency of every message: from pushing its update to the stand-in until the last reply to it
reached the stand-in.

Both kinds of bot get the same updates, pushed the same way, from the same number of clients;
the stand-in hands out the same getUpdates batches (at most 100) to both.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import SecretStr

from bench.script import Script, Step, fake_callback_data
from tests.bot.telegram_stub import BotApiStub, Sent, callback_update, message_update, user

TOKEN = "123456789:AAE-klachtwijzer-bench-token-abcdefgh"  # noqa: S105 - the stand-in's, not a secret
CHAT_BASE = 8_000_000  # chat ids of simulated clients: CHAT_BASE + offset + index
ANSWER_TIMEOUT = 60.0  # seconds a client waits for its replies before the run is declared broken
# "echo_answering": the echo bot that also answers every button press (answerCallbackQuery), as
# Telegram asks of every bot (the client's button spins until it is answered).
# "mirror": the echo that replays the bot's own Bot API calls (bench/mirror.py).
Kind = Literal["bot", "echo", "echo_answering", "mirror", "durable_echo"]
Library = Literal["ptb", "aiogram"]
K = TypeVar("K")  # a chat id: a Telegram number, a WhatsApp number


class BenchError(RuntimeError):
    """The bot did not answer as the script expects."""


UPDATE_IDS = itertools.count(1_000)  # across runs: a bot that reuses a database must see new ids


class Arrivals(Generic[K]):
    """Futures that get the time (perf_counter) at which a chat has had `replies` more messages:
    a stand-in calls `arrived(chat)` for each message it takes."""

    def __init__(self) -> None:
        self._waiting: dict[K, tuple[int, asyncio.Future[float]]] = {}

    def expect(self, chat: K, replies: int) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if replies <= 0:
            future.set_result(time.perf_counter())
        else:
            self._waiting[chat] = (replies, future)
        return future

    def arrived(self, chat: K) -> None:
        waiting = self._waiting.get(chat)
        if waiting is None:
            return
        left, future = waiting
        if left <= 1:
            del self._waiting[chat]
            if not future.done():
                future.set_result(time.perf_counter())
        else:
            self._waiting[chat] = (left - 1, future)


class BenchStub(BotApiStub):
    """The stand-in, with what a load run needs: waiting for a chat's replies, O(1) lookups, and
    update ids that keep increasing from one run to the next (as Telegram's do)."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self._by_id: dict[int, Sent] = {}
        self._last_keyboard: dict[int, Sent] = {}
        self._arrivals: Arrivals[int] = Arrivals()
        self.polled = asyncio.Event()
        self.counts: Counter[str] = Counter()  # Bot API calls by method (what a run cost)
        self.per_chat: Counter[str] = Counter()  # "tg:<chat>" -> messages sent to it

    async def _params(self, request: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
        self.counts[str(request.match_info["method"])] += 1
        return await super()._params(request)

    def next_update_id(self) -> int:
        return next(UPDATE_IDS)

    def expect(self, chat_id: int, replies: int) -> asyncio.Future[float]:
        """A future that gets the time (perf_counter) at which `replies` more messages arrived."""
        return self._arrivals.expect(chat_id, replies)

    def keyboard_with(self, chat_id: int, button_id: str) -> tuple[Sent, str]:
        """The newest message to this chat with that button, and the button's callback data."""
        sent = self._last_keyboard.get(chat_id)
        if sent is not None:
            for row in sent.keyboard:
                for button in row:
                    data = str(button["callback_data"])
                    if data.split("|", 1)[0] == button_id:
                        return sent, data
        shown = sent.button_ids() if sent is not None else []
        raise BenchError(f"the bot showed no button {button_id!r} (shown: {shown})")

    async def _record(self, chat_id: int, message: dict[str, Any], kind: str = "text",
                      data: bytes = b"") -> Any:
        response = await super()._record(chat_id, message, kind, data)
        self.per_chat[f"tg:{chat_id}"] += 1
        sent = self.sent.pop()  # kept by id instead: the stand-in's list is searched linearly
        self.calls.clear()  # nor is every call kept for the whole run
        self._by_id[sent.message_id] = sent
        if sent.keyboard:
            self._last_keyboard[chat_id] = sent
        self._arrivals.arrived(chat_id)
        return response

    def _find(self, params: dict[str, Any]) -> Sent | None:
        return self._by_id.get(int(params["message_id"]))

    async def _m_getUpdates(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        self.polled.set()
        return await super()._m_getUpdates(params, files)


# --- the bots ---------------------------------------------------------------------------------


@dataclass
class Running:
    """A started bot: `stop()` ends it and frees what it holds."""

    stop: Callable[[], Awaitable[None]]


async def start_project_bot(stub: BenchStub, library: Library, data_dir: Path,
                            secret: SecretStr, database_url: str | None = None,
                            started: Callable[[Any], None] | None = None) -> Running:
    """This project's bot: `build_app` + `run_telegram` (polling), pacing and flood limits off;
    on SQLite in `data_dir`, or on the PostgreSQL database `database_url`. `started` gets the
    running TelegramCore."""
    from bot.channels.telegram.core import TelegramOptions
    from bot.channels.telegram.run import run_telegram
    from bot.root.app import build_app
    from bot.root.settings import Settings

    settings = Settings(
        data_dir=data_dir, mail_from="bench@klachtwijzer.test", database_url=database_url,
        secret_key=secret, telegram_bot_token=SecretStr(TOKEN), telegram_library=library,
        telegram_api_base=stub.base, telegram_mode="polling",
    )
    options = TelegramOptions(poll_timeout=1, per_chat_rate=1e9, per_chat_burst=1_000_000_000,
                              flood_max=1_000_000_000, flood_window=1.0, expiry_interval=3600.0)
    app = await build_app(settings)
    stop = asyncio.Event()
    ready = asyncio.Event()
    def on_started(core: Any) -> None:
        if started is not None:
            started(core)
        ready.set()

    task = asyncio.create_task(run_telegram(app, stop, options=options, started=on_started))
    waiter = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait({waiter, task}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        await app.close()
        task.result()  # raises what went wrong
    if waiter not in done:
        raise BenchError("the bot did not start within 60 s")
    await asyncio.wait_for(stub.polled.wait(), 30)

    async def stopper() -> None:
        stop.set()
        try:
            await asyncio.wait_for(task, 30)
        finally:
            await app.close()

    return Running(stopper)


async def start_echo_ptb(stub: BenchStub, concurrent: bool | None, answering: bool) -> Running:
    """A minimal python-telegram-bot echo bot: one MessageHandler, one CallbackQueryHandler.

    `concurrent` None: the library's default (one update at a time). `answering`: a button press
    is also answered (answerCallbackQuery, at the same time as the echo)."""
    from telegram import Update
    from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

    async def on_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_chat is not None and update.effective_message is not None:
            await context.bot.send_message(update.effective_chat.id,
                                           update.effective_message.text or "?")

    async def on_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if update.effective_chat is not None and query is not None:
            echo = context.bot.send_message(update.effective_chat.id, query.data or "?")
            if answering:
                await asyncio.gather(query.answer(), echo)
            else:
                await echo

    builder = (Application.builder().token(TOKEN).base_url(f"{stub.base}/bot")
               .base_file_url(f"{stub.base}/file/bot").get_updates_read_timeout(11))
    if concurrent is not None:
        builder = builder.concurrent_updates(concurrent)
    application = builder.build()
    application.add_handler(MessageHandler(filters.ALL, on_message))
    application.add_handler(CallbackQueryHandler(on_callback))
    return await polling_ptb(application, stub)


async def polling_ptb(application: Any, stub: BenchStub,
                      pending: Iterable[asyncio.Task[Any]] = ()) -> Running:
    """Start a built python-telegram-bot application polling the stand-in, once it has polled;
    stopping waits for `pending` (the handlers' tasks), then stops and shuts it down."""
    await application.initialize()
    updater = application.updater
    if updater is None:  # pragma: no cover - the builder always makes one
        raise BenchError("python-telegram-bot built no updater")
    await updater.start_polling(poll_interval=0.0, timeout=1,
                                allowed_updates=["message", "callback_query"])
    await application.start()
    await asyncio.wait_for(stub.polled.wait(), 30)

    async def stopper() -> None:
        await asyncio.gather(*pending, return_exceptions=True)
        await updater.stop()
        await application.stop()
        await application.shutdown()

    return Running(stopper)


async def start_echo_aiogram(stub: BenchStub, concurrent: bool | None,
                             answering: bool) -> Running:
    """A minimal aiogram echo bot: one Dispatcher with a message and a callback handler.

    `concurrent` None: the library's default (every update as a task). `answering`: a button
    press is also answered (answerCallbackQuery, at the same time as the echo)."""
    from aiogram import Bot, Dispatcher
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.types import CallbackQuery, Message

    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(stub.base)))
    dispatcher = Dispatcher()

    async def on_message(message: Message) -> None:
        await bot.send_message(message.chat.id, message.text or "?")

    async def on_callback(query: CallbackQuery) -> None:
        if query.message is not None:
            echo = bot.send_message(query.message.chat.id, query.data or "?")
            if answering:
                await asyncio.gather(bot.answer_callback_query(query.id), echo)
            else:
                await echo

    dispatcher.message.register(on_message)
    dispatcher.callback_query.register(on_callback)
    polling = asyncio.create_task(dispatcher.start_polling(
        bot, polling_timeout=1, handle_as_tasks=concurrent is not False, handle_signals=False,
        close_bot_session=False, allowed_updates=["message", "callback_query"]))
    await asyncio.wait_for(stub.polled.wait(), 30)

    async def stopper() -> None:
        try:
            await dispatcher.stop_polling()
        except RuntimeError:
            polling.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await polling
        await bot.session.close()

    return Running(stopper)


# --- the clients ------------------------------------------------------------------------------


@dataclass
class LoadResult:
    """One run: messages/s over the measured window, and each measured message's latency (s)."""

    kind: Kind
    library: str  # ptb, aiogram or whatsapp
    chats: int
    messages: int  # measured (after the warm-up)
    seconds: float
    latencies: list[float] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)  # Bot API calls of the run, by method
    # CPU seconds of the whole process (bot, stand-in and clients) over the measured window:
    # compared between kinds on the same script, it is what one costs more than the other, and
    # unlike messages/s it hardly moves when other programs load the machine.
    cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


@dataclass
class _Budget:
    """The measured messages still to hand out, and the measured window."""

    total: int
    taken: int = 0
    window_start: float = 0.0
    window_end: float = 0.0
    cpu_start: float = 0.0

    def take(self) -> bool:
        if self.taken >= self.total:
            return False
        self.taken += 1
        return True


def warmup_steps(script: Script, index: int, spread: bool) -> int:
    """Unmeasured steps of client `index` before the window: with `spread`, the opening and then
    `index` steps into the complaint (modulo its length), so that from the first measured message
    on, the clients are spread evenly over the conversation (a complaint is forwarded every
    `outbox_every` messages); otherwise just the first step (/start)."""
    if not spread:
        return 1
    return len(script.opening) + index % len(script.cycle)


async def _client(stub: BenchStub, kind: Kind, script: Script, chat_id: int, warmup: int,
                  ready: asyncio.Barrier, budget: _Budget, latencies: list[float],
                  think: float) -> None:
    sender = user(chat_id, script.language, "Client")
    pause = random.Random(chat_id)  # noqa: S311 - think times, not secrets
    step: Step
    for number, step in enumerate(script.steps()):
        measured = number >= warmup
        if number == warmup:
            await ready.wait()
            if not budget.window_start:
                budget.window_start = time.perf_counter()
                budget.cpu_start = time.process_time()
        if measured and not budget.take():
            return
        if measured and think > 0:  # a person reads the reply and types
            await asyncio.sleep(pause.expovariate(1 / think))
        update_id = stub.next_update_id()
        if step.kind == "press":
            if kind in ("bot", "mirror"):  # the mirror sends the bot's own keyboards
                sent, data = stub.keyboard_with(chat_id, step.value)
            else:  # the same message and button shapes the bot's client presses
                keyboard = [[{"text": label, "callback_data": fake_callback_data(button_id)}
                             for label, button_id in row] for row in step.shown_buttons]
                sent = Sent(0, chat_id, step.shown_text, keyboard)
                data = fake_callback_data(step.value)
            update = callback_update(update_id, sender, sent, data)
        else:
            update = message_update(update_id, sender, text=step.value)
        answered = stub.expect(chat_id, step.replies if kind in ("bot", "mirror") else 1)
        pushed = time.perf_counter()
        await stub.push(update)
        try:
            done = await asyncio.wait_for(answered, ANSWER_TIMEOUT)
        except TimeoutError:
            raise BenchError(f"no reply within {ANSWER_TIMEOUT:.0f} s to {step.kind} "
                             f"{step.value[:20]!r}") from None
        if measured:
            latencies.append(done - pushed)
            budget.window_end = max(budget.window_end, done)


async def drive(stub: BenchStub, kind: Kind, scripts: list[Script], chats: int, messages: int,
                spread: bool, chat_offset: int = 0,
                think: float = 0.0) -> tuple[float, list[float], float]:
    """`chats` clients (languages in turn) warm up, then send `messages` updates together, each
    client its next one as soon as it has its replies (`think` = 0), or after a random pause
    (exponential, mean `think` seconds); (seconds of the measured window, each latency, CPU
    seconds of the process from the window's start until the last client is done)."""
    budget = _Budget(total=messages)
    latencies: list[float] = []
    ready = asyncio.Barrier(chats)
    clients = []
    for i in range(chats):
        script = scripts[i % len(scripts)]
        clients.append(_client(stub, kind, script, CHAT_BASE + chat_offset + i,
                               warmup_steps(script, i, spread), ready, budget, latencies, think))
    try:
        async with asyncio.TaskGroup() as group:
            for client in clients:
                group.create_task(client)
    except* BenchError as failed:
        raise failed.exceptions[0] from None
    cpu = time.process_time() - budget.cpu_start
    return budget.window_end - budget.window_start, latencies, cpu


async def run_load(kind: Kind, library: Library, scripts: list[Script], *, chats: int,
                   messages: int, spread: bool, data_dir: Path, secret: SecretStr,
                   echo_concurrent: bool | None = None, chat_offset: int = 0,
                   think: float = 0.0, database_url: str | None = None,
                   shapes: Any = None) -> LoadResult:
    """Start a fresh stand-in and bot, drive the clients, stop everything; the figures.
    `shapes`: the bot's recorded calls, for the mirror (bench/mirror.py)."""
    stub = BenchStub(TOKEN)
    await stub.start()
    try:
        if kind == "bot":
            running = await start_project_bot(stub, library, data_dir, secret, database_url)
        elif kind == "mirror":
            from bench.mirror import start_mirror_aiogram, start_mirror_ptb

            start = start_mirror_ptb if library == "ptb" else start_mirror_aiogram
            running = await start(stub, shapes)
        elif library == "ptb":
            running = await start_echo_ptb(stub, echo_concurrent, kind == "echo_answering")
        else:
            running = await start_echo_aiogram(stub, echo_concurrent, kind == "echo_answering")
        try:
            seconds, latencies, cpu = await drive(stub, kind, scripts, chats, messages, spread,
                                                  chat_offset, think)
        finally:
            await running.stop()
    finally:
        await stub.stop()
    return LoadResult(kind, library, chats, messages, seconds, latencies, dict(stub.counts), cpu)


def quiet() -> None:
    """Only warnings and errors from the bot and the libraries while measuring."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.WARNING)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
