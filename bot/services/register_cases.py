"""The register's cases for staff: add a signal, list, show, change the status, write to the
client, add notes; and the lapse of cases whose client is unreachable (002 §4.1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.services.register_common import (
    ANSWER_NL,
    CLIENT_KINDS,
    DUE_WITHIN_DAYS,
    LAST_INBOUND,
    FailedMail,
    RegisterError,
    _case,
    _deadlines,
    failed_mails,
    local_date,
    scope,
)
from bot.services.register_notify import deliver_pending
from flows import register as rules
from flows import rules as rules_text
from storage import CaseRecord
from storage.register import NotificationRecord

if TYPE_CHECKING:
    from bot.services.organisation import Organisation
    from bot.services.ports import ServiceHost

log = logging.getLogger("bot.services.register")  # one logger for the register's modules


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
    organisation: Organisation | None = None,
) -> CaseRecord:
    """Register a signal (003 §5: also what was solved on the spot) for `organisation` (None:
    the default); no personal data."""
    from flows.model import LANGUAGES
    from flows.procedure import CATEGORIES

    if kind not in (*CLIENT_KINDS, "signal"):
        raise RegisterError(f"onbekende soort '{kind}' (signal, {', '.join(CLIENT_KINDS)})")
    if category is not None and category not in CATEGORIES:
        raise RegisterError(f"onbekende categorie '{category}' ({', '.join(sorted(CATEGORIES))})")
    org, _ = scope(app, organisation)
    if schema and schema not in org.procedure.schemas:
        raise RegisterError(f"onbekend schema '{schema}' ({', '.join(org.procedure.schemas)})")
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
            organisation=org.slug,
        )
        await uow.register.add_event(reference, now, actor=actor, action="status", value=status,
                                     note=note)
        await uow.audit.record(now, actor, "case_added", reference, kind)
        await uow.commit()
    log.info("register: %s added (%s)", reference, kind)
    return case

@dataclass(frozen=True)
class CaseLine:
    case: CaseRecord
    deadlines: tuple[rules.Deadline, ...]
    due: tuple[rules.Deadline, ...]  # open, due within 3 days or overdue
    manual: tuple[NotificationRecord, ...] = ()
    failed: tuple[FailedMail, ...] = ()


async def list_cases(
    app: ServiceHost, *, due_only: bool = False, status: str | None = None, include_closed: bool = True,
    organisation: Organisation | None = None,
) -> list[CaseLine]:
    """The register of one organisation (None: the default), oldest first; `due_only`: cases
    with a deadline within 3 days or overdue."""
    if status is not None and status not in rules.STATUSES:
        raise RegisterError(f"onbekende status '{status}' ({', '.join(rules.STATUSES)})")
    today = local_date(app.clock())
    org, slug = scope(app, organisation)
    async with app.db.unit_of_work(read_only=True) as uow:
        statuses = (status,) if status else (None if include_closed else tuple(rules.OPEN))
        found = await uow.register.cases(statuses=statuses, organisation=slug)
        histories = await uow.register.events_by_case([c.stored_id for c in found])
        manual = await uow.register.notifications(open_manual=True, organisation=slug)
    refused = await failed_mails(app, organisation=org)
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


async def case_view(app: ServiceHost, reference: str, *,
                    organisation: Organisation | None = None) -> CaseView:
    """One case of `organisation` (None: the default); another's is refused as unknown."""
    org, slug = scope(app, organisation)
    async with app.db.unit_of_work(read_only=True) as uow:
        case = await _case(uow, reference, slug)
        events = await uow.register.events(case.reference)
        notes = await uow.register.notifications(case.reference)
        follow_up = await uow.register.follow_up(case.reference)
        payload = await uow.register.payload(case.reference)
    refused = await failed_mails(app, reference=case.reference, organisation=org)
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
    organisation: Organisation | None = None,
) -> StatusChange:
    """Change the status (checked, timestamped, audited) and tell the client on their channel.
    Only for a case of `organisation` (None: the default)."""
    _, slug = scope(app, organisation)
    now = app.clock()
    async with app.db.unit_of_work() as uow:
        case = await _case(uow, reference, slug)
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
    app: ServiceHost, reference: str, text: str, *, actor: str = "cli", asks_information: bool = False,
    organisation: Organisation | None = None,
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
    _, slug = scope(app, organisation)
    now = app.clock()
    async with app.db.unit_of_work() as uow:
        case = await _case(uow, reference, slug)
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
    organisation: Organisation | None = None,
) -> list[str]:
    """A note (encrypted) and/or register facts on a case of `organisation` (None: the default);
    returns what was recorded, in Dutch."""
    if text is not None and not text.strip():
        raise RegisterError("een lege notitie heeft geen zin")
    if met is not None and met not in rules.DEADLINE_NL:
        raise RegisterError(f"onbekende termijn '{met}' ({', '.join(rules.DEADLINE_NL)})")
    if follow_up is not None and follow_up not in rules.FOLLOW_UP_ANSWERS:
        raise RegisterError("het antwoord op de nazorgvraag is yes, partly of no")
    if not any((text, contacted, met, info_requested, attention_done, follow_up)):
        raise RegisterError("geef een notitie of een van de opties (zie --help)")
    _, slug = scope(app, organisation)
    now = app.clock()
    done: list[str] = []
    async with app.db.unit_of_work() as uow:
        case = await _case(uow, reference, slug)
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

# --- lapse (002 §4.1) ---------------------------------------------------------------------------


def _last_inbound(data: dict[str, Any]) -> datetime | None:
    raw = data.get(LAST_INBOUND)
    try:
        return datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


async def lapse_unreachable(app: ServiceHost, organisation: Organisation | None = None) -> list[str]:
    """002 §4.1: a case of `organisation` (None: the default) lapses when the client is
    unreachable for two months (its `lapse_days`).

    Unreachable since: the oldest manual contact still open that the client did not answer by
    writing in the chat afterwards. Recording `--contacted` ends it.
    """
    org, slug = scope(app, organisation)
    now = app.clock()
    if org.lapse_days is None:
        return []  # the procedure has no such rule (only 002 §4.1 has)
    limit = timedelta(days=org.lapse_days)
    candidates: list[str] = []
    async with app.db.unit_of_work(read_only=True) as uow:
        manual = await uow.register.notifications(open_manual=True, organisation=slug)
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
            await set_status(app, reference, "lapsed", actor="system", note=None,
                             organisation=org)
        except RegisterError as exc:  # pragma: no cover - changed meanwhile
            log.warning("register: lapse of %s refused: %s", reference, exc)
            continue
        lapsed.append(reference)
    return lapsed
