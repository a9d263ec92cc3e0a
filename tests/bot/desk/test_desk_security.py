"""The desk's front door: CSRF, organisations kept apart, the login throttle and lockout, sessions
that expire, rotate and end, the security headers, and no personal data in URLs or titles."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import update

from bot.desk.security import Throttle
from bot.desk.web import DESK
from bot.root.app import App
from storage.schema import cases
from tests.bot.desk.conftest import Desk
from tests.bot.register_helpers import RecordingChannel, file_complaint


async def _audit(app: App, action: str) -> list[Any]:
    async with app.db.unit_of_work(read_only=True) as uow:
        return [a for a in await uow.audit.list(500) if a.action == action]


async def test_changes_without_or_with_a_forged_csrf_token_are_refused(
        app: App, desk: Desk, web: Any, chat: RecordingChannel) -> None:
    """A status change without the token, or with another session's token, is refused (403),
    audited, and changes nothing; with the page's token it goes through."""
    _client, ref = await file_complaint(app, "c-csrf")
    secretary = await desk.person("s@desk.test", "secretary")
    other = web()
    await other.get("/login")
    client = web()
    await client.login(secretary)
    await client.get(f"/cases/{ref}")
    missing = await client.post(f"/cases/{ref}/status", {"status": "acknowledged"}, csrf="")
    forged = await client.post(f"/cases/{ref}/status", {"status": "acknowledged"}, csrf=other.csrf)
    assert missing[0] == forged[0] == 403 and "Dit formulier is verlopen" in forged[1]
    async with app.db.unit_of_work(read_only=True) as uow:
        assert (await uow.register.get(ref)).status == "received"  # type: ignore[union-attr]
    assert [a.reference for a in await _audit(app, "desk_csrf_refused")] == [ref, ref]
    await client.get(f"/cases/{ref}")
    assert await client.post(f"/cases/{ref}/status", {"status": "acknowledged"}) == (
        303, f"/cases/{ref}")
    assert chat.texts("c-csrf")


async def test_a_secretary_never_sees_another_organisations_case(
        app: App, desk: Desk, web: Any, chat: RecordingChannel) -> None:
    """Org B's case is not in org A's list nor export, and opening it by reference is 403 and
    audited; org A's own case shows."""
    _c1, own = await file_complaint(app, "c-own")
    _c2, foreign = await file_complaint(app, "c-foreign")
    async with app.db.engine.begin() as conn:
        await conn.execute(update(cases).where(cases.c.reference == foreign)
                           .values(organisation="other-org"))
    secretary = await desk.person("a@desk.test", "secretary", "default")
    client = web()
    await client.login(secretary)
    _status, listing = await client.get("/cases?show=all")
    assert own in listing and foreign not in listing
    status, page = await client.get(f"/cases/{foreign}")
    assert status == 403 and "Sara Haddad" not in page
    status, _page = await client.post(f"/cases/{foreign}/status", {"status": "closed"})
    assert status == 403
    _status, csv = await client.get("/export?format=csv")
    assert own in csv and foreign not in csv
    refused = await _audit(app, "desk_forbidden")
    assert [(a.reference, a.actor) for a in refused] == [(foreign, "desk#1")] * 2
    status, page = await client.get(f"/cases/{own}")
    assert status == 200 and "Sara Haddad" in page
    assert (await _audit(app, "desk_case_opened"))[0].reference == own


async def test_wrong_passwords_are_throttled_then_locked_until_an_administrator_lifts_it(
        app: App, desk: Desk, web: Any) -> None:
    """Ten wrong passwords: from the third on the account must wait longer each time (even the
    right password is refused then), at the tenth it is locked; an administrator unlocks it and
    the login works."""
    person = await desk.person("p@desk.test", "coordinator")
    admin = await desk.person("admin@desk.test", "administrator")
    client = web()
    for attempt in range(1, 11):
        status, page = await client.login(person, password="wrong password!")
        assert status == 401 and "klopt niet" in page, attempt
        if attempt == 9:
            status, page = await client.login(person)  # within the wait: refused unchecked
            assert status == 401 and "Te veel pogingen" in page
        desk.clock.advance(seconds=600)
    status, page = await client.login(person)
    assert status == 401 and "geblokkeerd" in page
    assert len(await _audit(app, "desk_locked")) == 1
    boss = web()
    await boss.login(admin)
    await boss.get("/accounts")
    assert await boss.post("/accounts/1/unlock") == (303, "/accounts")
    assert (await client.login(person))[0] == 303


async def test_many_failures_from_one_address_are_throttled(app: App, desk: Desk, web: Any) -> None:
    """Failed logins from one address for unknown accounts stop being checked after the limit."""
    desk.server.app[DESK].throttle = Throttle(per_address=3)
    person = await desk.person("q@desk.test", "secretary")
    client = web()
    for n in range(3):
        await client.get("/login")
        status, page = await client.post("/login", {"email": f"x{n}@desk.test", "password": "x",
                                                     "code": "123456"})
        assert "klopt niet" in page
    status, page = await client.login(person)
    assert status == 401 and "Te veel pogingen" in page


async def test_sessions_expire_rotate_and_end(app: App, desk: Desk, web: Any) -> None:
    """The cookie changes at login; 31 idle minutes or 12 hours end a session; logging out ends it
    on the server, so the old cookie no longer works; 'everywhere' ends the other devices too, and
    an administrator can end a colleague's sessions."""
    person = await desk.person("r@desk.test", "administrator")
    client = web()
    await client.get("/login")
    before = client.cookie()
    await client.login(person)
    after = client.cookie()
    assert before and after and before != after
    assert (await client.get("/accounts"))[0] == 200
    desk.clock.advance(minutes=31)
    assert await client.get("/accounts") == (303, "/login")
    await client.login(person)
    for _ in range(13):  # active all the time, but 12 hours is the most
        desk.clock.advance(minutes=29)
        status, _page = await client.get("/accounts")
        if status != 200:
            break
        desk.clock.advance(minutes=29)
    assert status == 303
    laptop, phone = web(), web()
    await laptop.login(person)
    await phone.login(person)
    await laptop.get("/accounts")
    assert await laptop.post("/logout/everywhere") == (303, "/login")
    assert await phone.get("/accounts") == (303, "/login")
    other = await desk.person("o@desk.test", "coordinator")
    colleague = web()
    await colleague.login(other)
    assert (await colleague.get("/figures"))[0] == 200
    await laptop.login(person)
    await laptop.get("/accounts")
    assert await laptop.post("/accounts/2/sessions") == (303, "/accounts")
    assert await colleague.get("/figures") == (303, "/login")


async def test_headers_titles_and_urls_carry_no_personal_data(
        app: App, desk: Desk, web: Any, chat: RecordingChannel) -> None:
    """Every page has a strict CSP without inline script or style, nosniff, no referrer, frame
    denial and no-store; the session cookie is HttpOnly and SameSite=Strict; the case's title
    and every link on the register hold references only, never the client's name."""
    _client, ref = await file_complaint(app, "c-head")
    person = await desk.person("h@desk.test", "secretary")
    client = web()
    await client.get("/login")
    async with client.session.get(desk.url("/login")) as response:
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
    async with client.session.post(desk.url("/login"), data={
            "csrf": client.csrf, "email": person.email, "password": "correct horse battery staple",
            "code": person.code(desk.clock)}, allow_redirects=False) as response:
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    _status, page = await client.get(f"/cases/{ref}")
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    assert title and ref in title.group(1) and "Sara" not in title.group(1)
    assert "style=" not in page and "<script" not in page
    _status, listing = await client.get("/cases")
    assert all("Sara" not in href for href in re.findall(r'href="([^"]*)"', listing))


async def test_a_recovery_code_works_once_instead_of_the_app(app: App, desk: Desk, web: Any) -> None:
    """A recovery code (any case, with or without dashes) logs in once; the same code again is
    refused, and the login is audited as one made with a recovery code."""
    person = await desk.person("rc@desk.test", "coordinator")
    code = person.codes[0]
    assert (await web().login(person, code=code.upper().replace("-", " ")))[0] == 303
    status, page = await web().login(person, code=code)
    assert status == 401 and "klopt niet" in page
    logins = [a.detail for a in await _audit(app, "desk_login")]
    assert logins == ["recovery code"]


async def test_an_invitation_cannot_move_an_account_to_another_organisation(
        app: App, desk: Desk, web: Any) -> None:
    """An administrator of one organisation cannot take over another organisation's pending
    invitation by inviting the same address; a new address works and shows a one-time link."""
    from bot.desk import DeskError, invite_account

    await invite_account(app, desk.config, "pending@desk.test", "secretary", "other-org")
    admin = await desk.person("boss@desk.test", "administrator")
    client = web()
    await client.login(admin)
    await client.get("/accounts")
    assert await client.post("/accounts", {"email": "pending@desk.test", "role": "secretary"}) == (
        303, "/accounts")
    _status, page = await client.get("/accounts")
    assert "Deze persoon heeft al een account." in page and "pending@desk.test" not in page
    await client.post("/accounts", {"email": "new@desk.test", "role": "coordinator"})
    _status, page = await client.get("/accounts")
    assert "new@desk.test" in page and re.search(r"/enrol/[\w-]{43}", page)
    try:
        await invite_account(app, desk.config, "pending@desk.test", "secretary", "default")
    except DeskError as exc:
        assert exc.message == "This person already has an account."
    else:
        raise AssertionError("the invitation moved the account")


async def test_bad_input_gets_one_translated_line(app: App, desk: Desk, web: Any) -> None:
    """A form of 100 kB, an unknown page, binary junk and control characters in the login fields,
    a forged account number and a forged reference of 240 characters each get a translated page,
    never a traceback (the audit keeps no forged reference); a code typed in
    Arabic-Indic digits works."""
    admin = await desk.person("bad@desk.test", "administrator")
    client = web()
    await client.get("/login")
    status, page = await client.post("/login", {"email": "x" * 100_000, "password": "p", "code": "1"})
    assert status == 413 and "Dit is te veel voor één formulier." in page
    status, page = await client.get("/no/such/page")
    assert status == 404 and "Deze pagina bestaat niet." in page
    status, page = await client.post("/login", {"email": "\x00\u202e@\x01", "password": "\ufffd\x00",
                                                "code": "\u0661\u0662\u0663\u0664\u0665\u0666"})
    assert status == 401 and "klopt niet" in page
    digits = "".join(chr(0x0660 + int(d)) for d in admin.code(desk.clock))  # Arabic-Indic
    assert (await client.login(admin, code=digits))[0] == 303
    await client.get("/accounts")
    status, page = await client.post("/accounts/abc/disable")
    assert status == 404 and "Traceback" not in page
    long_url = "/cases/" + "KW-" * 80 + "/status"
    assert (await client.post(long_url, {"status": "closed"}))[0] == 403  # wrong role
    assert (await client.post(long_url, {}, csrf="forged"))[0] == 403
    assert {a.reference for a in await _audit(app, "desk_forbidden")} == {None}
