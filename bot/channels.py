"""Channels as ports: anything that can deliver messages to a client or staff member by chat id.

Adapters (terminal, Telegram, WhatsApp) register a `ChannelSender`; the service and the register
use `Channels.send` for messages that are not a direct reply (handoffs, status updates, follow-up).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from flows.model import OutMessage


class ChannelSender(Protocol):
    """Delivers messages to one chat of one channel (e.g. a Telegram chat id)."""

    name: str

    async def send(self, chat_id: str, messages: Sequence[OutMessage]) -> None: ...


class Channels:
    """The channels running in this process, by name."""

    def __init__(self) -> None:
        self._senders: dict[str, ChannelSender] = {}

    def register(self, sender: ChannelSender) -> None:
        self._senders[sender.name] = sender

    def get(self, name: str) -> ChannelSender | None:
        return self._senders.get(name)

    async def send(self, channel: str, chat_id: str, messages: Sequence[OutMessage]) -> bool:
        """Send if that channel runs here; False tells the caller to use another way (e.g. e-mail)."""
        sender = self._senders.get(channel)
        if sender is None:
            return False
        await sender.send(chat_id, messages)
        return True
