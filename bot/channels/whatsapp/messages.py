"""WhatsApp message objects: the engine's `OutMessage`s rendered within WhatsApp's limits.

Buttons follow WhatsApp's limits: up to 3 reply buttons (title <= 20 characters), more as list
messages (<= 10 rows, row title <= 24). A label too long for its limit is shortened at a word
boundary with an ellipsis, and then every choice is also written out in full, numbered, in the
message body: a typed number or label works as well (the engine accepts both). Button ids carry
the state they were shown in (`<state>|<button id>`), so the engine refuses stale or forged ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from flows.i18n import FSI, PDI, Translator
from flows.model import Choice, OutMessage

# WhatsApp's limits (Cloud API, interactive messages), counted in UTF-16 code units to be safe.
TEXT_LIMIT: Final = 4096
BODY_LIMIT: Final = 1024
MAX_BUTTONS: Final = 3
BUTTON_TITLE_LIMIT: Final = 20
MAX_ROWS: Final = 10
ROW_TITLE_LIMIT: Final = 24
ROW_DESCRIPTION_LIMIT: Final = 72
LIST_BUTTON_LIMIT: Final = 20
BUTTON_ID_LIMIT: Final = 256
ROW_ID_LIMIT: Final = 200
ELLIPSIS: Final = "…"
STATE_SEPARATOR: Final = "|"


# --- client-facing texts of the adapter itself ----------------------------------------------------


def _unsupported_text(t: Translator) -> str:
    return t._(
        "I can only read text, buttons, photos, documents and voice messages. "
        "Please type your answer or use the buttons."
    )


def _failed_text(t: Translator) -> str:
    return t._("Sorry, something went wrong on our side. Please send your last message again.")


# --- rendering: OutMessage -> WhatsApp message objects ------------------------------------------


def _units(text: str) -> int:
    """Length in UTF-16 code units: what the Graph API counts, never less than `len(text)`."""
    return len(text.encode("utf-16-le")) // 2


def _fit(text: str, limit: int) -> int:
    """The largest prefix length (in characters) of `text` that fits in `limit` units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _balance_isolates(text: str) -> str:
    """Close Unicode isolates that a cut left open, so the rest of the line keeps its direction."""
    missing = text.count(FSI) - text.count(PDI)
    return text + PDI * missing if missing > 0 else text


def shorten(label: str, limit: int) -> str:
    """`label` in at most `limit` units: whole words and an ellipsis; a single huge word is cut."""
    label = " ".join(label.split())
    if _units(label) <= limit:
        return label
    room = limit - _units(ELLIPSIS)
    kept = ""
    for word in label.split(" "):
        candidate = f"{kept} {word}" if kept else word
        if _units(_balance_isolates(candidate)) > room:
            break
        kept = candidate
    kept = kept.rstrip(" ,.;:-–—")
    if not kept:  # the first word alone is too long: cutting it is the only way
        kept = label[: _fit(label, room - label.count(FSI))]
    return _balance_isolates(kept) + ELLIPSIS


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """`text` in pieces of at most `limit` units, cut at a line break, else a space, else hard."""
    pieces: list[str] = []
    rest = text.strip("\n")
    while _units(rest) > limit:
        end = _fit(rest, limit)
        window = rest[:end]
        cut = window.rfind("\n")
        if cut < end // 2:
            cut = window.rfind(" ")
        if cut < end // 2:
            cut = end
        piece = rest[:cut].rstrip()
        if piece:
            pieces.append(piece)
        rest = rest[cut:].lstrip("\n ")
    if rest.strip():
        pieces.append(rest)
    return pieces


def _button_id(button_id: str, state: str | None, limit: int) -> str:
    """Our stable button id, with the state it was shown in when that fits."""
    if state:
        tagged = f"{state}{STATE_SEPARATOR}{button_id}"
        if len(tagged) <= limit:
            return tagged
    return button_id[:limit]


def parse_button_id(raw: str) -> Choice:
    """A button or list reply as a `Choice`; the engine refuses it if the state or id is wrong."""
    raw = raw[:BUTTON_ID_LIMIT]
    state, separator, button_id = raw.partition(STATE_SEPARATOR)
    if not separator:
        return Choice(raw)
    return Choice(button_id, state=state)


def _titles(labels: Sequence[str], limit: int, offset: int) -> list[str]:
    """Shortened titles, unique within one message (WhatsApp refuses duplicates)."""
    titles = [shorten(label, limit) for label in labels]
    for index, title in enumerate(titles):
        if titles.count(title) > 1 or not title:
            titles[index] = shorten(f"{offset + index + 1}. {labels[index]}", limit)
    return titles


def _chunks(count: int, size: int) -> list[range]:
    """`count` items in as few groups of at most `size` as possible, of about equal length."""
    groups = max(1, -(-count // size))
    base, extra = divmod(count, groups)
    ranges: list[range] = []
    start = 0
    for group in range(groups):
        length = base + (1 if group < extra else 0)
        ranges.append(range(start, start + length))
        start += length
    return ranges


def _text_messages(text: str) -> list[dict[str, Any]]:
    return [
        {"type": "text", "text": {"body": piece, "preview_url": False}}
        for piece in split_text(text, TEXT_LIMIT)
    ]


def _with_body(text: str, lines: list[str], t: Translator) -> tuple[list[dict[str, Any]], str]:
    """Text messages to send first (if any) and the body of the interactive message (<= 1024)."""
    listing = "\n".join(lines)
    body = "\n\n".join(part for part in (text.strip("\n"), listing) if part)
    if body and _units(body) <= BODY_LIMIT:
        return [], body
    # Too long for an interactive body: the text goes first; the body keeps its last paragraph.
    head, _sep, tail = text.strip("\n").rpartition("\n")
    tail_body = "\n\n".join(part for part in (tail.strip(), listing) if part)
    if head.strip() and tail.strip() and _units(tail_body) <= BODY_LIMIT:
        return _text_messages(head), tail_body
    fallback = listing or t._("Please choose one of the options below.")
    if _units(fallback) > BODY_LIMIT:
        return [*_text_messages(text), *_text_messages(listing)], t._(
            "Please choose one of the options below."
        )
    return _text_messages(text), fallback


def render(message: OutMessage, t: Translator, state: str | None = None) -> list[dict[str, Any]]:
    """One engine message as WhatsApp message objects (without `to`), within every limit."""
    buttons = [button for row in message.buttons for button in row]
    if not buttons:
        return _text_messages(message.text)
    as_list = len(buttons) > MAX_BUTTONS
    title_limit = ROW_TITLE_LIMIT if as_list else BUTTON_TITLE_LIMIT
    labels = [" ".join(b.label.split()) for b in buttons]
    titles = _titles(labels, title_limit, 0)
    # Nothing hidden: when a title had to be shortened, every choice is written out, numbered.
    full = any(title != label for title, label in zip(titles, labels, strict=True))
    lines = [f"{n}. {label}" for n, label in enumerate(labels, start=1)] if full else []
    if not as_list:
        before, body = _with_body(message.text, lines, t)
        action = {
            "buttons": [
                {"type": "reply",
                 "reply": {"id": _button_id(b.id, state, BUTTON_ID_LIMIT), "title": title}}
                for b, title in zip(buttons, titles, strict=True)
            ]
        }
        return [*before, {"type": "interactive",
                          "interactive": {"type": "button", "body": {"text": body},
                                          "action": action}}]
    out: list[dict[str, Any]] = []
    # The language picker opens before a language is known: a globe says it in every language.
    list_button = shorten(t._("Choose") if state != "language" else "🌐", LIST_BUTTON_LIMIT)
    for number, group in enumerate(_chunks(len(buttons), MAX_ROWS)):
        group_lines = [lines[i] for i in group] if lines else []
        if number == 0:
            before, body = _with_body(message.text, group_lines, t)
            out.extend(before)
        else:
            body = "\n\n".join([t._("More choices:"), *(["\n".join(group_lines)] if group_lines else [])])
        rows: list[dict[str, Any]] = []
        for i in group:
            row: dict[str, Any] = {"id": _button_id(buttons[i].id, state, ROW_ID_LIMIT),
                                   "title": titles[i]}
            if titles[i] != labels[i]:
                row["description"] = shorten(labels[i], ROW_DESCRIPTION_LIMIT)
            rows.append(row)
        out.append({"type": "interactive",
                    "interactive": {"type": "list", "body": {"text": body},
                                    "action": {"button": list_button,
                                               "sections": [{"rows": rows}]}}})
    return out


def template_message(name: str, language: str, reference: str) -> dict[str, Any]:
    """The organisation's approved template, with the case reference as its one body parameter."""
    return {
        "type": "template",
        "template": {
            "name": name,
            "language": {"code": language},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": reference}]}],
        },
    }

