"""RegisterRepository: encrypted notes, status facts, follow-up answers, the daily claim, erasure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from storage import CaseRecord, Cipher, Database, OutboxItem
from storage.schema import case_events, follow_ups

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


async def add_case(db: Database, reference: str = "KW-2026-000001") -> None:
    async with db.unit_of_work() as uow:
        await uow.cases.add(CaseRecord(reference=reference, channel="telegram", kind="complaint",
                                       schema="A", language="uk", mailbox="k@example.org",
                                       payload={"description": "secret words"}, created_at=T0,
                                       updated_at=T0))
        await uow.commit()


async def test_status_change_keeps_the_anonymised_facts(db: Database) -> None:
    """acknowledged_at, decided_at, outcome and closed_at are set once, with the event."""
    await add_case(db)
    async with db.unit_of_work() as uow:
        for days, status in ((2, "acknowledged"), (3, "with_committee"), (30, "decided"), (31, "closed")):
            await uow.register.change_status("KW-2026-000001", status, T0 + timedelta(days=days),
                                             actor="secretaris",
                                             outcome="founded" if status == "decided" else None)
        await uow.commit()
    async with db.unit_of_work(read_only=True) as uow:
        case = await uow.register.get("KW-2026-000001")
        events = await uow.register.events("KW-2026-000001")
    assert case is not None
    assert (case.status, case.outcome, case.acknowledged_at, case.decided_at, case.closed_at) == (
        "closed", "founded", T0 + timedelta(days=2), T0 + timedelta(days=30), T0 + timedelta(days=31))
    assert [e.value for e in events] == ["acknowledged", "with_committee", "decided", "closed"]


async def test_notes_and_comments_are_encrypted_at_rest(db: Database, cipher: Cipher) -> None:
    """The note and the follow-up comment are Fernet tokens in the database, plaintext when read."""
    await add_case(db)
    async with db.unit_of_work() as uow:
        await uow.register.add_event("KW-2026-000001", T0, actor="x", action="note",
                                     note="Gebeld met Olena")
        await uow.register.record_follow_up("KW-2026-000001", "no", T0, comment="Nog steeds")
        await uow.register.record_follow_up("KW-2026-000001", "partly", T0 + timedelta(hours=1))
        await uow.commit()
    async with db.engine.connect() as conn:
        note = (await conn.execute(select(case_events.c.note))).scalar_one()
        comment = (await conn.execute(select(follow_ups.c.comment))).scalar_one()
    assert b"Olena" not in note and cipher.decrypt(note) == b"Gebeld met Olena"
    assert b"Nog" not in comment
    async with db.unit_of_work(read_only=True) as uow:
        answer = await uow.register.follow_up("KW-2026-000001")
        [event] = await uow.register.events("KW-2026-000001")
    assert answer is not None and (answer.answer, answer.comment) == ("partly", "Nog steeds")
    assert event.note == "Gebeld met Olena"


async def test_daily_run_is_claimed_once_and_again_only_when_it_died(db: Database) -> None:
    """One claim per day; a finished run is not claimed again that day, a dead one after the lease."""
    day1 = T0.replace(hour=0)
    lease = timedelta(hours=1)

    async def claim(at: datetime) -> bool:
        async with db.unit_of_work() as uow:
            won = await uow.register.claim_daily_run(at, at.replace(hour=0), lease)
            await uow.commit()
        return won

    results = [await claim(T0), await claim(T0 + timedelta(minutes=1))]
    async with db.unit_of_work() as uow:
        assert await uow.register.finish_daily_run(T0, day1 + timedelta(days=1))
        await uow.commit()
    results.append(await claim(T0 + timedelta(hours=5)))  # finished: not again today
    day2 = T0 + timedelta(days=1)
    results.append(await claim(day2))  # the next day; this run dies without finishing
    results.append(await claim(day2 + timedelta(minutes=59)))  # still within its lease
    results.append(await claim(day2 + timedelta(minutes=61)))  # taken over: run again
    async with db.unit_of_work() as uow:  # the dead run's late finish no longer counts
        late = await uow.register.finish_daily_run(day2, day1 + timedelta(days=2))
    assert (results, late) == ([True, False, False, True, False, True], False)


async def test_destroy_dossier_keeps_only_the_anonymised_row(db: Database) -> None:
    """Payload, conversation link, notes, comment and outbox rows go; kind and dates stay."""
    await add_case(db)
    async with db.unit_of_work() as uow:
        await uow.register.add_event("KW-2026-000001", T0, actor="x", action="note", note="n")
        await uow.register.record_follow_up("KW-2026-000001", "no", T0, comment="c")
        await uow.outbox.add(OutboxItem(case_reference="KW-2026-000001", purpose="case",
                                        recipient="k@example.org", message_id="<1@x>", raw=b"mail"))
        await uow.register.change_status("KW-2026-000001", "closed", T0, actor="x")
        assert [c.reference for c in await uow.register.retention_due(T0 + timedelta(seconds=1))] == [
            "KW-2026-000001"]
        assert await uow.register.destroy_dossier("KW-2026-000001", T0) == 1
        assert await uow.register.retention_due(T0 + timedelta(days=1)) == []
        await uow.commit()
    async with db.unit_of_work(read_only=True) as uow:
        case = await uow.cases.get("KW-2026-000001")
        events = await uow.register.events("KW-2026-000001")
        answer = await uow.register.follow_up("KW-2026-000001")
        counts = await uow.outbox.count_by_status()
    assert case is not None and (case.payload, case.kind, case.erased_at) == (None, "complaint", T0)
    assert [(e.action, e.note) for e in events] == [("note", None), ("status", None)]
    assert (answer is not None and answer.comment, sum(counts.values())) == (None, 0)
