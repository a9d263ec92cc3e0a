"""The desk's remaining work in a real headless browser (Debian's Chromium through Playwright): a
secretary asks the client for information and reads the answer; a coordinator enrols, enters a
signal with the keyboard and finds it in the figures; an administrator invites someone. axe-core
on every new page in Dutch and Arabic; the screenshots in docs/ come from here."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyotp

from bot.desk import invite_account
from bot.desk.web import DESK
from bot.root.app import App
from bot.services.register import add_case
from flows.model import Choice
from tests.bot.desk.conftest import PASSWORD, Desk
from tests.bot.desk.test_desk_browser import _clean, _language, _login
from tests.bot.register_helpers import RecordingChannel, file_complaint
from tests.browser import browser, needs_chromium

__all__ = ["browser"]

DOCS = Path(__file__).resolve().parents[3] / "docs"
QUESTION = "Op welke datum gebeurde het precies?"
ANSWER = "Het was op dinsdag 3 november, rond de middag."


async def _page(browser: Any, width: int = 1200, height: int = 900) -> tuple[Any, list[str]]:
    page = await browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(5000)
    csp: list[str] = []
    page.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)
    return page, csp


@needs_chromium
async def test_secretary_asks_for_information_and_reads_the_answer_in_the_browser(
        app: App, desk: Desk, browser: Any, chat: RecordingChannel) -> None:
    """In Chromium the secretary opens the case and sends a message marked 'asks for information'
    (001 art. 14.3); the client receives it word for word in their chat and answers there; after
    a reload the secretary reads the answer in the case's history, with the 2-week deadline."""
    client, ref = await file_complaint(app, "client-asks")
    secretary = await desk.person("secretaris@desk.test", "secretary")
    page, csp = await _page(browser)
    await _login(page, desk, secretary)
    await page.click(f"text={ref}")
    await page.fill("#message-text", QUESTION)
    await page.check("#asks")
    await page.click("form[action$='/message'] button")
    assert "De cliënt is bericht in de chat." in await page.inner_text("p.notice")
    assert QUESTION in chat.texts("client-asks")[-1]
    await client.send(Choice(f"rp_answer:{ref}"))
    await client.type(ANSWER)
    await page.reload()
    history = await page.inner_text("section[aria-labelledby=h-history]")
    assert QUESTION in history and ANSWER in history
    assert "informatie gevraagd (2 weken" in history and "antwoord van de cliënt" in history
    deadlines = await page.inner_text("main")
    assert "ontbrekende informatie" in deadlines.lower()
    await _clean(page, csp, "case with an answer")
    await _language(page, "ar")
    await _clean(page, csp, "case with an answer ar")


async def _some_signals(app: App) -> None:
    """Anonymous signals enough for bars in the charts (counts from 5 are drawn)."""
    places = ["Locatie Zeist"] * 7 + ["Locatie De Bilt"] * 6
    for number, place in enumerate(places):
        await add_case(app, category=("help", "conflict", "bullying")[number % 3],
                       language=("uk", "ar", "nl")[number % 3 if number < 9 else 0],
                       channel="in_person" if number % 2 else "phone", location=place,
                       status="closed", actor="test")


@needs_chromium
async def test_coordinator_enrols_enters_a_signal_with_the_keyboard_and_sees_it_counted(
        app: App, desk: Desk, browser: Any) -> None:
    """Enrol (QR code), log in, open the signal form; the empty form comes back with one line per
    missing answer, linked to its field; filled in with the keyboard it registers and the figures
    say so with the reference; axe-clean in Dutch and Arabic; screenshots for the docs; the CSV
    downloaded in the browser holds counts only, no client's name, story or contact."""
    await _some_signals(app)
    link = await invite_account(app, desk.config, "coordinator@desk.test", "coordinator", "default")
    page, csp = await _page(browser)
    await page.goto(desk.url("/login"))
    await _clean(page, csp, "login")
    await page.screenshot(path=str(DOCS / "desk-login.png"), full_page=True)
    await page.goto(link)
    assert await page.locator("figure.qr svg").count() == 1
    await page.screenshot(path=str(DOCS / "desk-enrol.png"), full_page=True)
    secret = (await page.inner_text("code.secret")).replace(" ", "")
    await page.fill("#password", PASSWORD)
    await page.fill("#password2", PASSWORD)
    await page.fill("#code", pyotp.TOTP(secret).at(desk.clock.now))
    await page.click("main button[type=submit]")
    desk.clock.advance(seconds=31)
    await page.click("main a.button")
    assert page.url.endswith("/figures")

    await page.click("nav >> text=Signaal invoeren")
    assert page.url.endswith("/signals")
    await _clean(page, csp, "signal form")
    await page.screenshot(path=str(DOCS / "desk-signal.png"), full_page=True)
    await page.click("form[action='/signals'] button[type=submit]")
    errors = page.locator("p.warning[id^=e-]")
    assert await errors.count() == 3  # what about, how it came in, solved (Dutch is preset)
    described = await page.get_attribute("#s-category", "aria-describedby")
    assert described == "e-category" and await page.get_attribute("#s-category", "aria-invalid")
    await _clean(page, csp, "signal form with errors")

    await page.focus("#s-category")
    await page.select_option("#s-category", "bullying")
    await page.focus("#s-channel-phone")
    await page.keyboard.press("Space")
    await page.focus("#s-location")
    await page.keyboard.type("locatie zeist")
    await page.select_option("#s-language", "uk")
    await page.focus("#s-solved-yes")
    await page.keyboard.press("Space")
    await page.focus("#s-note")
    await page.keyboard.type("Opgelost met een gesprek bij de balie.")
    await page.keyboard.press("Tab")  # to the button
    assert await page.evaluate("document.activeElement.type") == "submit"
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r".*/figures$"))
    notice = await page.inner_text("p.notice")
    assert re.search(r"Het signaal is geregistreerd als KW-\d{4}-\d{6}\.", notice)
    zeist = page.locator("section[aria-labelledby=h-location] tr", has_text="Locatie Zeist")
    assert await zeist.locator("td.n").inner_text() == "8"
    await _clean(page, csp, "figures with the new signal")
    await page.screenshot(path=str(DOCS / "desk-figures.png"), full_page=True)
    await _language(page, "ar")
    assert await page.evaluate("document.documentElement.dir") == "rtl"
    await _clean(page, csp, "figures ar")
    await page.goto(desk.url("/signals"))
    await _clean(page, csp, "signal form ar")
    await page.click("form[action='/signals'] button[type=submit]")
    await _clean(page, csp, "signal form with errors ar")
    await page.screenshot(path=str(DOCS / "desk-signal-ar.png"), full_page=True)

    # The coordinator downloads the CSV in the browser: counts only, even with a client's
    # complaint (name, story, phone number) in the register.
    _client, reference = await file_complaint(app, "c-csv", contact="phone",
                                              contact_value="+31 6 12345678")
    await page.goto(desk.url("/figures"))
    async with page.expect_download() as download_info:
        await page.click("a[href='/figures.csv']")
    download = await download_info.value
    csv = Path(await download.path()).read_text(encoding="utf-8-sig")
    assert csv.splitlines()[0] == "dimension,value,count" and "kind,complaint,<5" in csv
    leaked = [s for s in ("Sara", "Haddad", "+31", "12345678", "rude", reference) if s in csv]
    assert leaked == []


@needs_chromium
async def test_administrator_invites_someone_in_the_browser(
        app: App, desk: Desk, browser: Any) -> None:
    """The administrator invites a coordinator with a language; the page shows the one-time link
    and says why it was not mailed here (mail is set up, but no public address); axe-clean in
    Dutch and Arabic."""
    desk.config = replace(desk.config, mail=True)
    desk.server.app[DESK].config = desk.config
    admin = await desk.person("beheer@desk.test", "administrator")
    await desk.person("secretaris@desk.test", "secretary")
    page, csp = await _page(browser)
    await _login(page, desk, admin)
    await page.fill("#new-email", "nieuw@desk.test")
    await page.select_option("#new-role", "coordinator")
    await page.select_option("#new-language", "uk")
    await page.click("form[action='/accounts'] button[type=submit]")
    notice = await page.inner_text("div.notice")
    assert "/enrol/" in notice and "DESK_PUBLIC_URL" in notice
    await _clean(page, csp, "accounts with a link")
    await page.screenshot(path=str(DOCS / "desk-accounts.png"), full_page=True)
    await _language(page, "ar")
    await _clean(page, csp, "accounts ar")
