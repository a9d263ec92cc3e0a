"""The confidant's pages (issue 12): open requests, accept, and the live chat with the client.

A confidant's desk account is an address ("desk", e-mail) of the handoff desk when the
organisation's `[[confidants]]` entry names it (`desk = "e-mail"`): offers go there as to Telegram
and WhatsApp, first accept wins. What the desk owes the confidant is stored (owed rows of channel
"desk") and marked sent when a page (or a poll that shows them) has shown it.

Both pages update themselves: `static/desk-live.js` polls `/requests/updates` or `/chat/updates`
every few seconds (JSON with HTML fragments rendered here); without JavaScript the Refresh button
does the same. Files of the chat: `views_chat_files.py`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.desk.web import LIVE_CSP, account_of, allow, desk_of, refuse, render, translator
from bot.services.delivery import Delivery, item_from_json
from bot.services.handoffs import MAX_RELAY_TEXT, SENDER_NAME, HandoffDesk, Reply
from bot.services.register_common import ORG_TZ
from flows import rules
from flows.handoff import FileOut, Handoff, button, file_marker
from flows.i18n import Translator
from flows.model import Choice, Event, OutMessage, Text
from flows.texts import CATEGORY, PREFERENCE
from storage.files import EncryptedFileStore, InvalidFileRef
from storage.handoffs import HandoffMessage

if TYPE_CHECKING:
    from bot.desk.web import Desk

CHANNEL = "desk"
MAX_NAME = 80
FILE_KINDS = ("photo", "voice", "document", "video", "other")
INLINE = {"photo": ("image/jpeg", "image/png", "image/webp"),
          "voice": ("audio/ogg", "audio/mpeg", "audio/mp4")}  # shown in the page; the rest a link


class DeskSender:
    """The desk as a channel: nothing is pushed; the confidant's pages show what is owed."""

    name = CHANNEL

    async def send(self, chat_id: str, messages: Sequence[OutMessage]) -> Delivery:
        return "sent"  # stored as owed rows already; shown (and marked) by the next page


def joined(desk: Desk) -> HandoffDesk | None:
    """The process's handoff desk, if the desk joined it (on start-up)."""
    return desk.host.service.handoffs


def address_of(request: web.Request) -> tuple[HandoffDesk, tuple[str, str]] | None:
    """The handoff desk and this confidant's address, if the organisation's settings link
    their account."""
    account = account_of(request)
    handoffs = joined(desk_of(request))
    address = (CHANNEL, account.email)
    if handoffs is None or not handoffs.is_confidant(*address):
        return None
    organisation = desk_of(request).host.deployment.of(account.organisation)
    if not any(c.desk == account.email for c in organisation.confidants):
        return None  # linked by another organisation's settings: not theirs to serve
    return handoffs, address


async def notices(request: web.Request, address: tuple[str, str],
                  hide_prefix: str | None) -> list[str]:
    """What the desk owes this confidant, as text, marked sent now that a page shows it.
    Messages of the client (`hide_prefix`, and files) are in the chat's own list already."""
    desk = desk_of(request)
    t = translator(request)
    async with desk.host.db.unit_of_work() as uow:
        rows = await uow.owed.unsent_for_chat(*address)
        if rows:
            await uow.owed.mark_sent([row.id for row in rows], desk.host.clock())
        await uow.commit()
    out: list[str] = []
    for row in rows:
        item, _state = item_from_json(row.body)
        if isinstance(item, FileOut):
            continue
        if hide_prefix is not None and item.text.startswith(hide_prefix):
            continue
        out.append(item.text if item.text else t._("(empty message)"))
    return out


async def act(request: web.Request, handoffs: HandoffDesk, address: tuple[str, str],
              event: Event) -> Reply:
    """One action of the confidant, as an update of their address; the others' messages sent."""
    desk = desk_of(request)
    account = account_of(request)
    reply = await handoffs.confidant_update(address, event, update_id=None,
                                            language=account.language, actor=account.actor)
    for envelope, owed in zip(reply.others, reply.others_owed or ((),) * len(reply.others),
                              strict=True):
        await desk.host.channels.deliver(envelope.channel, envelope.chat_id, envelope.items, owed)
    return reply


def _labels(t: Translator, h: Handoff) -> dict[str, str]:
    return {"category": t._(CATEGORY[h.category]) if h.category in CATEGORY else "-",
            "preference": t._(PREFERENCE.get(h.preference, PREFERENCE["none"])),
            "client": t._("Client {code}").format(code=h.pseudonym)}


def local(moment: datetime, pattern: str = "%d-%m-%Y %H:%M") -> str:
    """A moment as the organisation reads it (Europe/Amsterdam)."""
    return moment.astimezone(ORG_TZ).strftime(pattern)


async def _offers(request: web.Request, handoffs: HandoffDesk,
                  address: tuple[str, str]) -> dict[str, Any]:
    """The waiting clients and whether a chat is open: the part of the requests page that the
    poll replaces, with a signature that changes when it changes (ids only, no personal data)."""
    t = translator(request)
    offers = [{"id": h.id, "since": local(since), **_labels(t, h)}
              for h, since in await handoffs.offers_for(address)]
    chat, _messages = await handoffs.chat_of(address)
    chatting = chat is not None
    sig = ",".join(str(o["id"]) for o in offers) + (";chat" if chatting else "")
    return {"offers": offers, "chatting": chatting, "sig": sig}


@allow("confidant")
async def requests_page(request: web.Request) -> web.Response:
    linked = address_of(request)
    if linked is None:
        return await render(request, "requests.html", {"linked": False, "offers": [],
                                                       "notices": [], "chatting": False, "sig": ""})
    handoffs, address = linked
    context = await _offers(request, handoffs, address)
    response = await render(request, "requests.html", {
        "linked": True, **context, "notices": await notices(request, address, None)})
    response.headers["Content-Security-Policy"] = LIVE_CSP
    return response


@allow("confidant")
async def requests_updates(request: web.Request) -> web.Response:
    """The poll of the requests page: the waiting clients (HTML), and new notices, marked sent
    because the page shows them."""
    linked = address_of(request)
    if linked is None:
        return web.json_response({"reload": True})
    handoffs, address = linked
    context = await _offers(request, handoffs, address)
    shown = await notices(request, address, None)
    fragment = await render(request, "_offers.html", context)
    return web.json_response({"offers": fragment.text, "sig": context["sig"],
                              "notices": await _fragment(request, "_notices.html",
                                                         {"notices": shown}),
                              "say": shown})


@allow("confidant")
async def accept(request: web.Request) -> web.StreamResponse:
    linked = address_of(request)
    number = request.match_info.get("handoff", "")
    if linked is None or not number.isdigit() or len(number) > 12:
        raise web.HTTPSeeOther("/requests")
    handoffs, address = linked
    await act(request, handoffs, address, Choice(button("accept", int(number))))
    chat = (await handoffs.chat_of(address))[0]
    raise web.HTTPSeeOther("/chat" if chat is not None else "/requests")


def _thread(request: web.Request, h: Handoff,
            messages: Sequence[HandoffMessage]) -> list[dict[str, Any]]:
    """The chat's messages both ways, oldest first: text, or a file served by
    `/chat/file/<message id>` while the file store still keeps it."""
    t = translator(request)
    files = desk_of(request).host.files
    client = t._("Client {code}").format(code=h.pseudonym)
    out: list[dict[str, Any]] = []
    for m in messages:
        kind = str(m.body.get("kind"))
        mine = m.sender != "client"
        who = t._("You") if mine else client
        item: dict[str, Any] = {"id": m.id, "who": who, "side": "me" if mine else "client",
                                "at": local(m.at, "%H:%M"), "text": "", "file": None}
        if kind == "text":
            item["text"] = str(m.body.get("text", ""))
        elif kind in FILE_KINDS:
            item["text"] = file_marker(t, kind)
            ref = m.body.get("ref")
            if isinstance(ref, str) and kept(files, ref):
                item["file"] = _file_view(t, m, kind, who)
        else:
            continue
        out.append(item)
    return out


def kept(files: EncryptedFileStore, ref: str) -> bool:
    """Whether the file store still keeps this file (a forged reference: no)."""
    try:
        return files.exists(ref)
    except InvalidFileRef:
        return False


def _file_view(t: Translator, m: HandoffMessage, kind: str, who: str) -> dict[str, str]:
    content_type = str(m.body.get("content_type") or "").split(";")[0].strip().lower()
    show = kind if content_type in INLINE.get(kind, ()) else "download"
    label = {"photo": t._("Photo from {who}"), "voice": t._("Voice message from {who}")}.get(
        show, t._("Document from {who}: download")).format(who=who)
    return {"show": show, "url": f"/chat/file/{m.id}", "label": label,
            "download": t._("Download")}


def _say(t: Translator, thread: Sequence[dict[str, Any]]) -> list[str]:
    """New messages of the client, as one line each for screen readers."""
    return [f"{m['who']}: {m['text']}" for m in thread if m["side"] == "client"]


async def _fragment(request: web.Request, template: str, context: dict[str, Any]) -> str:
    return (await render(request, template, context)).text or ""


@allow("confidant")
async def chat_page(request: web.Request) -> web.Response:
    linked = address_of(request)
    if linked is None:
        raise web.HTTPSeeOther("/requests")
    handoffs, address = linked
    t = translator(request)
    chat, messages = await handoffs.chat_of(address)
    hide = None if chat is None else t._("Client {code}").format(code=chat.pseudonym) + ": "
    context: dict[str, Any] = {"chat": chat is not None, "thread": [], "client": "",
                               "notices": await notices(request, address, hide),
                               "limit": MAX_RELAY_TEXT, "chat_id": 0 if chat is None else chat.id,
                               "after": max((m.id for m in messages), default=0)}
    if chat is not None:
        context.update(thread=_thread(request, chat, messages), client=_labels(t, chat)["client"])
    response = await render(request, "chat.html", context)
    response.headers["Content-Security-Policy"] = LIVE_CSP
    return response


@allow("confidant")
async def chat_updates(request: web.Request) -> web.Response:
    """The poll of the chat page: messages after `after` (HTML) and new notices (marked sent
    because the page shows them). When the chat is no longer the page's (ended, or a new one),
    nothing is marked and the page loads itself again."""
    linked = address_of(request)
    if linked is None:
        return web.json_response({"reload": True})
    handoffs, address = linked
    t = translator(request)
    chat, messages = await handoffs.chat_of(address)
    current = 0 if chat is None else chat.id
    try:
        shown_chat = int(request.query.get("chat", ""))
        after = int(request.query.get("after", ""))
    except ValueError:
        return web.json_response({"reload": True})
    if shown_chat != current:
        return web.json_response({"reload": True})
    hide = None if chat is None else t._("Client {code}").format(code=chat.pseudonym) + ": "
    shown = await notices(request, address, hide)
    new = [] if chat is None else _thread(request, chat, [m for m in messages if m.id > after])
    return web.json_response({
        "messages": await _fragment(request, "_messages.html", {"thread": new}) if new else "",
        "after": max([after, *(m.id for m in messages)]),
        "notices": await _fragment(request, "_notices.html", {"notices": shown}) if shown else "",
        "say": [*_say(t, new), *shown]})


@contextlib.contextmanager
def _sender_name(name: str) -> Iterator[None]:
    token = SENDER_NAME.set(name)
    try:
        yield
    finally:
        SENDER_NAME.reset(token)


@allow("confidant")
async def chat_action(request: web.Request) -> web.StreamResponse:
    """Send a text, share a name, or end: one form each, on the chat page."""
    linked = address_of(request)
    if linked is None:
        raise web.HTTPSeeOther("/requests")
    handoffs, address = linked
    chat, _messages = await handoffs.chat_of(address)
    if chat is None:
        raise web.HTTPSeeOther("/chat")
    form = await request.post()
    action = request.match_info.get("action", "")
    if action == "send":
        text = form.get("text")
        if isinstance(text, str):
            await act(request, handoffs, address, Text(text))
    elif action == "end":
        await act(request, handoffs, address, Choice(button("end", chat.id)))
        raise web.HTTPSeeOther("/requests")
    elif action == "share":
        name = form.get("name")
        name = rules.clean_inbound(name).strip() if isinstance(name, str) else ""
        if rules.is_blank(name) or len(name) > MAX_NAME:
            return await refuse(request, 400, translator(request)._(
                "Type the name the client may see, at most {limit} characters. Nothing was "
                "sent.").format(limit=MAX_NAME))
        with _sender_name(name):
            await act(request, handoffs, address, Choice(button("share", chat.id)))
    raise web.HTTPSeeOther("/chat")
