"""Channels as ports: anything that can deliver messages to a client or staff member by chat id.

Adapters (terminal, Telegram, WhatsApp) register a `ChannelSender`; the service and the register
use `Channels.send` for messages that are not a direct reply (handoffs, status updates, follow-up).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from flows.model import OutMessage

# How a message that was not a direct reply reached the client: in the chat itself; announced by
# an approved template (WhatsApp outside its 24-hour window: the message itself was not sent, the
# caller keeps it to show when the client writes again); or not at all (the caller falls back to
# the contact the client chose, and the register records which).
Delivery = Literal["sent", "template", "unavailable"]


class ChannelSender(Protocol):
    """Delivers messages to one chat of one channel (e.g. a Telegram chat id)."""

    name: str

    async def send(self, chat_id: str, messages: Sequence[OutMessage]) -> Delivery: ...


class Channels:
    """The channels running in this process, by name."""

    def __init__(self) -> None:
        self._senders: dict[str, ChannelSender] = {}

    def register(self, sender: ChannelSender) -> None:
        self._senders[sender.name] = sender

    def get(self, name: str) -> ChannelSender | None:
        return self._senders.get(name)

    async def send(self, channel: str, chat_id: str, messages: Sequence[OutMessage]) -> Delivery:
        """Send if that channel runs here; "unavailable" tells the caller to use another way."""
        sender = self._senders.get(channel)
        if sender is None:
            return "unavailable"
        return await sender.send(chat_id, messages)
