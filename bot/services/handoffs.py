"""The confidant handoff, applied: storage and routing around the pure rules of flows/handoff.py.

Two doors lead here:

* the client's side runs inside `IntakeService.handle` (same lock, same `update_id` check, same
  transaction): `route` takes relay messages and handoff buttons before the engine sees them,
  `submitted` starts a handoff when a confidant request asked to be contacted in this chat, and
  `erasing` ends any handoff before the dossier is destroyed;
* the confidant's side (`confidant_update`) and the timeout (`expire_owed`) open their own units of
  work.

Everything returns `Envelope`s: messages for other chats, sent only after the commit, by whichever
channel runs them (`bot.services.delivery.Channels.deliver`). Issue 10: what they owe people is
stored in the same unit of work (owed rows, for the channels in `owed_channels`): by the intake
service on the client's side, by `confidant_update` and `expire_owed` for the confidant's side and
the timeout.

Channel-neutral: the client and the confidant are reached at an address (channel, chat id); the
client may be on WhatsApp and the confidant on Telegram. One desk serves the process: every channel
that can carry a live chat `join`s it (`open_desk`); offers go only to addresses on those channels.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from bot.services import delivery
from bot.services.organisation import Confidant, Deployment, Organisation
from flows import rules
from flows.handoff import (
    Address,
    FileOut,
    Handoff,
    Item,
    Outcome,
    Rules,
    Side,
    new_pseudonym,
    parse_button,
    recipients,
    transcript_lines,
)
from flows.i18n import Catalogs
from flows.model import Attachment, Choice, Command, Event, OutMessage, Text
from flows.organisations import ORG_KEY
from flows.register import awaits_typed_answer
from storage import Database, StoredConversation, UnitOfWork
from storage.handoffs import HandoffMessage, HandoffRecord

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

# The sender's own display name (Telegram first name), set by the channel for the duration of one
# update, read only when that person presses "share". It is never stored or logged.
SENDER_NAME: contextvars.ContextVar[str | None] = contextvars.ContextVar("sender_name", default=None)
MAX_RELAY_TEXT = 3500  # a Telegram message holds 4096 characters, with room for the label


class DeskHolder(Protocol):
    """Where the process keeps its one desk (the intake service's `handoffs`)."""

    handoffs: HandoffDesk | None
    owed_channels: set[str]


class FileDeleter(Protocol):
    async def delete(self, ref: str) -> None: ...


@dataclass(frozen=True)
class Envelope:
    """Messages (and files) for another chat than the one that sent the update."""

    channel: str
    chat_id: str
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Reply:
    """What a confidant's update or the timeout produced, committed (issue 10): `messages` for the
    confidant's own chat, `others` for other chats; the owed row ids aligned with each (empty
    where the channel does not keep owed rows)."""

    messages: tuple[OutMessage, ...] = ()
    others: tuple[Envelope, ...] = ()
    owed: tuple[int, ...] = ()
    others_owed: tuple[tuple[int, ...], ...] = ()
    duplicate: bool = False


@dataclass(frozen=True)
class Routed:
    """What a handoff did with a client's event: the reply to the client, and the envelopes."""

    messages: tuple[OutMessage, ...] = ()
    others: tuple[Envelope, ...] = ()


class HandoffDesk:
    """Starts, relays, ends and expires handoffs between clients and confidants, on any channels."""

    def __init__(
        self,
        organisation: Organisation | Deployment,
        catalogs: Catalogs,
        db: Database,
        clock: Callable[[], datetime],
        files: FileDeleter | None = None,
        channels: tuple[str, ...] = (),
        owed_channels: set[str] | None = None,
    ) -> None:
        # Issue 11: one desk for every organisation of the deployment; a handoff is offered only to
        # its own organisation's confidants (and only those offered may accept it).
        self.deployment = (organisation if isinstance(organisation, Deployment)
                           else Deployment((organisation,)))
        self.rules = Rules(catalogs)
        self.db = db
        self.clock = clock
        self.files = files
        self.live: set[str] = set(channels)  # channels running here that carry live chats
        # Issue 10: channels that send owed rows and mark them sent (shared with the intake
        # service by `open_desk`): what the desk owes chats there is stored with its state change.
        self.owed_channels: set[str] = owed_channels if owed_channels is not None else set()
        # Confidants' channels that show the client's files from the file store instead of
        # passing them on (the staff desk): those files go when the chat ends.
        self.keeps_files: set[str] = set()
        everyone = [c for o in self.deployment.organisations for c in o.confidants]
        self.confidants = {c.key: c for c in everyone}
        self.staff: dict[Address, Confidant] = {
            address: c for c in everyone for address in c.addresses}

    def _organisation(self, data: dict[str, Any]) -> Organisation:
        """The organisation of a handoff (its data names the slug) or of a conversation."""
        return self.deployment.of(data.get(ORG_KEY))

    def is_confidant(self, channel: str, chat_id: str) -> bool:
        """Whether this chat is a confidant's address (their updates go to `confidant_update`)."""
        return (channel, chat_id) in self.staff

    # --- conversions --------------------------------------------------------------------------

    def _domain(self, rec: HandoffRecord) -> Handoff:
        d = rec.data
        gender = None
        if rec.confidant_id is not None and rec.confidant_id in self.confidants:
            gender = self.confidants[rec.confidant_id].gender
        confidant = None
        if rec.confidant_channel is not None and rec.confidant_chat_id is not None:
            confidant = (rec.confidant_channel, rec.confidant_chat_id)
        return Handoff(
            id=_hid(rec),
            status=rec.status,  # type: ignore[arg-type]
            preference=rec.preference,
            pseudonym=str(d.get("pseudonym", "")),
            client_language=str(d.get("client_language") or "en"),
            reference=rec.case_reference,
            category=d.get("category"),
            about=d.get("about"),
            name=d.get("name"),
            offered_to=tuple(_address(x) for x in d.get("offered_to", [])),
            confidant=confidant,
            client_channel=rec.client_channel or "telegram",
            confidant_gender=gender,
            confidant_language=str(d.get("confidant_language") or "nl"),
            transcript_pending=bool(d.get("transcript_pending")),
        )

    def _envelopes(self, rec: HandoffRecord, outcome: Outcome, *,
                   client_too: bool) -> tuple[Envelope, ...]:
        out: list[Envelope] = []
        if client_too and outcome.to_client and rec.client_chat_id is not None:
            out.append(Envelope(rec.client_channel or "telegram", rec.client_chat_id,
                                outcome.to_client))
        for (channel, chat_id), items in outcome.to_confidants:
            out.append(Envelope(channel, chat_id, items))
        return tuple(out)

    @staticmethod
    def _messages(items: Sequence[Item]) -> tuple[OutMessage, ...]:
        return tuple(i for i in items if isinstance(i, OutMessage))

    # --- the client's side (inside IntakeService.handle's unit of work) ----------------------

    async def submitted(
        self, uow: UnitOfWork, stored: StoredConversation, submission: dict[str, Any],
        reference: str, now: datetime,
    ) -> Routed:
        """A confidant request was registered: offer a live chat if the client chose this chat."""
        contact = (submission.get("complainant") or {}).get("contact") or {}
        if (
            submission.get("kind") != "confidant_request"
            or contact.get("method") != "chat"
            or stored.channel not in self.live
            or stored.id is None
            or not self._organisation(stored.data).confidants
        ):
            return Routed()
        if await uow.handoffs.open_for_conversation(stored.id):
            return Routed()
        organisation = self._organisation(stored.data)
        preference = str(submission.get("confidant_preference") or "none")
        targets = recipients(organisation.confidants, preference, self.live)
        language = str(submission.get("language") or stored.language or "en")
        complainant = submission.get("complainant") or {}
        record = HandoffRecord(
            conversation_id=stored.id,
            case_reference=reference,
            preference=preference,
            data={
                "pseudonym": new_pseudonym(),
                "client_language": language,
                "category": submission.get("category"),
                "about": submission.get("description"),
                "name": None if complainant.get("anonymous") else complainant.get("name"),
                "offered_to": [list(a) for a in targets],
                ORG_KEY: organisation.slug,
            },
            created_at=now,
            expires_at=now + timedelta(minutes=organisation.handoff_timeout_minutes),
            client_channel=stored.channel,
            client_chat_id=stored.chat_id,
        )
        if not targets:
            record.status = "expired"
            record.ended_at = now
            rec = await uow.handoffs.add(record)
            return Routed((self.rules.nobody_free(self._domain(rec)),))
        rec = await uow.handoffs.add(record)
        outcome = self.rules.offer(self._domain(rec), organisation.handoff_timeout_minutes)
        await uow.audit.record(now, "client", "handoff_offered", reference, f"{len(targets)} offers")
        log.info("handoff %s offered to %d confidant(s)", _hid(rec), len(targets))
        return Routed(self._messages(outcome.to_client),
                      self._envelopes(rec, outcome, client_too=False))

    async def route(
        self, uow: UnitOfWork, stored: StoredConversation, event: Event, now: datetime
    ) -> Routed | None:
        """Take the event if it belongs to a handoff; None lets the engine handle it."""
        if stored.id is None or stored.channel not in self.live:
            return None
        language = stored.language
        if isinstance(event, Choice) and event.button_id.startswith("ho:"):
            parsed = parse_button(event.button_id)
            rec = await uow.handoffs.get(parsed[1]) if parsed else None
            if parsed is None or rec is None or rec.conversation_id != stored.id:
                return Routed((self.rules.invalid(language),))
            return await self._client_button(uow, rec, parsed[0], now)
        open_ = await uow.handoffs.open_for_conversation(stored.id)
        if not open_:
            return None
        rec = open_[-1]
        if isinstance(event, Command) and event.name.lower().lstrip("/") == "end":
            return await self._end(uow, rec, "client", now)
        if isinstance(event, Text):
            text = rules.clean_inbound(event.text)
            if rules.is_blank(text) or awaits_typed_answer(stored.data):
                return None
            if len(text) > MAX_RELAY_TEXT:
                t = self.rules.client(self._domain(rec))
                return Routed((OutMessage(t._(
                    "Your message is too long: {length} characters. The limit is {limit}. "
                    "Please send it in parts.").format(length=len(text), limit=MAX_RELAY_TEXT),
                    rtl=t.rtl),))
            return await self._relay(uow, rec, "client", {"kind": "text", "text": text}, now)
        if isinstance(event, Attachment):
            return await self._relay_file(uow, rec, "client", event, now)
        return None

    async def _client_button(
        self, uow: UnitOfWork, rec: HandoffRecord, action: str, now: datetime
    ) -> Routed:
        h = self._domain(rec)
        if action == "end" and rec.status in ("offered", "active"):
            return await self._end(uow, rec, "client", now)
        if action == "share" and rec.status == "active":
            name = SENDER_NAME.get()
            if name:
                outcome = self.rules.share(h, "client", name)
                await uow.handoffs.add_message(_hid(rec), now, "client", {"kind": "shared"},
                                               delivered=True)
                return Routed(self._messages(outcome.to_client),
                              self._envelopes(rec, outcome, client_too=False))
        if action in ("keep", "drop") and h.transcript_pending:
            return await self._transcript(uow, rec, action == "keep", now)
        if action == "retry" and rec.status == "expired":
            open_ = await uow.handoffs.open_for_conversation(rec.conversation_id)
            if not open_:
                return await self._retry(uow, rec, now)
        return Routed((self.rules.invalid(h.client_language),))

    async def _retry(self, uow: UnitOfWork, old: HandoffRecord, now: datetime) -> Routed:
        data = dict(old.data)
        data["pseudonym"] = new_pseudonym()
        data.pop("transcript_pending", None)
        organisation = self._organisation(old.data)
        targets = recipients(organisation.confidants, old.preference, self.live)
        data["offered_to"] = [list(a) for a in targets]
        record = HandoffRecord(
            conversation_id=old.conversation_id, case_reference=old.case_reference,
            preference=old.preference, data=data, created_at=now,
            expires_at=now + timedelta(minutes=organisation.handoff_timeout_minutes),
            client_channel=old.client_channel, client_chat_id=old.client_chat_id,
        )
        if not targets:
            return Routed((self.rules.nobody_free(self._domain(old)),))
        rec = await uow.handoffs.add(record)
        outcome = self.rules.offer(self._domain(rec), organisation.handoff_timeout_minutes)
        await uow.audit.record(now, "client", "handoff_offered", rec.case_reference,
                               f"{len(targets)} offers (again)")
        return Routed(self._messages(outcome.to_client),
                      self._envelopes(rec, outcome, client_too=False))

    async def erasing(self, uow: UnitOfWork, stored: StoredConversation,
                      now: datetime) -> tuple[Envelope, ...]:
        """The client erases their dossier: end open handoffs first (the rows go with it)."""
        if stored.id is None:
            return ()
        out: list[Envelope] = []
        for rec in await uow.handoffs.open_for_conversation(stored.id):
            if not await uow.handoffs.transition(_hid(rec), ("offered", "active"), "ended", now):
                continue
            await self._drop_files(uow, rec)
            outcome = self.rules.ended(self._domain(rec), "client", has_transcript=False)
            out.extend(self._envelopes(rec, outcome, client_too=False))
        return tuple(out)

    # --- shared steps -------------------------------------------------------------------------

    async def _relay(self, uow: UnitOfWork, rec: HandoffRecord, sender: Side,
                     body: dict[str, Any], now: datetime) -> Routed:
        h = self._domain(rec)
        outcome = self.rules.relay(h, sender, body)
        waiting = rec.status == "offered"
        # A file keeps its storage reference: a confidant's channel may show it from the store.
        keep = waiting or "ref" in body
        stored_body = dict(body) if keep else dict(outcome.record or body)
        await uow.handoffs.add_message(_hid(rec), now, sender, stored_body, delivered=not waiting)
        if sender == "client":
            return Routed(self._messages(outcome.to_client),
                          self._envelopes(rec, outcome, client_too=False))
        return Routed((), self._envelopes(rec, outcome, client_too=True))

    async def _relay_file(self, uow: UnitOfWork, rec: HandoffRecord, sender: Side,
                          event: Attachment, now: datetime) -> Routed:
        """A file, then the words sent with it (its caption) as a message of their own."""
        body = {"kind": event.kind, "ref": event.ref, "content_type": event.content_type}
        routed = await self._relay(uow, rec, sender, body, now)
        caption = rules.clean_inbound(event.caption or "")
        if rules.is_blank(caption) or len(caption) > MAX_RELAY_TEXT:
            return routed
        words = await self._relay(uow, rec, sender, {"kind": "text", "text": caption}, now)
        return Routed(routed.messages + words.messages, routed.others + words.others)

    async def _end(self, uow: UnitOfWork, rec: HandoffRecord, by: Side, now: datetime) -> Routed:
        if not await uow.handoffs.transition(_hid(rec), ("offered", "active"), "ended", now):
            return Routed((self.rules.invalid(self._domain(rec).client_language),))
        was_active = rec.status == "active"
        has_transcript = was_active and any(
            m.body.get("kind") in ("text", "photo", "voice", "document")
            for m in await uow.handoffs.messages(_hid(rec))
        )
        await self._drop_files(uow, rec)
        if not has_transcript:
            await uow.handoffs.delete_messages(_hid(rec))
        outcome = self.rules.ended(self._domain(rec), by, has_transcript=has_transcript)
        data = dict(rec.data)
        data["transcript_pending"] = has_transcript
        await uow.handoffs.save_data(_hid(rec), data)
        await uow.audit.record(now, by, "handoff_ended", rec.case_reference)
        log.info("handoff %s ended by the %s", _hid(rec), by)
        if by == "client":
            return Routed(self._messages(outcome.to_client),
                          self._envelopes(rec, outcome, client_too=False))
        return Routed((), self._envelopes(rec, outcome, client_too=True))

    async def _transcript(self, uow: UnitOfWork, rec: HandoffRecord, keep: bool,
                          now: datetime) -> Routed:
        messages = await uow.handoffs.messages(_hid(rec))
        if keep and rec.case_reference:
            lines = transcript_lines([(m.at, m.sender, m.body) for m in messages])
            await uow.handoffs.attach_transcript(rec.case_reference, lines)
            await uow.audit.record(now, "client", "handoff_transcript_kept", rec.case_reference)
        await uow.handoffs.delete_messages(_hid(rec))
        data = dict(rec.data)
        data["transcript_pending"] = False
        await uow.handoffs.save_data(_hid(rec), data)
        outcome = self.rules.transcript(self._domain(rec), keep)
        return Routed(self._messages(outcome.to_client))

    async def _drop_files(self, uow: UnitOfWork, rec: HandoffRecord) -> None:
        """Files the client sent while waiting, never passed on, and the client's files that the
        confidant's channel showed from the store (`keeps_files`): delete them."""
        if self.files is None:
            return
        shown = rec.confidant_channel in self.keeps_files
        for m in await uow.handoffs.messages(_hid(rec)):
            ref = m.body.get("ref")
            if ref and (not m.delivered or (shown and m.sender == "client")):
                await self.files.delete(str(ref))

    # --- the confidant's side (own units of work) --------------------------------------------

    async def confidant_update(
        self, address: Address, event: Event, *, update_id: str | None, language: str | None,
        actor: str | None = None,
    ) -> Reply:
        """One update from a confidant's address, in one unit of work with what it owes people
        (issue 10): the reply to the confidant (`messages`, `owed`) and the envelopes for other
        chats (`others`, `others_owed`), stored for the channels in `owed_channels`, already
        committed. The channel sends them and marks each owed row sent. `actor`: how the audit
        names the confidant (the desk: its account, `desk#N`); by default after the channel."""
        language = language if language in self.rules.catalogs.languages else None
        confidant = self.staff.get(address)
        if confidant is None:
            return Reply((self.rules.invalid(language, staff=True),))

        async def attempt() -> Reply:
            now = self.clock()
            async with self.db.unit_of_work() as uow:
                if update_id is not None and await uow.inbound.seen(address[0], update_id, now):
                    return Reply((), duplicate=True)
                reply, others = await self._confidant_event(uow, confidant.key, address, event,
                                                            language, now, actor)
                owed = await delivery.owe(uow, self.owed_channels, address[0], address[1],
                                          reply, None, now)
                others_owed = await delivery.owe_envelopes(uow, self.owed_channels, others, now)
                await uow.commit()
            return Reply(reply, others=others, owed=owed, others_owed=others_owed)

        return await delivery.retried(attempt)

    async def _confidant_event(
        self, uow: UnitOfWork, confidant_id: int, address: Address, event: Event,
        language: str | None, now: datetime, actor: str | None = None,
    ) -> tuple[tuple[OutMessage, ...], tuple[Envelope, ...]]:
        own = Envelope(address[0], address[1], ())
        if isinstance(event, Choice):
            parsed = parse_button(event.button_id)
            rec = await uow.handoffs.get(parsed[1]) if parsed else None
            if parsed is None or rec is None:
                return (self.rules.invalid(language, staff=True),), ()
            action = parsed[0]
            if action == "accept":
                return await self._accept(uow, rec, confidant_id, address, language, now, actor)
            if rec.confidant_id != confidant_id or rec.status != "active":
                return (self.rules.invalid(language, staff=True),), ()
            if action == "end":
                routed = await self._end(uow, rec, "confidant", now)
                return self._split(routed, own)
            if action == "share":
                name = SENDER_NAME.get()
                if name:
                    await uow.handoffs.add_message(_hid(rec), now, "confidant", {"kind": "shared"},
                                                   delivered=True)
                    outcome = self.rules.share(self._domain(rec), "confidant", name)
                    return self._split(Routed((), self._envelopes(rec, outcome, client_too=True)),
                                       own)
            return (self.rules.invalid(language, staff=True),), ()
        rec = await uow.handoffs.active_for_confidant(confidant_id)
        if rec is None:
            if isinstance(event, Attachment) and self.files is not None:
                await self.files.delete(event.ref)
            return (self.rules.idle_confidant(language),), ()
        if isinstance(event, Command) and event.name.lower().lstrip("/") == "end":
            return self._split(await self._end(uow, rec, "confidant", now), own)
        if isinstance(event, Text):
            text = rules.clean_inbound(event.text)
            if rules.is_blank(text) or len(text) > MAX_RELAY_TEXT:
                return (self.rules.not_relayed(language),), ()
            routed = await self._relay(uow, rec, "confidant", {"kind": "text", "text": text}, now)
            return self._split(routed, own)
        if isinstance(event, Attachment):
            return self._split(await self._relay_file(uow, rec, "confidant", event, now), own)
        return (self.rules.connected_help(self._domain(rec)),), ()

    def _split(self, routed: Routed, own: Envelope) -> tuple[tuple[OutMessage, ...],
                                                            tuple[Envelope, ...]]:
        """Envelopes for the confidant's own chat become the reply; the rest go on."""
        mine: list[OutMessage] = list(routed.messages)
        others: list[Envelope] = []
        for env in routed.others:
            if env.channel == own.channel and env.chat_id == own.chat_id:
                mine.extend(self._messages(env.items))
            else:
                others.append(env)
        return tuple(mine), tuple(others)

    async def _accept(
        self, uow: UnitOfWork, rec: HandoffRecord, confidant_id: int, address: Address,
        language: str | None, now: datetime, actor: str | None = None,
    ) -> tuple[tuple[OutMessage, ...], tuple[Envelope, ...]]:
        h = self._domain(rec)
        if address not in h.offered_to:
            return (self.rules.invalid(language, staff=True),), ()
        if not await uow.handoffs.claim(_hid(rec), confidant_id, now):
            busy = await uow.handoffs.active_for_confidant(confidant_id) is not None
            return (self.rules.not_claimed(language, busy=busy),), ()
        data = dict(rec.data)
        data["confidant_language"] = language or "nl"
        data["confidant_address"] = list(address)  # the relay goes to where they accepted
        await uow.handoffs.save_data(_hid(rec), data)
        rec.data = data
        rec.status = "active"
        rec.confidant_id = confidant_id
        rec.confidant_channel, rec.confidant_chat_id = address
        waiting = [m.body for m in await uow.handoffs.messages(_hid(rec)) if not m.delivered]
        await uow.handoffs.mark_delivered(_hid(rec))
        outcome = self.rules.accepted(self._domain(rec), waiting)
        # The audit names a Telegram confidant by numeric id (as before), never a phone number.
        actor = actor or (f"telegram:{confidant_id}" if address[0] == "telegram"
                          else f"{address[0]}:confidant")
        await uow.audit.record(now, actor, "handoff_accepted", rec.case_reference)
        log.info("handoff %s accepted (%s)", _hid(rec), address[0])
        return self._split(Routed((), self._envelopes(rec, outcome, client_too=True)),
                           Envelope(address[0], address[1], ()))

    # --- what a confidant in the staff desk sees (issue 12) ------------------------------------

    async def offers_for(self, address: Address) -> list[tuple[Handoff, datetime]]:
        """Offers still open to this address, oldest first, each with when the client asked."""
        now = self.clock()
        async with self.db.unit_of_work(read_only=True) as uow:
            return [(self._domain(rec), rec.created_at) for rec in await uow.handoffs.offered()
                    if rec.expires_at > now
                    and address in {_address(a) for a in rec.data.get("offered_to", [])}]

    async def chat_of(self, address: Address) -> tuple[Handoff | None, list[HandoffMessage]]:
        """The live chat this address accepted, and its messages both ways (None: no chat)."""
        confidant = self.staff.get(address)
        if confidant is None:
            return None, []
        async with self.db.unit_of_work(read_only=True) as uow:
            rec = await uow.handoffs.active_for_confidant(confidant.key)
            if rec is None or (rec.confidant_channel, rec.confidant_chat_id) != address:
                return None, []
            return self._domain(rec), await uow.handoffs.messages(_hid(rec))

    # --- the timeout --------------------------------------------------------------------------

    async def expire_owed(self) -> Reply:
        """Offers nobody accepted in time: tell the client and the confidants asked, in one unit
        of work with the messages it owes them (issue 10): `others` and `others_owed`, committed;
        the channels send them and mark the rows sent."""

        async def attempt() -> Reply:
            now = self.clock()
            out: list[Envelope] = []
            async with self.db.unit_of_work() as uow:
                for rec in await uow.handoffs.due(now):
                    if not await uow.handoffs.transition(_hid(rec), ("offered",), "expired", now):
                        continue
                    waiting = [m for m in await uow.handoffs.messages(_hid(rec))
                               if not m.delivered]
                    await self._drop_files(uow, rec)
                    await uow.handoffs.delete_messages(_hid(rec))
                    outcome = self.rules.expired(self._domain(rec), unread=len(waiting))
                    await uow.audit.record(now, "system", "handoff_expired", rec.case_reference)
                    out.extend(self._envelopes(rec, outcome, client_too=True))
                owed = await delivery.owe_envelopes(uow, self.owed_channels, out, now)
                await uow.commit()
            return Reply((), others=tuple(out), others_owed=owed)

        return await delivery.retried(attempt)


def _address(raw: Any) -> Address:
    """An address as stored: `[channel, chat id]`, or a bare Telegram id (handoffs from before)."""
    if isinstance(raw, list | tuple) and len(raw) == 2:
        return str(raw[0]), str(raw[1])
    return "telegram", str(raw)


def _hid(rec: HandoffRecord) -> int:
    """The row id of a stored handoff (every record read from storage has one)."""
    if rec.id is None:
        raise RuntimeError("handoff was not stored")
    return rec.id


def file_items(items: Sequence[Item]) -> list[FileOut]:
    return [i for i in items if isinstance(i, FileOut)]
