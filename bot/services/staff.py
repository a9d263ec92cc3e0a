"""The coordinators' commands, for any channel: `/signals` (a CSV of anonymised signals) and `/stats`.

A channel recognises the command (`STAFF_COMMANDS`; `staff_command` reads a typed message) and
calls `StaffCommands.answer` with the
sender's address (channel, chat id); it sends back what comes out: a text, or the CSV as a document.
Who may use them: the organisations' coordinators, by address (`coordinator_addresses`); anyone
else is refused politely. Each use (and each refusal) is audited once per update id; a redelivered
update is answered with nothing.

In a deployment of several organisations (issue 11) a coordinator sees only the cases of the
organisation(s) that list their address: one answer per organisation, each labelled with its name
(`StaffService.organisations_of`). A channel sends every document of `StaffReply.documents`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from bot.services.organisation import Organisation
from bot.services.ports import ServiceHost
from bot.services.register_reports import anonymised_rows
from flows.i18n import Translator
from flows.model import OutMessage, supported_language

STAFF_COMMANDS = ("signals", "stats")
SIGNAL_FIELDS = ("reference", "kind", "schema", "language", "channel", "month", "status")

Address = tuple[str, str]  # (channel, chat id), as the handoff desk addresses people


@dataclass(frozen=True)
class StaffFile:
    """A document to send: the anonymised signals as CSV."""

    data: bytes = field(repr=False)
    filename: str
    caption: str


@dataclass(frozen=True)
class StaffReply:
    """What the channel sends back: messages and/or documents (one per organisation of the
    coordinator); nothing for a redelivery. `refused`: the sender is not a coordinator (the
    message says so)."""

    messages: tuple[OutMessage, ...] = ()
    documents: tuple[StaffFile, ...] = ()
    duplicate: bool = False
    refused: bool = False

    @property
    def document(self) -> StaffFile | None:
        """The first document (the only one for a coordinator of one organisation)."""
        return self.documents[0] if self.documents else None


class StaffCommands(Protocol):
    """The port a channel calls for staff commands."""

    def is_coordinator(self, address: Address) -> bool:
        """Whether this address may use the staff commands."""

    async def answer(self, address: Address, command: str, text: str, *, update_id: str,
                     language: str | None) -> StaffReply:
        """Run `command` ("signals" or "stats"; `text` is the whole message, with its period)."""


def coordinator_addresses(organisation: Organisation) -> frozenset[Address]:
    """The coordinators' addresses: ("telegram", user id) and ("whatsapp", number)."""
    return frozenset(organisation.coordinator_addresses)


def staff_command(text: str) -> str | None:
    """The staff command a typed message is ("/Stats 2026-01-01" -> "stats"), else None; for
    channels without their own command parsing (WhatsApp). A bot name (`/stats@bot`) is allowed."""
    words = text.split(maxsplit=1)
    if not words or not words[0].startswith("/"):
        return None
    name = words[0][1:].split("@", 1)[0].lower()
    return name if name in STAFF_COMMANDS else None


def _language(code: str | None, default: str) -> str:
    return supported_language(code) or default


class StaffService:
    """`StaffCommands` over the register: audit, the anonymised rows, the CSV and the counts."""

    def __init__(self, host: ServiceHost) -> None:
        self.host = host

    def organisations_of(self, address: Address) -> tuple[Organisation, ...]:
        """The organisations whose coordinator this address is (none, one, or several)."""
        return tuple(o for o in self.host.deployment.organisations
                     if address in coordinator_addresses(o))

    def is_coordinator(self, address: Address) -> bool:
        return bool(self.organisations_of(address))

    async def answer(self, address: Address, command: str, text: str, *, update_id: str,
                     language: str | None) -> StaffReply:
        if command not in STAFF_COMMANDS:
            raise ValueError(f"not a staff command: {command}")
        host = self.host
        channel, chat_id = address
        now = host.clock()
        organisations = self.organisations_of(address)
        allowed = bool(organisations)
        several = host.deployment.several
        actor = f"{channel}:{chat_id}"  # the numeric id or number, audit log only
        detail = command + (f":{','.join(o.slug for o in organisations)}" if several and allowed
                            else "")
        async with host.db.unit_of_work() as uow:
            if await uow.inbound.seen(channel, update_id, now):
                return StaffReply(duplicate=True)
            await uow.audit.record(now, actor, f"staff_{command}" if allowed
                                   else "staff_command_refused", None, detail)
            await uow.commit()
        if not allowed:
            t = host.catalogs.get(_language(language, "en"))
            return StaffReply((OutMessage(t._(
                "This command is only for staff of the organisation."), rtl=t.rtl),), refused=True)
        st = host.catalogs.get(_language(language, "nl"))
        today = host.clock().date()
        documents: list[StaffFile] = []
        messages: list[OutMessage] = []
        for organisation in organisations:
            rows = await self.signal_rows(text, organisation)
            label = (st._("Organisation: {name}").format(name=organisation.name) + "\n"
                     if several else "")
            if command == "signals":
                caption = st.ngettext("{count} signal, anonymised.", "{count} signals, anonymised.",
                                      len(rows)).format(count=len(rows))
                slug = f"{organisation.slug}-" if several else ""
                documents.append(StaffFile(signals_csv(rows),
                                           f"signals-{slug}{today.isoformat()}.csv",
                                           label + caption))
            else:
                messages.append(OutMessage(label + stats_text(st, rows, today), rtl=st.rtl))
        return StaffReply(tuple(messages), tuple(documents))

    async def signal_rows(self, text: str, organisation: Organisation | None = None
                          ) -> list[dict[str, object]]:
        """The anonymised rows of `organisation` (None: the default) for the period the command
        names (everything when it names none); with several organisations only its own cases."""
        start, end = period(text)
        chosen = organisation or self.host.organisation
        return await anonymised_rows(
            self.host.db, start, end, organisation=chosen.name,
            deadlines=chosen.procedure.deadlines,
            slug=chosen.slug if self.host.deployment.several else None,
        )


def period(text: str) -> tuple[date | None, date | None]:
    """`/signals 2026-01-01 2026-03-31` -> the dates; anything unreadable means "everything"."""
    dates: list[date] = []
    for word in text.split()[1:3]:
        try:
            dates.append(date.fromisoformat(word))
        except ValueError:
            return None, None
    if len(dates) == 1:
        return dates[0], None
    if len(dates) == 2:
        return min(dates), max(dates)
    return None, None


def signals_csv(rows: Sequence[dict[str, object]]) -> bytes:
    """Anonymised signals: no names, no free text, no account ids."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(SIGNAL_FIELDS)
    for row in rows:
        writer.writerow(["" if row.get(k) is None else str(row.get(k)) for k in SIGNAL_FIELDS])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def stats_text(t: Translator, rows: Sequence[dict[str, object]], today: date) -> str:
    """Counts for coordinators: in total, by kind, by status, by channel."""
    def counts(key: str) -> str:
        tally: dict[str, int] = {}
        for row in rows:
            value = str(row.get(key) or "-")
            tally[value] = tally.get(value, 0) + 1
        return ", ".join(f"{k}: {v}" for k, v in sorted(tally.items())) or "-"

    lines = [
        t._("Signals on {date}: {count} in total.").format(date=today.isoformat(), count=len(rows)),
        t._("By kind: {counts}").format(counts=counts("kind")),
        t._("By status: {counts}").format(counts=counts("status")),
        t._("By channel: {counts}").format(counts=counts("channel")),
        t._("By language: {counts}").format(counts=counts("language")),
    ]
    return "\n".join(lines)
