"""The staff service (/signals, /stats) without a messenger: the real app, SQLite file and register."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import date

from bot.root.app import App
from bot.services.staff import StaffService, coordinator_addresses, period, signals_csv, stats_text
from tests.bot.register_helpers import file_complaint

COORDINATOR = 900


def test_period_reads_one_or_two_dates_else_everything() -> None:
    """Two dates in any order give a range, one date an open end, anything unreadable everything."""
    assert period("/signals 2026-03-31 2026-01-01") == (date(2026, 1, 1), date(2026, 3, 31))
    assert period("/signals 2026-01-01") == (date(2026, 1, 1), None)
    assert period("/signals last week") == (None, None)
    assert period("/stats") == (None, None)


def test_csv_and_counts_of_rows() -> None:
    """The CSV has a BOM, the fixed header and empty cells for None; the counts tally each key."""
    rows: list[dict[str, object]] = [{"reference": "KW-2026-000001", "kind": "signal", "schema": None,
                                      "language": "nl", "channel": "telegram", "month": "2026-03",
                                      "status": "received"}]
    data = signals_csv(rows)
    assert data.startswith("\ufeff".encode())
    parsed = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert parsed[0] == ["reference", "kind", "schema", "language", "channel", "month", "status"]
    assert parsed[1][2] == ""


async def test_stranger_is_refused_and_audited_once(app: App) -> None:
    """Someone who is not a coordinator is refused in their language; a redelivery does nothing."""
    staff = StaffService(app)
    reply = await staff.answer(("whatsapp", "31612345678"), "signals", "/signals", update_id="u1",
                               language="en")
    assert reply.refused and reply.document is None
    assert [m.text for m in reply.messages] == ["This command is only for staff of the organisation."]
    again = await staff.answer(("whatsapp", "31612345678"), "signals", "/signals", update_id="u1",
                               language="en")
    assert again.duplicate and not again.messages
    async with app.db.unit_of_work(read_only=True) as uow:
        entries = await uow.audit.list()
    assert [(e.actor, e.action, e.detail) for e in entries
            if e.action.startswith("staff")] == [("whatsapp:31612345678", "staff_command_refused",
                                                  "signals")]


async def test_coordinator_gets_csv_and_stats(app: App) -> None:
    """A coordinator by address gets the anonymised CSV as a document and the counts as text."""
    app.organisation = dataclasses.replace(app.organisation, coordinators=(COORDINATOR,))
    assert coordinator_addresses(app.organisation) == {("telegram", str(COORDINATOR))}
    await file_complaint(app, "chat-1")
    staff = StaffService(app)
    signals = await staff.answer(("telegram", str(COORDINATOR)), "signals", "/signals",
                                 update_id="1", language="nl")
    assert signals.document is not None and not signals.messages
    assert signals.document.filename.startswith("signals-") and signals.document.filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(signals.document.data.decode("utf-8-sig"))))
    assert len(rows) == 2 and b"Sara Haddad" not in signals.document.data
    stats = await staff.answer(("telegram", str(COORDINATOR)), "stats", "/stats", update_id="2",
                               language=None)
    [message] = stats.messages
    today = app.clock().date()
    assert message.text == stats_text(app.catalogs.get("nl"), await staff.signal_rows("/stats"), today)
    assert "1" in message.text.splitlines()[0]
