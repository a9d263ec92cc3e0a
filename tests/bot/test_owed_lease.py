"""Issue 15: owed rows carry a lease. Two "processes" (two apps, each with its own holder id, on
one database: a SQLite file, or PostgreSQL in CI's second pass) never send one row both, a
chat's rows are taken only in order, and rows of a process that stopped sending are taken over
once the lease has run out."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from typing import Any

from bot.services.delivery import LEASE, OwedChannels, OwedMarker, gone, process_holder
from flows.model import Choice, Start
from tests.bot.graph_stub import GraphStub
from tests.bot.whatsapp_helpers import Meta, Phone, StartWhatsApp

CHANNEL = "whatsapp"


async def two_processes(app_factory: Any, settings_for: Any, database_url: str,
                        clock: Any) -> tuple[Any, Any, OwedMarker, OwedMarker]:
    settings = settings_for(database_url=database_url)
    a, b = await app_factory(settings), await app_factory(settings)
    a.service.owed_channels = OwedChannels({CHANNEL}, holder="process-a")
    b.service.owed_channels = OwedChannels({CHANNEL}, holder="process-b")
    return a, b, OwedMarker(a.db, clock, "process-a"), OwedMarker(b.db, clock, "process-b")


async def test_rows_claimed_by_their_process_are_left_to_it_until_the_lease_ends(
        app_factory: Any, settings_for: Any, database_url: str, clock: Any) -> None:
    """A's reply is claimed by A when it is stored: B neither takes it for the chat nor in its
    resend scan while A's lease runs; after the lease B takes it (once), and then A cannot."""
    a, _b, mark_a, mark_b = await two_processes(app_factory, settings_for, database_url, clock)
    reply = await a.service.handle(CHANNEL, "31600000001", Start("en"), update_id="w1")
    assert reply.owed
    assert await mark_b.take_for_chat(CHANNEL, "31600000001") == []
    assert await mark_b.owed(CHANNEL) == []
    # The pages that show rows (the desk) and the web chat's sockets see them all the same.
    assert [r.id for r in await mark_b.owed_to(CHANNEL, "31600000001")] == list(reply.owed)

    clock.advance(seconds=LEASE.total_seconds() + 1)  # A was killed mid-send
    taken = await mark_b.take_for_chat(CHANNEL, "31600000001")
    assert [r.id for r in taken] == list(reply.owed)
    assert await mark_a.take_for_chat(CHANNEL, "31600000001") == []  # B holds them now
    for row in taken:
        mark_b.mark(row.id)
    await mark_b.flush()
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert await mark_a.owed(CHANNEL) == []  # sent once: nothing left for anyone


async def test_a_chat_s_rows_are_taken_in_order_never_past_a_leased_row(
        app_factory: Any, settings_for: Any, database_url: str, clock: Any) -> None:
    """A row stored after one that A is sending waits behind it; when A's send fails and it
    releases its rows, B takes both, in their order."""
    a, b, mark_a, mark_b = await two_processes(app_factory, settings_for, database_url, clock)
    first = await a.service.handle(CHANNEL, "31600000002", Start("en"), update_id="w1")
    async with b.db.unit_of_work() as uow:  # kept without a lease (e.g. a relay outside the window)
        later = await uow.owed.add(CHANNEL, "31600000002", [{"text": "later", "state": None}],
                                   clock())
        await uow.commit()
    assert await mark_b.take_for_chat(CHANNEL, "31600000002") == []
    await mark_a.release(first.owed)  # A's send failed
    taken = await mark_b.take_for_chat(CHANNEL, "31600000002")
    assert [r.id for r in taken] == [*first.owed, *later]
    assert [r.seq for r in taken] == sorted(r.seq for r in taken)


async def test_two_processes_taking_the_same_due_rows_at_once_get_each_row_once(
        app_factory: Any, settings_for: Any, database_url: str, clock: Any) -> None:
    """Both scan the due rows of many chats at the same moment: the compare-and-set gives every
    row to exactly one of them."""
    a, _b, mark_a, mark_b = await two_processes(app_factory, settings_for, database_url, clock)
    for n in range(8):
        reply = await a.service.handle(CHANNEL, f"3160000010{n}", Start("en"), update_id=f"s{n}")
        await a.service.handle(CHANNEL, f"3160000010{n}", Choice("lang_en"), update_id=f"t{n}")
        assert reply.owed
    clock.advance(seconds=LEASE.total_seconds() + 1)
    got_a, got_b = await asyncio.gather(mark_a.owed(CHANNEL), mark_b.owed(CHANNEL))
    ids_a, ids_b = {r.id for r in got_a}, {r.id for r in got_b}
    async with a.db.unit_of_work(read_only=True) as uow:
        every = {r.id for r in await uow.owed.unsent(CHANNEL)}
    assert not ids_a & ids_b
    assert ids_a | ids_b == every and len(every) >= 16


async def _unsent(app: Any, wa_id: str) -> list[Any]:
    async with app.db.unit_of_work(read_only=True) as uow:
        return await uow.owed.unsent_for_chat(CHANNEL, wa_id)


async def test_whatsapp_webhook_answers_after_the_commit_and_before_the_reply_is_sent(
        start_whatsapp: StartWhatsApp, graph: GraphStub) -> None:
    """The 200 comes once the message is stored (its id recorded, its reply an owed row claimed
    by this process), not before; a Graph API that is slow to take the reply does not hold it.
    A reply whose send failed is released and goes first when the client writes again."""
    meta = await start_whatsapp()
    phone = Phone(meta, wa_id="31677700001")
    graph.hold = asyncio.Event()
    message = {"from": phone.wa_id, "id": meta.wamid(), "timestamp": "1795339800",
               "type": "text", "text": {"body": "Hello"}}
    status = await asyncio.wait_for(meta.post(Meta.payload({"messages": [message]})), 10)
    rows = await _unsent(meta.app, phone.wa_id)
    async with meta.app.db.unit_of_work(read_only=True) as uow:
        known = await uow.inbound.known(CHANNEL, message["id"])
    assert (status, graph.messages_to(phone.wa_id), known) == (200, [], True)
    assert rows and all(r.claimed_until is not None for r in rows)
    graph.hold.set()
    await meta.channel.idle()
    await meta.channel.marker.flush()
    assert await _unsent(meta.app, phone.wa_id) == []
    phone.collect()
    assert len(phone.last) == len(rows)

    graph.fail_next(500, 1, times=10)  # the Graph API is down: the reply stays owed, released
    await phone.press("lang_en")
    failed = await _unsent(meta.app, phone.wa_id)
    assert failed and all(r.claimed_until is None for r in failed)
    graph.failures.clear()
    shown = await phone.type("Hello again")  # the kept reply first, then this message's answer
    await meta.channel.marker.flush()
    assert await _unsent(meta.app, phone.wa_id) == []
    assert len(shown) > len(failed)


async def test_a_restart_on_the_same_host_takes_over_the_rows_of_its_ended_process_at_once(
        app_factory: Any, settings_for: Any, database_url: str, clock: Any) -> None:
    """Rows claimed by a process on this host that has ended (a crash, then a restart) are taken
    at once, without waiting for the lease; a live or remote holder's lease is waited out."""
    ended = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await ended.wait()
    host = socket.gethostname()[:30]
    dead, remote = f"{host}:{ended.pid}:0000", f"elsewhere.example:{ended.pid}:0000"
    assert (gone(dead), gone(remote), gone(process_holder()), gone(f"{host}:{os.getpid()}:x")) == (
        True, False, False, False)
    a, _b, _mark_a, mark_b = await two_processes(app_factory, settings_for, database_url, clock)
    a.service.owed_channels = OwedChannels({CHANNEL}, holder=dead)
    crashed = await a.service.handle(CHANNEL, "31600000003", Start("en"), update_id="w1")
    a.service.owed_channels = OwedChannels({CHANNEL}, holder=remote)
    away = await a.service.handle(CHANNEL, "31600000004", Start("en"), update_id="w2")
    taken = {r.id for r in await mark_b.owed(CHANNEL)}
    assert (set(crashed.owed) <= taken, set(away.owed) & taken) == (True, set())
