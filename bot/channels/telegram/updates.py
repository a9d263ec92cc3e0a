"""Incoming updates: the Bot API's JSON reduced to `Incoming`, and the buttons' callback codec.

* `parse_update` turns an update (the Bot API's JSON, as both libraries can give it) into
  `Incoming`; only private chats are served;
* `CallbackCodec` puts `button id | state code | MAC` into `callback_data` (at most 64 bytes): the
  MAC binds a button to its chat and cannot be forged without the bot token; the state code makes a
  button from an older question stale (the engine refuses it politely).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

MAX_CALLBACK_BYTES = 64


@dataclass(frozen=True)
class IncomingFile:
    kind: Literal["photo", "document", "voice", "video", "other"]
    file_id: str
    size: int | None
    content_type: str


@dataclass(frozen=True)
class Incoming:
    """One update, reduced to what we use. `user_id` is the numeric id; never the username."""

    update_id: int
    chat_id: int
    user_id: int
    language_code: str | None = None
    display_name: str = field(default="", repr=False)
    text: str | None = field(default=None, repr=False)
    caption: str | None = field(default=None, repr=False)
    file: IncomingFile | None = None
    unsupported: bool = False
    callback_id: str | None = None
    callback_data: str | None = None
    message_id: int | None = None
    message_text: str | None = field(default=None, repr=False)
    pressed_label: str | None = field(default=None, repr=False)

    @property
    def command(self) -> str | None:
        """`/start@bot payload` -> "start"; None if the text is not a command."""
        if not self.text or not self.text.startswith("/"):
            return None
        word = self.text[1:].split(maxsplit=1)[0] if len(self.text) > 1 else ""
        name = word.split("@", 1)[0].lower()
        return name if name.isascii() and name.replace("_", "").isalnum() else None

    @property
    def start_payload(self) -> str | None:
        """`/start lentl` (a deep link t.me/<bot>?start=lentl) -> "lentl"; None without one."""
        if self.command != "start" or not self.text:
            return None
        parts = self.text.split(maxsplit=1)
        return parts[1].strip()[:64] if len(parts) == 2 and parts[1].strip() else None


def _name(user: dict[str, Any]) -> str:
    parts = [str(user.get("first_name") or ""), str(user.get("last_name") or "")]
    name = " ".join(p for p in parts if p).strip()
    if user.get("username"):
        name = f"{name} (@{user['username']})".strip()
    return name


def _file(message: dict[str, Any]) -> IncomingFile | None:
    if message.get("photo"):
        best = message["photo"][-1]
        return IncomingFile("photo", str(best["file_id"]), best.get("file_size"), "image/jpeg")
    for key, kind, default in (("document", "document", "application/octet-stream"),
                               ("voice", "voice", "audio/ogg"),
                               ("video", "video", "video/mp4")):
        item = message.get(key)
        if item:
            mime = str(item.get("mime_type") or default)
            if not mime.isascii() or len(mime) > 100 or "/" not in mime:
                mime = default
            return IncomingFile(kind, str(item["file_id"]), item.get("file_size"), mime)  # type: ignore[arg-type]
    return None


def parse_update(raw: dict[str, Any]) -> Incoming | None:
    """The update as `Incoming`; None for what we do not serve (groups, channels, edits)."""
    update_id = raw.get("update_id")
    if not isinstance(update_id, int):
        return None
    if "callback_query" in raw:
        cq = raw["callback_query"]
        message = cq.get("message") or {}
        chat = message.get("chat") or {}
        user = cq.get("from") or {}
        if chat.get("type") != "private" or not isinstance(user.get("id"), int):
            return None
        label = None
        for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
            for b in row:
                if b.get("callback_data") == cq.get("data"):
                    label = str(b.get("text"))
        return Incoming(
            update_id=update_id, chat_id=int(chat["id"]), user_id=int(user["id"]),
            language_code=user.get("language_code"), display_name=_name(user),
            callback_id=str(cq.get("id")), callback_data=str(cq.get("data") or ""),
            message_id=message.get("message_id"), message_text=message.get("text"),
            pressed_label=label,
        )
    message = raw.get("message")
    if not isinstance(message, dict):
        return None
    chat = message.get("chat") or {}
    user = message.get("from") or {}
    if chat.get("type") != "private" or not isinstance(user.get("id"), int) or user.get("is_bot"):
        return None
    file = _file(message)
    text = message.get("text")
    unsupported = file is None and not isinstance(text, str)
    return Incoming(
        update_id=update_id, chat_id=int(chat["id"]), user_id=int(user["id"]),
        language_code=user.get("language_code"), display_name=_name(user),
        text=text if isinstance(text, str) else None,
        caption=message.get("caption"), file=file, unsupported=unsupported,
        message_id=message.get("message_id"),
    )


# --- buttons ------------------------------------------------------------------------------------


def state_code(state: str) -> str:
    return base64.b32encode(hashlib.sha256(state.encode()).digest()).decode()[:5].lower()


class CallbackCodec:
    """`callback_data` = `<button id>|<state code>|<MAC>`, at most 64 bytes."""

    def __init__(self, token: str, states: Sequence[str]) -> None:
        self._key = hashlib.sha256(b"klachtwijzer callback\x00" + token.encode()).digest()
        self._states = {state_code(s): s for s in states}

    def _mac(self, chat_id: int, code: str, button_id: str) -> str:
        digest = hmac.new(self._key, f"{chat_id}|{code}|{button_id}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()[:8]).decode().rstrip("=")

    def encode(self, chat_id: int, button_id: str, state: str | None) -> str:
        code = state_code(state) if state else ""
        data = f"{button_id}|{code}|{self._mac(chat_id, code, button_id)}"
        if len(data.encode()) > MAX_CALLBACK_BYTES or "|" in button_id:
            raise ValueError("button id too long for callback_data")
        return data

    def decode(self, chat_id: int, data: str) -> tuple[str, str | None] | None:
        """(button id, state) for a button we made for this chat; None if forged or foreign.

        An unknown state code (a procedure that changed since) comes back as a state that never
        matches, so the engine treats the button as stale.
        """
        parts = data.rsplit("|", 2)
        if len(parts) != 3:
            return None
        button_id, code, mac = parts
        if not hmac.compare_digest(mac, self._mac(chat_id, code, button_id)):
            return None
        if not code:
            return button_id, None
        return button_id, self._states.get(code, "?" + code)
