"""The desk in a real headless browser (Debian's Chromium through Playwright): invitation, TOTP
enrolment, login, and the secretary moving a case from received to closed while the client is
told each time; axe-core on every page type in Dutch and Arabic; screenshots for the docs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyotp

from bot.desk import invite_account
from bot.root.app import App
from tests.bot.desk.conftest import PASSWORD, Desk, Person
from tests.bot.register_helpers import RecordingChannel, file_complaint
from tests.browser import browser, needs_chromium, serious_violations

__all__ = ["browser"]

DOCS = Path(__file__).resolve().parents[3] / "docs"


async def _clean(page: Any, csp_errors: list[str], what: str) -> None:
    assert await serious_violations(page) == [], what
    assert csp_errors == [], what


async def _login(page: Any, desk: Desk, person: Person) -> None:
    await page.goto(desk.url("/login"))
    await page.fill("#email", person.email)
    await page.fill("#password", PASSWORD)
    await page.fill("#code", person.code(desk.clock))
    await page.click("main button[type=submit]")
    desk.clock.advance(seconds=31)


async def _language(page: Any, lang: str) -> None:
    await page.select_option("#lang-choice", lang)
    await page.click("form.lang button")


@needs_chromium
async def test_secretary_enrols_logs_in_and_closes_a_case(
        app: App, desk: Desk, browser: Any, chat: RecordingChannel) -> None:
    """Invite, enrol with TOTP (QR on the page, code from pyotp), see the recovery codes, find the
    case in the register, open it (audited), move it received -> closed (the client gets each
    status message); log out and in again; every page is axe-clean and breaks no CSP rule."""
    _client, ref = await file_complaint(app, "client-desk")
    link = await invite_account(app, desk.config, "secretaris@desk.test", "secretary", "default")
    page = await browser.new_page(viewport={"width": 1200, "height": 900})
    page.set_default_timeout(5000)
    csp: list[str] = []
    page.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)

    await page.goto(link)
    assert await page.locator("figure.qr svg").count() == 1
    await _clean(page, csp, "enrol")
    secret = (await page.inner_text("code.secret")).replace(" ", "")
    await page.fill("#password", PASSWORD)
    await page.fill("#password2", PASSWORD)
    await page.fill("#code", pyotp.TOTP(secret).at(desk.clock.now))
    await page.click("main button[type=submit]")
    assert await page.locator("ul.codes li").count() == 10
    await _clean(page, csp, "recovery codes")
    desk.clock.advance(seconds=31)
    await page.click("main a.button")

    assert page.url.endswith("/cases")
    row = page.locator("table.register tbody tr")
    assert await row.count() == 1 and ref in await row.first.inner_text()
    await _clean(page, csp, "register")
    await page.screenshot(path=str(DOCS / "desk-register.png"), full_page=True)
    await page.set_viewport_size({"width": 390, "height": 844})  # a phone
    await page.screenshot(path=str(DOCS / "desk-register-phone.png"), full_page=True)
    await page.set_viewport_size({"width": 1200, "height": 900})
    await page.click(f"text={ref}")
    assert page.url.endswith(f"/cases/{ref}") and "Sara Haddad" not in await page.title()
    assert "Sara Haddad" in await page.inner_text("dl.fields")
    await _clean(page, csp, "case")
    await page.screenshot(path=str(DOCS / "desk-case.png"), full_page=True)

    steps = [("acknowledged", None), ("with_committee", None), ("decided", "partly_founded"),
             ("board_responded", None), ("closed", None)]
    for number, (status, outcome) in enumerate(steps, start=1):
        await page.select_option("#status", status)
        if outcome:
            await page.select_option("#outcome", outcome)
        await page.click("form[action$='/status'] button")
        assert "De cliënt is bericht in de chat." in await page.inner_text("p.notice")
        assert len(chat.texts("client-desk")) == number
    assert "Dit is een eindstatus." in await page.inner_text("main")
    trail = await page.inner_text("section[aria-labelledby=h-trail]")
    assert trail.count("zaak geopend in de balie") == 6 and "secretaris@desk.test" in trail

    await _language(page, "ar")
    assert await page.evaluate("document.documentElement.dir") == "rtl"
    await _clean(page, csp, "case ar")
    await page.goto(desk.url("/cases?show=all"))
    await _clean(page, csp, "register ar")
    await page.click("form.inline button[type=submit]")  # log out
    assert page.url.endswith("/login")
    await _clean(page, csp, "login ar")
    await _language(page, "nl")
    await _clean(page, csp, "login nl")
    person = Person("secretaris@desk.test", "secretary", "default", secret)
    await _login(page, desk, person)
    assert page.url.endswith("/cases")


@needs_chromium
async def test_every_other_page_is_accessible_in_dutch_and_arabic(
        app: App, desk: Desk, browser: Any, chat: RecordingChannel) -> None:
    """The coordinator's figures, the administrator's accounts and audit log, the confidant's
    page and a refusal: no serious axe-core finding and no CSP violation, in nl and ar."""
    await file_complaint(app, "client-figures")
    people = [await desk.person(f"{role}@desk.test", role)
              for role in ("coordinator", "administrator", "confidant")]
    pages = {"coordinator": ["/figures", "/cases"], "administrator": ["/accounts", "/audit", "/settings"],
             "confidant": ["/requests"]}
    for person in people:
        page = await browser.new_page()
        page.set_default_timeout(5000)
        csp: list[str] = []
        page.on("console", lambda m, c=csp: c.append(m.text) if "Content Security" in m.text else None)
        await _login(page, desk, person)
        for lang in ("nl", "ar"):
            await _language(page, lang)
            for path in pages[person.role]:
                await page.goto(desk.url(path))
                await _clean(page, csp, f"{person.role} {path} {lang}")
        await page.close()
