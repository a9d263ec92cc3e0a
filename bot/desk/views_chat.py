"""The confidant's pages (issue 12): open requests, accept, and the live chat with the client.

A confidant's desk account is an address ("desk", e-mail) of the handoff desk when the
organisation's `[[confidants]]` entry names it (`desk = "e-mail"`): offers go there as to Telegram
and WhatsApp, first accept wins. What the desk owes the confidant is stored (owed rows of channel
"desk") and marked sent when a page has shown it. Pages without JavaScript: a Refresh button.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.desk.web import account_of, allow, desk_of, refuse, render, translator
from bot.services.delivery import Delivery, item_from_json
from bot.services.handoffs import MAX_RELAY_TEXT, SENDER_NAME, HandoffDesk, Reply
from flows import rules
from flows.handoff import FileOut, Handoff, button, file_marker
from flows.i18n import Translator
from flows.model import Choice, Event, OutMessage, Text
from flows.texts import CATEGORY, PREFERENCE

if TYPE_CHECKING:
    from bot.desk.web import Desk

CHANNEL = "desk"
MAX_NAME = 80


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


async def _act(request: web.Request, handoffs: HandoffDesk, address: tuple[str, str],
               event: Event) -> Reply:
    """One action of the confidant, as an update of their address; the others' messages sent."""
    desk = desk_of(request)
    reply = await handoffs.confidant_update(address, event, update_id=None,
                                            language=account_of(request).language)
    for envelope, owed in zip(reply.others, reply.others_owed or ((),) * len(reply.others),
                              strict=True):
        await desk.host.channels.deliver(envelope.channel, envelope.chat_id, envelope.items, owed)
    return reply


def _labels(t: Translator, h: Handoff) -> dict[str, str]:
    return {"category": t._(CATEGORY[h.category]) if h.category in CATEGORY else "-",
            "preference": t._(PREFERENCE.get(h.preference, PREFERENCE["none"])),
            "client": t._("Client {code}").format(code=h.pseudonym)}


@allow("confidant")
async def requests_page(request: web.Request) -> web.Response:
    linked = address_of(request)
    if linked is None:
        return await render(request, "requests.html", {"linked": False, "offers": [],
                                                       "notices": [], "chatting": False})
    handoffs, address = linked
    t = translator(request)
    offers = [{"id": h.id, "since": since.strftime("%d-%m-%Y %H:%M"), **_labels(t, h)}
              for h, since in await handoffs.offers_for(address)]
    chat, _messages = await handoffs.chat_of(address)
    return await render(request, "requests.html", {
        "linked": True, "offers": offers, "chatting": chat is not None,
        "notices": await notices(request, address, None)})


@allow("confidant")
async def accept(request: web.Request) -> web.StreamResponse:
    linked = address_of(request)
    number = request.match_info.get("handoff", "")
    if linked is None or not number.isdigit() or len(number) > 12:
        raise web.HTTPSeeOther("/requests")
    handoffs, address = linked
    await _act(request, handoffs, address, Choice(button("accept", int(number))))
    chat = (await handoffs.chat_of(address))[0]
    raise web.HTTPSeeOther("/chat" if chat is not None else "/requests")


def _thread(t: Translator, h: Handoff, messages: Sequence[Any]) -> list[dict[str, str]]:
    client = t._("Client {code}").format(code=h.pseudonym)
    out = []
    for m in messages:
        kind = str(m.body.get("kind"))
        if kind == "text":
            text = str(m.body.get("text", ""))
        elif kind in ("photo", "voice", "document"):
            text = file_marker(t, kind)
        else:
            continue
        out.append({"who": client if m.sender == "client" else t._("You"), "text": text,
                    "side": "client" if m.sender == "client" else "me",
                    "at": m.at.strftime("%H:%M")})
    return out


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
                               "limit": MAX_RELAY_TEXT}
    if chat is not None:
        context.update(thread=_thread(t, chat, messages), client=_labels(t, chat)["client"])
    return await render(request, "chat.html", context)


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
            await _act(request, handoffs, address, Text(text))
    elif action == "end":
        await _act(request, handoffs, address, Choice(button("end", chat.id)))
        raise web.HTTPSeeOther("/requests")
    elif action == "share":
        name = form.get("name")
        name = rules.clean_inbound(name).strip() if isinstance(name, str) else ""
        if rules.is_blank(name) or len(name) > MAX_NAME:
            return await refuse(request, 400, translator(request)._(
                "Type the name the client may see, at most {limit} characters. Nothing was "
                "sent.").format(limit=MAX_NAME))
        with _sender_name(name):
            await _act(request, handoffs, address, Choice(button("share", chat.id)))
    raise web.HTTPSeeOther("/chat")
