"""What the register's service modules share: Dutch labels, dates in Dutch time, the refusal
(`RegisterError`), finding a case and its deadlines, and the mails the server refused for good.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from flows import register as rules
from storage import CaseRecord, UnitOfWork

if TYPE_CHECKING:
    from bot.services.organisation import Organisation
    from bot.services.ports import ServiceHost


ORG_TZ = ZoneInfo("Europe/Amsterdam")
CLIENT_KINDS = ("complaint", "mediation_request", "confidant_request", "report")
LAST_INBOUND = "_last_inbound_at"  # written by bot/services/intake.py into the conversation data
KIND_NL = {
    "complaint": "klacht",
    "mediation_request": "verzoek om bemiddeling",
    "confidant_request": "verzoek vertrouwenspersoon",
    "report": "melding",
    "signal": "signaal",
}
METHOD_NL = {"phone": "per telefoon", "email": "per e-mail", "chat": "via de chat",
             "none": "geen telefoon of e-mail bekend"}
ANSWER_NL = {"yes": "ja", "partly": "gedeeltelijk", "no": "nee"}
DUE_WITHIN_DAYS = 3


class RegisterError(Exception):
    """An operation the register refuses; the message (Dutch) says why and what to do."""


def local_date(moment: datetime) -> date:
    return moment.astimezone(ORG_TZ).date()


def _day(value: date | datetime | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        value = local_date(value)
    return value.strftime("%d-%m-%Y")


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ORG_TZ).astimezone(UTC)


def scope(app: ServiceHost, organisation: Organisation | None) -> tuple[Organisation, str | None]:
    """The organisation an operation is for (None: the default) and the slug its queries filter
    on: None in a deployment of one organisation, where every case is its own (issue 11)."""
    chosen = organisation or app.organisation
    return chosen, (chosen.slug if app.deployment.several else None)


async def _case(uow: UnitOfWork, reference: str, slug: str | None = None) -> CaseRecord:
    """The case by reference; a case of another organisation than `slug` is refused exactly as
    one that does not exist, so staff learn nothing about other organisations' cases."""
    case = await uow.register.get(reference.strip().upper())
    if case is None or (slug is not None and case.organisation != slug):
        raise RegisterError(f"onbekende referentie '{reference}' (zie `klachtwijzer case list`)")
    return case


def _events(records: Sequence[Any]) -> list[rules.CaseEvent]:
    return [rules.CaseEvent(r.action, r.value, r.at) for r in records]


def _deadlines(app: ServiceHost, case: CaseRecord, events: Sequence[Any]) -> list[rules.Deadline]:
    """The case's deadlines by its own organisation's procedure."""
    return rules.due_dates(case.kind, case.created_at, _events(events),
                           app.deployment.of(case.organisation).procedure.deadlines)


def _open_due(deadlines: Sequence[rules.Deadline]) -> dict[str, date]:
    """The due dates still open, by name (what the client's message mentions)."""
    return {d.name: d.due for d in deadlines if d.met_at is None and not d.cancelled}


@dataclass(frozen=True)
class FailedMail:
    """A mail to the organisation that its server refused for good (5xx): it will not be retried."""

    reference: str | None
    purpose: str
    recipient: str  # one of the organisation's mailboxes
    reason: str  # the server's answer, addresses removed (bot/mail/outbox.py short_reason)
    failed_at: datetime


PURPOSE_NL = {"case": "het dossier", "withdrawal": "de intrekking", "erasure": "het wisverzoek",
              "digest": "het dagoverzicht", "reply": "het antwoord van de cliënt"}
FAILED_MAIL_DAYS = 7  # how long the digest repeats a refused mail


async def failed_mails(app: ServiceHost, *, reference: str | None = None,
                       since: datetime | None = None,
                       organisation: Organisation | None = None) -> list[FailedMail]:
    """Mails marked 'failed' in the outbox, oldest first, dated by their 'mail_failed' audit entry.

    With several organisations, only one organisation's: mails of its cases, and mails without a
    case (digests) to its mailboxes.
    """
    org, slug = scope(app, organisation)
    async with app.db.unit_of_work(read_only=True) as uow:
        failed = await uow.outbox.failed(reference)
        owner: dict[str, str | None] = {}
        if slug is not None:
            for item, _ in failed:
                ref = item.case_reference
                if ref is not None and ref not in owner:
                    case = await uow.register.get(ref)
                    owner[ref] = None if case is None else case.organisation
    mailboxes = {address.lower() for address in org.mailboxes.values()}

    def ours(ref: str | None, recipient: str) -> bool:
        if slug is None:
            return True
        return owner.get(ref) == slug if ref is not None else recipient.lower() in mailboxes

    # An invitation to the desk is not a mail to the organisation: its refusal is in the audit log.
    return [FailedMail(item.case_reference, item.purpose, item.recipient, item.last_error or "",
                       failed_at)
            for item, failed_at in failed
            if item.purpose != "invitation" and (since is None or failed_at >= since)
            and ours(item.case_reference, item.recipient)]


def mailbox_name(app: ServiceHost, address: str) -> str:
    """`committee (klachten@example.nl)` for one of the organisations' mailboxes."""
    for organisation in app.deployment.organisations:
        for name, known in organisation.mailboxes.items():
            if known.lower() == address.lower():
                return f"{name} ({known})"
    return address


def failed_mail_line(app: ServiceHost, mail: FailedMail) -> str:
    """One Dutch line: what was refused, where, when, the server's answer and what to do."""
    what = PURPOSE_NL.get(mail.purpose, mail.purpose)
    head = f"{mail.reference}: " if mail.reference else ""
    action = (f"stuur het handmatig door (klachtwijzer case show {mail.reference})" if mail.reference
              else "controleer de mailbox")
    return (f"{head}mail met {what} aan {mailbox_name(app, mail.recipient)} GEWEIGERD op "
            f"{mail.failed_at.astimezone(ORG_TZ).strftime('%d-%m-%Y %H:%M')}, antwoord van de "
            f"server: {mail.reason}; {action}")
