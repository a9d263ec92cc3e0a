"""python-telegram-bot 22 (the default, TELEGRAM_LIBRARY=ptb): a thin adapter over core.py.

It receives updates (long polling, or a webhook that checks the secret token) and hands each, as
Bot API JSON, to `TelegramCore.on_update`; it implements `BotApi` with PTB's `Bot`. No
conversation logic lives here.

The webhook is served here with aiohttp, not with PTB's `Updater.start_webhook`: PTB's handler
puts the update on its queue and answers 200 at once (telegram/ext/_utils/webhookhandler.py), so
a process killed before the commit lost an update Telegram would not send again. Ours answers
after `on_update` returned, i.e. after the update's unit of work was committed (as aiogram's
handler does); the replies are queued for the pacer, so their Bot API calls do not hold it.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiohttp import web
from telegram import (
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Update,
)
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.channels.ports import ChannelSettings
from bot.channels.telegram.core import (
    ALLOWED_UPDATES,
    Keyboard,
    TelegramApiError,
    TelegramCore,
    TelegramFileTooBig,
    TelegramOptions,
    TelegramRetryAfter,
    TelegramUnavailable,
)

T = TypeVar("T")


async def _call(factory: Callable[[], Awaitable[T]]) -> T:
    """PTB's exceptions as the core's."""
    try:
        return await factory()
    except RetryAfter as exc:
        with warnings.catch_warnings():  # PTB 22 warns that this becomes a timedelta
            warnings.simplefilter("ignore")
            wait = exc.retry_after
        raise TelegramRetryAfter(wait if isinstance(wait, int) else wait.total_seconds()) from None
    except Forbidden:
        raise TelegramUnavailable("forbidden") from None
    except BadRequest as exc:
        if "file is too big" in exc.message.lower():
            raise TelegramFileTooBig("file is too big") from None
        if "chat not found" in exc.message.lower():
            raise TelegramUnavailable("chat not found") from None
        raise TelegramApiError(f"bad request: {exc.message[:100]}") from None
    except TelegramError as exc:
        raise TelegramApiError(type(exc).__name__) from None


def _markup(keyboard: Keyboard | None) -> InlineKeyboardMarkup | None:
    if not keyboard:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in keyboard]
    )


class PtbApi:
    """`BotApi` with python-telegram-bot's `Bot`."""

    def __init__(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        self.application = application

    @property
    def bot(self) -> Any:
        return self.application.bot

    async def send_message(self, chat_id: int, text: str, keyboard: Keyboard | None) -> int:
        message = await _call(lambda: self.bot.send_message(chat_id, text, reply_markup=_markup(keyboard)))
        return int(message.message_id)

    async def edit_message(self, chat_id: int, message_id: int, text: str | None) -> None:
        if text is None:
            await _call(lambda: self.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None))
        else:
            await _call(lambda: self.bot.edit_message_text(text, chat_id, message_id, reply_markup=None))

    async def answer_callback(self, callback_id: str, text: str | None) -> None:
        await _call(lambda: self.bot.answer_callback_query(callback_id, text=text))

    async def send_typing(self, chat_id: int) -> None:
        await _call(lambda: self.bot.send_chat_action(chat_id, ChatAction.TYPING))

    async def download(self, file_id: str, limit: int) -> bytes:
        file = await _call(lambda: self.bot.get_file(file_id))
        if file.file_size is not None and file.file_size > limit:
            raise TelegramFileTooBig("file is too big")
        data = await _call(lambda: file.download_as_bytearray())
        return bytes(data)

    async def send_file(
        self, chat_id: int, kind: str, data: bytes, filename: str, caption: str | None
    ) -> int:
        upload = InputFile(data, filename=filename)
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
            [BotCommand(name, description) for name, description in commands],
            scope=BotCommandScopeChat(chat_id) if chat_id is not None else None,
            language_code=language,
        ))


class PtbAdapter:
    """Polling or webhook with python-telegram-bot; every update goes to the core."""

    def __init__(self, settings: ChannelSettings, token: str, options: TelegramOptions) -> None:
        # PTB 22's documented opt-in: time periods (retry_after) as timedelta, no deprecation warning.
        os.environ.setdefault("PTB_TIMEDELTA", "true")
        base = settings.telegram_api_base.rstrip("/")
        self.settings = settings
        self.options = options
        self.application = (
            Application.builder()
            .token(token)
            .base_url(f"{base}/bot")
            .base_file_url(f"{base}/file/bot")
            .get_updates_read_timeout(options.poll_timeout + 10)
            .concurrent_updates(True)  # the core keeps each chat's updates in order
            .connection_pool_size(32)  # replies to many chats at once (PTB's default is 1)
            .build()
        )
        self.api = PtbApi(self.application)
        self._core: TelegramCore | None = None
        self._secret: bytes | None = None
        self._runner: web.AppRunner | None = None
        self.application.add_handler(TypeHandler(Update, self._on_update))

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if self._core is not None:
            await self._core.on_update(update.to_dict())

    async def start(self, core: TelegramCore) -> None:
        self._core = core
        app = self.application
        await app.initialize()
        updater = app.updater
        if updater is None:  # pragma: no cover - the builder always makes one
            raise RuntimeError("python-telegram-bot built no updater")
        s = self.settings
        if s.telegram_mode == "webhook":
            url = str(s.telegram_webhook_url)
            secret = s.telegram_webhook_secret.get_secret_value() if s.telegram_webhook_secret else None
            self._secret = secret.encode("utf-8") if secret else None
            hook = web.Application()
            hook.router.add_post("/" + urlsplit(url).path.lstrip("/"), self._webhook)
            self._runner = web.AppRunner(hook, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, s.telegram_listen_host, s.telegram_listen_port).start()
            await _call(lambda: app.bot.set_webhook(
                url, secret_token=secret, allowed_updates=ALLOWED_UPDATES))
        else:
            await updater.start_polling(
                poll_interval=0.0,
                timeout=self.options.poll_timeout,
                allowed_updates=ALLOWED_UPDATES,
            )
        await app.start()

    async def _webhook(self, request: web.Request) -> web.Response:
        """One update from Telegram: the secret token first, then JSON; answered after it was
        handled (committed). The refusals are PTB's: 403 without JSON or the right token, 400
        for a body that is not an update."""
        if request.content_type != "application/json":
            return web.Response(status=403, text="forbidden")
        token = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if self._secret is not None and not hmac.compare_digest(
                token.encode("utf-8", "replace"), self._secret):
            return web.Response(status=403, text="forbidden")
        try:
            data = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return web.Response(status=400, text="bad request")
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return web.Response(status=400, text="bad request")
        if self._core is not None:
            await self._core.on_update(data)
        return web.Response(text="ok")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()  # no new updates; what came in was answered
            self._runner = None
        app = self.application
        with contextlib.suppress(RuntimeError):
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
        await app.shutdown()
