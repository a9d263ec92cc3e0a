"""Entering a signal in the desk: what was solved on the spot is registered too, for a full
picture (003 §5). No personal data: a subject, a schema, how it came in, a location, the client's
language, solved or not, and a short note without names (stored encrypted)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from aiohttp import web
from aiohttp_session import get_session

import bot.desk.labels as labels
from bot.desk.views_register import organisation_of
from bot.desk.web import account_of, allow, desk_of, render
from bot.services import register
from bot.services.organisation import Organisation
from flows.i18n import N_
from flows.model import LANGUAGES

FIELDS = ("category", "schema", "channel", "location", "language", "solved", "note")
MAX_NOTE = 500
MAX_LOCATION = 64  # the register's column (storage/schema.py)
SOLVED = {"yes": "closed", "no": "received"}  # solved on the spot: closed; else still open


@dataclass(frozen=True)
class SignalForm:
    """The form as typed (to show it again) and its errors by field (message ids)."""

    values: dict[str, str]
    errors: dict[str, str]


def categories(org: Organisation) -> tuple[str, ...]:
    """The organisation's categories in the procedure's order, then 'something else' and 'not sure'."""
    seen: list[str] = []
    for schema in org.procedure.schemas.values():
        seen.extend(c for c in schema.categories if c not in seen)
    return (*seen, *(c for c in ("other", "unsure") if c not in seen))


def _unprintable(text: str, *, lines: bool) -> bool:
    """Control, format (bidi) or surrogate characters; new lines only where `lines`."""
    allowed = "\n\r\t" if lines else ""
    return any(unicodedata.category(ch) in {"Cc", "Cf", "Cs"} and ch not in allowed for ch in text)


def check(form: dict[str, str], org: Organisation, known_locations: list[str]) -> SignalForm:
    """Each field checked on the server; one translated line per wrong field."""
    values = {key: form.get(key, "") for key in FIELDS}
    errors: dict[str, str] = {}
    if values["category"] not in categories(org):
        errors["category"] = N_("Choose what the signal is about.")
    if values["schema"] and values["schema"] not in org.procedure.schemas:
        errors["schema"] = N_("Choose one of the schemas, or none.")
    if values["channel"] not in labels.ENTERED_CHANNELS:
        errors["channel"] = N_("Choose how it came in.")
    location = " ".join(values["location"].split())
    if len(location) > MAX_LOCATION:
        errors["location"] = N_("Write a location of at most 64 characters.")
    elif _unprintable(location, lines=False):
        errors["location"] = N_("Remove the invisible characters from the location.")
    else:  # the spelling already in the register, so the figures count one location once
        location = next((k for k in known_locations if k.casefold() == location.casefold()),
                        location)
    values["location"] = location
    if values["language"] not in LANGUAGES:
        errors["language"] = N_("Choose the client's language.")
    if values["solved"] not in SOLVED:
        errors["solved"] = N_("Choose whether it was solved on the spot.")
    note = values["note"].strip()
    if len(note) > MAX_NOTE:
        errors["note"] = N_("Write a note of at most 500 characters.")
    elif _unprintable(note, lines=True):
        errors["note"] = N_("Remove the invisible characters from the note.")
    values["note"] = note
    return SignalForm(values, errors)


async def _locations(request: web.Request) -> list[str]:
    """The locations already in the organisation's register (suggested, so spelling stays one)."""
    desk = desk_of(request)
    own = account_of(request).organisation
    async with desk.host.db.unit_of_work(read_only=True) as uow:
        found = {c.location for c in await uow.register.cases()
                 if c.organisation == own and c.location}
    return sorted(found, key=str.casefold)


async def _page(request: web.Request, form: SignalForm, status: int = 200) -> web.Response:
    org = organisation_of(request)
    return await render(request, "signal.html", {
        "values": form.values, "errors": form.errors, "categories": categories(org),
        "schemas": tuple(org.procedure.schemas), "channels": labels.ENTERED_CHANNELS,
        "locations": await _locations(request), "max_note": MAX_NOTE,
        "max_location": MAX_LOCATION}, status=status)


@allow("coordinator", "secretary")
async def signal_page(request: web.Request) -> web.Response:
    """The empty form: Dutch as the client's language, nothing else chosen."""
    return await _page(request, SignalForm({**dict.fromkeys(FIELDS, ""), "language": "nl"}, {}))


@allow("coordinator", "secretary")
async def add_signal(request: web.Request) -> web.Response:
    """Register the signal for the account's organisation (audited as 'case_added' by its
    account); back to the figures (coordinator) or the new case (secretary) with its reference."""
    desk = desk_of(request)
    account = account_of(request)
    posted = await request.post()
    form = check({k: v for k, v in posted.items() if isinstance(v, str)}, organisation_of(request),
                 await _locations(request))
    if form.errors:
        return await _page(request, form, status=400)
    v = form.values
    case = await register.add_case(
        desk.host, kind="signal", schema=v["schema"], category=v["category"],
        language=v["language"], channel=v["channel"], location=v["location"] or None,
        status=SOLVED[v["solved"]], note=v["note"] or None, actor=account.actor,
        organisation=organisation_of(request))
    session = await get_session(request)
    if account.role == "secretary":
        session["flash"] = N_("The signal is registered.")
        raise web.HTTPSeeOther(f"/cases/{case.reference}")
    session["signal"] = case.reference
    raise web.HTTPSeeOther("/figures")
