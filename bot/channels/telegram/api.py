"""The Bot API as the core sees it: what each adapter implements, its errors, options and limits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

MAX_TEXT = 4000  # Telegram's limit is 4096; keep a margin
RLM = "\u200f"
ALLOWED_UPDATES = ["message", "callback_query"]  # what the bot asks Telegram for (both libraries)


# --- settings for one run ------------------------------------------------------------------------


@dataclass(frozen=True)
class TelegramOptions:
    """Timing and limits; the defaults are for production, tests make them small."""

    poll_timeout: int = 30  # seconds of long polling per getUpdates
    per_chat_rate: float = 1.0  # messages per second to one chat, after a burst
    per_chat_burst: int = 3
    flood_max: int = 20  # incoming updates per chat per window
    flood_window: float = 60.0
    expiry_interval: float = 30.0  # how often handoff offers are checked for their timeout
    retry_attempts: int = 5  # 429 answers waited out per call
    time_scale: float = 1.0  # multiplies retry_after waits (tests: small)


# --- errors the adapters raise (their libraries' exceptions, translated) -------------------------


class TelegramApiError(Exception):
    """A Bot API call failed. The message never holds the token or personal data."""


class TelegramRetryAfter(TelegramApiError):
    """429: wait `seconds` before the next call."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"flood control: retry after {seconds} s")
        self.seconds = seconds


class TelegramUnavailable(TelegramApiError):
    """The chat cannot be reached (blocked the bot, deleted, never started it)."""


class TelegramFileTooBig(TelegramApiError):
    """The Bot API will not hand out this file (it is bigger than it allows)."""


# --- what the adapters implement ------------------------------------------------------------------

Keyboard = list[list[tuple[str, str]]]  # rows of (label, callback_data)


class BotApi(Protocol):
    """The Bot API methods the core needs, implemented once per library."""

    async def send_message(self, chat_id: int, text: str, keyboard: Keyboard | None) -> int: ...

    async def edit_message(self, chat_id: int, message_id: int, text: str | None) -> None:
        """Remove the keyboard; when `text` is given, replace the text too."""

    async def answer_callback(self, callback_id: str, text: str | None) -> None: ...

    async def send_typing(self, chat_id: int) -> None: ...

    async def download(self, file_id: str, limit: int) -> bytes:
        """getFile and the file itself; TelegramFileTooBig above `limit` bytes."""

    async def send_file(
        self, chat_id: int, kind: str, data: bytes, filename: str, caption: str | None
    ) -> int: ...

    async def set_commands(self, commands: Sequence[tuple[str, str]], language: str | None,
                           chat_id: int | None = None) -> None:
        """setMyCommands for everyone, or (`chat_id`) for one private chat only."""



def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split a long text at line breaks (or hard, for one huge line) into Telegram-sized parts."""
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    parts.append(current)
    return [p for p in parts if p] or [""]
