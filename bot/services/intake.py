"""The application service: one inbound event of one client, in one unit of work.

    load conversation -> engine step -> carry out effects (register, outbox, erase) -> save -> commit

Only after the commit are the messages handed back for sending, so a reply never promises what was
not stored. Effects that produce a result (a reference, a dossier) feed it back to the engine as a
follow-up event in the same transaction. Events of one conversation are handled one at a time.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sqlalchemy.exc import IntegrityError, OperationalError

from bot.mail.compose import (
    MailAttachment,
    compose_case_mail,
    compose_notice,
    compose_reply,
    new_message_id,
)
from bot.mail.pgp import EncryptionError, PublicKey, encrypt_mail
from bot.services.delivery import RETRIES, owe, owe_envelopes
from bot.services.delivery import retryable as _retryable
from flows.complaint import complaint_document
from flows.engine import WITHDRAWABLE, Engine
from flows.model import (
    AttachmentRefused,
    CaseRegistered,
    Conversation,
    DossierLoaded,
    Effect,
    EraseDossier,
    Event,
    LoadDossier,
    OutMessage,
    ReplyToCase,
    Start,
    SubmitCase,
    WithdrawCase,
    supported_language,
)
from flows.organisations import ORG_KEY, OrganisationOption, choose
from storage import (
    CaseRecord,
    ConcurrentUpdateError,
    Database,
    OutboxItem,
    StoredConversation,
    UnitOfWork,
)

if TYPE_CHECKING:
    from bot.services.handoffs import Envelope, HandoffDesk
    from bot.services.organisation import Deployment

log = logging.getLogger(__name__)


# The refusal of a too big file (flows/engine.py says it; its `{size}` is in megabytes).
TOO_BIG = "This file is too big. The limit is {size} MB. Please send a smaller file."
LAST_INBOUND = "_last_inbound_at"  # a key of the service's own in the conversation data


class FileStore(Protocol):
    """Where channels keep the files clients send (encrypted, under random names)."""

    async def read(self, ref: str) -> bytes: ...

    async def delete(self, ref: str) -> None: ...


@dataclass(frozen=True)
class Reply:
    """What to send back after an event: the messages, already committed."""

    messages: tuple[OutMessage, ...]
    duplicate: bool = False
    # Issue 3: messages for other chats (a confidant), also committed; and the state the
    # conversation is in now, so a channel can bind its buttons to it (stale buttons).
    others: tuple[Envelope, ...] = ()
    state: str | None = None
    # Issue 10: the ids of the owed rows stored with them (bot/services/delivery.py), aligned
    # with `messages` and with each envelope's items; empty where the channel does not keep them.
    owed: tuple[int, ...] = ()
    others_owed: tuple[tuple[int, ...], ...] = ()
    # The event went to a confidant chat (relayed, or kept until a confidant accepts): a file it
    # carried belongs to the handoff now (passed on, or dropped when the handoff ends).
    relayed: bool = False
    # The conversation as this unit of work committed it (None: erased, or a duplicate), so a
    # channel that needs its language or data need not read it again.
    conversation: StoredConversation | None = None


class IntakeService:
    """Runs the engine for every channel; the only place that opens units of work for clients."""

    def __init__(
        self,
        engines: Engine | Mapping[str, Engine],
        db: Database,
        *,
        mail_from: str,
        clock: Callable[[], datetime],
        files: FileStore | None = None,
        mail_keys: Mapping[str, PublicKey] | None = None,
        organisations: Deployment | None = None,
    ) -> None:
        # Issue 11: one engine per organisation (by slug); the first is the default.
        self.engines: dict[str, Engine] = (
            {"default": engines} if isinstance(engines, Engine) else dict(engines))
        self.engine = next(iter(self.engines.values()))
        self.organisations = organisations
        self.options = tuple(OrganisationOption(o.slug, o.name)
                             for o in (organisations.organisations if organisations else ()))
        self.db = db
        self.mail_from = mail_from
        self.clock = clock
        self.files = files
        self.mail_keys: Mapping[str, PublicKey] = mail_keys or {}
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        # Issue 3: the confidant handoff (bot/services/handoffs.py), set by the first channel
        # that carries live chats (`open_desk`: Telegram, WhatsApp), shared by all of them.
        self.handoffs: HandoffDesk | None = None
        # Issue 10: channels that send owed messages (and mark them sent) add their name here.
        self.owed_channels: set[str] = set()

    def _lock(self, channel: str, chat_id: str) -> asyncio.Lock:
        key = (channel, chat_id)
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    async def handle(
        self, channel: str, chat_id: str, event: Event, *, update_id: str | None = None,
        hint: str | None = None,
    ) -> Reply:
        """Handle one event exactly once; `update_id` makes a redelivered update a no-op.

        Events of one chat run one at a time in this process; across processes (several bots on
        one PostgreSQL database) the row lock and version check serialise them, and a unit of
        work that lost a race, or met a SQLite file locked for longer than its busy timeout, is
        run again from the start: nothing half-done is ever committed, and no update is lost.

        `hint` is the messenger's language code, where it tells one: a chat with nothing stored
        (new, or erased with /erase, which keeps nothing) is answered in that language.
        """
        async with self._lock(channel, chat_id):
            attempt = 1
            while True:
                try:
                    return await self._attempt(channel, chat_id, event, update_id, hint)
                except (ConcurrentUpdateError, IntegrityError, OperationalError) as exc:
                    if not _retryable(exc) or attempt == RETRIES:
                        raise
                    log.warning("retrying a unit of work (attempt %d): %s", attempt,
                                type(exc).__name__)
                    await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
                    attempt += 1

    async def _attempt(
        self, channel: str, chat_id: str, event: Event, update_id: str | None, hint: str | None
    ) -> Reply:
        now = self.clock()
        async with self.db.unit_of_work() as uow:
            if update_id is not None and await uow.inbound.seen(channel, update_id, now):
                return Reply((), duplicate=True)
            stored = await uow.conversations.get(channel, chat_id)
            if stored is None:
                stored = StoredConversation(channel=channel, chat_id=chat_id, state="language")
                code = supported_language(hint)
                if code:  # issue 14.9: after /erase, too, ask in the client's language
                    stored.data = {"hint": code}
            conversation = Conversation(stored.state, stored.language, stored.data)
            if self.handoffs is not None and stored.id is not None:
                routed = await self.handoffs.route(uow, stored, event, now)
                if routed is not None:  # a relay message or a handoff button
                    stored.data[LAST_INBOUND] = now.isoformat()
                    kept = await uow.conversations.save(stored)
                    owed, others_owed = await self._owe(
                        uow, channel, chat_id, routed.messages, routed.others, None, now)
                    await uow.commit()
                    return Reply(routed.messages, others=routed.others, state=stored.state,
                                 owed=owed, others_owed=others_owed, relayed=True,
                                 conversation=kept)
            engine, event, chosen = await self._organisation(uow, stored, conversation, event)
            if chosen is not None:  # the list of organisations, or "you stay with ..."
                stored.data[LAST_INBOUND] = now.isoformat()
                kept = await uow.conversations.save(stored)
                owed, others_owed = await self._owe(uow, channel, chat_id, chosen, (),
                                                    stored.state, now)
                await uow.commit()
                return Reply(chosen, state=stored.state, owed=owed, conversation=kept)
            conversation = Conversation(stored.state, stored.language, stored.data)
            later: list[OutMessage] = []
            others: list[Envelope] = []
            result = engine.step(conversation, event, now)
            messages = list(result.messages)
            if isinstance(event, AttachmentRefused) and event.reason == "too_big":
                messages = self._size_named(messages, result.conversation.language, event)
            conversation = result.conversation
            pending: list[Effect] = list(result.effects)
            erased = False
            while pending:
                effect = pending.pop(0)
                if stored.id is None:
                    stored = await uow.conversations.save(stored)
                if self.handoffs is not None and isinstance(effect, EraseDossier):
                    others.extend(await self.handoffs.erasing(uow, stored, now))
                follow = await self._carry_out(uow, effect, stored, now)
                if isinstance(effect, EraseDossier):
                    erased = True
                if (self.handoffs is not None and isinstance(effect, SubmitCase)
                        and isinstance(follow, CaseRegistered)):
                    started = await self.handoffs.submitted(
                        uow, stored, effect.submission, follow.reference, now)
                    later.extend(started.messages)
                    others.extend(started.others)
                if follow is not None:
                    nxt = engine.step(conversation, follow, now)
                    conversation = nxt.conversation
                    messages.extend(nxt.messages)
                    pending.extend(nxt.effects)
            saved: StoredConversation | None = None
            if erased:
                await uow.conversations.delete(channel, chat_id)
            else:
                stored.state = conversation.state
                stored.language = conversation.language
                stored.data = conversation.data
                # When the client last wrote (WhatsApp's 24-hour window, 002 §4.1 lapse).
                stored.data[LAST_INBOUND] = now.isoformat()
                saved = await uow.conversations.save(stored)
            messages.extend(later)
            owed, others_owed = await self._owe(
                uow, channel, chat_id, messages, others, conversation.state, now)
            await uow.commit()
        return Reply(tuple(messages), others=tuple(others), state=conversation.state,
                     owed=owed, others_owed=others_owed, conversation=saved)

    async def _organisation(
        self, uow: UnitOfWork, stored: StoredConversation, conversation: Conversation, event: Event,
    ) -> tuple[Engine, Event, tuple[OutMessage, ...] | None]:
        """The engine of the conversation's organisation, and the event it gets (issue 11).

        In a deployment of one organisation: the one engine, the event unchanged. With several,
        `flows.organisations.choose` decides; a reply (the list) ends the event here. Choosing
        another organisation than before begins again: the draft and its files are dropped.
        """
        if self.organisations is None or not self.organisations.several:
            return self.engine, event, None
        decision = choose(stored.data, stored.language, event, self.options, self.engine.catalogs)
        if decision.reply:
            return self.engine, event, decision.reply
        if decision.start is not None:
            if decision.restart:
                for item in stored.data.get("attachments") or []:
                    if self.files is not None:
                        await self.files.delete(str(item["ref"]))
                kept = ("cases", "hint", ORG_KEY, LAST_INBOUND)
                stored.data = {k: v for k, v in stored.data.items() if k in kept}
                stored.state = "language"
            hint = event.language_hint if isinstance(event, Start) else None
            event = Start(language_hint=hint or stored.language or stored.data.get("hint"))
        slug = stored.data.get(ORG_KEY)
        return self.engines.get(str(slug), self.engine), event, None

    async def _owe(
        self, uow: UnitOfWork, channel: str, chat_id: str, messages: Sequence[OutMessage],
        others: Sequence[Envelope], state: str | None, now: datetime,
    ) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
        """Store what this event owes people, in its own unit of work (issue 10)."""
        owed = await owe(uow, self.owed_channels, channel, chat_id, messages, state, now)
        return owed, await owe_envelopes(uow, self.owed_channels, others, now)

    def _size_named(self, messages: list[OutMessage], language: str | None,
                    event: AttachmentRefused) -> list[OutMessage]:
        """The refusal of a too big file names the configured limit, e.g. "0,1 MB" in Dutch.

        The engine writes whole megabytes (at least 1), so a limit of 100 000 bytes would read
        "1 MB"; its message is replaced by the same msgid with the limit in the client's own
        number format. (Belongs in flows/engine.py; harmless once the engine does it itself.)
        """
        t = self.engine.catalogs.get(language)
        template = t._(TOO_BIG)
        engine_text = template.format(size=max(1, event.limit_bytes // 1_000_000))
        ours = template.format(size=megabytes(event.limit_bytes, t.language))
        return [replace(m, text=m.text.replace(engine_text, ours)) if engine_text in m.text else m
                for m in messages]

    async def _carry_out(
        self, uow: UnitOfWork, effect: Effect, stored: StoredConversation, now: datetime
    ) -> Event | None:
        if isinstance(effect, SubmitCase):
            return await self._submit(uow, effect, stored, now)
        if isinstance(effect, WithdrawCase):
            await self._withdraw(uow, effect.reference, stored, now)
            return None
        if isinstance(effect, EraseDossier):
            await self._erase(uow, stored, now)
            return None
        if isinstance(effect, LoadDossier):
            return await self._dossier(uow, stored, effect.purpose)
        from flows.model import RecordFollowUp

        if isinstance(effect, RecordFollowUp):  # issue 4: the register (bot/services/register.py)
            from bot.services.register import record_follow_up

            await record_follow_up(uow, effect, stored, now)
            return None
        if isinstance(effect, ReplyToCase):
            await self._reply(uow, effect, stored, now)
            return None
        raise TypeError(f"unknown effect {type(effect).__name__}")

    async def _submit(
        self, uow: UnitOfWork, effect: SubmitCase, stored: StoredConversation, now: datetime
    ) -> CaseRegistered:
        reference = await uow.cases.next_reference(now.year)
        doc = complaint_document(
            effect.submission, reference=reference, channel=stored.channel, created_at=now
        )
        submission = effect.submission
        await uow.cases.add(
            CaseRecord(
                reference=reference,
                conversation_id=_id(stored),
                channel=stored.channel,
                kind=str(submission["kind"]),
                schema=str(submission.get("schema") or ""),
                category=submission.get("category"),
                language=str(submission.get("language") or ""),
                mailbox=effect.mailbox,
                payload=doc,
                created_at=now,
                updated_at=now,
                organisation=self._slug(stored),
            )
        )
        attachments = await self._attachments(submission.get("attachments") or [])
        message_id = new_message_id(self.mail_from)
        mail = compose_case_mail(
            doc,
            sender=self.mail_from,
            recipient=effect.mailbox,
            attachments=attachments,
            message_id=message_id,
            date=now,
        )
        await self._enqueue(uow, mail, reference, "case", effect.mailbox, message_id, now)
        await uow.audit.record(now, "client", "case_registered", reference, submission["kind"])
        log.info("registered %s (%s)", reference, submission["kind"])
        return CaseRegistered(reference, now)

    def _slug(self, stored: StoredConversation) -> str:
        """The organisation a new case belongs to: the conversation's choice, else the default."""
        if self.organisations is None:
            return "default"
        return self.organisations.of(stored.data.get(ORG_KEY)).slug

    async def _attachments(self, items: Sequence[dict[str, Any]]) -> list[MailAttachment]:
        if self.files is None:
            return []
        return [
            MailAttachment(
                filename="",
                content_type=str(item.get("content_type") or "application/octet-stream"),
                data=await self.files.read(str(item["ref"])),
            )
            for item in items
        ]

    async def _notice(
        self, uow: UnitOfWork, case: CaseRecord, purpose: str, now: datetime
    ) -> None:
        message_id = new_message_id(self.mail_from)
        mail = compose_notice(
            case.reference,
            "withdrawal" if purpose == "withdrawal" else "erasure",
            sender=self.mail_from,
            recipient=case.mailbox,
            message_id=message_id,
            date=now,
        )
        await self._enqueue(uow, mail, case.reference, purpose, case.mailbox, message_id, now)

    async def _enqueue(
        self, uow: UnitOfWork, mail: EmailMessage, reference: str, purpose: str, recipient: str,
        message_id: str, now: datetime,
    ) -> None:
        """Put a mail in the outbox, encrypted (PGP/MIME) when its mailbox has a key.

        If encryption fails (a key expired while running), the mail is never sent in plain text:
        it is stored as failed, audited, and shown to the coordinator; the case stays registered.
        """
        key = self.mail_keys.get(recipient.strip().lower())
        item = OutboxItem(case_reference=reference, purpose=purpose, recipient=recipient,
                          message_id=message_id, next_attempt_at=now, created_at=now)
        if key is not None:
            try:
                mail = await asyncio.to_thread(encrypt_mail, mail, key)
            except EncryptionError as exc:
                item.status, item.last_error = "failed", f"encryption failed: {exc}"[:500]
                await uow.outbox.add(item)
                await uow.audit.record(now, "system", "mail_encryption_failed", reference)
                log.error("mail for %s not encrypted, kept as failed: %s", reference, exc)
                return
        item.raw = bytes(mail)
        await uow.outbox.add(item)

    async def _withdraw(
        self, uow: UnitOfWork, reference: str, stored: StoredConversation, now: datetime
    ) -> None:
        case = await uow.cases.get(reference)
        if case is None or case.conversation_id != stored.id or case.status not in WITHDRAWABLE:
            log.warning("withdraw refused for a case not owned by this conversation")
            return
        await uow.cases.set_status(reference, "withdrawn", now)
        await self._notice(uow, case, "withdrawal", now)
        await uow.audit.record(now, "client", "case_withdrawn", reference)

    async def _reply(
        self, uow: UnitOfWork, effect: ReplyToCase, stored: StoredConversation, now: datetime
    ) -> None:
        """The client's answer to a staff message: in the case history and mailed to its mailbox."""
        case = await uow.cases.get(effect.reference)
        if case is None or case.conversation_id != stored.id or case.payload is None:
            log.warning("an answer for a case not owned by this conversation was refused")
            return
        await uow.register.add_event(case.reference, now, actor="client", action="client_reply",
                                     note=effect.text)
        message_id = new_message_id(self.mail_from)
        mail = compose_reply(case.reference, effect.text, language=stored.language,
                             sender=self.mail_from, recipient=case.mailbox,
                             message_id=message_id, date=now)
        await self._enqueue(uow, mail, case.reference, "reply", case.mailbox, message_id, now)
        await uow.audit.record(now, "client", "client_replied", case.reference)

    async def _erase(self, uow: UnitOfWork, stored: StoredConversation, now: datetime) -> None:
        """001 art. 17.4: destroy the dossier now; keep only the anonymised statistics.

        Everything personal goes: the complaint, its mails in the outbox (sent ones too), staff
        notes, messages and answers, the follow-up comment. The mailbox is asked to destroy its
        copies (a notice with the reference only) when it may have received something.
        """
        for case in await uow.cases.for_conversation(_id(stored)):
            cancelled = await uow.outbox.cancel_for_case(case.reference)
            already_sent = not cancelled or case.status != "received"
            for item in (case.payload or {}).get("attachments") or []:
                if self.files is not None:
                    await self.files.delete(str(item["ref"]))
            await uow.register.destroy_dossier(case.reference, now)
            if already_sent:
                await self._notice(uow, case, "erasure", now)
            await uow.audit.record(now, "client", "case_erased", case.reference)
        for item in stored.data.get("attachments") or []:
            if self.files is not None:
                await self.files.delete(str(item["ref"]))
        await uow.audit.record(now, "client", "dossier_erased")

    async def _dossier(
        self, uow: UnitOfWork, stored: StoredConversation, purpose: Literal["show", "withdraw"]
    ) -> DossierLoaded:
        cases = await uow.cases.for_conversation(_id(stored))
        messages: dict[str, list[dict[str, str]]] = {}
        if purpose == "show":  # messages from staff and the client's answers, word for word
            for c in cases:
                messages[c.reference] = [
                    {"at": e.at.isoformat(), "from": "client" if e.action == "client_reply"
                     else "staff", "text": e.note}
                    for e in await uow.register.events(c.reference)
                    if e.action in ("message", "client_reply") and e.note
                ]
        return DossierLoaded(
            tuple(
                {
                    "reference": c.reference,
                    "kind": c.kind,
                    "status": c.status,
                    "created_at": c.created_at.isoformat(),
                    "payload": c.payload,
                    "messages": messages.get(c.reference, []),
                }
                for c in cases
            ),
            purpose,
        )


def megabytes(limit_bytes: int, language: str) -> str:
    """A byte limit in megabytes as the language writes numbers: 1, 2,5 or 0,1 (Dutch)."""
    from babel import Locale, UnknownLocaleError
    from babel.numbers import format_decimal

    try:
        locale = Locale.parse(language)
    except (UnknownLocaleError, ValueError):
        locale = Locale.parse("en")
    return format_decimal(limit_bytes / 1_000_000, format="#,##0.######", locale=locale)


def _id(stored: StoredConversation) -> int:
    """The conversation's row id; effects run only after it was saved once."""
    if stored.id is None:
        raise RuntimeError("conversation must be saved before its effects are carried out")
    return stored.id
