"""The register's anonymised rows and what is made of them: exports (CSV, XLSX, JSON), the
yearly report's rows, the daily digest for the committee, and retention (001 art. 17.4).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from bot.mail.compose import new_message_id
from bot.mail.digest import compose_digest
from bot.services.register_cases import list_cases
from bot.services.register_common import (
    ANSWER_NL,
    FAILED_MAIL_DAYS,
    KIND_NL,
    METHOD_NL,
    RegisterError,
    _day,
    _events,
    _start_of,
    failed_mail_line,
    failed_mails,
    local_date,
    scope,
)
from flows import register as rules
from flows.organisations import ORG_KEY
from storage import CaseRecord, Database, OutboxItem, UnitOfWork
from storage.register import NotificationRecord

if TYPE_CHECKING:
    from bot.services.organisation import Organisation
    from bot.services.ports import ServiceHost

log = logging.getLogger("bot.services.register")  # one logger for the register's modules


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
    slug: str | None = None,
) -> list[dict[str, object]]:
    """One row per case registered on [start, end] (inclusive dates, Dutch time), oldest first;
    only the cases of the organisation `slug` when given (None: every case in the database).

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
            organisation=slug,
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
    app: ServiceHost, start: date | None = None, end: date | None = None, *,
    organisation: Organisation | None = None,
) -> list[dict[str, object]]:
    """`anonymised_rows` of one organisation (None: the default), with its name and procedure;
    with several organisations, only its own cases."""
    org, slug = scope(app, organisation)
    return await anonymised_rows(app.db, start, end, organisation=org.name,
                                 deadlines=org.procedure.deadlines, clock=app.clock, slug=slug)


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
    app: ServiceHost, fmt: ExportFormat, start: date | None = None, end: date | None = None, *,
    organisation: Organisation | None = None,
) -> tuple[bytes, int]:
    """The anonymised rows of one organisation (None: the default) as CSV, XLSX or JSON."""
    rows = await app_rows(app, start, end, organisation=organisation)
    return export_bytes(rows, fmt), len(rows)

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


async def purge(app: ServiceHost, *, dry_run: bool = False,
                organisation: Organisation | None = None) -> PurgeResult:
    """Destroy dossiers of `organisation` (None: the default) its `retention_years` after
    closing, with attachments and outbox copies.

    Only the anonymised columns stay (for the statistics). Conversations untouched for as long
    whose cases are all destroyed go too, with the files of their unsent drafts; with several
    organisations, only the conversations that chose this one (or chose none, for the default).
    """
    org, slug = scope(app, organisation)
    now = app.clock()
    cutoff = _retention_cutoff(now, org.retention_years)
    async with app.db.unit_of_work() as uow:
        due = await uow.register.retention_due(cutoff, organisation=slug)
        stale = [chat for chat in await uow.register.stale_conversations(cutoff)
                 if slug is None or app.deployment.of(_chosen(chat.data)).slug == slug]
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
            recipients = None
            if slug is not None:  # digests to this organisation's mailboxes (and the fallback)
                recipients = [*org.mailboxes.values(), *([app.fallback_mail]
                                                         if app.fallback_mail else [])]
            outbox_rows += await uow.register.delete_old_outbox(cutoff, recipients=recipients)
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


def _chosen(data: dict[str, object]) -> str | None:
    """The organisation slug a conversation chose (bot/services/intake.py keeps it), if any."""
    chosen = data.get(ORG_KEY)
    return chosen if isinstance(chosen, str) else None


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


async def digest_sections(app: ServiceHost, *, lapsed: Sequence[str] = (),
                          organisation: Organisation | None = None) -> dict[str, list[str]]:
    """The digest's lines for one organisation (None: the default), by section."""
    org, slug = scope(app, organisation)
    today = local_date(app.clock())
    lines = await list_cases(app, due_only=True, include_closed=False, organisation=org)
    async with app.db.unit_of_work(read_only=True) as uow:
        manual = await uow.register.notifications(open_manual=True, organisation=slug)
        attention = await uow.register.needing_attention(organisation=slug)
        pending = await uow.register.notifications(pending=True, organisation=slug)
    stuck = [n for n in pending if app.clock() - n.created_at > timedelta(hours=1)]
    refused = await failed_mails(app, since=app.clock() - timedelta(days=FAILED_MAIL_DAYS),
                                 organisation=org)
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
    app: ServiceHost, *, lapsed: Sequence[str] = (), force: bool = False,
    organisation: Organisation | None = None,
) -> tuple[dict[str, list[str]], bool]:
    """Put the Dutch digest of one organisation (None: the default) for its committee mailbox in
    the outbox; skipped when there is nothing."""
    sections = await digest_sections(app, lapsed=lapsed, organisation=organisation)
    async with app.db.unit_of_work() as uow:
        queued = await add_digest(app, uow, sections, force=force, organisation=organisation)
        await uow.commit()
    return sections, queued


async def add_digest(
    app: ServiceHost, uow: UnitOfWork, sections: dict[str, list[str]], *, force: bool = False,
    organisation: Organisation | None = None,
) -> bool:
    """Add the digest mail to the outbox of the committee mailbox of `organisation` (None: the
    default) in the caller's unit of work (the daily run commits it together with marking the
    day done); False when there is nothing to report."""
    if not force and not any(sections.values()):
        return False
    org, _ = scope(app, organisation)
    now = app.clock()
    sender = app.mail_from
    recipient = org.procedure.mailboxes["committee"]
    recipients = [recipient]
    if sections.get("failed"):
        refused = await failed_mails(app, since=now - timedelta(days=FAILED_MAIL_DAYS),
                                     organisation=org)
        # The committee's own mailbox refuses mail: the digest would not reach anyone there.
        fallback = app.fallback_mail
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
                           detail=(f"org={org.slug}," if app.deployment.several else "")
                           + ",".join(f"{k}={len(v)}" for k, v in sections.items())
                           + (",fallback=1" if len(recipients) > 1 else ""))
    return True
