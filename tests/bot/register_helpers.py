"""Helpers for the register tests: a chat channel that records what it delivers, and a sent case."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.root.app import App
from bot.services.delivery import Delivery
from flows.model import OutMessage
from tests.bot.client import Client


@dataclass
class RecordingChannel:
    """A `ChannelSender` standing in for a chat network we cannot run here (Telegram, WhatsApp).

    It delivers into a list; `result` decides what the network answers (sent, template,
    unavailable).
    """

    name: str = "terminal"
    result: Delivery = "sent"
    delivered: list[tuple[str, OutMessage]] = field(default_factory=list)

    async def send(self, chat_id: str, messages: Sequence[OutMessage]) -> Delivery:
        if self.result != "unavailable":
            self.delivered.extend((chat_id, m) for m in messages)
        return self.result

    def texts(self, chat_id: str | None = None) -> list[str]:
        return [m.text for c, m in self.delivered if chat_id is None or c == chat_id]



async def file_complaint(
    app: App,
    chat_id: str,
    *,
    lang: str = "en",
    contact: str = "chat",
    contact_value: str | None = None,
    name: str = "Sara Haddad",
    attachment: str | None = None,
    channel: str = "terminal",
) -> tuple[Client, str]:
    """A client files a formal complaint (Schema A) through the real service; returns its reference."""
    client = Client(app.service, chat_id=chat_id, channel=channel)
    await client.start(hint=lang)
    await client.press(f"lang_{lang}")
    await client.press("help")  # the first question chooses route and category at once
    await client.press("skip_to_complaint")
    await client.type(name)  # the typed name answers "who is it for" (issue 14)
    await client.type("Jan de Vries")
    await client.type("My volunteer did not help me with the forms and was rude.")
    if attachment:
        await client.attach(attachment)
    await client.type("10-11-2026")
    await client.type("I talked to the coordinator.")
    await client.press(f"contact_{contact}")
    if contact_value:
        await client.type(contact_value)
    await client.press("confirm")  # Send on the summary is the consent
    match = re.search(r"KW-\d{4}-\d{6}", client.text())
    assert match, client.text()
    return client, match.group(0)
