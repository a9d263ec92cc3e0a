"""The administrator's pages (accounts of their organisation, the audit log) and the
coordinator's anonymised figures (the confidant's pages: views_chat.py)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass

from aiohttp import web
from aiohttp_session import get_session

import bot.desk.accounts as accounts
from bot.desk.views_auth import _field
from bot.desk.web import account_of, allow, desk_of, refuse, render, translator
from bot.services import register
from flows import register as rules
from storage.schema import STAFF_ROLES

# --- administrator ---------------------------------------------------------------------------------


@allow("administrator")
async def accounts_page(request: web.Request) -> web.Response:
    desk = desk_of(request)
    admin = account_of(request)
    async with desk.host.db.unit_of_work(read_only=True) as uow:
        people = await uow.staff.accounts(admin.organisation)
    session = await get_session(request)
    link = session.pop("link", None)
    error = session.pop("error", None)
    return await render(request, "accounts.html", {
        "people": people, "roles": STAFF_ROLES, "link": link, "error": error,
        "mailed": session.pop("mailed", None), "not_mailed": session.pop("not_mailed", None)})


@allow("administrator")
async def invite(request: web.Request) -> web.Response:
    desk = desk_of(request)
    admin = account_of(request)
    form = await request.post()
    session = await get_session(request)
    try:
        invitation = await accounts.invite_and_mail(
            desk.host, desk.config, _field(form, "email", 300), _field(form, "role", 20),
            admin.organisation, actor=admin.actor, language=_field(form, "language", 8) or "nl",
            inviter=admin.email)
    except accounts.DeskError as exc:
        session["error"] = exc.message
    else:
        session["link"] = invitation.link
        session["mailed"] = invitation.mailed_to
        session["not_mailed"] = invitation.not_mailed
    raise web.HTTPSeeOther("/accounts")


@allow("administrator")
async def account_action(request: web.Request) -> web.Response:
    desk = desk_of(request)
    admin = account_of(request)
    action = request.match_info["action"]
    try:
        account_id = int(request.match_info["account"])
    except ValueError as exc:
        raise web.HTTPNotFound() from exc
    form = await request.post()
    session = await get_session(request)
    async with desk.host.db.unit_of_work(read_only=True) as uow:
        targets = {a.id for a in await uow.staff.accounts(admin.organisation)}
    if account_id not in targets:
        return await refuse(request, 403, translator(request)._("You may not do that."),
                            action="desk_forbidden")
    try:
        if action == "reset":
            session["link"] = await accounts.reset_second_factor(desk.host, desk.config, account_id,
                                                                 actor=admin.actor)
        elif action in ("disable", "enable", "unlock", "role", "sessions"):
            await accounts.administer(desk.host, admin, account_id, action,
                                      _field(form, "role", 20) if action == "role" else None)
        else:
            raise web.HTTPNotFound()
    except accounts.DeskError as exc:
        session["error"] = exc.message
    raise web.HTTPSeeOther("/accounts")


@allow("administrator")
async def audit_page(request: web.Request) -> web.Response:
    desk = desk_of(request)
    admin = account_of(request)
    async with desk.host.db.unit_of_work(read_only=True) as uow:
        entries = await uow.staff.audit(organisation=admin.organisation, limit=300)
        people = {a.actor: a.email for a in await uow.staff.accounts(admin.organisation)}
    return await render(request, "audit.html", {
        "entries": entries, "people": people,
        "local": lambda moment: moment.astimezone(register.ORG_TZ).strftime("%d-%m-%Y %H:%M")})


@allow("administrator")
async def settings_page(request: web.Request) -> web.Response:
    """The organisation's settings as the bot runs them (read only; they live in its config)."""
    desk = desk_of(request)
    organisation = desk.host.deployment.of(account_of(request).organisation)
    own = organisation.slug == account_of(request).organisation
    keys = organisation.mailbox_keys
    mailboxes = [(name, address, key.fingerprint if (key := keys.get(address.lower())) else None)
                 for name, address in organisation.mailboxes.items()] if own else []
    return await render(request, "settings.html", {"organisation": organisation if own else None,
                                                   "mailboxes": mailboxes})


# --- coordinator -------------------------------------------------------------------------------------

DIMENSIONS = ("month", "kind", "category", "location", "channel", "language")


@dataclass(frozen=True)
class Bar:
    key: str
    shown: str  # the published count ("<5", "≥5" or the number)
    width: int  # bar length in the chart, 0 for a hidden count


async def _figures(request: web.Request) -> dict[str, list[Bar]]:
    from bot.desk.views_register import _own_rows

    rows = await _own_rows(request)
    figures: dict[str, list[Bar]] = {}
    for dimension in DIMENSIONS:
        counts = Counter(str(row[dimension] or "-") for row in rows)
        ordered = dict(sorted(counts.items()))
        shown = rules.suppress_breakdown(ordered)
        top = max((c for k, c in ordered.items() if shown[k].isdigit()), default=1)
        figures[dimension] = [Bar(k, shown[k], round(300 * ordered[k] / top) if shown[k].isdigit()
                                  else 0) for k in ordered]
    return figures


@allow("coordinator")
async def figures_page(request: web.Request) -> web.Response:
    desk = desk_of(request)
    figures = await _figures(request)
    session = await get_session(request)
    return await render(request, "figures.html", {
        "figures": figures, "year": register.local_date(desk.host.clock()).year,
        "signal": session.pop("signal", None)})


FIGURE_HEADER = ("dimension", "value", "count")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _xlsx(rows: list[tuple[str, str, str]]) -> bytes:
    from openpyxl import Workbook  # type: ignore[import-untyped]

    book = Workbook()
    sheet = book.active or book.create_sheet()
    sheet.title = "figures"
    for row in (FIGURE_HEADER, *rows):
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@allow("coordinator")
async def figures_file(request: web.Request) -> web.Response:
    """The figures as CSV or XLSX: the suppressed counts only, never a case or a reference."""
    desk = desk_of(request)
    fmt = request.match_info["format"]
    figures = await _figures(request)
    rows = [(dimension, bar.key, bar.shown) for dimension, bars in figures.items() for bar in bars]
    if fmt == "xlsx":
        body, kind = _xlsx(rows), XLSX
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerows((FIGURE_HEADER, *rows))
        body, kind = ("\ufeff" + buffer.getvalue()).encode(), "text/csv; charset=utf-8"
    async with desk.host.db.unit_of_work() as uow:
        await uow.audit.record(desk.host.clock(), account_of(request).actor, "desk_download", None,
                               f"figures {fmt}")
        await uow.commit()
    return web.Response(body=body, headers={
        "Content-Type": kind, "Content-Disposition": f'attachment; filename="figures.{fmt}"'})
