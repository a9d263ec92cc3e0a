"""Messages owed to WhatsApp chats (issue 10) end to end: the real webhook and `run_whatsapp`, the
Graph API stand-in on 127.0.0.1, the real service and database. A reply or relay is an owed row
stored with the state change, marked sent once the Graph API took it; what it refused is sent
first when the chat writes again, or at start-up, in order, once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.channels.whatsapp import graph as graph_module
from bot.root.app import App
from storage.schema import owed_messages
from tests.bot.graph_stub import GraphStub
from tests.bot.whatsapp_helpers import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    TOKEN,
    VERIFY_TOKEN,
    Phone,
    StartWhatsApp,
    free_port,
    stop_whatsapp,
)

CONFIDANT_NUMBER = "31633334444"
ORG = f"""
name = "Steunpunt Test"

[[confidants]]
gender = "female"
whatsapp = "+{CONFIDANT_NUMBER}"

[whatsapp]
template = "klachtwijzer_update"

[handoff]
timeout_minutes = 30
"""


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Graph client's retry pauses (0.5, 2 and 5 s) shortened: a refused send gives up fast."""
    monkeypatch.setattr(graph_module, "SEND_RETRY_DELAYS", (0.01, 0.01, 0.01))


def refuse_next_send(stub: GraphStub) -> None:
    """The Graph API answers 503 to every attempt of the next send (the first and its 3 retries)."""
    stub.fail_next(503, 2, times=1 + len(graph_module.SEND_RETRY_DELAYS))


async def owed_rows(app: App, wa_id: str) -> list[tuple[int, bool, bool]]:
    """(seq, sent, body kept) of every owed row of a WhatsApp chat, read from the table itself."""
    async with app.db.engine.connect() as conn:
        rows = (await conn.execute(
            select(owed_messages.c.seq, owed_messages.c.sent_at, owed_messages.c.body)
            .where(owed_messages.c.channel == "whatsapp", owed_messages.c.chat_id == wa_id)
            .order_by(owed_messages.c.seq))).all()
    return [(row.seq, row.sent_at is not None, row.body is not None) for row in rows]


async def unsent_texts(app: App, wa_id: str) -> list[str]:
    """The texts still owed to a WhatsApp chat, in order (decrypted by the repository)."""
    async with app.db.unit_of_work(read_only=True) as uow:
        return [str(row.body["text"]) for row in await uow.owed.unsent_for_chat("whatsapp", wa_id)]


def body(message: dict[str, Any]) -> str:
    if message["type"] == "text":
        return str(message["text"]["body"])
    if message["type"] == "interactive":
        return str(message["interactive"]["body"]["text"])
    return f"[{message['type']}]"


def shows(message: dict[str, Any], text: str) -> bool:
    """A message the bot sent is (the last part of) an owed text."""
    return body(message) != "" and text.endswith(body(message))


def fresh(reply: list[dict[str, Any]], owed: list[str]) -> bool:
    """A reply of its own: something was sent, and it does not begin with an owed message again
    nor repeat the first one (a reply may ask a kept question again, later in the reply)."""
    return bool(reply) and not any(shows(reply[0], text) for text in owed) \
        and not any(shows(m, owed[0]) for m in reply)


async def until(condition: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def test_replies_are_owed_rows_marked_sent_once_accepted(
    start_whatsapp: StartWhatsApp, graph: GraphStub
) -> None:
    """Every reply to a WhatsApp client is an owed row; once the Graph API took it, it is marked
    sent (its content dropped) and nothing stays owed."""
    meta = await start_whatsapp()
    phone = Phone(meta)
    counts = [len(await phone.type("Hello")), len(await phone.press("lang_en")),
              len(await phone.press("help"))]
    await meta.channel.marker.flush()
    rows = await owed_rows(meta.app, phone.wa_id)
    assert all(counts) and len(rows) >= len(counts)  # one row per message, at least one per reply
    assert rows == [(seq, True, False) for seq in range(1, len(rows) + 1)]
    assert await unsent_texts(meta.app, phone.wa_id) == []


async def test_refused_reply_stays_owed_and_comes_first_when_the_client_writes(
    start_whatsapp: StartWhatsApp, graph: GraphStub
) -> None:
    """A reply the Graph API refused (503, retries exhausted) stays owed; when the API is back and
    the client writes, the owed messages come first, in order, once each, then the new reply."""
    meta = await start_whatsapp()
    phone = Phone(meta)
    await phone.type("Hello")
    refuse_next_send(graph)
    assert await phone.press("lang_en") == []  # nothing reached the client
    await meta.channel.marker.flush()
    owed = await unsent_texts(meta.app, phone.wa_id)
    assert len(owed) == 2  # the privacy notice and the first question, in that order
    assert [(sent, kept) for _seq, sent, kept in await owed_rows(meta.app, phone.wa_id)] == [
        (True, False), (False, True), (False, True)]

    before = len(graph.messages_to(phone.wa_id))
    after = await phone.type("hello?")
    assert [shows(m, text) for m, text in zip(after, owed, strict=False)] == [True, True]
    assert fresh(after[2:], owed)  # then the reply to "hello?" (it asks the question again)
    assert len(graph.messages_to(phone.wa_id)) == before + len(after)
    await meta.channel.marker.flush()
    assert await unsent_texts(meta.app, phone.wa_id) == []
    assert fresh(await phone.type("hello??"), owed)


async def test_owed_replies_are_sent_at_start_up_per_chat_in_order_once(
    start_whatsapp: StartWhatsApp, graph: GraphStub
) -> None:
    """Replies refused before a restart are sent by the new channel at start-up, before anything
    new, per chat in order and once each; the client's next message repeats none of them."""
    first = await start_whatsapp()
    phones = [Phone(first), Phone(first, wa_id="31687654321")]
    owed: dict[str, list[str]] = {}
    for phone in phones:
        await phone.type("Hello")
        refuse_next_send(graph)
        assert await phone.press("lang_en") == []
    await first.channel.marker.flush()
    for phone in phones:
        owed[phone.wa_id] = await unsent_texts(first.app, phone.wa_id)
        assert len(owed[phone.wa_id]) == 2
    await stop_whatsapp(first)
    assert all(phone.collect() == [] for phone in phones)  # stopping sends nothing

    second = await start_whatsapp(app=first.app)  # a new channel on the same database
    second._ids = first._ids  # Meta's message ids go on (a repeated wamid would be a redelivery)

    async def all_sent() -> bool:
        return [await unsent_texts(second.app, p.wa_id) for p in phones] == [[], []]

    await until(all_sent)
    for phone in phones:
        phone.meta = second
        resent = phone.collect()
        assert [shows(m, text) for m, text in zip(resent, owed[phone.wa_id], strict=False)] == [
            True, True]
        assert len(resent) == 2
    for phone in phones:
        assert fresh(await phone.type("hello?"), owed[phone.wa_id])
        everything = graph.messages_to(phone.wa_id)
        assert sum(shows(m, owed[phone.wa_id][0]) for m in everything) == 1  # the notice: once


def accept_button(phone: Phone) -> tuple[str, str]:
    """(reply kind, id as sent) of the Accept button of the newest offer the phone was shown."""
    for message in reversed(phone.meta.graph.messages_to(phone.wa_id)):
        interactive = message.get("interactive") or {}
        for button in (interactive.get("action") or {}).get("buttons", []):
            if button["reply"]["id"].rpartition("|")[2].startswith("ho:accept"):
                return "button_reply", button["reply"]["id"]
    raise AssertionError("no offer with an Accept button")


async def test_confidant_message_outside_the_window_is_owed_then_shown_first_once(
    start_whatsapp: StartWhatsApp, graph: GraphStub, app_factory: Any,
    settings_for: Any, smtp_server: Any, clock: Any, tmp_path: Path
) -> None:
    """Outside the 24-hour window a confidant's message to a WhatsApp client is an owed row stored
    with the confidant's update (it exists even when the channel relays nothing after the commit),
    the template announces it, and when the client writes the kept messages come first, in order,
    once each."""
    config = tmp_path / "organisation.toml"
    config.write_text(ORG, encoding="utf-8")
    app = await app_factory(settings_for(
        smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_tls="none", config=config,
        whatsapp_token=TOKEN, whatsapp_phone_number_id=PHONE_NUMBER_ID,
        whatsapp_app_secret=APP_SECRET, whatsapp_verify_token=VERIFY_TOKEN,
        whatsapp_api_base=graph.base, whatsapp_listen_port=free_port()))
    first = await start_whatsapp(app=app)
    client, confidant = Phone(first, wa_id="31611112222"), Phone(first, wa_id=CONFIDANT_NUMBER)

    await client.type("Hello")
    for button in ("lang_en", "sexual_harassment", "talk_not_tried", "pref_female", "anonymous",
                   "contact_chat"):
        await client.press(button)
    await client.type("A problem with a volunteer")
    await client.press("confirm")
    await confidant.press_raw(*accept_button(confidant))
    assert client.collect()  # connected
    await first.channel.marker.flush()
    assert await unsent_texts(app, client.wa_id) == []

    clock.advance(hours=25)  # the client's window is closed
    # As at shutdown: the channel sends nothing proactively after this, so a row that exists now
    # was stored in the confidant's own unit of work, not by the relay after the commit.
    first.channel.close()
    await confidant.type("Are you still there?")
    assert client.collect() == []
    kept = await unsent_texts(app, client.wa_id)
    assert len(kept) == 1 and "Are you still there?" in kept[0]
    await stop_whatsapp(first)

    second = await start_whatsapp(app=app)  # at start-up: the client's window is still closed
    second._ids = first._ids  # Meta's message ids go on (a repeated wamid would be a redelivery)
    client.meta = confidant.meta = second
    await confidant.type("I can help you today.")
    [template] = client.collect()
    assert template["type"] == "template"
    assert template["template"]["name"] == "klachtwijzer_update"
    kept = await unsent_texts(app, client.wa_id)
    assert [("Are you still there?" in kept[0]), ("I can help you today." in kept[1])] == [
        True, True]

    shown = await client.type("Yes, I am here")
    assert [shows(m, text) for m, text in zip(shown, kept, strict=False)] == [True, True]
    assert "Yes, I am here" in "\n".join(body(m) for m in confidant.collect())
    everything = graph.messages_to(client.wa_id)
    assert [sum(shows(m, text) for m in everything) for text in kept] == [1, 1]
    await second.channel.marker.flush()
    assert await unsent_texts(app, client.wa_id) == []
    again = await client.type("Hello?")  # in the live chat: relayed, nothing shown again
    assert not any(shows(m, text) for m in again for text in kept)
    assert "Hello?" in "\n".join(body(m) for m in confidant.collect())
