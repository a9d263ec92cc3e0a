"""Starting Telegram: pick the adapter of TELEGRAM_LIBRARY and serve it (the core never imports one)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.channels.telegram.core import Adapter, TelegramCore, TelegramOptions, quiet_logging
from bot.channels.telegram.serve import TelegramConfigError, check_settings, serve

if TYPE_CHECKING:
    from bot.channels.ports import ChannelHost


async def run_telegram(app: ChannelHost, stop: asyncio.Event, *, options: TelegramOptions | None = None,
                       started: Callable[[TelegramCore], None] | None = None) -> None:
    """`klachtwijzer run`: Telegram with the library of TELEGRAM_LIBRARY until `stop` is set."""
    secret = app.settings.telegram_bot_token
    if secret is None:
        raise TelegramConfigError("TELEGRAM_BOT_TOKEN is not set")
    token = secret.get_secret_value()
    check_settings(app)
    quiet_logging(token)
    options = options or TelegramOptions()
    adapter: Adapter
    if app.settings.telegram_library == "aiogram":
        from bot.channels.telegram.aiogram_adapter import AiogramAdapter

        adapter = AiogramAdapter(app.settings, token, options)
    else:
        from bot.channels.telegram.ptb_adapter import PtbAdapter

        adapter = PtbAdapter(app.settings, token, options)
    await serve(app, stop, adapter, token, options, started)
