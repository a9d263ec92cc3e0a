"""Running the WhatsApp channel: the webhook server, the handoff desk, a graceful stop."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

import aiohttp
from aiohttp import web

from bot.channels.whatsapp.channel import WEBHOOK_PATH, WhatsAppChannel
from bot.channels.whatsapp.graph import GraphClient
from bot.channels.whatsapp.outbound import CHANNEL
from bot.services.handoff_desk import leave_desk, open_desk

if TYPE_CHECKING:
    from bot.channels.ports import ChannelHost

log = logging.getLogger(__name__)

DRAIN_SECONDS: Final = 20.0  # at shutdown: time for events already accepted


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
        app.service.owed_channels.add(CHANNEL)  # issue 10: replies and relays stored, then sent
        expiry = asyncio.create_task(channel.expiry_loop(stop))
        owed = asyncio.create_task(channel.resend_loop(stop))  # what a crash or failure left
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
            owed.cancel()
            await asyncio.gather(expiry, owed, return_exceptions=True)
            await channel.marker.flush()
            await channel.marker.release(None)  # what it claimed and did not send: due again
            app.service.owed_channels.discard(CHANNEL)
            leave_desk(app.service, desk, CHANNEL)
