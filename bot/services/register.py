"""The register's operations for the committee secretary and the coordinator (issue 4).

Every operation opens its own units of work on `app.db`; messages to clients are sent between
units of work, never while a transaction is open. The rules (statuses, deadlines, texts) are in
`flows/register.py`; the tables in `storage/register.py`.

Messages to clients that are not a reply (status updates, the follow-up question) are first stored
as pending notifications, then delivered by the channel when it runs in this process. When the
channel runs in another process (`klachtwijzer run`, while the secretary uses the CLI), that
process's scheduler delivers it within a minute. When the client cannot be reached in the chat,
the register records a manual contact by the way the client chose (phone, e-mail), which the daily
digest lists until staff record `klachtwijzer case note REF --contacted`.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from bot.mail.compose import compose_digest, new_message_id
from flows import register as rules
from flows import rules as rules_text
from flows.model import OutMessage, RecordFollowUp
from storage import CaseRecord, Database, OutboxItem, StoredConversation, UnitOfWork
from storage.register import NotificationRecord

if TYPE_CHECKING:
    from bot.services.ports import ServiceHost

log = logging.getLogger(__name__)

__all__ = [
    "EXPORT_FIELDS",
    "RegisterError",
    "add_case",
    "add_note",
    "anonymised_rows",
    "case_view",
    "deliver_pending",
    "export",
    "failed_mails",
    "lapse_unreachable",
    "list_cases",
    "purge",
    "queue_digest",
    "record_follow_up",
    "send_follow_ups",
    "set_status",
]

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


async def _case(uow: UnitOfWork, reference: str) -> CaseRecord:
    case = await uow.register.get(reference.strip().upper())
    if case is None:
        raise RegisterError(f"onbekende referentie '{reference}' (zie `klachtwijzer case list`)")
    return case


def _events(records: Sequence[Any]) -> list[rules.CaseEvent]:
    return [rules.CaseEvent(r.action, r.value, r.at) for r in records]


def _deadlines(app: ServiceHost, case: CaseRecord, events: Sequence[Any]) -> list[rules.Deadline]:
    return rules.due_dates(case.kind, case.created_at, _events(events),
                           app.organisation.procedure.deadlines)


def _open_due(deadlines: Sequence[rules.Deadline]) -> dict[str, date]:
    """The due dates still open, by name (what the client's message mentions)."""
    return {d.name: d.due for d in deadlines if d.met_at is None and not d.cancelled}


# --- the anonymised rows: export, report, the coordinator's /signals ----------------------------

EXPORT_FIELDS: tuple[str, ...] = (
    "reference",
    "kind",
    "schema",
    "category",
    "language",
    "channel",
    "organisation",
    "location",
    "month",
    "status",
    "outcome",
    "days_to_acknowledgement",
    "days_to_decision",
    "acknowledged_on_time",
    "decided_on_time",
    "follow_up",
)


def _days(start: datetime, end: datetime | None) -> int | None:
    return None if end is None else (local_date(end) - local_date(start)).days


def _on_time(deadlines: Sequence[rules.Deadline], name: str, today: date) -> bool | None:
    """True if the deadline was met in time; False if late or overdue; None if it never applied."""
    states = [d.state(today) for d in deadlines if d.name == name and not d.cancelled]
    if not states or states[-1] == "open":
        return None
    return states[-1] == "met"


async def anonymised_rows(
    db: Database,
    start: date | None = None,
    end: date | None = None,
    *,
    organisation: str = "",
    deadlines: dict[str, int] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> list[dict[str, object]]:
    """One row per case registered on [start, end] (inclusive dates, Dutch time), oldest first.

    No names, no free text, no contact details or chat/account ids: only the fields of
    `EXPORT_FIELDS`. `deadlines` (the procedure's, in days) decide the on-time columns; without
    it the default procedure's are used.
    """
    if deadlines is None:
        from flows.procedure import load_procedure

        deadlines = load_procedure().deadlines
    async with db.unit_of_work(read_only=True) as uow:
        found = await uow.register.cases(
            created_from=_start_of(start) if start else None,
            created_before=_start_of(end + timedelta(days=1)) if end else None,
        )
        answers = await uow.register.follow_up_answers()
        histories = await uow.register.events_by_case([c.stored_id for c in found])
    today = local_date(datetime.now(UTC) if clock is None else clock())
    rows: list[dict[str, object]] = []
    for case in found:
        due = rules.due_dates(case.kind, case.created_at, _events(histories[case.stored_id]), deadlines)
        rows.append(
            {
                "reference": case.reference,
                "kind": case.kind,
                "schema": case.schema or None,
                "category": case.category,
                "language": case.language,
                "channel": case.channel,
                "organisation": organisation or None,
                "location": case.location,
                "month": local_date(case.created_at).strftime("%Y-%m"),
                "status": case.status,
                "outcome": case.outcome,
                "days_to_acknowledgement": _days(case.created_at, case.acknowledged_at),
                "days_to_decision": _days(case.created_at, case.decided_at),
                "acknowledged_on_time": _on_time(due, "acknowledge", today),
                "decided_on_time": _on_time(due, "decision_latest", today),
                "follow_up": answers.get(case.stored_id),
            }
        )
    return rows


async def app_rows(
    app: ServiceHost, start: date | None = None, end: date | None = None
) -> list[dict[str, object]]:
    """`anonymised_rows` with the app's organisation and procedure."""
    return await anonymised_rows(app.db, start, end, organisation=app.organisation.name,
                                 deadlines=app.organisation.procedure.deadlines, clock=app.clock)


ExportFormat = Literal["csv", "xlsx", "json"]


def export_bytes(rows: Sequence[dict[str, object]], fmt: ExportFormat) -> bytes:
    """The rows as CSV (UTF-8 with BOM for Excel), XLSX or JSON; fields in `EXPORT_FIELDS` order."""
    if fmt == "json":
        return (json.dumps([{k: row[k] for k in EXPORT_FIELDS} for row in rows],
                           ensure_ascii=False, indent=2) + "\n").encode()
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(EXPORT_FIELDS)
        for row in rows:
            writer.writerow(["" if row[k] is None else row[k] for k in EXPORT_FIELDS])
        return ("\ufeff" + buffer.getvalue()).encode()
    if fmt == "xlsx":
        from openpyxl import Workbook  # type: ignore[import-untyped]

        book = Workbook()
        sheet = book.active
        if sheet is None:  # pragma: no cover - a new workbook always has one sheet
            sheet = book.create_sheet()
        sheet.title = "register"
        sheet.append(list(EXPORT_FIELDS))
        for row in rows:
            sheet.append([_cell(row[k]) for k in EXPORT_FIELDS])
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()
    raise RegisterError(f"onbekend formaat '{fmt}' (csv, xlsx of json)")


def _cell(value: object) -> object:
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


async def export(
    app: ServiceHost, fmt: ExportFormat, start: date | None = None, end: date | None = None
) -> tuple[bytes, int]:
    rows = await app_rows(app, start, end)
    return export_bytes(rows, fmt), len(rows)


# --- cases: add, list, show ---------------------------------------------------------------------


async def add_case(
    app: ServiceHost,
    *,
    kind: str = "signal",
    schema: str = "",
    category: str | None = None,
    language: str = "nl",
    channel: str = "in_person",
    location: str | None = None,
    status: str = "closed",
    note: str | None = None,
    actor: str = "cli",
) -> CaseRecord:
    """Register a signal (003 §5: also what was solved on the spot); no personal data."""
    from flows.model import LANGUAGES
    from flows.procedure import CATEGORIES

    if kind not in (*CLIENT_KINDS, "signal"):
        raise RegisterError(f"onbekende soort '{kind}' (signal, {', '.join(CLIENT_KINDS)})")
    if category is not None and category not in CATEGORIES:
        raise RegisterError(f"onbekende categorie '{category}' ({', '.join(sorted(CATEGORIES))})")
    if schema and schema not in app.organisation.procedure.schemas:
        raise RegisterError(
            f"onbekend schema '{schema}' ({', '.join(app.organisation.procedure.schemas)})"
        )
    if language not in LANGUAGES:
        raise RegisterError(f"onbekende taal '{language}' ({', '.join(LANGUAGES)})")
    if status not in ("received", "closed"):
        raise RegisterError("een nieuw signaal is 'received' (nog open) of 'closed' (opgelost)")
    now = app.clock()
    async with app.db.unit_of_work() as uow:
        reference = await uow.cases.next_reference(local_date(now).year)
        case = await uow.register.add_signal(
            reference=reference, kind=kind, schema=schema, category=category,
            language=language, channel=channel[:16], location=location, status=status, at=now,
        )
        await uow.register.add_event(reference, now, actor=actor, action="status", value=status,
                                     note=note)
        await uow.audit.record(now, actor, "case_added", reference, kind)
        await uow.commit()
    log.info("register: %s added (%s)", reference, kind)
    return case


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
                       since: datetime | None = None) -> list[FailedMail]:
    """Mails marked 'failed' in the outbox, oldest first, dated by their 'mail_failed' audit entry."""
    async with app.db.unit_of_work(read_only=True) as uow:
        failed = await uow.outbox.failed(reference)
    return [FailedMail(item.case_reference, item.purpose, item.recipient, item.last_error or "",
                       failed_at)
            for item, failed_at in failed if since is None or failed_at >= since]


def mailbox_name(app: ServiceHost, address: str) -> str:
    """`committee (klachten@example.nl)` for one of the organisation's mailboxes."""
    for name, known in app.organisation.mailboxes.items():
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


@dataclass(frozen=True)
class CaseLine:
    case: CaseRecord
    deadlines: tuple[rules.Deadline, ...]
    due: tuple[rules.Deadline, ...]  # open, due within 3 days or overdue
    manual: tuple[NotificationRecord, ...] = ()
    failed: tuple[FailedMail, ...] = ()


async def list_cases(
    app: ServiceHost, *, due_only: bool = False, status: str | None = None, include_closed: bool = True
) -> list[CaseLine]:
    """The register, oldest first; `due_only`: cases with a deadline within 3 days or overdue."""
    if status is not None and status not in rules.STATUSES:
        raise RegisterError(f"onbekende status '{status}' ({', '.join(rules.STATUSES)})")
    today = local_date(app.clock())
    async with app.db.unit_of_work(read_only=True) as uow:
        statuses = (status,) if status else (None if include_closed else tuple(rules.OPEN))
        found = await uow.register.cases(statuses=statuses)
        histories = await uow.register.events_by_case([c.stored_id for c in found])
        manual = await uow.register.notifications(open_manual=True)
    refused = await failed_mails(app)
    lines = []
    for case in found:
        deadlines = _deadlines(app, case, histories[case.stored_id])
        due = rules.due_soon(deadlines, today, DUE_WITHIN_DAYS)
        if due_only and not due:
            continue
        lines.append(CaseLine(case, tuple(deadlines), tuple(due),
                              tuple(n for n in manual if n.reference == case.reference),
                              tuple(m for m in refused if m.reference == case.reference)))
    return lines


@dataclass(frozen=True)
class CaseView:
    case: CaseRecord
    deadlines: tuple[rules.Deadline, ...]
    events: tuple[Any, ...]
    notifications: tuple[NotificationRecord, ...]
    follow_up: Any | None
    payload: dict[str, Any] | None = field(repr=False)
    failed: tuple[FailedMail, ...] = ()


async def case_view(app: ServiceHost, reference: str) -> CaseView:
    async with app.db.unit_of_work(read_only=True) as uow:
        case = await _case(uow, reference)
        events = await uow.register.events(case.reference)
        notes = await uow.register.notifications(case.reference)
        follow_up = await uow.register.follow_up(case.reference)
        payload = await uow.register.payload(case.reference)
    refused = await failed_mails(app, reference=case.reference)
    return CaseView(case, tuple(_deadlines(app, case, events)), tuple(events), tuple(notes),
                    follow_up, payload, tuple(refused))


# --- status changes and notes --------------------------------------------------------------------


@dataclass(frozen=True)
class StatusChange:
    case: CaseRecord
    delivery: str  # sent, template, manual, pending, none
    method: str | None = None


async def set_status(
    app: ServiceHost,
    reference: str,
    status: str,
    *,
    outcome: str | None = None,
    note: str | None = None,
    actor: str = "cli",
    notify: bool = True,
) -> StatusChange:
    """Change the status (checked, timestamped, audited) and tell the client on their channel."""
    now = app.clock()
    async with app.db.unit_of_work() as uow:
        case = await _case(uow, reference)
        try:
            rules.check_change(case.kind, case.status, status, outcome)
        except rules.StatusChangeError as exc:
            raise RegisterError(f"{case.reference}: {exc}") from exc
        case = await uow.register.change_status(case.reference, status, now, actor=actor,
                                                outcome=outcome, note=note)
        await uow.audit.record(now, actor, "status_changed", case.reference,
                               status + (f" ({outcome})" if outcome else ""))
        notification = None
        if notify and case.kind != "signal":
            notification = await uow.register.add_notification(case.reference, "status", now,
                                                                status=status)
        await uow.commit()
    log.info("register: %s -> %s", case.reference, status)
    if notification is None:
        return StatusChange(case, "none")
    delivered = await deliver_pending(app, only=notification)
    delivery, method = delivered.get(notification, ("pending", None))
    return StatusChange(case, delivery, method)


async def send_message(
    app: ServiceHost, reference: str, text: str, *, actor: str = "cli", asks_information: bool = False
) -> StatusChange:
    """Write to the client of a case in their chat, word for word; they can answer there and the
    answer is mailed to the case's mailbox. `asks_information` also records 001 art. 14.3 (the
    client has two weeks to give missing information). The text is kept encrypted in the case
    history and shown in the client's /dossier."""
    text = rules_text.clean_inbound(text).strip()
    if rules_text.is_blank(text):
        raise RegisterError("het bericht is leeg")
    if len(text) > rules.MAX_MESSAGE:
        raise RegisterError(f"het bericht is te lang: {len(text)} tekens, het maximum is "
                            f"{rules.MAX_MESSAGE}")
    now = app.clock()
    async with app.db.unit_of_work() as uow:
        case = await _case(uow, reference)
        if case.kind == "signal" or await uow.register.client_chat(case.reference) is None:
            raise RegisterError(f"{case.reference}: deze cliënt is niet via een chat bereikbaar "
                                "(een signaal, of het dossier is vernietigd)")
        event = await uow.register.add_event(case.reference, now, actor=actor, action="message",
                                             note=text)
        if asks_information:
            await uow.register.add_event(case.reference, now, actor=actor,
                                         action="info_requested")
        notification = await uow.register.add_notification(case.reference, "message", now,
                                                            event_id=event)
        await uow.audit.record(now, actor, "message_to_client", case.reference)
        await uow.commit()
    log.info("register: message to the client of %s", case.reference)
    delivered = await deliver_pending(app, only=notification)
    delivery, method = delivered.get(notification, ("pending", None))
    return StatusChange(case, delivery, method)


async def add_note(
    app: ServiceHost,
    reference: str,
    text: str | None,
    *,
    actor: str = "cli",
    contacted: bool = False,
    met: str | None = None,
    info_requested: bool = False,
    attention_done: bool = False,
    follow_up: str | None = None,
) -> list[str]:
    """A note (encrypted) and/or register facts; returns what was recorded, in Dutch."""
    if text is not None and not text.strip():
        raise RegisterError("een lege notitie heeft geen zin")
    if met is not None and met not in rules.DEADLINE_NL:
        raise RegisterError(f"onbekende termijn '{met}' ({', '.join(rules.DEADLINE_NL)})")
    if follow_up is not None and follow_up not in rules.FOLLOW_UP_ANSWERS:
        raise RegisterError("het antwoord op de nazorgvraag is yes, partly of no")
    if not any((text, contacted, met, info_requested, attention_done, follow_up)):
        raise RegisterError("geef een notitie of een van de opties (zie --help)")
    now = app.clock()
    done: list[str] = []
    async with app.db.unit_of_work() as uow:
        case = await _case(uow, reference)
        ref = case.reference
        if text:
            await uow.register.add_event(ref, now, actor=actor, action="note", note=text)
            done.append("notitie opgeslagen (versleuteld)")
        if contacted:
            await uow.register.add_event(ref, now, actor=actor, action="contacted")
            count = await uow.register.resolve_manual(ref, now)
            done.append(f"contact vastgelegd; {count} open handmatig contact afgehandeld")
        if met:
            await uow.register.add_event(ref, now, actor=actor, action="deadline_met", value=met)
            done.append(f"termijn gehaald: {rules.DEADLINE_NL[met]}")
        if info_requested:
            await uow.register.add_event(ref, now, actor=actor, action="info_requested")
            done.append("aanvullende informatie gevraagd; termijn van 2 weken loopt (001 art. 14.3)")
        if follow_up:
            await uow.register.add_event(ref, now, actor=actor, action="follow_up", value=follow_up)
            await uow.register.record_follow_up(ref, follow_up, now)
            done.append(f"antwoord op de nazorgvraag: {ANSWER_NL[follow_up]}")
        if attention_done:
            await uow.register.add_event(ref, now, actor=actor, action="attention_done")
            count = await uow.register.attention_done(ref, now)
            done.append(f"nazorg afgehandeld ({count})")
        await uow.audit.record(now, actor, "case_noted", ref,
                               ",".join(k for k, v in (("note", text), ("contacted", contacted),
                                                       ("met", met), ("info", info_requested),
                                                       ("follow_up", follow_up),
                                                       ("attention", attention_done)) if v))
        await uow.commit()
    return done


# --- delivering messages to clients --------------------------------------------------------------


def _runs_elsewhere(app: ServiceHost, channel: str) -> bool:
    """The channel is configured but runs in another process (the CLI next to `klachtwijzer run`)."""
    return app.channels.get(channel) is None and channel in app.configured_channels


def _contact_method(payload: dict[str, Any] | None) -> str:
    contact = ((payload or {}).get("complainant") or {}).get("contact") or {}
    method = contact.get("method")
    return method if method in ("phone", "email") and contact.get("value") else "none"


async def _message(app: ServiceHost, uow: UnitOfWork, n: NotificationRecord, case: CaseRecord,
                   language: str | None) -> OutMessage:
    t = app.catalogs.get(language or case.language)
    if n.purpose == "follow_up":
        return rules.follow_up_message(t, case.reference)
    if n.purpose == "message":
        text = await uow.register.event_note(n.event_id) if n.event_id is not None else None
        return rules.staff_message(t, case.reference, text)
    events = await uow.register.events(case.reference)
    return rules.status_message(
        t, kind=case.kind, status=n.status or case.status, reference=case.reference,
        outcome=case.outcome, due=_open_due(_deadlines(app, case, events)),
        follow_up_days=app.organisation.follow_up_days,
    )


async def deliver_pending(app: ServiceHost, *, only: int | None = None) -> dict[int, tuple[str, str | None]]:
    """Deliver pending notifications; returns {id: (delivery, method)} for those decided now.

    A channel that runs in another process is left to that process. Otherwise a message the
    channel cannot deliver becomes a manual contact by the way the client chose.
    """
    async with app.db.unit_of_work(read_only=True) as uow:
        pending = [n for n in await uow.register.notifications(pending=True)
                   if only is None or n.id == only]
        work = []
        for n in pending:
            case = await uow.register.get(n.reference)
            if case is None:  # pragma: no cover - cascades with the case
                continue
            chat = await uow.register.client_chat(n.reference)
            message = await _message(app, uow, n, case,
                                     chat.language if chat else case.language)
            payload = await uow.register.payload(n.reference)
            work.append((n, chat, message, _contact_method(payload)))
    decided: dict[int, tuple[str, str | None]] = {}
    for n, chat, message, method in work:
        result: str = "unavailable"
        if chat is not None:
            if _runs_elsewhere(app, chat.channel):
                continue
            try:
                result = await app.channels.send(chat.channel, chat.chat_id, [message])
            except Exception as exc:  # a channel failure must not lose the notification
                log.warning("register: sending %s for %s failed: %s", n.purpose, n.reference,
                            type(exc).__name__)
                continue
        now = app.clock()
        delivery = result if result in ("sent", "template") else "manual"
        chosen = method if delivery == "manual" else None
        async with app.db.unit_of_work() as uow:
            await uow.register.set_delivery(n.id, now, delivery, chosen)
            if delivery == "manual" and n.status == "lapsed":
                await uow.register.resolve_manual(n.reference, now)  # unreachable anyway
            await uow.audit.record(now, "register", f"{n.purpose}_notified", n.reference,
                                   delivery + (f":{chosen}" if chosen else ""))
            await uow.commit()
        decided[n.id] = (delivery, chosen)
    return decided


async def announced_news(app: ServiceHost, channel: str, chat_id: str) -> list[tuple[int, OutMessage]]:
    """News that only a template announced to this chat (WhatsApp outside its 24-hour window),
    rendered now in the client's language: to show when the client writes again. Kept in the
    database, so a restart in between loses nothing."""
    async with app.db.unit_of_work(read_only=True) as uow:
        news = []
        for n in await uow.register.announced(channel, chat_id):
            case = await uow.register.get(n.reference)
            if case is None:  # pragma: no cover - cascades with the case
                continue
            chat = await uow.register.client_chat(n.reference)
            news.append((n.id, await _message(app, uow, n, case,
                                              chat.language if chat else case.language)))
    return news


async def news_shown(app: ServiceHost, notification_ids: Sequence[int]) -> None:
    """The client was shown these announced notifications' news."""
    now = app.clock()
    async with app.db.unit_of_work() as uow:
        for notification_id in notification_ids:
            await uow.register.shown(notification_id, now)
        await uow.commit()


# --- follow-up (003 §4) -------------------------------------------------------------------------


async def send_follow_ups(app: ServiceHost) -> int:
    """Ask clients of cases closed `follow_up_days` ago whether the problem is really solved."""
    days = app.organisation.follow_up_days
    if days <= 0:
        return 0
    now = app.clock()
    async with app.db.unit_of_work() as uow:
        due = await uow.register.follow_up_due(now - timedelta(days=days))
        for case in due:
            await uow.register.add_notification(case.reference, "follow_up", now)
        await uow.commit()
    if due:
        await deliver_pending(app)
    return len(due)


async def record_follow_up(
    uow: UnitOfWork, effect: RecordFollowUp, stored: StoredConversation, now: datetime
) -> None:
    """The service's side of `RecordFollowUp`: store the client's answer in the register."""
    case = await uow.register.get(effect.reference)
    if case is None or case.conversation_id is None or case.conversation_id != stored.id:
        log.warning("follow-up answer refused for a case not owned by this conversation")
        return
    if effect.answer not in rules.FOLLOW_UP_ANSWERS:
        return
    await uow.register.record_follow_up(effect.reference, effect.answer, now, effect.comment)
    if effect.comment is None:
        await uow.register.add_event(effect.reference, now, actor="client", action="follow_up",
                                     value=effect.answer)
    await uow.audit.record(now, "client", "follow_up_answered", effect.reference,
                           effect.answer + (" +comment" if effect.comment else ""))


# --- lapse (002 §4.1) ---------------------------------------------------------------------------


def _last_inbound(data: dict[str, Any]) -> datetime | None:
    raw = data.get(LAST_INBOUND)
    try:
        return datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


async def lapse_unreachable(app: ServiceHost) -> list[str]:
    """002 §4.1: a case lapses when the client is unreachable for two months (`lapse_days`).

    Unreachable since: the oldest manual contact still open that the client did not answer by
    writing in the chat afterwards. Recording `--contacted` ends it.
    """
    now = app.clock()
    limit = timedelta(days=app.organisation.lapse_days)
    candidates: list[str] = []
    async with app.db.unit_of_work(read_only=True) as uow:
        manual = await uow.register.notifications(open_manual=True)
        since: dict[str, datetime] = {}
        for n in manual:
            since.setdefault(n.reference, n.created_at)
        for reference, first in since.items():
            case = await uow.register.get(reference)
            if case is None or case.status not in rules.OPEN or case.kind in ("report", "signal"):
                continue
            chat = await uow.register.client_chat(reference)
            wrote = _last_inbound(chat.data) if chat else None
            if wrote is not None and wrote > first:
                continue
            if now - first >= limit:
                candidates.append(reference)
    lapsed = []
    for reference in candidates:
        try:
            await set_status(app, reference, "lapsed", actor="system",
                             note=None)
        except RegisterError as exc:  # pragma: no cover - changed meanwhile
            log.warning("register: lapse of %s refused: %s", reference, exc)
            continue
        lapsed.append(reference)
    return lapsed


# --- retention (001 art. 17.4) ------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeResult:
    cases: tuple[str, ...]
    files: int
    outbox_rows: int
    conversations: int


def _retention_cutoff(now: datetime, years: int) -> datetime:
    try:
        return now.replace(year=now.year - years)
    except ValueError:  # 29 February
        return now.replace(year=now.year - years, day=28)


async def purge(app: ServiceHost, *, dry_run: bool = False) -> PurgeResult:
    """Destroy dossiers `retention_years` after closing, with attachments and outbox copies.

    Only the anonymised columns stay (for the statistics). Conversations untouched for as long
    whose cases are all destroyed go too, with the files of their unsent drafts.
    """
    now = app.clock()
    cutoff = _retention_cutoff(now, app.organisation.retention_years)
    async with app.db.unit_of_work() as uow:
        due = await uow.register.retention_due(cutoff)
        stale = await uow.register.stale_conversations(cutoff)
        file_refs: list[str] = []
        outbox_rows = 0
        for case in due:
            payload = await uow.register.payload(case.reference)
            file_refs += [str(a["ref"]) for a in (payload or {}).get("attachments") or []]
            if not dry_run:
                outbox_rows += await uow.register.destroy_dossier(case.reference, now)
                await uow.audit.record(now, "retention", "dossier_destroyed", case.reference)
        for chat in stale:
            file_refs += [str(a["ref"]) for a in chat.data.get("attachments") or []]
            if not dry_run:
                await uow.register.delete_conversation(chat.conversation_id)
        if not dry_run:
            outbox_rows += await uow.register.delete_old_outbox(cutoff)
            await uow.commit()
    deleted = 0
    if not dry_run:
        for ref in file_refs:
            try:
                if app.files.exists(ref):
                    await app.files.delete(ref)
                    deleted += 1
            except ValueError:
                log.warning("register: skipped an attachment reference that is not ours")
    if due or stale:
        log.info("retention: %d dossiers, %d conversations, %d files", len(due), len(stale), deleted)
    return PurgeResult(tuple(c.reference for c in due), deleted if not dry_run else len(file_refs),
                       outbox_rows, len(stale))


# --- the daily digest ----------------------------------------------------------------------------


def _deadline_line(case: CaseRecord, d: rules.Deadline, today: date) -> str:
    left = (d.due - today).days
    when = (f"VERLOPEN sinds {-left} dag{'en' if -left != 1 else ''}" if left < 0
            else "vandaag" if left == 0 else f"over {left} dag{'en' if left != 1 else ''}")
    return (f"{case.reference} ({KIND_NL.get(case.kind, case.kind)}, "
            f"{rules.STATUS_NL.get(case.status, case.status)}): {d.label_nl} "
            f"uiterlijk {_day(d.due)}, {when}")


def _manual_lines(manual: Sequence[NotificationRecord]) -> list[str]:
    """One line per case: how many messages did not arrive, the last one, and what to do."""
    by_case: dict[str, list[NotificationRecord]] = {}
    for n in manual:
        by_case.setdefault(n.reference, []).append(n)
    lines = []
    for reference, items in by_case.items():
        last = items[-1]
        what = ("nazorgvraag" if last.purpose == "follow_up"
                else f"statusbericht '{rules.STATUS_NL.get(last.status or '', last.status)}'")
        count = (f"{len(items)} berichten niet afgeleverd, laatste: {what}" if len(items) > 1
                 else f"{what} niet afgeleverd")
        if last.method in ("phone", "email"):
            action = f"neem contact op {METHOD_NL[last.method]}"
        else:
            action = "geen telefoon of e-mail bekend: cliënt onbereikbaar"
        lines.append(f"{reference}: {count} ({_day(last.created_at)}); {action}")
    return lines


async def digest_sections(app: ServiceHost, *, lapsed: Sequence[str] = ()) -> dict[str, list[str]]:
    today = local_date(app.clock())
    lines = await list_cases(app, due_only=True, include_closed=False)
    async with app.db.unit_of_work(read_only=True) as uow:
        manual = await uow.register.notifications(open_manual=True)
        attention = await uow.register.needing_attention()
        pending = await uow.register.notifications(pending=True)
    stuck = [n for n in pending if app.clock() - n.created_at > timedelta(hours=1)]
    refused = await failed_mails(app, since=app.clock() - timedelta(days=FAILED_MAIL_DAYS))
    return {
        "failed": [failed_mail_line(app, m) for m in refused],
        "deadlines": [_deadline_line(line.case, d, today) for line in lines for d in line.due],
        "manual": _manual_lines(manual),
        "attention": [f"{f.reference}: antwoord '{ANSWER_NL[f.answer]}' op {_day(f.answered_at)}"
                      + ("; met toelichting" if f.comment else "") for f in attention],
        "lapsed": list(lapsed),
        "pending": [f"{n.reference}: sinds {_day(n.created_at)}" for n in stuck],
    }


async def queue_digest(
    app: ServiceHost, *, lapsed: Sequence[str] = (), force: bool = False
) -> tuple[dict[str, list[str]], bool]:
    """Put the Dutch digest for the committee mailbox in the outbox; skipped when there is nothing."""
    sections = await digest_sections(app, lapsed=lapsed)
    async with app.db.unit_of_work() as uow:
        queued = await add_digest(app, uow, sections, force=force)
        await uow.commit()
    return sections, queued


async def add_digest(
    app: ServiceHost, uow: UnitOfWork, sections: dict[str, list[str]], *, force: bool = False
) -> bool:
    """Add the digest mail to the outbox in the caller's unit of work (the daily run commits it
    together with marking the day done); False when there is nothing to report."""
    if not force and not any(sections.values()):
        return False
    now = app.clock()
    sender = app.mail_from
    recipient = app.organisation.procedure.mailboxes["committee"]
    recipients = [recipient]
    if sections.get("failed"):
        refused = await failed_mails(app, since=now - timedelta(days=FAILED_MAIL_DAYS))
        # The committee's own mailbox refuses mail: the digest would not reach anyone there.
        fallback = digest_fallback(app)
        if fallback and any(m.recipient.lower() == recipient.lower() for m in refused):
            recipients.append(fallback)
            log.error("the committee mailbox refused mail; the digest also goes to "
                      "KLACHTWIJZER_FALLBACK_MAIL")
        elif any(m.recipient.lower() == recipient.lower() for m in refused):
            log.error("the committee mailbox refused mail and KLACHTWIJZER_FALLBACK_MAIL is not "
                      "set: the digest may not reach anyone")
    for to in recipients:
        message_id = new_message_id(sender)
        mail = compose_digest(local_date(now), sections, sender=sender, recipient=to,
                              message_id=message_id, date=now)
        await uow.outbox.add(
            OutboxItem(purpose="digest", recipient=to, message_id=message_id,
                       raw=bytes(mail), next_attempt_at=now, created_at=now)
        )
    await uow.audit.record(now, "register", "digest_queued",
                           detail=",".join(f"{k}={len(v)}" for k, v in sections.items())
                           + (",fallback=1" if len(recipients) > 1 else ""))
    return True


def digest_fallback(app: ServiceHost) -> str | None:
    """KLACHTWIJZER_FALLBACK_MAIL, from the composition root's App (`fallback_mail`).

    Looked up by name because ServiceHost (bot/services/ports.py) does not declare it yet.
    """
    value = getattr(app, "fallback_mail", None)
    return value if isinstance(value, str) and value else None
