"""The confidant chat across messengers: a WhatsApp client and a Telegram confidant, with the REAL
python-telegram-bot adapter on the Bot API stand-in and the REAL WhatsApp webhook on the Graph API
stand-in, in one process, one database (issue 10, item 2)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.channels.whatsapp import run_whatsapp
from bot.root.app import App
from tests.bot.graph_stub import GraphStub
from tests.bot.telegram_stub import Sent
from tests.bot.test_telegram import Harness, make_harness, running, stub  # noqa: F401
from tests.bot.whatsapp_helpers import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    Meta,
    Phone,
    free_port,
)
from tests.bot.whatsapp_helpers import TOKEN as WA_TOKEN

FEMALE_1, FEMALE_2, MALE = 501, 502, 503
CLIENT_NUMBER = "31611112222"
CONFIDANT_NUMBER = "31633334444"  # Bea's WhatsApp: she gets the offer there too
ORG = f"""
name = "Steunpunt Vluchtelingen De Bilt"

[[confidants]]
gender = "female"
telegram = {FEMALE_1}

[[confidants]]
gender = "female"
telegram = {FEMALE_2}
whatsapp = "+{CONFIDANT_NUMBER}"

[[confidants]]
gender = "male"
telegram = {MALE}

[whatsapp]
template = "klachtwijzer_update"

[handoff]
timeout_minutes = 30
"""
PHOTO = b"\xff\xd8\xff\xe0JFIF-CLIENT-PHOTO" + bytes(range(256)) * 4
VOICE = b"OggS\x00\x02CONFIDANT-VOICE" + bytes(range(255, -1, -1)) * 4


@pytest.fixture
async def both(running: Callable[..., Any], graph: GraphStub,  # noqa: F811
               tmp_path: Path) -> AsyncIterator[tuple[Harness, Meta]]:
    """Telegram (ptb, polling) and WhatsApp running on one app."""
    config = tmp_path / "crossing.toml"
    config.write_text(ORG, encoding="utf-8")
    h: Harness = await running(
        "ptb", config=config, whatsapp_token=WA_TOKEN, whatsapp_phone_number_id=PHONE_NUMBER_ID,
        whatsapp_app_secret=APP_SECRET, whatsapp_verify_token=VERIFY_TOKEN,
        whatsapp_api_base=graph.base, whatsapp_listen_port=free_port())
    app: App = h.a
    stop = asyncio.Event()
    task = asyncio.create_task(run_whatsapp(app, stop))
    async with aiohttp.ClientSession() as session:
        meta = Meta(app, graph, f"http://127.0.0.1:{app.settings.whatsapp_listen_port}/webhook",
                    session, stop, task)
        for _ in range(500):
            assert not task.done(), task.exception()
            try:
                await meta.verify()
                break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.01)
        yield h, meta
        stop.set()
        await task


def raw_button(phone: Phone, button_id: str) -> tuple[str, str]:
    """(reply kind, id as sent) of a button the phone was ever shown (newest first)."""
    for message in reversed(phone.meta.graph.messages_to(phone.wa_id)):
        interactive = message.get("interactive") or {}
        for button in (interactive.get("action") or {}).get("buttons", []):
            if button["reply"]["id"].rpartition("|")[2] == button_id:
                return "button_reply", button["reply"]["id"]
    raise AssertionError(f"{button_id!r} was never shown")


def bodies(messages: list[dict[str, Any]]) -> list[str]:
    out = []
    for m in messages:
        if m["type"] == "text":
            out.append(m["text"]["body"])
        elif m["type"] == "interactive":
            out.append(m["interactive"]["body"]["text"])
        else:
            out.append(f"[{m['type']}]")
    return out


def offer_of(inbox: list[Sent]) -> Sent:
    [offer] = [s for s in inbox if any(b.startswith("ho:accept") for b in s.button_ids())]
    return offer


async def test_whatsapp_client_and_telegram_confidant_chat_live(
    both: tuple[Harness, Meta], graph: GraphStub, smtp_server: Any
) -> None:
    """A WhatsApp client chats live with a Telegram confidant: offer, accept, text both ways, a photo
    and a voice note crossing the two APIs byte for byte, the 24-hour window, share, end, /dossier."""
    h, meta = both
    app = h.a
    t, nl = app.catalogs.get("ar"), app.catalogs.get("nl")
    phone = Phone(meta, wa_id=CLIENT_NUMBER)
    anna, bea, carl = (h.person(FEMALE_1, "nl", "Anna"), h.person(FEMALE_2, "nl", "Bea"),
                       h.person(MALE, "nl", "Carl"))
    log: list[str] = []

    # The request, on WhatsApp, in Arabic: a female confidant, to chat here.
    await phone.type("مرحبا")
    for button in ("lang_ar", "sexual_harassment", "talk_not_tried", "pref_female", "anonymous",
                   "contact_chat"):
        await phone.press(button)
    await phone.type("مشكلة مع متطوع")
    waiting = bodies(await phone.press("confirm"))
    log += [f"-> client (WhatsApp): {b}" for b in waiting]
    assert any(t.ngettext(
        "We are now looking for a confidant ({preference}) who can chat with you here. Please "
        "wait. This can take up to {minutes} minute.",
        "We are now looking for a confidant ({preference}) who can chat with you here. Please "
        "wait. This can take up to {minutes} minutes.", 30).format(
        preference=t._("a woman"), minutes=30) in b for b in waiting)

    # Offers: every address of the female confidants (Telegram both, Bea's WhatsApp too).
    offer_a, offer_b = offer_of(anna.inbox()), offer_of(bea.inbox())
    assert [s for s in carl.inbox() if "ho:accept" in str(s.button_ids())] == []
    crossing = nl._("The client uses WhatsApp. You do not see their phone number, and they do "
                    "not see your account.")
    assert crossing in (offer_b.text or "") and CLIENT_NUMBER not in (offer_b.text or "")
    assert "مشكلة مع متطوع" in (offer_b.text or "")
    on_whatsapp = graph.messages_to(CONFIDANT_NUMBER)
    assert [m["type"] for m in on_whatsapp] == ["interactive"]
    log.append(f"-> confidant B (Telegram): {offer_b.text} [Accept]")

    # Bea accepts on Telegram: first accept wins; Anna's offer closes; the client is connected.
    accepted = await bea.press(offer_b.button_ids()[0])
    log += [f"-> confidant B (Telegram): {s.text}" for s in accepted]
    assert crossing in (accepted[0].text or "")
    await h.c.idle()
    assert offer_a.keyboard == []
    connected = bodies(phone.collect())
    log += [f"-> client (WhatsApp): {b}" for b in connected]
    assert t._(
        "{confidant} is now connected with you. What you write here now goes to your "
        "confidant. Your confidant does not see your name or phone number, unless you "
        "share your name. Note: WhatsApp (Meta) still knows your phone number and the "
        "number of the organisation.\n"
        "To stop, press the button or type /end.").format(
        confidant=t._("Your confidant (a woman)")) in connected[0]
    assert not any("Telegram" in b for b in connected)
    hid = int(_end_id(phone).rpartition(":")[2])

    # Text both ways.
    await phone.type("أحتاج مساعدة")
    assert "أحتاج مساعدة" in (bea.inbox()[-1].text or "")
    log.append(f"-> confidant B (Telegram): {bea.inbox()[-1].text}")
    await bea.say("Ik ben er. Wat is er gebeurd?")
    [relayed] = bodies(phone.collect())
    log.append(f"-> client (WhatsApp): {relayed}")
    assert relayed == t._("Your confidant (a woman)") + ": \u2068Ik ben er. Wat is er gebeurd?\u2069"

    # A photo from the client (Graph media download) reaches Bea (Bot API sendPhoto), same bytes.
    await phone.send_media("image", "media-photo-1", PHOTO, "image/jpeg")
    assert (bea.inbox()[-1].kind, bea.inbox()[-1].data) == ("photo", PHOTO)
    log.append(f"-> confidant B (Telegram): [photo] {bea.inbox()[-1].caption}")
    # A voice note from Bea (Bot API getFile) reaches the client (Graph upload), same bytes.
    await bea.file("voice", VOICE)
    voice = phone.collect()
    assert [m["type"] for m in voice] == ["text", "audio"]
    assert (graph.upload_of(voice[1]).data, graph.upload_of(voice[1]).mime_type) == (
        VOICE, "audio/ogg")
    log += [f"-> client (WhatsApp): {b}" for b in bodies(voice)]
    assert list((app.settings.data_dir / "files").glob("*")) == []  # relayed files are not kept

    # 25 hours later the window is closed: Bea's message is kept, the template announces it,
    # and it is shown first when the client writes.
    h.clock.advance(hours=25)
    await bea.say("Bent u er nog?")
    [template] = phone.collect()
    assert template["type"] == "template"
    assert template["template"]["name"] == "klachtwijzer_update"
    log.append("-> client (WhatsApp): [template klachtwijzer_update]")
    await phone.type("نعم")
    shown = bodies(phone.last)
    log += [f"-> client (WhatsApp): {b}" for b in shown]
    assert "Bent u er nog?" in shown[0]
    assert "نعم" in (bea.inbox()[-1].text or "")

    # The client shares their WhatsApp name (the profile name Meta sends); Bea sees it.
    await phone.press_raw(*raw_button(phone, f"ho:share:{hid}"))
    assert bea.inbox()[-1].text == nl._("{client} shared their WhatsApp name with you: {name}").format(
        client=nl._("Client {code}").format(code=_pseudonym(offer_b)), name=nl.quote("Test"))
    log.append(f"-> confidant B (Telegram): {bea.inbox()[-1].text}")
    log += [f"-> client (WhatsApp): {b}" for b in bodies(phone.last)]

    # Bea ends it; the client is told what WhatsApp still knows, and keeps the text.
    ended = await bea.say("/end")
    log += [f"-> confidant B (Telegram): {s.text}" for s in ended]
    end_text = bodies(phone.collect())
    log += [f"-> client (WhatsApp): {b}" for b in end_text]
    assert t._("We did not show your phone number to the confidant. But WhatsApp (Meta) still "
               "knows your phone number and the number of the organisation.") in end_text[-1]
    assert not any("Telegram" in b for b in end_text)
    await phone.press_raw(*raw_button(phone, f"ho:keep:{hid}"))
    dossier = "\n".join(bodies(await phone.type("/dossier")))
    log.append(f"-> client (WhatsApp) /dossier: {dossier}")
    you, her = t._("You"), t._("Your confidant")
    assert "\n".join([
        f"– {you}: {t.quote('أحتاج مساعدة')}",
        f"– {her}: {t.quote('Ik ben er. Wat is er gebeurd?')}",
        f"– {you}: {t._('(a photo)')}",
        f"– {her}: {t._('(a voice message)')}",
        f"– {her}: {t.quote('Bent u er nog?')}",
        f"– {you}: {t.quote('نعم')}",
        f"– {you}: {t._('(name shared)')}",
    ]) in dossier
    if os.environ.get("KW_TRANSCRIPT"):
        await asyncio.to_thread(Path(os.environ["KW_TRANSCRIPT"]).write_text, "\n".join(log),
                                "utf-8")


def _pseudonym(offer: Sent) -> str:
    """The client's pseudonym code, from the line "Client: K7QM" of an offer."""
    for line in (offer.text or "").splitlines():
        if line.startswith("Client: ") or line.startswith("Cliënt: "):
            return line.split(": ", 1)[1]
    raise AssertionError("no pseudonym in the offer")


def _end_id(phone: Phone) -> str:
    """The handoff's End button id, from the connected notice."""
    for message in reversed(phone.meta.graph.messages_to(phone.wa_id)):
        for button in ((message.get("interactive") or {}).get("action") or {}).get("buttons", []):
            button_id = button["reply"]["id"].rpartition("|")[2]
            if button_id.startswith("ho:end:"):
                return button_id
    raise AssertionError("no End button")
