"""The terminal channel: the same conversation on stdin/stdout, buttons numbered.

Type the number or the label of a button, or your answer; `/help`, `/language`, ... work as in any
channel; `/quit` or end of input leaves (the conversation is kept and resumes next time).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TextIO

from bot.services.intake import IntakeService
from flows.model import Choice, Command, Event, OutMessage, Start, Text

CHANNEL = "terminal"
GOODBYE = "Goodbye. Your conversation is kept: `klachtwijzer chat` continues it."


def render(message: OutMessage, first: int = 1) -> str:
    """A message as terminal lines: the text, then one numbered line per button from `first`."""
    lines = [message.text]
    number = first - 1
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
        organisation: str | None = None,
        after_event: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.service = service
        self.stdin = stdin
        self.stdout = stdout
        self.chat_id = chat_id
        self.language = language
        self.organisation = organisation  # a slug, as a link would name it (issue 11)
        self.after_event = after_event
        self.last_buttons: list[str] = []

    async def send(self, event: Event) -> str | None:
        """Handle one event; print the reply. The buttons of all its messages are numbered in one
        sequence (so /help's own buttons and the question's can both be picked by number)."""
        reply = await self.service.handle(CHANNEL, self.chat_id, event)
        shown: list[str] = []
        for message in reply.messages:
            self.stdout.write(render(message, len(shown) + 1) + "\n\n")
            shown += message.button_ids()
        if shown:
            self.last_buttons = shown
        self.stdout.flush()
        if self.after_event is not None:
            await self.after_event()
        return reply.state

    async def _readline(self) -> str:
        """One line from stdin in a daemon thread: Ctrl-C must not wait for a blocked read to end
        (asyncio.to_thread's executor is joined at exit, which would wait for the next Enter)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()

        def read() -> None:
            try:
                line = self.stdin.readline()
            except Exception as exc:  # a closed or broken stdin ends the chat like EOF
                loop.call_soon_threadsafe(_settle, future, "", exc)
                return
            loop.call_soon_threadsafe(_settle, future, line, None)

        threading.Thread(target=read, name="terminal-stdin", daemon=True).start()
        return await future

    async def run(self) -> None:
        state = await self.send(Start(self.language, organisation=self.organisation))
        if self.language and state not in (None, "language"):
            # A kept conversation: --lang switches it, as /language would (issue 14).
            await self.send(Command("language"))
            await self.send(Choice(f"lang_{self.language}"))
        while True:
            self.stdout.write("> ")
            self.stdout.flush()
            line = await self._readline()
            if not line or line.strip() == "/quit":
                self.stdout.write(f"\n{GOODBYE}\n")
                self.stdout.flush()
                return
            await self.send(parse(line, self.last_buttons))


def _settle(future: asyncio.Future[str], line: str, error: BaseException | None) -> None:
    if not future.done():
        future.set_result("" if error is not None else line)
