"""A test client that talks to the real service the way a person would: press buttons, type text."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.services.intake import IntakeService
from flows.model import Attachment, Choice, Command, Event, OutMessage, Start, Text


@dataclass
class Client:
    service: IntakeService
    chat_id: str = "client-1"
    channel: str = "terminal"
    inbox: list[OutMessage] = field(default_factory=list)
    last: list[OutMessage] = field(default_factory=list)

    async def send(self, event: Event) -> list[OutMessage]:
        reply = await self.service.handle(self.channel, self.chat_id, event)
        if reply.owed:  # the replies reached this client: marked sent, as a channel does (issue 10)
            async with self.service.db.unit_of_work() as uow:
                await uow.owed.mark_sent(reply.owed, self.service.clock())
                await uow.commit()
        self.last = list(reply.messages)
        self.inbox.extend(reply.messages)
        return self.last

    async def start(self, hint: str | None = None) -> list[OutMessage]:
        return await self.send(Start(hint))

    def buttons(self) -> list[str]:
        """The ids of the buttons on the newest message that has any."""
        for message in reversed(self.last):
            if message.buttons:
                return message.button_ids()
        return []

    async def press(self, button_id: str) -> list[OutMessage]:
        """Press a button that is on screen now; fails the test if it is not."""
        shown = self.buttons()
        assert button_id in shown, f"{button_id!r} not among {shown}"
        return await self.send(Choice(button_id))

    async def type(self, text: str) -> list[OutMessage]:
        return await self.send(Text(text))

    async def command(self, name: str) -> list[OutMessage]:
        return await self.send(Command(name))

    async def attach(self, ref: str, size: int = 1000) -> list[OutMessage]:
        return await self.send(Attachment("photo", ref, size, "image/jpeg"))

    def text(self) -> str:
        return "\n".join(m.text for m in self.last)
