"""The process's one handoff desk, shared by its channels: the first to join makes it, the last
to leave takes it away, and each channel runs the expiry of unanswered offers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bot.services.handoffs import DeskHolder, HandoffDesk, Reply

if TYPE_CHECKING:
    from bot.services.ports import ServiceHost

__all__ = ["expire_offers_until", "leave_desk", "open_desk"]

log = logging.getLogger("bot.services.handoffs")


def open_desk(host: ServiceHost, service: DeskHolder, channel: str) -> HandoffDesk:
    """The process's one desk (made by the first channel that joins), joined by `channel`."""
    desk = service.handoffs
    if desk is None:
        desk = HandoffDesk(host.deployment, host.catalogs, host.db, host.clock, files=host.files,
                           owed_channels=service.owed_channels)
        service.handoffs = desk
    desk.live.add(channel)
    return desk


async def expire_offers_until(stop: asyncio.Event, desk: Callable[[], HandoffDesk | None],
                              pass_on: Callable[[Reply], Awaitable[object]],
                              every: float) -> None:
    """Every `every` seconds until `stop`: offers nobody accepted in time expire, and what that
    owes people is passed on by the channel (`pass_on`). A failed round is logged, not fatal."""
    while not stop.is_set():
        current = desk()
        try:
            if current is not None:
                await pass_on(await current.expire_owed())
        except Exception as exc:
            log.error("checking handoff timeouts failed (%s)", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


def leave_desk(service: DeskHolder, desk: HandoffDesk, channel: str) -> None:
    """`channel` stops; the last one to leave takes the desk away."""
    desk.live.discard(channel)
    if not desk.live and service.handoffs is desk:
        service.handoffs = None
