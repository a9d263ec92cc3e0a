"""The web chat's wire protocol: JSON text frames, checked strictly, in and out.

From the browser (each client message carries a random id, the service's update id):

    {"t": "hello", "token": str | null, "lang": str | null, "org": str | null}   first frame
    {"t": "start", "id": ID}                      open the conversation (a new chat)
    {"t": "text", "id": ID, "text": str}          a typed message
    {"t": "choice", "id": ID, "button": str, "state": str | null}
    {"t": "command", "id": ID, "name": one of MENU}
    {"t": "file", "id": ID, "type": mime, "data": base64}
    {"t": "ack", "seq": int}                      an outbound message was shown
    {"t": "code", "code": str}                    continue with a return code
    {"t": "forget"}                               forget this device
    {"t": "newcode"}                              a new return code (the old one stops working)

To the browser: "ready" (the token, whether the chat is new), "msg" and "file" (owed messages with
their per-chat `seq`: resent after a reconnect until acknowledged, shown once by the browser),
"ack" (a client message id was handled), "notice" (a translated refusal), "code" (the return code,
shown once), "refused" (a wrong return code), "forgotten".

Anything else (unknown types, wrong fields, binary frames) is a `BadFrame`; text loses control and
bidi-override characters (the relay isolates a text itself).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Final

from flows.handoff import FileOut
from flows.model import OutMessage

MAX_TEXT: Final = 4000  # characters in one typed message (longer texts go in parts)
MAX_FRAME: Final = 16_384  # bytes of a frame that carries no file
MENU: Final = ("help", "dossier", "withdraw", "erase", "restart", "language")
FILE_TYPES: Final = {"image/jpeg": "photo", "image/png": "photo", "image/webp": "photo",
                     "application/pdf": "document", "audio/ogg": "voice", "audio/mpeg": "voice",
                     "audio/webm": "voice", "audio/mp4": "voice", "text/plain": "document"}

_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
_BUTTON = re.compile(r"^[A-Za-z0-9_:.|-]{1,64}$")
_STATE = re.compile(r"^[A-Za-z0-9_:.-]{1,64}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
# Bidi embeddings, overrides and isolates: a client's text cannot reorder what surrounds it.
_BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))


class BadFrame(ValueError):
    """A frame that is not part of the protocol (the reason is for the log, never personal)."""


@dataclass(frozen=True)
class Hello:
    token: str | None
    language: str | None
    organisation: str | None


@dataclass(frozen=True)
class ClientMessage:
    """A client message: what the service gets as one event, `id` its update id."""

    id: str
    kind: str  # start, text, choice, command, file
    text: str = ""
    button: str = ""
    state: str | None = None
    content_type: str = ""
    data: bytes = b""
    too_big: bool = False


@dataclass(frozen=True)
class Ack:
    seq: int


@dataclass(frozen=True)
class Redeem:
    code: str


@dataclass(frozen=True)
class Forget:
    pass


@dataclass(frozen=True)
class NewCode:
    pass


Frame = Hello | ClientMessage | Ack | Redeem | Forget | NewCode


def clean_text(text: str) -> str:
    """Typed text without control characters (newlines and tabs stay) or bidi overrides."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_BIDI)
    return "".join(ch for ch in text
                   if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs", "Co"))


def _str(raw: dict[str, Any], key: str, pattern: re.Pattern[str] | None = None,
         optional: bool = False) -> str | None:
    value = raw.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
        raise BadFrame(f"bad field {key}")
    return value


def parse(data: str, max_file_bytes: int) -> Frame:
    """One text frame from the browser; `BadFrame` for anything else. A file frame may be as long
    as its base64 needs; any other frame at most `MAX_FRAME` bytes."""
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise BadFrame("not JSON") from exc
    if not isinstance(raw, dict):
        raise BadFrame("not an object")
    kind = raw.get("t")
    if kind != "file" and len(data) > MAX_FRAME * 2:
        raise BadFrame("frame too long")
    if kind == "hello":
        language = _str(raw, "lang", optional=True)
        org = _str(raw, "org", optional=True)
        return Hello(_str(raw, "token", _TOKEN, optional=True),
                     (language or "")[:16] or None,
                     org if org is not None and _SLUG.fullmatch(org) else None)
    if kind == "ack":
        seq = raw.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 < seq < 2**31:
            raise BadFrame("bad seq")
        return Ack(seq)
    if kind == "code":
        return Redeem((_str(raw, "code") or "")[:64])
    if kind == "forget":
        return Forget()
    if kind == "newcode":
        return NewCode()
    mid = _str(raw, "id", _ID) or ""
    if kind == "start":
        return ClientMessage(mid, "start")
    if kind == "text":
        text = raw.get("text")
        if not isinstance(text, str):
            raise BadFrame("bad text")
        return ClientMessage(mid, "text", text=clean_text(text))
    if kind == "choice":
        return ClientMessage(mid, "choice", button=_str(raw, "button", _BUTTON) or "",
                             state=_str(raw, "state", _STATE, optional=True))
    if kind == "command":
        name = _str(raw, "name")
        if name not in MENU:
            raise BadFrame("unknown command")
        return ClientMessage(mid, "command", text=name)
    if kind == "file":
        content_type = (_str(raw, "type") or "")[:100].lower()
        encoded = raw.get("data")
        if not isinstance(encoded, str):
            raise BadFrame("bad data")
        if len(encoded) > (max_file_bytes // 3 + 1) * 4:
            return ClientMessage(mid, "file", content_type=content_type, too_big=True)
        try:
            payload = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadFrame("bad base64") from exc
        return ClientMessage(mid, "file", content_type=content_type, data=payload,
                             too_big=len(payload) > max_file_bytes)
    raise BadFrame("unknown type")


def frame(kind: str, /, **fields: Any) -> str:
    return json.dumps({"t": kind, **fields}, ensure_ascii=False, separators=(",", ":"))


def message_frame(seq: int | None, message: OutMessage, state: str | None) -> str:
    """An outbound message: text (shown as text, never HTML), buttons with their stable ids."""
    return frame("msg", seq=seq, text=message.text, rtl=message.rtl, state=state,
                 buttons=[[[b.id, b.label] for b in row] for row in message.buttons])


def file_frame(seq: int | None, item: FileOut, data: bytes) -> str:
    """A file from the other side of a confidant chat, inline (base64), with its caption."""
    return frame("file", seq=seq, kind=item.kind, type=item.content_type or "application/octet-stream",
                 caption=item.caption, data=base64.b64encode(data).decode("ascii"))
