"""Webhook deliveries: the signature check and the parsing of inbound WhatsApp messages."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from flows.model import Command, Event, Start, Text

_ARABIC = re.compile("[\u0600-\u06ff]")
_CYRILLIC = re.compile("[\u0400-\u04ff]")

MediaKind = Literal["photo", "document", "voice", "video", "other"]
MEDIA_TYPES: Final = ("image", "document", "audio", "video")


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    """Meta's `X-Hub-Signature-256: sha256=<hex>` over the raw body, compared in constant time."""
    if not header:
        return False
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), header.strip().encode("utf-8", "replace"))


@dataclass(frozen=True)
class Inbound:
    """One message from the webhook, waiting in its chat's queue."""

    wa_id: str
    wamid: str
    message: dict[str, Any]
    name: str | None = field(default=None, repr=False)  # the profile name; only for "share"


def _language_hint(text: str) -> str | None:
    """A first guess from the script of the first message; the client still picks the language."""
    arabic = len(_ARABIC.findall(text))
    cyrillic = len(_CYRILLIC.findall(text))
    if arabic > cyrillic:
        return "ar"
    if cyrillic:
        return "uk"
    return None


# Issue 11: the text a wa.me link fills in (`klachtwijzer links` prints it): "Klachtwijzer #<slug>".
START_TEXT = re.compile(r"\s*klachtwijzer\s+#([a-z0-9][a-z0-9-]{0,31})\s*", re.IGNORECASE)


def start_text(body: str) -> str | None:
    """The organisation a prefilled start text names ("Klachtwijzer #lentl" -> "lentl"), or None."""
    found = START_TEXT.fullmatch(body)
    return found.group(1).lower() if found else None


def _text_event(body: str) -> Event:
    stripped = body.strip()
    slug = start_text(body)
    if slug is not None:
        return Start(organisation=slug)
    if stripped.startswith("/") and len(stripped) > 1 and " " not in stripped:
        return Command(stripped[1:].lower())
    return Text(body)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []



def _sha256_matches(data: bytes, digest: str) -> bool:
    """Meta gives the hash as hex (or base64 in some versions): compare with either."""
    import base64

    raw = hashlib.sha256(data).digest()
    return digest.lower() == raw.hex() or digest == base64.b64encode(raw).decode("ascii")
