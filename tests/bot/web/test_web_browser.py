"""The web chat in a real headless Chromium (issue 13): a whole confidant request in Arabic with a
Telegram confidant and the mail on a real SMTP server, the server going away mid-chat, the return
code in a second browser, the widget on another site, axe-core in four languages, screenshots."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from flows.i18n import load_catalogs
from tests.bot.mailbox import complaint_json, mails
from tests.bot.telegram_stub import Sent
from tests.bot.test_telegram import Harness, make_harness, running, stub  # noqa: F401
from tests.bot.web.helpers import WebRun, running_web, serving
from tests.bot.whatsapp_helpers import free_port
from tests.browser import browser, needs_chromium, serious_violations

__all__ = ["browser"]

pytestmark = needs_chromium

FEMALE, MALE = 601, 602
ORG = f"""
name = "Steunpunt Vluchtelingen De Bilt"

[[confidants]]
gender = "female"
telegram = {FEMALE}

[[confidants]]
gender = "male"
telegram = {MALE}

[handoff]
timeout_minutes = 30
"""
PHOTO = b"\xff\xd8\xff\xe0JFIF-WEB-PHOTO" + bytes(range(256)) * 4
DOCS = Path(__file__).resolve().parents[3] / "docs"
AR = load_catalogs().get("ar")


@pytest.fixture
async def web_bot(running: Callable[..., Any], tmp_path: Path,  # noqa: F811
                  ) -> AsyncIterator[tuple[Harness, WebRun]]:
    """Telegram (ptb, polling, for the confidants) and the web chat on one app."""
    config = tmp_path / "web.toml"
    config.write_text(ORG, encoding="utf-8")
    h: Harness = await running("ptb", config=config, web_listen_port=free_port())
    async with running_web(h.a) as run:
        yield h, run


async def settled(page: Any) -> None:
    """Every message the page sent was acknowledged (its replies are shown before the ack)."""
    await page.wait_for_function("() => !document.querySelector('.kw-pending')", timeout=10_000)


async def bot_count(page: Any) -> int:
    return int(await page.locator(".kw-bot").count())


async def press(page: Any, button_id: str) -> None:
    await page.locator(f'button[data-button="{button_id}"]:not([disabled])').last.click()
    await settled(page)


async def type_text(page: Any, text: str) -> None:
    await page.locator(".kw-text").fill(text)
    await page.locator(".kw-text").press("Enter")
    await settled(page)


async def opened(page: Any, url: str) -> None:
    """The page, with the conversation's first question shown."""
    await page.goto(url)
    await page.locator('button[data-button="lang_ar"]').first.wait_for(timeout=10_000)


async def log_text(page: Any) -> str:
    return str(await page.locator(".kw-log").inner_text())


def offer_of(inbox: list[Sent]) -> Sent:
    [offer] = [s for s in inbox if any(b.startswith("ho:accept") for b in s.button_ids())]
    return offer


async def test_arabic_confidant_request_with_a_telegram_confidant_and_a_dropped_connection(
        web_bot: tuple[Harness, WebRun], browser: Any, smtp_server: Any) -> None:
    """In Arabic on /chat: a Schema B request with a female confidant; the mail with complaint.json
    reaches SMTP; the confidant answers on Telegram; the server goes away and comes back mid-chat
    with nothing lost or doubled; the return code opens the file in a second browser."""
    h, run = web_bot
    app, base = h.a, run.base
    t = AR
    context = await browser.new_context(viewport={"width": 360, "height": 740})
    page = await context.new_page()
    await opened(page, base + "/chat?lang=ar")
    assert await page.evaluate("[document.documentElement.lang, document.documentElement.dir]") == [
        "ar", "rtl"]
    for button in ("lang_ar", "sexual_harassment", "talk_not_tried", "pref_female", "anonymous",
                   "contact_chat"):
        await press(page, button)
    await type_text(page, "مشكلة مع متطوع")
    await press(page, "confirm")
    receipt = await log_text(page)
    assert re.search(r"KW-2026-\d{6}", receipt)
    code = await page.locator(".kw-code").inner_text()
    assert re.fullmatch(r"[A-Z0-9]{4}(-[A-Z0-9]{4}){3}", code)
    assert await page.locator(".kw-code").get_attribute("dir") == "ltr"
    await page.screenshot(path=str(DOCS / "webchat-ar.png"))

    # The mail with complaint.json, on the real SMTP server.
    await app.worker.run_once()
    [mail] = mails(smtp_server)
    doc = complaint_json(mail)
    assert (doc["kind"], doc["schema"], doc["confidant_preference"], doc["language"],
            doc["channel"]) == ("confidant_request", "B", "female", "ar", "web")
    assert doc["description"] == "مشكلة مع متطوع"

    # The female confidant gets the offer on Telegram and accepts; the web texts say anonymous.
    anna = h.person(FEMALE, "nl", "Anna")
    offer = offer_of(anna.inbox())
    nl = app.catalogs.get("nl")
    assert nl._("The client uses the web chat on the website, without an account. They are "
                "anonymous to you, and they do not see your account.") in (offer.text or "")
    before = await bot_count(page)
    await anna.press(offer.button_ids()[0])
    await page.wait_for_function(f"() => document.querySelectorAll('.kw-bot').length > {before}")
    connected = await log_text(page)
    assert "هذه الدردشة مجهولة الهوية" in connected  # "This chat is anonymous"
    assert "Telegram" not in connected and "WhatsApp" not in connected
    assert await page.locator('button[data-button^="ho:share"]').count() == 0

    await type_text(page, "أحتاج مساعدة")
    await h.c.idle()
    assert "أحتاج مساعدة" in (anna.inbox()[-1].text or "")

    # A photo from the browser reaches the confidant on Telegram, byte for byte; hers reaches the
    # page as an image; neither is kept once passed on.
    mine = await page.locator(".kw-me").count()
    await page.locator("#kw-file").set_input_files(
        files=[{"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": PHOTO}])
    await page.wait_for_function(f"() => document.querySelectorAll('.kw-me').length > {mine}")
    await settled(page)
    await h.c.idle()
    assert (anna.inbox()[-1].kind, anna.inbox()[-1].data) == ("photo", PHOTO)
    await anna.file("photo", PHOTO)
    await page.locator(".kw-img").wait_for(timeout=10_000)
    assert await page.locator(".kw-img").evaluate("img => img.src.startsWith('blob:')")
    await asyncio.sleep(0.2)
    assert list((app.settings.data_dir / "files").glob("*")) == []

    # The server goes away: the page says it is offline; what is written meanwhile, both ways,
    # arrives once when it is back.
    await run.halt()
    await page.locator(".kw-offline").wait_for(timeout=10_000)
    assert t._("Offline. We will send your messages when you are back online.") in (
        await page.locator(".kw-status").inner_text())
    await page.locator(".kw-text").fill("هل ما زلتِ هنا؟")
    await page.locator(".kw-text").press("Enter")
    assert await page.locator(".kw-pending").count() == 1
    await anna.say("Ik ben er. Wat is er gebeurd?")
    await run.resume()
    await page.locator(".kw-status").filter(has_text=t._("Connected.")).wait_for(timeout=20_000)
    await settled(page)
    await page.get_by_text("Ik ben er. Wat is er gebeurd?").wait_for(timeout=10_000)
    shown = await log_text(page)
    assert shown.count("Ik ben er. Wat is er gebeurd?") == 1
    assert [s.text for s in anna.inbox()].count(
        next(s.text for s in anna.inbox() if "هل ما زلتِ هنا؟" in (s.text or ""))) == 1
    # A reload shows the tab's conversation again, and no message twice: what was acknowledged
    # is not sent again.
    await page.reload()
    await page.locator(".kw-status").filter(has_text=t._("Connected.")).wait_for()
    await asyncio.sleep(0.3)
    assert (await log_text(page)).count("Ik ben er. Wat is er gebeurd?") == 1

    # The return code, in a second browser: the file is readable there.
    other = await browser.new_context()
    second = await other.new_page()
    await opened(second, base + "/chat?lang=ar")
    await second.locator(".kw-menu-button").click()
    await second.locator("#kw-code-input").fill(code.lower().replace("-", " "))
    await second.locator("#kw-code-input").press("Enter")
    await second.get_by_text(t._('Welcome back. You can continue your conversation here. '
                                 'Press "My file" to read your file.')).wait_for()
    await second.locator(".kw-menu-button").click()
    await second.locator('button[data-command="dossier"]').click()
    await settled(second)
    assert "مشكلة مع متطوع" in await log_text(second)
    await other.close()
    await context.close()


async def test_widget_on_another_site_and_refused_on_a_site_not_allowed(
        settings_for: Callable[..., Any], app_factory: Callable[..., Any], browser: Any) -> None:
    """The one-tag widget works on an allowed site under a strict CSP (Ukrainian, own colour),
    and a site not in WEB_ALLOWED_ORIGINS gets no conversation."""
    site_port, stranger_port = free_port(), free_port()
    app = await app_factory(settings_for(
        web_listen_port=free_port(), web_allowed_origins=f"http://127.0.0.1:{site_port}"))
    async with serving(app) as base:
        async def host_page(request: web.Request) -> web.Response:
            body = ('<!doctype html><html lang="uk"><head><meta charset="utf-8"><title>Сайт</title>'
                    '</head><body><main><h1>Організація</h1><p>Текст.</p></main>'
                    f'<script src="{base}/widget.js" data-organisation="de-bilt" '
                    'data-language="uk" data-colour="#005a32"></script></body></html>')
            csp = (f"default-src 'self'; script-src {base}; style-src {base}; "
                   f"connect-src {base} {base.replace('http', 'ws')}")
            return web.Response(text=body, content_type="text/html",
                                headers={"Content-Security-Policy": csp})

        servers = []
        for port in (site_port, stranger_port):
            site = web.Application()
            site.router.add_get("/", host_page)
            server = TestServer(site, host="127.0.0.1", port=port)
            await server.start_server()
            servers.append(server)
        try:
            page = await browser.new_page(viewport={"width": 360, "height": 740})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await page.goto(f"http://127.0.0.1:{site_port}/")
            launcher = page.locator(".kw-launcher")
            uk = app.catalogs.get("uk")
            assert await launcher.inner_text() == uk._("Chat with us")
            await launcher.click()
            await page.locator('button[data-button="lang_uk"]').wait_for(timeout=10_000)
            await press(page, "lang_uk")
            assert "Українська" in await log_text(page) or await bot_count(page) >= 2
            assert await page.locator(".kw").get_attribute("lang") == "uk"
            # The host page's strict CSP (no inline anything) was enough for the widget.
            assert not [e for e in errors if "Content Security Policy" in e], errors
            colour = await page.locator(".kw-launcher").evaluate(
                "e => getComputedStyle(e).backgroundColor")
            assert colour == "rgb(0, 90, 50)"
            assert await serious_violations(page) == []

            refused = await browser.new_page()
            await refused.goto(f"http://127.0.0.1:{stranger_port}/")
            await refused.locator(".kw-launcher").click()
            await refused.locator(".kw-offline").wait_for()
            await asyncio.sleep(1.0)
            assert await bot_count(refused) == 0
            assert uk._("Offline. We will send your messages when you are back online.") in (
                await refused.locator(".kw-status").inner_text())
        finally:
            for server in servers:
                await server.close()


@pytest.mark.parametrize("language", ["nl", "uk", "ar", "en"])
async def test_chat_page_is_accessible(language: str, settings_for: Callable[..., Any],
                                       app_factory: Callable[..., Any], browser: Any) -> None:
    """axe-core finds no serious or critical fault on /chat, with a question and its buttons and
    the menu open, in each language; lang and dir follow the language."""
    app = await app_factory(settings_for(web_listen_port=free_port()))
    async with serving(app) as base:
        page = await browser.new_page(viewport={"width": 360, "height": 740})
        await opened(page, f"{base}/chat?lang={language}")
        await press(page, f"lang_{language}")
        await page.locator(".kw-menu-button").click()
        assert await serious_violations(page) == []
        assert await page.evaluate("document.documentElement.dir") == (
            "rtl" if language == "ar" else "ltr")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"the page is {width} px wide at 360"
        if language == "uk":
            await page.locator(".kw-menu-button").click()
            await page.screenshot(path=str(DOCS / "webchat-uk.png"))
