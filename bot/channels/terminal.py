"""The terminal channel: the same conversation on stdin/stdout, buttons numbered.

Type the number or the label of a button, or your answer; `/help`, `/language`, ... work as in any
channel; `/quit` or end of input leaves (the conversation is kept and resumes next time).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TextIO

from bot.services.intake import IntakeService
from flows.model import Choice, Command, Event, OutMessage, Start, Text

CHANNEL = "terminal"


def render(message: OutMessage) -> str:
    """A message as terminal lines: the text, then one numbered line per button."""
    lines = [message.text]
    number = 0
    for row in message.buttons:
        for button in row:
            number += 1
            lines.append(f"  [{number}] {button.label}")
    return "\n".join(lines)


def parse(line: str, last_buttons: list[str]) -> Event:
    """A typed line as an event: a button number, a /command, or free text."""
    stripped = line.strip()
    if stripped.startswith("/") and len(stripped) > 1 and " " not in stripped:
        return Command(stripped[1:].lower())
    if stripped.isdigit() and 1 <= int(stripped) <= len(last_buttons):
        return Choice(last_buttons[int(stripped) - 1])
    return Text(line.rstrip("\r\n"))


class TerminalChat:
    """Drives one local conversation through the service."""

    def __init__(
        self,
        service: IntakeService,
        stdin: TextIO,
        stdout: TextIO,
        *,
        chat_id: str = "local",
        language: str | None = None,
        after_event: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.service = service
        self.stdin = stdin
        self.stdout = stdout
        self.chat_id = chat_id
        self.language = language
        self.after_event = after_event
        self.last_buttons: list[str] = []

    async def send(self, event: Event) -> None:
        reply = await self.service.handle(CHANNEL, self.chat_id, event)
        for message in reply.messages:
            self.stdout.write(render(message) + "\n\n")
            if message.buttons:
                self.last_buttons = message.button_ids()
        self.stdout.flush()
        if self.after_event is not None:
            await self.after_event()

    async def run(self) -> None:
        await self.send(Start(self.language))
        while True:
            self.stdout.write("> ")
            self.stdout.flush()
            line = await asyncio.to_thread(self.stdin.readline)
            if not line or line.strip() == "/quit":
                self.stdout.write("\n")
                return
            await self.send(parse(line, self.last_buttons))
