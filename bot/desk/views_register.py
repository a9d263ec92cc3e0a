"""The secretary's pages: the register as a list with filters, a case with its decrypted fields
(audited at every opening), status changes, and the downloads (export, yearly report).

Every query is scoped to the staff member's organisation (`CaseRecord.organisation`): a case of
another organisation is refused (403, audited) as if the reference were foreign.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp_session import get_session

import bot.desk.labels as labels
from bot.desk.web import account_of, allow, desk_of, refuse, render, translator
from bot.services import register
from bot.services.organisation import Organisation
from bot.services.register import CaseLine, FailedMail, RegisterError
from flows import register as rules
from flows.i18n import N_, Translator
from storage import CaseRecord
from storage.staff_accounts import StaffAccount

SHOW = ("open", "due", "overdue", "all")
DELIVERY = {
    "sent": N_("The client was told in their chat."),
    "template": N_("The client was told with a WhatsApp template."),
    "pending": N_("The message to the client waits for the running bot."),
    "none": N_("The client was not told."),
    "manual": N_("The client cannot be reached in the chat. Contact them by phone or e-mail."),
}


def own_failed(host: Any, account: StaffAccount, failed: list[FailedMail],
               references: set[str]) -> list[FailedMail]:
    """The refused mails of the account's organisation (its cases; mails without a case when the
    deployment's organisation is theirs)."""
    home = host.deployment.default.slug == account.organisation
    return [m for m in failed if (m.reference in references) or (m.reference is None and home)]


def organisation_of(request: web.Request) -> Organisation:
    """The organisation of the signed-in account (its procedure, mailboxes, periods)."""
    return desk_of(request).host.deployment.of(account_of(request).organisation)


@allow("secretary")
async def case_list(request: web.Request) -> web.Response:
    desk = desk_of(request)
    account = account_of(request)
    query = request.query
    show = query.get("show", "open")
    show = show if show in SHOW else "open"
    kind = query.get("kind") or None
    kind = kind if kind in rules_kinds() else None
    schema = query.get("schema") or None
    org = organisation_of(request)
    schema = schema if schema in org.procedure.schemas else None
    status = query.get("status") or None
    status = status if status in rules.STATUSES else None
    lines = await register.list_cases(desk.host, due_only=show in ("due", "overdue"), status=status,
                                      include_closed=show == "all" or status is not None,
                                      organisation=org)
    today = register.local_date(desk.host.clock())
    own = [line for line in lines if line.case.organisation == account.organisation]
    shown = [line for line in own if (kind is None or line.case.kind == kind)
             and (schema is None or line.case.schema == schema)
             and (show != "overdue" or any(d.state(today) == "overdue" for d in line.due))]
    failed = own_failed(desk.host, account, await register.failed_mails(desk.host, organisation=org),
                        {line.case.reference for line in own})
    rows = [_row(line, today) for line in shown]
    return await render(request, "cases.html", {
        "rows": rows, "show": show, "kind": kind, "schema": schema, "status": status,
        "kinds": rules_kinds(), "schemas": tuple(org.procedure.schemas),
        "statuses": rules.STATUSES, "shows": SHOW, "failed": failed, "year": today.year})


def rules_kinds() -> tuple[str, ...]:
    return ("complaint", "mediation_request", "confidant_request", "report", "signal")


@dataclass(frozen=True)
class Row:
    case: CaseRecord
    received: date
    next_due: date | None
    next_name: str | None
    overdue: bool
    soon: bool
    manual: bool
    failed: bool


def _row(line: CaseLine, today: date) -> Row:
    upcoming = line.due or tuple(d for d in line.deadlines if d.state(today) in ("open", "overdue"))
    nxt = min(upcoming, key=lambda d: d.due) if upcoming else None
    return Row(line.case, register.local_date(line.case.created_at),
               nxt.due if nxt else None, nxt.name if nxt else None,
               nxt is not None and nxt.state(today) == "overdue",
               nxt is not None and nxt in line.due, bool(line.manual), bool(line.failed))


async def _own_case(request: web.Request) -> CaseRecord | web.Response:
    """The case of the URL if it belongs to the account's organisation; else the refusal page."""
    desk = desk_of(request)
    reference = request.match_info["reference"].strip().upper()[:32]
    async with desk.host.db.unit_of_work(read_only=True) as uow:
        case = await uow.register.get(reference)
    t = translator(request)
    if case is None:
        return await refuse(request, 404, t._("There is no case with this reference."))
    if case.organisation != account_of(request).organisation:
        return await refuse(request, 403, t._("You may not do that."), action="desk_forbidden",
                            reference=case.reference)
    return case


@allow("secretary")
async def case_page(request: web.Request) -> web.Response:
    desk = desk_of(request)
    account = account_of(request)
    case = await _own_case(request)
    if isinstance(case, web.Response):
        return case
    now = desk.host.clock()
    async with desk.host.db.unit_of_work() as uow:
        await uow.audit.record(now, account.actor, "desk_case_opened", case.reference, None)
        await uow.commit()
    view = await register.case_view(desk.host, case.reference, organisation=organisation_of(request))
    async with desk.host.db.unit_of_work(read_only=True) as uow:
        trail = await uow.staff.audit(reference=case.reference, limit=100)
        people = {a.actor: a.email for a in await uow.staff.accounts(account.organisation)}
    session = await get_session(request)
    flash = session.pop("flash", None)
    today = register.local_date(now)
    return await render(request, "case.html", {
        "case": view.case, "view": view, "fields": _fields(view.payload, translator(request)),
        "attachments": _attachments(view.payload), "today": today,
        "next": rules.allowed_next(view.case.kind, view.case.status), "outcomes": rules.OUTCOMES,
        "trail": trail, "people": people, "flash": flash,
        "failed": own_failed(desk.host, account, list(view.failed), {case.reference}),
        "local": lambda moment: moment.astimezone(register.ORG_TZ).strftime("%d-%m-%Y %H:%M")})


def _fields(payload: dict[str, Any] | None, t: Translator) -> list[tuple[str, str]]:
    """The complaint's personal fields, in reading order, as (label id, text)."""
    if not payload:
        return []
    out: list[tuple[str, str]] = []
    person = payload.get("complainant") or {}
    contact = person.get("contact") or {}
    if person.get("name"):
        out.append((N_("Name"), str(person["name"])))
    method = contact.get("method")
    if method:
        value = contact.get("value")
        how = t._(labels.METHODS[method]) if method in labels.METHODS else str(method)
        out.append((N_("Contact"), f"{how}: {value}" if value else how))
    for key, title in (("representative", N_("Representative")),
                       ("staff_involved", N_("Staff member involved"))):
        value = payload.get(key)
        if isinstance(value, dict):
            value = ", ".join(str(v) for v in value.values() if v)
        if value:
            out.append((title, str(value)))
    if payload.get("description"):
        out.append((N_("What happened"), str(payload["description"])))
    dates = payload.get("incident_dates") or {}
    if isinstance(dates, dict) and dates.get("text"):
        out.append((N_("When"), str(dates["text"])))
    steps = payload.get("steps_taken") or {}
    if isinstance(steps, dict) and steps.get("text"):
        out.append((N_("Steps taken"), str(steps["text"])))
    return out


SAFE_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "application/pdf": "pdf",
              "audio/ogg": "ogg", "audio/mpeg": "mp3", "audio/mp4": "m4a", "video/mp4": "mp4"}


def _attachments(payload: dict[str, Any] | None) -> list[dict[str, Any]]:
    files = (payload or {}).get("attachments") or []
    return [f for f in files if isinstance(f, dict) and isinstance(f.get("ref"), str)]


@allow("secretary")
async def attachment(request: web.Request) -> web.StreamResponse:
    """One of the client's photos, documents or voice notes, decrypted for this download only
    (audited); always as a download, never shown inside the desk."""
    desk = desk_of(request)
    case = await _own_case(request)
    if isinstance(case, web.Response):
        return case
    async with desk.host.db.unit_of_work(read_only=True) as uow:
        payload = await uow.register.payload(case.reference)
    files = _attachments(payload)
    try:
        number = int(request.match_info["number"])
        item = files[number - 1] if number >= 1 else None
    except (ValueError, IndexError):
        item = None
    if item is None or not desk.host.files.exists(item["ref"]):
        return await refuse(request, 404, translator(request)._("This file is no longer kept."))
    data = await desk.host.files.read(item["ref"])
    await _audit_download(request, f"attachment {number}", case.reference)
    kind = str(item.get("content_type") or "")
    extension = SAFE_TYPES.get(kind, "bin")
    return web.Response(body=data, headers={
        "Content-Type": kind if kind in SAFE_TYPES else "application/octet-stream",
        "Content-Disposition": f'attachment; filename="{case.reference}-{number}.{extension}"',
        "Content-Security-Policy": "default-src 'none'; sandbox"})


@allow("secretary")
async def change_status(request: web.Request) -> web.Response:
    desk = desk_of(request)
    account = account_of(request)
    case = await _own_case(request)
    if isinstance(case, web.Response):
        return case
    form = await request.post()
    status = form.get("status")
    outcome = form.get("outcome") or None
    note = form.get("note") or None
    t = translator(request)
    if (status not in rules.allowed_next(case.kind, case.status)
            or (status == "decided") != (outcome in rules.OUTCOMES)
            or (note is not None and (not isinstance(note, str) or len(note) > 2000))):
        return await refuse(request, 400, t._("This change is not possible for this case."))
    try:
        change = await register.set_status(desk.host, case.reference, str(status),
                                           outcome=str(outcome) if outcome else None,
                                           note=str(note).strip() or None if note else None,
                                           actor=account.actor,
                                           organisation=organisation_of(request))
    except RegisterError:
        return await refuse(request, 409, t._("This change is not possible for this case."))
    return await _back_to_case(request, case.reference, DELIVERY.get(change.delivery, DELIVERY["none"]))


async def _back_to_case(request: web.Request, reference: str, flash: str) -> web.Response:
    """After a change: back to the case page (POST-redirect-GET), with a line saying what happened."""
    session = await get_session(request)
    session["flash"] = flash
    raise web.HTTPSeeOther(f"/cases/{reference}")


@allow("secretary")
async def message(request: web.Request) -> web.Response:
    """Write to the client in their chat (001 art. 14.3 when it asks for information)."""
    desk = desk_of(request)
    case = await _own_case(request)
    if isinstance(case, web.Response):
        return case
    form = await request.post()
    text = form.get("text")
    t = translator(request)
    if not isinstance(text, str) or not text.strip() or len(text) > rules.MAX_MESSAGE:
        return await refuse(request, 400, t._("Write a message of at most 2000 characters."))
    try:
        change = await register.send_message(desk.host, case.reference, text,
                                             actor=account_of(request).actor,
                                             asks_information=form.get("asks") == "yes",
                                             organisation=organisation_of(request))
    except RegisterError:
        return await refuse(request, 409, t._("This client cannot be reached in a chat."))
    return await _back_to_case(request, case.reference, DELIVERY.get(change.delivery, DELIVERY["none"]))


@allow("secretary")
async def note(request: web.Request) -> web.Response:
    """A note (encrypted) and/or a fact: the client was contacted, a deadline was met."""
    desk = desk_of(request)
    case = await _own_case(request)
    if isinstance(case, web.Response):
        return case
    form = await request.post()
    text = form.get("text")
    text = text.strip() if isinstance(text, str) and text.strip() else None
    met = form.get("met") or None
    contacted = form.get("contacted") == "yes"
    t = translator(request)
    if (text is not None and len(text) > rules.MAX_MESSAGE) or (met is not None and met not in
                                                                 rules.DEADLINE_NL):
        return await refuse(request, 400, t._("This change is not possible for this case."))
    if text is None and met is None and not contacted:
        return await refuse(request, 400, t._("Write a note or choose what happened."))
    await register.add_note(desk.host, case.reference, text, actor=account_of(request).actor,
                            contacted=contacted, met=str(met) if met else None,
                            organisation=organisation_of(request))
    return await _back_to_case(request, case.reference, N_("Saved."))


async def _own_rows(request: web.Request, start: date | None = None,
                    end: date | None = None) -> list[dict[str, object]]:
    """The anonymised register rows of the account's organisation."""
    desk = desk_of(request)
    account = account_of(request)
    rows = await register.app_rows(desk.host, start, end, organisation=organisation_of(request))
    async with desk.host.db.unit_of_work(read_only=True) as uow:
        own = {c.reference for c in await uow.register.cases()
               if c.organisation == account.organisation}
    return [row for row in rows if row["reference"] in own]


async def _audit_download(request: web.Request, what: str, reference: str | None = None) -> None:
    desk = desk_of(request)
    async with desk.host.db.unit_of_work() as uow:
        await uow.audit.record(desk.host.clock(), account_of(request).actor, "desk_download",
                               reference, what)
        await uow.commit()


@allow("secretary")
async def export(request: web.Request) -> web.Response:
    fmt = request.query.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        raise web.HTTPNotFound()
    rows = await _own_rows(request)
    data = register.export_bytes(rows, "csv" if fmt == "csv" else "xlsx")
    await _audit_download(request, f"export {fmt} ({len(rows)} rows)")
    kind = ("text/csv; charset=utf-8" if fmt == "csv" else
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return web.Response(body=data, headers={
        "Content-Type": kind, "Content-Disposition": f'attachment; filename="register.{fmt}"'})


@allow("secretary", "coordinator")
async def report(request: web.Request) -> web.Response:
    from bot.services.report import build_report, render_pdf

    desk = desk_of(request)
    try:
        year = int(request.query.get("year", ""))
    except ValueError:
        year = 0
    if not 2000 <= year <= 2100:
        raise web.HTTPNotFound()
    rows = await _own_rows(request, date(year, 1, 1), date(year, 12, 31))
    org = organisation_of(request)
    built = build_report(rows, year, org.name, org.procedure.deadlines,
                         register.local_date(desk.host.clock()))

    def pdf() -> bytes:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "report.pdf"
            render_pdf(built, path)
            return path.read_bytes()

    data = await asyncio.to_thread(pdf)
    await _audit_download(request, f"report {year}")
    return web.Response(body=data, headers={
        "Content-Type": "application/pdf",
        "Content-Disposition": f'attachment; filename="jaarverslag-{year}.pdf"'})


