"""Messages to clients that are not a reply: status updates, staff messages, the follow-up
question (003 §4). Stored as pending notifications first, then delivered on the client's channel
when it runs in this process; otherwise a manual contact by the way the client chose.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.services.register_common import _deadlines, _open_due, scope
from flows import register as rules
from flows.model import OutMessage, RecordFollowUp
from storage import CaseRecord, StoredConversation, UnitOfWork
from storage.register import NotificationRecord

if TYPE_CHECKING:
    from bot.services.organisation import Organisation
    from bot.services.ports import ServiceHost

log = logging.getLogger("bot.services.register")  # one logger for the register's modules


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
    organisation = app.deployment.of(case.organisation)
    form = organisation.procedure.forms.get(case.kind)  # who received it: the form says
    return rules.status_message(
        t, kind=case.kind, status=n.status or case.status, reference=case.reference,
        outcome=case.outcome, due=_open_due(_deadlines(app, case, events)),
        follow_up_days=organisation.follow_up_days,
        receiver=form.receiver if form is not None else "committee",
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


async def send_follow_ups(app: ServiceHost, organisation: Organisation | None = None) -> int:
    """Ask clients of `organisation`'s cases (None: the default) closed its `follow_up_days` ago
    whether the problem is really solved."""
    org, slug = scope(app, organisation)
    days = org.follow_up_days
    if days <= 0:
        return 0
    now = app.clock()
    async with app.db.unit_of_work() as uow:
        due = await uow.register.follow_up_due(now - timedelta(days=days), organisation=slug)
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
