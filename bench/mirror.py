"""The mirror echo: a bot that makes exactly the Bot API calls Klachtwijzer makes, and nothing else.

`record_shapes` runs the real bot once per language on a stand-in that keeps every call, one
client walking the bench's conversation (the opening, then the repeating part twice; the second
time round is kept), and after each update waits until the bot has nothing left to send. What it
keeps per update is the shape of the bot's answer: each Bot API call in order (method, text,
keyboard), keyed by what the client sent (language, kind, text or button id).

`start_mirror_ptb` / `start_mirror_aiogram` are minimal bots on each library, taking updates the
way the bot's adapters do (concurrently; python-telegram-bot with the same connection pool), that
look the update's key up and replay its calls: a pressed button is answered (answerCallbackQuery,
in the background, as the bot does) and its message edited (the same new text), then the replies
are sent one after the other (the same texts and keyboards, so the client presses the same
callback data). No conversation, storage, catalogs or crypto: R2m = bot / mirror is the cost of
everything Klachtwijzer adds to what the client sees.

A "typing…" action is sent by the bot only when a reply takes longer than 0.3 s; one client never
waits that long, so it is not part of the shape (under load the bot sends it where it is slow:
that is counted against the bot).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench.load import (
    TOKEN,
    BenchError,
    BenchStub,
    Library,
    Running,
    polling_ptb,
    start_project_bot,
)
from bench.script import Script, Step
from tests.bot.telegram_stub import callback_update, message_update, user

REPLAYED = ("answerCallbackQuery", "editMessageText", "editMessageReplyMarkup", "sendMessage")
CHAT = 7_500_000  # the recording client's chat id


@dataclass(frozen=True)
class CallShape:
    """One Bot API call of the bot's answer to an update."""

    method: str
    text: str | None = None
    keyboard: tuple[tuple[tuple[str, str], ...], ...] = ()  # rows of (label, callback data)


Key = tuple[str, str, str]  # (language, kind, text or button id)
Shapes = dict[Key, tuple[CallShape, ...]]


def key_of(language: str | None, step_kind: str, value: str) -> Key:
    return (language or "", step_kind, value)


def update_key(update: dict[str, Any]) -> Key | None:
    """The key of an update as Telegram sends it (the mirror has no other state)."""
    query = update.get("callback_query")
    if query is not None:
        data = str(query.get("data") or "")
        return key_of(query["from"].get("language_code"), "press", data.split("|", 1)[0])
    message = update.get("message")
    if message is None:
        return None
    text = str(message.get("text") or "")
    kind = "command" if text.startswith("/") else "say"
    return key_of(message["from"].get("language_code"), kind, text)


class RecordingStub(BenchStub):
    """The bench's stand-in, keeping every call (the bench's own drops them)."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.kept: list[tuple[str, dict[str, Any]]] = []

    async def _params(self, request: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
        params, files = await super()._params(request)
        self.kept.append((str(request.match_info["method"]), dict(params)))
        return params, files


def _shape(method: str, params: dict[str, Any]) -> CallShape:
    markup = params.get("reply_markup") or {}
    rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
    keyboard = tuple(tuple((str(b["text"]), str(b["callback_data"])) for b in row) for row in rows)
    text = params.get("text")
    return CallShape(method, None if text is None else str(text), keyboard)


async def record_shapes(scripts: Iterable[Script], library: Library, data_dir: Path,
                        secret: SecretStr) -> Shapes:
    """Run the bot once over every script and keep the calls it makes per update."""
    stub = RecordingStub(TOKEN)
    await stub.start()
    shapes: Shapes = {}
    try:
        cores: list[Any] = []
        running = await start_project_bot(stub, library, data_dir, secret, started=cores.append)
        try:
            for number, script in enumerate(scripts):
                chat_id = CHAT + number
                steps = [*script.opening, *script.cycle, *script.cycle]
                for index, step in enumerate(steps):
                    stub.kept.clear()
                    await _send(stub, script.language, chat_id, step)
                    await cores[0].idle()
                    calls = tuple(_shape(m, p) for m, p in stub.kept if m in REPLAYED)
                    if index >= len(script.opening) + len(script.cycle) or index < len(
                            script.opening):
                        shapes[key_of(script.language, step.kind, step.value)] = calls
        finally:
            await running.stop()
    finally:
        await stub.stop()
    return shapes


async def _send(stub: BenchStub, language: str, chat_id: int, step: Step) -> None:
    sender = user(chat_id, language, "Client")
    if step.kind == "press":
        sent, data = stub.keyboard_with(chat_id, step.value)
        update = callback_update(stub.next_update_id(), sender, sent, data)
    else:
        update = message_update(stub.next_update_id(), sender, text=step.value)
    answered = stub.expect(chat_id, step.replies)
    await stub.push(update)
    try:
        await asyncio.wait_for(answered, 30)
    except TimeoutError:
        raise BenchError(f"recording: no reply to {step.kind} {step.value[:20]!r}") from None


def shape_summary(shapes: Shapes) -> dict[str, float]:
    """Bot API calls per update, by method (averaged over the repeating part of every script)."""
    counts: dict[str, float] = {}
    for calls in shapes.values():
        for call in calls:
            counts[call.method] = counts.get(call.method, 0) + 1
    return {method: n / max(1, len(shapes)) for method, n in sorted(counts.items())}


# --- the mirror bots ------------------------------------------------------------------------------


def _lookup(shapes: Shapes, raw: dict[str, Any]) -> tuple[CallShape, ...]:
    key = update_key(raw)
    if key is None or key not in shapes:
        raise BenchError(f"the mirror has no recorded answer to {key!r}")
    return shapes[key]


async def start_mirror_ptb(stub: BenchStub, shapes: Shapes) -> Running:
    """python-telegram-bot, built as the bot's adapter builds it (concurrent updates, a pool of
    32 connections), replaying the recorded calls."""
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
    from telegram.ext import Application, ContextTypes, TypeHandler

    tasks: set[asyncio.Task[Any]] = set()

    def markup(rows: tuple[tuple[tuple[str, str], ...], ...]) -> InlineKeyboardMarkup | None:
        if not rows:
            return None
        return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data)
                                      for label, data in row] for row in rows])

    async def on_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        raw = {"callback_query": {"from": {"language_code": query.from_user.language_code},
                                  "data": query.data}} if query is not None else None
        message = update.message
        if raw is None and message is not None:
            raw = {"message": {"from": {"language_code": message.from_user.language_code
                                        if message.from_user else None},
                               "text": message.text}}
        calls = _lookup(shapes, raw or {})
        chat_id = update.effective_chat.id if update.effective_chat else 0
        bot = context.bot
        for call in calls:
            if call.method == "answerCallbackQuery" and query is not None:
                task = asyncio.ensure_future(bot.answer_callback_query(query.id, text=call.text))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            elif call.method == "editMessageText" and query is not None and query.message:
                await bot.edit_message_text(call.text, chat_id, query.message.message_id,
                                            reply_markup=None)
            elif call.method == "editMessageReplyMarkup" and query is not None and query.message:
                await bot.edit_message_reply_markup(chat_id, query.message.message_id,
                                                    reply_markup=None)
            elif call.method == "sendMessage":
                await bot.send_message(chat_id, call.text, reply_markup=markup(call.keyboard))

    application = (Application.builder().token(TOKEN).base_url(f"{stub.base}/bot")
                   .base_file_url(f"{stub.base}/file/bot").get_updates_read_timeout(11)
                   .concurrent_updates(True).connection_pool_size(32).build())
    application.add_handler(TypeHandler(Update, on_update))
    return await polling_ptb(application, stub, tasks)


async def start_mirror_aiogram(stub: BenchStub, shapes: Shapes) -> Running:
    """aiogram, polling as the bot's adapter does (every update as a task), replaying the
    recorded calls."""
    from aiogram import Bot, Dispatcher
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.types import (
        CallbackQuery,
        InlineKeyboardButton,
        InlineKeyboardMarkup,
        Message,
    )

    from bot.channels.telegram.aiogram_adapter import response_models

    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(stub.base)))
    dispatcher = Dispatcher()
    tasks: set[asyncio.Task[Any]] = set()
    models = response_models()  # held as the bot's adapter holds them (a GC would drop them)

    def markup(rows: tuple[tuple[tuple[str, str], ...], ...]) -> InlineKeyboardMarkup | None:
        if not rows:
            return None
        return InlineKeyboardMarkup(inline_keyboard=[
            [InlineKeyboardButton(text=label, callback_data=data) for label, data in row]
            for row in rows])

    async def replay(chat_id: int, calls: tuple[CallShape, ...],
                     query: CallbackQuery | None) -> None:
        for call in calls:
            if call.method == "answerCallbackQuery" and query is not None:
                task = asyncio.ensure_future(bot.answer_callback_query(query.id, text=call.text))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            elif call.method == "editMessageText" and query is not None and query.message:
                await bot.edit_message_text(text=call.text or "", chat_id=chat_id,
                                            message_id=query.message.message_id,
                                            reply_markup=None)
            elif call.method == "editMessageReplyMarkup" and query is not None and query.message:
                await bot.edit_message_reply_markup(chat_id=chat_id,
                                                    message_id=query.message.message_id,
                                                    reply_markup=None)
            elif call.method == "sendMessage":
                await bot.send_message(chat_id, call.text or "", reply_markup=markup(call.keyboard))

    async def on_message(message: Message) -> None:
        language = message.from_user.language_code if message.from_user else None
        raw = {"message": {"from": {"language_code": language}, "text": message.text}}
        await replay(message.chat.id, _lookup(shapes, raw), None)

    async def on_callback(query: CallbackQuery) -> None:
        raw = {"callback_query": {"from": {"language_code": query.from_user.language_code},
                                  "data": query.data}}
        chat_id = query.message.chat.id if query.message else query.from_user.id
        await replay(chat_id, _lookup(shapes, raw), query)

    dispatcher.message.register(on_message)
    dispatcher.callback_query.register(on_callback)
    polling = asyncio.create_task(dispatcher.start_polling(
        bot, polling_timeout=1, handle_as_tasks=True, handle_signals=False,
        close_bot_session=False, allowed_updates=["message", "callback_query"]))
    await asyncio.wait_for(stub.polled.wait(), 30)

    async def stopper() -> None:
        await asyncio.gather(*tasks, return_exceptions=True)
        if not models:  # pragma: no cover - referenced here: they live until the mirror stops
            raise BenchError("aiogram's response models were not built")
        try:
            await dispatcher.stop_polling()
        except RuntimeError:
            polling.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await polling
        await bot.session.close()

    return Running(stopper)
