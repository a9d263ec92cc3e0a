"""Serving Telegram with one adapter: the `ChannelSender` "telegram", settings checks, `serve`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bot.channels.telegram.api import TelegramApiError, TelegramOptions, TelegramUnavailable
from bot.channels.telegram.core import CHANNEL, Adapter, TelegramCore
from bot.services.delivery import LEASE, Delivery
from bot.services.handoff_desk import leave_desk, open_desk
from flows.handoff import Item
from flows.model import OutMessage

if TYPE_CHECKING:
    from bot.channels.ports import ChannelHost

log = logging.getLogger(__name__)


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


async def _resend_loop(core: TelegramCore, stop: asyncio.Event) -> None:
    """Every half lease, what is owed and due again (issue 15): rows whose send failed, or that
    another process claimed and did not send (killed mid-send), once their lease ran out."""
    period = LEASE.total_seconds() / 2
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), period)
        except TimeoutError:
            try:
                await core.send_owed()
            except Exception as exc:  # the next round tries again
                log.warning("owed Telegram messages not sent (%s)", type(exc).__name__)


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
        resend = asyncio.create_task(_resend_loop(core, stop))
        try:
            await core.expiry_loop(stop)
        finally:
            resend.cancel()
            await asyncio.gather(resend, return_exceptions=True)
    finally:
        await adapter.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(core.idle(), 5)
        await core.pacer.close()
        await core.marker.flush()
        await core.marker.release(None)  # what it claimed and did not send: due again
        app.service.owed_channels.discard(CHANNEL)
        leave_desk(app.service, core.desk, CHANNEL)
        log.info("Telegram stopped")
