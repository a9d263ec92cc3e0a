"""The confidant's chat in the desk with a WhatsApp client (issue 12, done-when): the REAL WhatsApp
adapter on the Graph API stand-in, the real desk on a loopback port. Files both ways (a photo shown
in the page, a voice note, a document to download; the confidant's upload relayed as a WhatsApp
image), live updates without a click, local times, and every refusal of the file route and the
upload; in a real Chromium with axe-core in Dutch and Arabic."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from PIL import Image, ImageDraw

from bot.desk import DeskConfig, build_desk
from bot.desk.security import Throttle
from bot.desk.web import DESK
from bot.root.app import App
from tests.bot.desk.conftest import PASSWORD, Browserless, Desk, Person
from tests.bot.graph_stub import GraphStub
from tests.bot.whatsapp_helpers import (
    APP_SECRET,
    OGG_VOICE,
    PHONE_NUMBER_ID,
    TOKEN,
    VERIFY_TOKEN,
    Meta,
    Phone,
    StartWhatsApp,
    free_port,
)
from tests.browser import browser, needs_chromium, serious_violations
from tests.conftest import Clock

__all__ = ["browser"]

DOCS = Path(__file__).resolve().parents[3] / "docs"
CLIENT = "31655501234"
LIMIT = 300_000  # KLACHTWIJZER_MAX_ATTACHMENT_BYTES for these tests
ORG = """
name = "Steunpunt Vluchtelingen De Bilt"

[[confidants]]
gender = "female"
desk = "bea@desk.test"

[[confidants]]
gender = "female"
desk = "cora@desk.test"

[whatsapp]
template = "klachtwijzer_update"
"""
FILE_LINK = re.compile(r'/chat/file/(\d+)"')
HIDE = ("() => {{ Object.defineProperty(document, 'hidden', {{value: {hidden}, configurable: true}});"
        " document.dispatchEvent(new Event('visibilitychange')); }}")


def picture(colour: str, fmt: str, text: str) -> bytes:
    """A small, harmless picture (a window with a plant), really decodable by a browser."""
    image = Image.new("RGB", (240, 160), "#e8f1f8")
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 20, 200, 120), outline="#1d5f8a", width=6)
    draw.line((120, 20, 120, 120), fill="#1d5f8a", width=4)
    draw.ellipse((95, 95, 145, 150), fill=colour)
    draw.text((10, 140), text, fill="#1b1f23")
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


PHOTO = picture("#3f8f3f", "JPEG", "client")
REPLY_PHOTO = picture("#b5651d", "PNG", "confidant")


@pytest.fixture
async def running(app_factory: Any, settings_for: Any, smtp_server: Any, graph: GraphStub,
                  start_whatsapp: StartWhatsApp, clock: Clock,
                  tmp_path: Path) -> AsyncIterator[tuple[App, Meta, Desk]]:
    """WhatsApp (the real `run_whatsapp`) and the desk on one app, with two desk confidants."""
    config = tmp_path / "desk-whatsapp.toml"
    config.write_text(ORG, encoding="utf-8")
    settings = settings_for(
        smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_tls="none", config=config,
        whatsapp_token=TOKEN, whatsapp_phone_number_id=PHONE_NUMBER_ID,
        whatsapp_app_secret=APP_SECRET, whatsapp_verify_token=VERIFY_TOKEN,
        whatsapp_api_base=graph.base, whatsapp_listen_port=free_port(),
        max_attachment_bytes=LIMIT)
    app: App = await app_factory(settings)
    meta = await start_whatsapp(app=app)
    server = TestServer(build_desk(app, DeskConfig(), Throttle()), host="127.0.0.1")
    await server.start_server()
    desk_config = DeskConfig(listen_port=server.port or 0)
    server.app[DESK].config = desk_config
    try:
        yield app, meta, Desk(server, desk_config, app, clock)
    finally:
        await server.close()


async def ask_for_a_confidant(meta: Meta) -> Phone:
    """A client on WhatsApp asks for a female confidant to chat with, here."""
    phone = Phone(meta, wa_id=CLIENT)
    await phone.type("Hallo")
    for button in ("lang_nl", "sexual_harassment", "talk_not_tried", "pref_female", "anonymous",
                   "contact_chat"):
        await phone.press(button)
    await phone.type("Een vraag over de opvang")
    await phone.press("confirm")
    return phone


async def upload(client: Browserless, data: bytes, name: str, mime: str, *,
                 csrf: str | None = None) -> tuple[int, str]:
    """The upload form as a browser posts it (multipart/form-data, token first)."""
    form = aiohttp.FormData()
    form.add_field("csrf", client.csrf if csrf is None else csrf)
    form.add_field("file", data, filename=name, content_type=mime)
    async with client.session.post(client.desk.url("/chat/upload"), data=form,
                                   allow_redirects=False) as response:
        text = (await response.read()).decode("utf-8", "replace")
        return response.status, response.headers.get("Location", "") or text


async def audit(app: App) -> list[Any]:
    async with app.db.unit_of_work(read_only=True) as uow:
        return list(await uow.audit.list(1000))


async def test_files_both_ways_and_every_refusal_over_http(
        running: tuple[App, Meta, Desk], graph: GraphStub) -> None:
    """Bea accepts (audited as her desk account), sees the client's photo, voice note and
    document with local times; the file route answers only her, only while the chat is active
    (another confidant, a secretary, a stranger, a forged id, a finished chat: refused, audited);
    her upload is sniffed and relayed to WhatsApp; too big, wrong type, empty, no token: refused
    with one line; a poll for another chat marks nothing sent."""
    app, meta, desk = running
    bea, cora = (await desk.person("bea@desk.test", "confidant"),
                 await desk.person("cora@desk.test", "confidant"))
    secretary = await desk.person("sec@desk.test", "secretary")
    async with contextlib.AsyncExitStack() as stack:
        b, c, s, stranger = [Browserless(desk, await stack.enter_async_context(
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)))) for _ in range(4)]
        for client, person in ((b, bea), (c, cora), (s, secretary)):
            assert (await client.login(person))[0] == 303
        await _chat_over_http(app, meta, desk, graph, b, c, s, stranger)


async def _chat_over_http(app: App, meta: Meta, desk: Desk, graph: GraphStub, b: Browserless,
                          c: Browserless, s: Browserless, stranger: Browserless) -> None:
    phone = await ask_for_a_confidant(meta)
    requests = (await b.get("/requests"))[1]
    assert "22-11-2026 10:3" in requests  # 09:3x UTC, shown in Amsterdam time
    number = re.search(r'action="/requests/(\d+)/accept"', requests)
    assert number
    assert await b.post(f"/requests/{number.group(1)}/accept") == (303, "/chat")
    accepted = [a.actor for a in await audit(app) if a.action == "handoff_accepted"]
    assert accepted == [await _account(app, "bea@desk.test")]

    await phone.send_media("image", "media-photo-1", PHOTO, "image/jpeg")
    await phone.send_media("audio", "media-voice-1", OGG_VOICE, "audio/ogg", voice=True)
    await phone.send_media("document", "media-doc-1", b"<html><script>alert(1)</script>",
                           "text/html", filename="brief.html")
    await phone.type("Dit is de foto van de kamer")
    chat = (await b.get("/chat"))[1]
    photo_id, voice_id, doc_id = _file_ids(chat)
    assert re.search(r"\b10:3\d\b", chat) and "09:3" not in chat
    assert '<img src="/chat/file/' in chat and "<audio controls" in chat and " download>" in chat
    for path in (f"/chat/file/{photo_id}", f"/chat/file/{voice_id}", f"/chat/file/{doc_id}"):
        assert "ref" not in path

    async with b.session.get(desk.url(f"/chat/file/{photo_id}")) as response:
        assert response.status == 200 and await response.read() == PHOTO
        assert response.headers["Content-Type"] == "image/jpeg"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
    async with b.session.get(desk.url(f"/chat/file/{voice_id}")) as response:
        assert response.status == 200 and response.headers["Content-Type"] == "audio/ogg"
    async with b.session.get(desk.url(f"/chat/file/{doc_id}")) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.headers["Content-Disposition"].startswith("attachment;")
    opened = [a for a in await audit(app) if a.action == "desk_download"]
    assert len(opened) == 3 and all(a.reference and a.reference.startswith("KW-") for a in opened)
    reference = opened[0].reference

    # Refused: another confidant, a secretary, a stranger, forged ids.
    before = len([a for a in await audit(app) if a.action == "desk_forbidden"])
    assert (await c.get(f"/chat/file/{photo_id}"))[0] == 404
    assert (await s.get(f"/chat/file/{photo_id}"))[0] == 403
    assert await stranger.get(f"/chat/file/{photo_id}") == (303, "/login")
    for forged in ("999999", "abc", "-1", "1" * 40):
        status, body = await b.get(f"/chat/file/{forged}")
        assert status == 404 and "niet in uw gesprek" in body, forged
    refused = [a for a in await audit(app) if a.action == "desk_forbidden"]
    assert len(refused) == before + 6

    # A poll for a chat the page does not show marks nothing sent; one for this chat shows all.
    await phone.type("Bent u er nog?")
    async with app.db.unit_of_work(read_only=True) as uow:
        owed = await uow.owed.unsent_for_chat("desk", "bea@desk.test")
    assert owed
    async with b.session.get(desk.url("/chat/updates?chat=0&after=0")) as response:
        assert (await response.json()) == {"reload": True}
    async with app.db.unit_of_work(read_only=True) as uow:
        assert len(await uow.owed.unsent_for_chat("desk", "bea@desk.test")) == len(owed)
    chat_id = int(re.search(r'data-chat="(\d+)"', chat).group(1))  # type: ignore[union-attr]
    async with b.session.get(desk.url(f"/chat/updates?chat={chat_id}&after={doc_id}")) as response:
        update = await response.json()
    assert "Bent u er nog?" in update["messages"] and update["say"]
    assert all("Bent u er nog?" not in n for n in update["notices"])

    # The confidant's files: sniffed, too big, wrong type, empty, no token.
    status, body = await upload(b, b"\x89PNG\r\n\x1a\n" + b"\0" * LIMIT, "groot.png", "image/png")
    assert status == 413 and "te groot" in body and "0,3" in body
    status, body = await upload(b, b"MZ\x90\x00 not a picture", "foto.jpg", "image/jpeg")
    assert status == 415 and "kan niet worden verstuurd" in body
    status, body = await upload(b, b"", "leeg.png", "image/png")
    assert status == 400 and "Kies een foto" in body
    status, _body = await upload(b, REPLY_PHOTO, "foto.png", "image/png", csrf="")
    assert status == 403
    sent_before = len(graph.messages_to(CLIENT))
    assert graph.uploaded == []
    await b.get("/chat")
    assert await upload(b, REPLY_PHOTO, "foto.png", "image/png") == (303, "/chat")
    [media_id] = graph.uploaded
    assert graph.media[media_id].data == REPLY_PHOTO and graph.media[media_id].mime_type == "image/png"
    [image] = [m for m in graph.messages_to(CLIENT)[sent_before:] if m["type"] == "image"]
    assert image["image"]["id"] == media_id

    # A finished chat: nothing to open, and the files the desk showed are gone.
    refs = await _refs(app, chat_id)
    assert refs and all(app.files.exists(r) for r in refs)
    assert await b.post("/chat/end") == (303, "/requests")
    assert (await b.get(f"/chat/file/{photo_id}"))[0] == 404
    assert not any(app.files.exists(r) for r in refs)
    assert any(a.action == "desk_forbidden" and a.reference == reference
               for a in await audit(app))


def _file_ids(page: str) -> list[int]:
    ids: list[int] = []
    for found in FILE_LINK.findall(page):
        if int(found) not in ids:
            ids.append(int(found))
    return ids


async def _account(app: App, email: str) -> str:
    async with app.db.unit_of_work(read_only=True) as uow:
        account = await uow.staff.by_email(email)
    assert account is not None
    return account.actor


async def _refs(app: App, handoff_id: int) -> list[str]:
    async with app.db.unit_of_work(read_only=True) as uow:
        return [str(m.body["ref"]) for m in await uow.handoffs.messages(handoff_id)
                if m.sender == "client" and m.body.get("ref")]


async def _login(page: Any, desk: Desk, person: Person) -> None:
    await page.goto(desk.url("/login"))
    await page.fill("#email", person.email)
    await page.fill("#password", PASSWORD)
    await page.fill("#code", person.code(desk.clock))
    await page.click("main button[type=submit]")
    desk.clock.advance(seconds=31)


@needs_chromium
async def test_a_whatsapp_client_and_a_desk_confidant_chat_with_photos_in_a_browser(
        running: tuple[App, Meta, Desk], graph: GraphStub, browser: Any) -> None:
    """In Chromium: the request appears without a click, Bea accepts; the client's photo and
    words appear live (the picture really loads), her words and her photo reach the client's
    WhatsApp (media upload, image message); axe-core finds nothing serious in Dutch and Arabic,
    no CSP rule is broken; a hidden tab does not poll."""
    _app, meta, desk = running
    bea = await desk.person("bea@desk.test", "confidant")
    page = await browser.new_page(viewport={"width": 1100, "height": 900})
    page.set_default_timeout(15000)
    csp: list[str] = []
    page.on("console", lambda m: csp.append(m.text) if "Content Security" in m.text else None)
    await _login(page, desk, bea)
    assert page.url.endswith("/requests")
    assert await page.locator("main table").count() == 0

    phone = await ask_for_a_confidant(meta)
    await page.wait_for_selector("main table button[type=submit]")  # no Refresh clicked
    assert await serious_violations(page) == [] and csp == []
    await page.click("main table button[type=submit]")
    assert page.url.endswith("/chat")
    phone.collect()
    assert "verbonden" in phone.text()

    await phone.type("Goedemiddag. Ik stuur een foto van mijn kamer.")
    await phone.send_media("image", "media-photo-2", PHOTO, "image/jpeg")
    await phone.send_media("audio", "media-voice-2", OGG_VOICE, "audio/ogg", voice=True)
    await page.wait_for_selector("ol.thread img.photo")
    await page.wait_for_function(
        "() => { const i = document.querySelector('ol.thread img.photo');"
        " return i && i.complete && i.naturalWidth > 0; }")
    assert "Ik stuur een foto" in await page.inner_text("ol.thread")
    assert await page.locator("ol.thread audio[controls]").count() == 1
    await page.wait_for_function(  # read out by screen readers (a polite live region)
        "() => document.getElementById('live-say').textContent.includes('Cliënt')")

    await page.fill("#chat-text", "Dank u. Ik zie de foto. Ik stuur u een plattegrond.")
    await page.click("form[action='/chat/send'] button")
    sent = len(graph.messages_to(CLIENT))
    await page.set_input_files("#chat-file", files=[{
        "name": "plattegrond.png", "mimeType": "image/png", "buffer": REPLY_PHOTO}])
    await page.click("form[action='/chat/upload'] button")
    assert page.url.endswith("/chat")
    texts = [m["text"]["body"] for m in graph.messages_to(CLIENT) if m["type"] == "text"]
    assert any("Ik zie de foto" in t for t in texts)
    [image] = [m for m in graph.messages_to(CLIENT)[sent:] if m["type"] == "image"]
    assert graph.media[image["image"]["id"]].data == REPLY_PHOTO

    await phone.type("Ontvangen, dank u wel.")
    await page.wait_for_function(
        "() => document.querySelector('ol.thread').innerText.includes('Ontvangen, dank u wel.')")
    await page.wait_for_function(
        "() => { const i = document.querySelector('ol.thread img.photo');"
        " return i && i.complete && i.naturalWidth > 0; }")
    assert await serious_violations(page) == [] and csp == []
    await page.screenshot(path=str(DOCS / "desk-chat.png"), full_page=True)
    await page.select_option("#lang-choice", "ar")
    await page.click("form.lang button")
    assert await page.evaluate("document.documentElement.dir") == "rtl"
    await page.wait_for_function(
        "() => { const i = document.querySelector('ol.thread img.photo');"
        " return i && i.complete && i.naturalWidth > 0; }")
    assert await serious_violations(page) == [] and csp == []

    # A hidden tab does not poll; shown again, it polls at once.
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/chat/updates" in r.url else None)
    await page.evaluate(HIDE.format(hidden="true"))
    await page.wait_for_timeout(500)  # a poll that was on its way
    polls.clear()
    await page.wait_for_timeout(8500)  # two turns of the poll
    assert polls == []
    await page.evaluate(HIDE.format(hidden="false"))
    await page.wait_for_timeout(1000)
    assert polls
