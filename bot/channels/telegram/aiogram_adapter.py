"""aiogram 3 (TELEGRAM_LIBRARY=aiogram): a thin adapter over bot/channels/telegram/core.py.

An outer middleware hands every update, as Bot API JSON, to `TelegramCore.on_update` (long polling,
or aiogram's aiohttp webhook handler, which checks the secret token); `BotApi` is implemented with
aiogram's `Bot`. No conversation logic lives here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
)
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    TelegramObject,
    Update,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.channels.ports import ChannelSettings
from bot.channels.telegram.core import (
    ALLOWED_UPDATES,
    Keyboard,
    TelegramApiError,
    TelegramCore,
    TelegramFileTooBig,
    TelegramOptions,
    TelegramUnavailable,
)
from bot.channels.telegram.core import TelegramRetryAfter as CoreRetryAfter

T = TypeVar("T")


async def _call(factory: Callable[[], Awaitable[T]]) -> T:
    """aiogram's exceptions as the core's."""
    try:
        return await factory()
    except TelegramRetryAfter as exc:
        raise CoreRetryAfter(exc.retry_after) from None
    except TelegramForbiddenError:
        raise TelegramUnavailable("forbidden") from None
    except TelegramBadRequest as exc:
        if "file is too big" in exc.message.lower():
            raise TelegramFileTooBig("file is too big") from None
        if "chat not found" in exc.message.lower():
            raise TelegramUnavailable("chat not found") from None
        raise TelegramApiError(f"bad request: {exc.message[:100]}") from None
    except (TelegramAPIError, TelegramNetworkError, aiohttp.ClientError) as exc:
        raise TelegramApiError(type(exc).__name__) from None


def response_models() -> tuple[type, ...]:
    """The models aiogram reads our calls' answers with (`Response[Message]`, ...), to be held.

    aiogram asks pydantic for `Response[<returned type>]` on every call; pydantic keeps those
    generic models in a WeakValueDictionary, so each garbage collection dropped them and the next
    call built the model again (about 15 ms each: 77 builds of Response[Message] in one bench
    run of 256 messages, a fifth of the bot's CPU). Whoever holds this tuple keeps them built."""
    from aiogram import methods
    from aiogram.methods.base import Response

    called = (methods.SendMessage, methods.EditMessageText, methods.EditMessageReplyMarkup,
              methods.AnswerCallbackQuery, methods.SendChatAction, methods.GetFile,
              methods.SendPhoto, methods.SendVoice, methods.SendDocument, methods.SetMyCommands,
              methods.GetUpdates, methods.GetMe, methods.DeleteWebhook, methods.SetWebhook)
    return tuple(Response[method.__returning__] for method in called)  # type: ignore[name-defined]


def _markup(keyboard: Keyboard | None) -> InlineKeyboardMarkup | None:
    if not keyboard:
        return None
    return InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text=label, callback_data=data) for label, data in row]
        for row in keyboard
    ])


class AiogramApi:
    """`BotApi` with aiogram's `Bot`."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send_message(self, chat_id: int, text: str, keyboard: Keyboard | None) -> int:
        message = await _call(lambda: self.bot.send_message(chat_id, text, reply_markup=_markup(keyboard)))
        return int(message.message_id)

    async def edit_message(self, chat_id: int, message_id: int, text: str | None) -> None:
        if text is None:
            await _call(lambda: self.bot.edit_message_reply_markup(
                chat_id=chat_id, message_id=message_id, reply_markup=None))
        else:
            await _call(lambda: self.bot.edit_message_text(
                text=text, chat_id=chat_id, message_id=message_id, reply_markup=None))

    async def answer_callback(self, callback_id: str, text: str | None) -> None:
        await _call(lambda: self.bot.answer_callback_query(callback_id, text=text))

    async def send_typing(self, chat_id: int) -> None:
        await _call(lambda: self.bot.send_chat_action(chat_id, "typing"))

    async def download(self, file_id: str, limit: int) -> bytes:
        file = await _call(lambda: self.bot.get_file(file_id))
        if file.file_size is not None and file.file_size > limit:
            raise TelegramFileTooBig("file is too big")
        if not file.file_path:
            raise TelegramApiError("no file path")
        path = file.file_path
        buffer = await _call(lambda: self.bot.download_file(path))
        if buffer is None:
            raise TelegramApiError("empty download")
        return bytes(buffer.read())

    async def send_file(
        self, chat_id: int, kind: str, data: bytes, filename: str, caption: str | None
    ) -> int:
        upload = BufferedInputFile(data, filename=filename)
        if kind == "photo":
            message = await _call(lambda: self.bot.send_photo(chat_id, upload, caption=caption))
        elif kind == "voice":
            message = await _call(lambda: self.bot.send_voice(chat_id, upload, caption=caption))
        else:
            message = await _call(lambda: self.bot.send_document(chat_id, upload, caption=caption))
        return int(message.message_id)

    async def set_commands(self, commands: Sequence[tuple[str, str]], language: str | None,
                           chat_id: int | None = None) -> None:
        await _call(lambda: self.bot.set_my_commands(
            [BotCommand(command=name, description=description) for name, description in commands],
            scope=BotCommandScopeChat(chat_id=chat_id) if chat_id is not None else None,
            language_code=language,
        ))


class AiogramAdapter:
    """Polling or webhook with aiogram; every update goes to the core."""

    def __init__(self, settings: ChannelSettings, token: str, options: TelegramOptions) -> None:
        self.settings = settings
        self.options = options
        server = TelegramAPIServer.from_base(settings.telegram_api_base)
        self.bot = Bot(token, session=AiohttpSession(api=server))
        self.api = AiogramApi(self.bot)
        self._models = response_models()  # held while the adapter lives (see there)
        self.dispatcher = Dispatcher()
        self.dispatcher.update.outer_middleware(self._middleware)
        self._core: TelegramCore | None = None
        self._polling: Any = None
        self._runner: web.AppRunner | None = None

    async def _middleware(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if self._core is not None and isinstance(event, Update):
            await self._core.on_update(
                event.model_dump(mode="json", by_alias=True, exclude_none=True)
            )
        return None

    async def start(self, core: TelegramCore) -> None:
        import asyncio

        self._core = core
        s = self.settings
        if s.telegram_mode == "webhook":
            url = str(s.telegram_webhook_url)
            secret = s.telegram_webhook_secret.get_secret_value() if s.telegram_webhook_secret else None
            app = web.Application()
            SimpleRequestHandler(
                dispatcher=self.dispatcher, bot=self.bot, secret_token=secret,
                handle_in_background=False,
            ).register(app, path=urlsplit(url).path or "/")
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, s.telegram_listen_host, s.telegram_listen_port).start()
            await _call(lambda: self.bot.set_webhook(
                url, secret_token=secret, allowed_updates=ALLOWED_UPDATES))
            return
        await _call(lambda: self.bot.delete_webhook())
        self._polling = asyncio.create_task(self.dispatcher.start_polling(
            self.bot,
            polling_timeout=self.options.poll_timeout,
            handle_as_tasks=True,  # the core keeps each chat's updates in order
            allowed_updates=ALLOWED_UPDATES,
            handle_signals=False,
            close_bot_session=False,
        ))

    async def stop(self) -> None:
        if self._polling is not None:
            try:
                await self.dispatcher.stop_polling()
            except RuntimeError:  # stopped before polling had started
                self._polling.cancel()
            with contextlib.suppress(Exception):
                await self._polling
            self._polling = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.bot.session.close()
