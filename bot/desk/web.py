"""The desk's request pipeline: security headers, the session, who is asking, the role check and
the CSRF check, all in middlewares, so that no page can forget one; and rendering in the staff
member's language.

Every handler is declared with `@allow(role, ...)` or `@public`; a handler without either is
refused (fail closed). `tests/bot/desk/test_desk_roles.py` walks every route as every role.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session, new_session

import bot.desk.labels as labels
from bot.desk.config import DeskConfig
from bot.desk.security import Throttle
from bot.desk.sessions import DatabaseStorage
from flows.i18n import N_, Translator
from flows.model import LANGUAGES, RTL_LANGUAGES
from storage.staff_accounts import StaffAccount

if TYPE_CHECKING:
    from bot.services.handoffs import DeskHolder
    from bot.services.ports import ServiceHost

    class DeskSettings(Protocol):
        """The process settings the desk reads."""

        @property
        def max_attachment_bytes(self) -> int:
            """The largest file a client may send (and a confidant, from the desk)."""

    class DeskHost(ServiceHost, Protocol):
        """The running application as the desk needs it: also the intake service, whose handoff
        desk the confidants' chats join."""

        @property
        def service(self) -> DeskHolder:
            """The intake service (it keeps the process's one handoff desk)."""

        @property
        def settings(self) -> DeskSettings:
            """The process settings (the file size limit of the channels)."""

log = logging.getLogger("bot.desk")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ROLES_ATTR = "desk_roles"
PUBLIC = frozenset({"public"})
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
# The confidant's pages that update themselves: our own script file (never inline), its polls to
# this origin, and voice messages played from the desk.
LIVE_CSP = CSP + "; script-src 'self'; connect-src 'self'; media-src 'self'"
UPLOAD_ATTR = "desk_upload"
FORM_MARGIN = 64 * 1024  # the other fields of an upload form
CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REFERENCE = re.compile(r"[A-Z]{2,8}-\d{4}-\d{6}")
HOME = {"secretary": "/cases", "coordinator": "/figures", "administrator": "/accounts",
        "confidant": "/requests"}


@dataclass
class Desk:
    """What every handler needs: the application's services and the desk's own parts."""

    host: DeskHost
    config: DeskConfig
    storage: DatabaseStorage
    throttle: Throttle = field(default_factory=Throttle)


DESK = web.AppKey("desk", Desk)
ACCOUNT = web.RequestKey("desk_account", StaffAccount)
LANG = web.RequestKey("desk_lang", str)


def allow(*roles: str) -> Callable[[Handler], Handler]:
    """Declare which roles may call a handler (checked by `guard` on every request)."""
    def mark(handler: Handler) -> Handler:
        setattr(handler, ROLES_ATTR, frozenset(roles))
        return handler
    return mark


def uploads(handler: Handler) -> Handler:
    """A form that carries a file: its body may be as large as the channels' file limit."""
    setattr(handler, UPLOAD_ATTR, True)
    return handler


def public(handler: Handler) -> Handler:
    """A handler anyone may call (login, enrolment with a valid link, the style sheet)."""
    setattr(handler, ROLES_ATTR, PUBLIC)
    return handler


def desk_of(request: web.Request) -> Desk:
    return request.app[DESK]


def account_of(request: web.Request) -> StaffAccount:
    return request[ACCOUNT]


def translator(request: web.Request) -> Translator:
    return desk_of(request).host.catalogs.get(request.get(LANG, "nl"))


def client_address(request: web.Request) -> str:
    """The peer's address (behind a proxy, the proxy's: the throttle then counts all together)."""
    return request.remote or "unknown"


async def refuse(request: web.Request, status: int, message: str, *, action: str | None = None,
                 reference: str | None = None) -> web.Response:
    """A translated refusal page; `action` also records it in the audit log."""
    desk = desk_of(request)
    if action is not None:
        actor = account_of(request).actor if ACCOUNT in request else "desk"
        route = request.match_info.route.name or "unknown"
        async with desk.host.db.unit_of_work() as uow:
            await uow.audit.record(desk.host.clock(), actor, action, reference, f"route {route}")
            await uow.commit()
    return await render(request, "refused.html", {"message": message}, status=status)


async def render(request: web.Request, template: str, context: dict[str, Any], *,
                 status: int = 200) -> web.Response:
    """A page in the staff member's language, with the CSRF token for its forms."""
    t = translator(request)
    session = await get_session(request)
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    account = request.get(ACCOUNT)

    def label(kind: str, key: str | None) -> str:
        if key is None:
            return "-"
        known = labels.ALL[kind].get(key)
        return t._(known) if known else key

    base = {"_": t._, "ngettext": t.ngettext, "lang": t.language,
            "dir": "rtl" if t.language in RTL_LANGUAGES else "ltr", "account": account,
            "csrf": session["csrf"], "label": label, "languages": labels.LANGUAGES,
            "home": HOME.get(account.role, "/") if account else "/login", "path": request.path}
    response = aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)
    return response


@web.middleware
async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every answer; an unexpected error becomes a plain page, never a trace."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
        _secure(request, response)
        raise
    except Exception:
        log.exception("desk: error on route %s", request.match_info.route.name or "unknown")
        t = translator(request)
        response = web.Response(status=500, text=t._("Something went wrong. Nothing was changed. "
                                                      "Try again later."))
    _secure(request, response)
    return response


def _secure(request: web.Request, response: web.StreamResponse) -> None:
    h = response.headers
    h.setdefault("Content-Security-Policy", CSP)
    h["X-Content-Type-Options"] = "nosniff"
    h["Referrer-Policy"] = "no-referrer"
    h["X-Frame-Options"] = "DENY"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    h.setdefault("Cache-Control", "no-store")
    if desk_of(request).config.secure_cookies:
        h["Strict-Transport-Security"] = "max-age=31536000"


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Who is asking, in which language, whether their role may call this route, and the CSRF
    token of every change. Runs inside the session middleware."""
    desk = desk_of(request)
    session = await get_session(request)
    lang = session.get("lang")
    request[LANG] = lang if lang in LANGUAGES else "nl"
    account_id = session.get("account")
    if isinstance(account_id, int):
        async with desk.host.db.unit_of_work(read_only=True) as uow:
            try:
                account = await uow.staff.get(account_id)
            except LookupError:
                account = None
        if account is None or account.disabled_at is not None or account.enrolled_at is None:
            session.invalidate()
        else:
            request[ACCOUNT] = account
            request[LANG] = account.language if account.language in LANGUAGES else "nl"
    route = request.match_info.route
    upload = route.resource is not None and getattr(route.handler, UPLOAD_ATTR, False)
    if (upload and ACCOUNT in request
            and account_of(request).role in getattr(route.handler, ROLES_ATTR, ())):
        # Only a signed-in staff member of the route's role may send a body this large.
        request = request.clone(
            client_max_size=desk.host.settings.max_attachment_bytes + FORM_MARGIN)
    try:
        return await _checked(request, handler)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        return await refuse(request, 404, translator(request)._("This page does not exist."))
    except web.HTTPRequestEntityTooLarge:
        return await refuse(request, 413, translator(request)._(
            "This is too much for one form. Nothing was saved."))
    finally:
        if upload:
            await _close_uploads(request)


async def _close_uploads(request: web.Request) -> None:
    """The temporary files aiohttp spooled an upload form's files into, closed (deleted) once
    the answer is ready, whatever the handler did with them."""
    with contextlib.suppress(Exception):
        form = await request.post()  # read (and kept) by the CSRF check already
        for value in form.values():
            if isinstance(value, web.FileField):
                value.file.close()


async def _checked(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = request.match_info.route
    roles = getattr(route.handler, ROLES_ATTR, None) if route.resource is not None else PUBLIC
    t = translator(request)
    if request.method in CHANGING and not await _csrf_ok(request):
        return await refuse(request, 403, t._("This form has expired. Open the page again and "
                                              "repeat what you did."), action="desk_csrf_refused",
                            reference=url_reference(request))
    if roles is None:
        return await refuse(request, 403, t._(N_("You may not do that.")))
    if roles == PUBLIC:
        return await handler(request)
    if ACCOUNT not in request:
        if request.method == "GET":
            raise web.HTTPSeeOther("/login")
        return await refuse(request, 403, t._("Log in first."))
    if account_of(request).role not in roles:
        return await refuse(request, 403, t._("You may not do that."), action="desk_forbidden",
                            reference=url_reference(request))
    return await handler(request)


def url_reference(request: web.Request) -> str | None:
    """The case reference in the URL, for the audit log, if it looks like one (a forged URL
    can hold anything)."""
    value = request.match_info.get("reference", "").strip().upper()
    return value if REFERENCE.fullmatch(value) else None


async def _csrf_ok(request: web.Request) -> bool:
    session = await get_session(request)
    expected = session.get("csrf")
    if not isinstance(expected, str):
        return False
    given = request.headers.get("X-CSRF-Token")
    if given is None and request.content_type in ("application/x-www-form-urlencoded",
                                                  "multipart/form-data"):
        form = await request.post()
        value = form.get("csrf")
        given = value if isinstance(value, str) else None
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())


async def start_session(request: web.Request, account: StaffAccount) -> None:
    """Log in: a new session (new key, new CSRF token) replaces the one used to log in."""
    desk = desk_of(request)
    old = await get_session(request)
    if old.identity is not None:
        await desk.storage.end(str(old.identity))
    session = await new_session(request)
    session["account"] = account.id
    session["csrf"] = secrets.token_urlsafe(32)
    request[ACCOUNT] = account
    request[LANG] = account.language
