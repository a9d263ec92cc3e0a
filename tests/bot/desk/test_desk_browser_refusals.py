"""The desk's refusals in a real headless browser (Debian's Chromium through Playwright): ten wrong
passwords are throttled, then locked; a form sent without its CSRF token, a coordinator opening a
case page and a secretary opening another organisation's case all get 403, and each is audited."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from bot.root.app import App
from storage.schema import cases
from tests.bot.desk.conftest import Desk
from tests.bot.desk.test_desk_browser import _clean, _login
from tests.bot.desk.test_desk_browser_work import _page
from tests.bot.desk.test_desk_security import _audit
from tests.bot.register_helpers import RecordingChannel, file_complaint
from tests.browser import browser, needs_chromium

__all__ = ["browser"]


@needs_chromium
async def test_ten_wrong_passwords_in_the_login_form_are_throttled_then_locked(
        app: App, desk: Desk, browser: Any) -> None:
    """Typed into the real login form: each wrong password says so; from the third on even the
    right one must wait; after the tenth the account is locked, and the page says so (axe-clean)."""
    person = await desk.person("p@desk.test", "coordinator")
    page, csp = await _page(browser)
    try:
        for attempt in range(1, 11):
            await page.goto(desk.url("/login"))
            await page.fill("#email", person.email)
            await page.fill("#password", "wrong password!")
            await page.fill("#code", person.code(desk.clock))
            await page.click("main button[type=submit]")
            assert "klopt niet" in await page.inner_text("main"), attempt
            if attempt == 9:  # within the wait: even the right password is refused unchecked
                await _login(page, desk, person)
                assert "Te veel pogingen" in await page.inner_text("main")
                assert page.url.endswith("/login")
            desk.clock.advance(seconds=600)
        await _login(page, desk, person)
        assert "geblokkeerd" in await page.inner_text("main") and page.url.endswith("/login")
        await _clean(page, csp, "login, locked")
    finally:
        await page.context.close()
    assert len(await _audit(app, "desk_locked")) == 1


@needs_chromium
async def test_no_csrf_token_a_coordinator_on_a_case_and_another_organisation_get_403(
        app: App, desk: Desk, browser: Any, chat: RecordingChannel) -> None:
    """In a logged-in browser: a form posted without its token, a coordinator typing a case's
    address, and a secretary opening another organisation's case are each refused with 403 and a
    page that says so, change nothing, show no personal data, and are audited."""
    _c1, own = await file_complaint(app, "c-own")
    _c2, foreign = await file_complaint(app, "c-foreign")
    async with app.db.engine.begin() as conn:
        await conn.execute(update(cases).where(cases.c.reference == foreign)
                           .values(organisation="other-org"))
    secretary = await desk.person("s@desk.test", "secretary")
    coordinator = await desk.person("c@desk.test", "coordinator")

    page, csp = await _page(browser)
    try:
        await _login(page, desk, secretary)
        await page.goto(desk.url(f"/cases/{own}"))
        # The case page's own form, sent by the browser with its token taken out.
        await page.evaluate("document.querySelector(\"form[action$='/status'] input[name=csrf]\")"
                            ".remove()")
        await page.select_option("#status", "acknowledged")
        async with page.expect_response(lambda r: r.url.endswith("/status")) as answer:
            await page.click("form[action$='/status'] button")
        assert (await answer.value).status == 403
        assert "Dit formulier is verlopen" in await page.inner_text("main")
        await _clean(page, csp, "csrf refused")
        response = await page.goto(desk.url(f"/cases/{foreign}"))
        assert response is not None and response.status == 403
        assert "Sara Haddad" not in await page.content()
        await _clean(page, csp, "another organisation's case")
    finally:
        await page.context.close()
    async with app.db.unit_of_work(read_only=True) as uow:
        assert (await uow.register.get(own)).status == "received"  # type: ignore[union-attr]
    assert chat.texts("c-own") == []

    page, csp = await _page(browser)
    try:
        await _login(page, desk, coordinator)
        response = await page.goto(desk.url(f"/cases/{own}"))
        assert response is not None and response.status == 403
        assert "Sara Haddad" not in await page.content()
        await _clean(page, csp, "coordinator on a case page")
    finally:
        await page.context.close()
    assert [a.reference for a in await _audit(app, "desk_csrf_refused")] == [own]
    forbidden = {(a.reference, a.actor) for a in await _audit(app, "desk_forbidden")}
    assert (foreign, "desk#1") in forbidden
    assert any(actor == "desk#2" for _reference, actor in forbidden)
