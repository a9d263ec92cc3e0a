"""Logging in and out, enrolment from a one-time link, the language, the style sheet."""

from __future__ import annotations

from importlib import resources

from aiohttp import web
from aiohttp_session import get_session

import bot.desk.accounts as accounts
import bot.desk.security as security
from bot.desk.web import (
    ACCOUNT,
    HOME,
    LANG,
    account_of,
    allow,
    client_address,
    desk_of,
    public,
    render,
    start_session,
    translator,
)
from flows.model import LANGUAGES
from storage.schema import STAFF_ROLES

STATIC = {"desk.css": "text/css", "desk-live.js": "text/javascript"}


@public
async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC:
        raise web.HTTPNotFound()
    body = resources.files("bot.desk").joinpath("static", name).read_bytes()
    return web.Response(body=body, content_type=STATIC[name],
                        headers={"Cache-Control": "max-age=3600"})


@public
async def home(request: web.Request) -> web.Response:
    if ACCOUNT in request:
        raise web.HTTPSeeOther(HOME[account_of(request).role])
    raise web.HTTPSeeOther("/login")


@public
async def login_page(request: web.Request) -> web.Response:
    if ACCOUNT in request:
        raise web.HTTPSeeOther(HOME[account_of(request).role])
    return await render(request, "login.html", {"error": None})


@public
async def login(request: web.Request) -> web.Response:
    desk = desk_of(request)
    form = await request.post()
    result = await accounts.log_in(
        desk.host, desk.throttle, _field(form, "email", 254), _field(form, "password", 1024),
        _field(form, "code", 64), client_address(request))
    if result.account is None:
        t = translator(request)
        return await render(request, "login.html", {"error": t._(result.refusal or accounts.WRONG)},
                            status=401)
    await start_session(request, result.account)
    raise web.HTTPSeeOther(HOME[result.account.role])


@allow(*STAFF_ROLES)
async def logout(request: web.Request) -> web.Response:
    session = await get_session(request)
    session.invalidate()
    raise web.HTTPSeeOther("/login")


@allow(*STAFF_ROLES)
async def logout_everywhere(request: web.Request) -> web.Response:
    desk = desk_of(request)
    account = account_of(request)
    async with desk.host.db.unit_of_work() as uow:
        await uow.staff.end_sessions(account.id)
        await uow.audit.record(desk.host.clock(), account.actor, "desk_sessions_ended", None, None)
        await uow.commit()
    session = await get_session(request)
    session.invalidate()
    raise web.HTTPSeeOther("/login")


@public
async def language(request: web.Request) -> web.Response:
    form = await request.post()
    lang = _field(form, "lang", 8)
    if lang in LANGUAGES:
        session = await get_session(request)
        session["lang"] = lang
        if ACCOUNT in request:
            desk = desk_of(request)
            async with desk.host.db.unit_of_work() as uow:
                await uow.staff.change(account_of(request).id, language=lang)
                await uow.commit()
    back = _field(form, "back", 200)
    local = back.startswith("/") and not back.startswith(("//", "/\\")) and back.isprintable()
    raise web.HTTPSeeOther(back if local else "/")


@public
async def enrol_page(request: web.Request) -> web.Response:
    desk = desk_of(request)
    token = request.match_info["token"]
    account = await accounts.invited(desk.host, token)
    t = translator(request)
    if account is None:
        return await render(request, "refused.html", {"message": t._(
            "This link is no longer valid. Ask an administrator for a new one.")}, status=404)
    session = await get_session(request)
    enrolling = session.get("enrol")
    if not (isinstance(enrolling, dict) and enrolling.get("token") == security.token_hash(token)):
        enrolling = {"token": security.token_hash(token), "secret": security.new_totp_secret()}
        session["enrol"] = enrolling
    return await _enrol_form(request, account.email, str(enrolling["secret"]), None)


async def _enrol_form(request: web.Request, email: str, secret: str, error: str | None,
                      status: int = 200) -> web.Response:
    t = translator(request)
    uri = security.totp_uri(secret, email)
    qr = security.totp_qr_svg(uri, t._("QR code for your authenticator app"))
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return await render(request, "enrol.html", {"qr": qr, "secret": grouped, "error": error,
                                                "email": email}, status=status)


@public
async def enrol(request: web.Request) -> web.Response:
    desk = desk_of(request)
    token = request.match_info["token"]
    t = translator(request)
    account = await accounts.invited(desk.host, token)
    session = await get_session(request)
    enrolling = session.get("enrol")
    if account is None or not (isinstance(enrolling, dict)
                               and enrolling.get("token") == security.token_hash(token)):
        return await render(request, "refused.html", {"message": t._(
            "This link is no longer valid. Ask an administrator for a new one.")}, status=404)
    form = await request.post()
    secret = str(enrolling["secret"])
    try:
        accounts.check_new_password(_field(form, "password", 1024), _field(form, "password2", 1024))
        enrolled, codes = await accounts.enrol(desk.host, token, _field(form, "password", 1024),
                                               secret, _field(form, "code", 64))
    except accounts.DeskError as exc:
        return await _enrol_form(request, account.email, secret, t._(exc.message), status=400)
    await start_session(request, enrolled)
    request[LANG] = enrolled.language
    return await render(request, "recovery.html", {"codes": codes})


def _field(form: object, name: str, limit: int) -> str:
    """A text field of a form, cut at `limit`; absent, a file or binary junk gives ''."""
    value = form.get(name) if hasattr(form, "get") else None
    if not isinstance(value, str):
        return ""
    return value[:limit]
