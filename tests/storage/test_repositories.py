"""Cases, reference numbers, outbox, audit log and inbound de-duplication."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from storage import CaseRecord, Database, NotFoundError, OutboxItem, StoredConversation

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _case(reference: str, conversation_id: int | None = None) -> CaseRecord:
    return CaseRecord(
        reference=reference,
        conversation_id=conversation_id,
        channel="telegram",
        kind="complaint",
        schema="1",
        category="treatment",
        language="ar",
        mailbox="klachten@example.org",
        payload={"client": {"name": "Ahmad Saleh"}, "story": "\u200fنص\u200d"},
        created_at=T0,
        updated_at=T0,
    )


def _mail(message_id: str, reference: str | None = "KW-2026-000001", **kw: object) -> OutboxItem:
    item = OutboxItem(
        case_reference=reference,
        purpose="case",
        recipient="klachten@example.org",
        message_id=message_id,
        raw=b"Subject: x\r\n\r\nbody\x00\r\n",
        next_attempt_at=T0,
        created_at=T0,
    )
    for key, value in kw.items():
        setattr(item, key, value)
    return item


async def _next(db: Database, year: int) -> str:
    async with db.unit_of_work() as uow:
        reference = await uow.cases.next_reference(year)
        await uow.commit()
    return reference


async def test_references_are_sequential_per_year(db: Database) -> None:
    """Each year has its own counter starting at 000001."""
    got = [await _next(db, y) for y in (2026, 2026, 2027, 2026)]
    assert got == ["KW-2026-000001", "KW-2026-000002", "KW-2027-000001", "KW-2026-000003"]


async def test_reference_not_consumed_on_rollback(db: Database) -> None:
    """A reference drawn in a rolled-back unit of work is handed out again."""
    async with db.unit_of_work() as uow:
        await uow.cases.next_reference(2026)
    assert await _next(db, 2026) == "KW-2026-000001"


async def test_references_unique_under_concurrency(db: Database) -> None:
    """20 concurrent units of work get 20 distinct, gap-free references."""
    got = await asyncio.gather(*(_next(db, 2026) for _ in range(20)))
    assert sorted(got) == [f"KW-2026-{n:06d}" for n in range(1, 21)]


async def test_case_add_get_and_for_conversation(db: Database) -> None:
    """A case is stored with its payload decrypted on read and found by its conversation."""
    async with db.unit_of_work() as uow:
        conv = await uow.conversations.save(StoredConversation(channel="telegram", chat_id="7", state="done"))
        assert conv.id is not None
        added = await uow.cases.add(_case("KW-2026-000001", conv.id))
        await uow.cases.add(_case("KW-2026-000002", conv.id))
        await uow.commit()
    async with db.unit_of_work(read_only=True) as uow:
        got = await uow.cases.get("KW-2026-000001")
        listed = await uow.cases.for_conversation(conv.id)
        missing = await uow.cases.get("KW-2026-999999")
    assert (got, [c.reference for c in listed], missing) == (
        added,
        ["KW-2026-000001", "KW-2026-000002"],
        None,
    )
    assert added.id is not None


async def test_unknown_case_kind_is_refused(db: Database) -> None:
    """add refuses a kind outside complaint/mediation_request/confidant_request/report."""
    case = _case("KW-2026-000001")
    case.kind = "gossip"
    async with db.unit_of_work() as uow:
        with pytest.raises(ValueError, match="kind"):
            await uow.cases.add(case)


async def test_set_status_withdrawn_sets_withdrawn_at(db: Database) -> None:
    """set_status changes status and updated_at; 'withdrawn' also sets withdrawn_at."""
    later = T0 + timedelta(days=2)
    async with db.unit_of_work() as uow:
        await uow.cases.add(_case("KW-2026-000001"))
        await uow.cases.set_status("KW-2026-000001", "withdrawn", later)
        with pytest.raises(NotFoundError):
            await uow.cases.set_status("KW-2026-000404", "withdrawn", later)
        await uow.commit()
    async with db.unit_of_work(read_only=True) as uow:
        case = await uow.cases.get("KW-2026-000001")
    assert case is not None
    assert (case.status, case.updated_at, case.withdrawn_at) == ("withdrawn", later, later)


async def test_erase_keeps_statistics_and_drops_payload(db: Database) -> None:
    """destroy_dossier removes payload and the conversation link but keeps kind, category, dates,
    status."""
    erased_at = T0 + timedelta(days=30)
    async with db.unit_of_work() as uow:
        conv = await uow.conversations.save(StoredConversation(channel="telegram", chat_id="7", state="done"))
        await uow.cases.add(_case("KW-2026-000001", conv.id))
        await uow.register.destroy_dossier("KW-2026-000001", erased_at)
        await uow.commit()
    async with db.unit_of_work(read_only=True) as uow:
        case = await uow.cases.get("KW-2026-000001")
    expected = _case("KW-2026-000001")
    expected.id = case.id if case else None
    expected.payload = None
    expected.erased_at = erased_at
    expected.updated_at = erased_at
    assert case == expected


async def test_outbox_lifecycle(db: Database) -> None:
    """due lists pending due mails oldest first; retry, sent, failed and cancel update them."""
    async with db.unit_of_work() as uow:
        a = await uow.outbox.add(_mail("<a@kw>", next_attempt_at=T0 + timedelta(minutes=1)))
        b = await uow.outbox.add(_mail("<b@kw>"))
        c = await uow.outbox.add(_mail("<c@kw>", next_attempt_at=T0 + timedelta(hours=1)))
        d = await uow.outbox.add(_mail("<d@kw>", reference="KW-2026-000002"))
        await uow.commit()

    now = T0 + timedelta(minutes=5)
    async with db.unit_of_work() as uow:
        due_ids = [item.id for item in await uow.outbox.due(now)]
        first = (await uow.outbox.due(now, limit=1))[0]
        await uow.outbox.mark_retry(b, now + timedelta(minutes=10), "SMTP 451 try later")
        await uow.outbox.mark_sent(a, now)
        await uow.outbox.mark_failed(d, "SMTP 550 mailbox unknown")
        await uow.commit()
    async with db.unit_of_work() as uow:
        due_after = [item.id for item in await uow.outbox.due(now + timedelta(minutes=10))]
        cancelled = await uow.outbox.cancel_for_case("KW-2026-000001")
        counts = await uow.outbox.count_by_status()
        items = {i: await uow.outbox.get(i) for i in (a, b, c, d)}
        await uow.commit()

    sent, retried, cancel, failed = items[a], items[b], items[c], items[d]
    assert sent is not None and retried is not None and cancel is not None and failed is not None
    assert (due_ids, first.raw, due_after) == ([b, d, a], b"Subject: x\r\n\r\nbody\x00\r\n", [b])
    assert (sent.status, sent.sent_at, sent.raw, sent.attempts) == ("sent", now, None, 0)
    assert (retried.status, retried.attempts, retried.last_error, retried.raw) == (
        "cancelled",
        1,
        "SMTP 451 try later",
        None,
    )
    assert (cancel.status, cancel.raw, cancelled) == ("cancelled", None, 2)
    assert (failed.status, failed.attempts, failed.last_error, failed.raw) == (
        "failed",
        1,
        "SMTP 550 mailbox unknown",
        b"Subject: x\r\n\r\nbody\x00\r\n",
    )
    assert counts == {"pending": 0, "sent": 1, "failed": 1, "cancelled": 2}


async def test_outbox_errors_are_clipped_and_unknown_ids_refused(db: Database) -> None:
    """last_error is cut to 500 characters; marking a missing id raises NotFoundError."""
    async with db.unit_of_work() as uow:
        item_id = await uow.outbox.add(_mail("<e@kw>"))
        await uow.outbox.mark_retry(item_id, T0, "x" * 2000)
        item = await uow.outbox.get(item_id)
        with pytest.raises(NotFoundError):
            await uow.outbox.mark_sent(item_id + 100, T0)
    assert item is not None
    assert len(item.last_error or "") == 500


async def test_audit_log_newest_first(db: Database) -> None:
    """record appends entries; list returns the newest first, limited."""
    async with db.unit_of_work() as uow:
        await uow.audit.record(T0, "client", "case.submitted", "KW-2026-000001")
        await uow.audit.record(T0, "coordinator:12345", "case.viewed", "KW-2026-000001", "via bot")
        await uow.audit.record(T0, "system", "outbox.sent", None, "1 message")
        await uow.commit()
    async with db.unit_of_work(read_only=True) as uow:
        entries = await uow.audit.list(limit=2)
    assert [(e.actor, e.action, e.reference, e.detail) for e in entries] == [
        ("system", "outbox.sent", None, "1 message"),
        ("coordinator:12345", "case.viewed", "KW-2026-000001", "via bot"),
    ]


async def test_inbound_update_seen_exactly_once(db: Database) -> None:
    """seen is False the first time and True afterwards, per channel."""
    async with db.unit_of_work() as uow:
        results = [
            await uow.inbound.seen("telegram", "1001", T0),
            await uow.inbound.seen("telegram", "1001", T0),
            await uow.inbound.seen("whatsapp", "1001", T0),
        ]
        await uow.commit()
    async with db.unit_of_work() as uow:
        results.append(await uow.inbound.seen("telegram", "1001", T0))
    assert results == [False, True, False, True]


async def test_inbound_seen_once_under_concurrency(db: Database) -> None:
    """20 concurrent deliveries of the same update: exactly one is treated as new."""

    async def deliver() -> bool:
        async with db.unit_of_work() as uow:
            seen = await uow.inbound.seen("telegram", "2002", T0)
            await uow.commit()
        return seen

    results = await asyncio.gather(*(deliver() for _ in range(20)))
    assert sorted(results) == [False] + [True] * 19


async def test_inbound_prune_forgets_old_updates(db: Database) -> None:
    """prune deletes update ids received before the cut-off."""
    async with db.unit_of_work() as uow:
        await uow.inbound.seen("telegram", "old", T0)
        await uow.inbound.seen("telegram", "new", T0 + timedelta(days=8))
        pruned = await uow.inbound.prune(T0 + timedelta(days=7))
        again = await uow.inbound.seen("telegram", "old", T0 + timedelta(days=9))
    assert (pruned, again) == (1, False)
