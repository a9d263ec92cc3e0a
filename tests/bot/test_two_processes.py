"""Two real `klachtwijzer run` processes on one PostgreSQL database behind a round-robin proxy
(bench/cluster.py), one of them killed with SIGKILL in the middle of the traffic and brought back
once the other is done: nothing lost, nothing doubled. Telegram in webhook mode (aiogram and
python-telegram-bot, each webhook answering after the update was committed; a delivery that got
no answer is delivered again, to the other process, as Telegram does), and WhatsApp phones whose
messages go to the two processes in turn (issue 15: owed rows carry a lease, the webhook answers
after the commit).
PostgreSQL only: the CI's second pass runs it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr

from bench.cluster import TG_CHAT_BASE, Cluster, Tally, cluster
from bench.script import LANGUAGES, calibrate
from bench.whatsapp import record_shapes
from bot.services.delivery import LEASE
from storage import generate_key
from tests.bot.telegram_stub import callback_update, message_update, user
from tests.conftest import ON_POSTGRES

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not ON_POSTGRES, reason="several processes share PostgreSQL "
                                 "(KLACHTWIJZER_TEST_POSTGRES, the CI's second pass)")]

CHATS = 24
STEPS = 12  # /start, the language, one complaint (10 steps): one case and one mail per chat
FEMALE_1, FEMALE_2 = 7_100_001, 7_100_002
ORG = f"""
name = "Steunpunt Test"

[[confidants]]
gender = "female"
telegram = {FEMALE_1}

[[confidants]]
gender = "female"
telegram = {FEMALE_2}

[handoff]
timeout_minutes = 30
"""


async def _when(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def _step(c: Cluster, chat: int, language: str, kind: str, value: str,
                buttons: bool = True) -> None:
    """One update from a user through the proxy; returns once a reply arrived and new buttons
    were shown (the handoff path is not calibrated)."""
    sender = user(chat, language, "Client")
    update_id = c.tg.next_update_id()
    if kind == "press":
        sent, data = c.tg.keyboard_with(chat, value)
        update = callback_update(update_id, sender, sent, data)
    else:
        update = message_update(update_id, sender, text=value)
    shown = c.tg._last_keyboard.get(chat)
    newest = shown.message_id if shown is not None else 0
    answered = c.tg.expect(chat, 1)
    await c.telegram_update(update)
    await asyncio.wait_for(answered, 20)
    if buttons:  # its new buttons came
        assert await _when(lambda: c.tg._last_keyboard[chat].message_id > newest, 10)


def _accept_of(c: Cluster, chat: int) -> tuple[Any, str]:
    sent = c.tg._last_keyboard[chat]
    for row in sent.keyboard:
        for button in row:
            if str(button["callback_data"]).startswith("ho:accept"):
                return sent, str(button["callback_data"])
    raise AssertionError("no Accept button in the confidant's offer")


async def _rows(url: str, query: str) -> list[Any]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


async def _owed_sent(url: str, seconds: float) -> None:
    """Wait until nothing owed is left unsent (the killed process's claims ran out and a resend
    loop took them)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not await _rows(url, "SELECT id FROM owed_messages WHERE sent_at IS NULL"):
            return
        await asyncio.sleep(0.5)


@pytest.mark.parametrize("library", ["aiogram", "ptb"])
async def test_two_processes_one_killed_lose_nothing_and_double_nothing(
    tmp_path: Path, database_url: str, library: str
) -> None:
    """Updates of the same chats spread over two processes, one SIGKILLed halfway and restarted
    after the other finished: every update handled once, every reply received (a reply the killed
    process sent but had not marked comes at most once more), nothing owed left, every mail sent
    once or still queued (a claim of the dead process runs out), and two confidants accepting one
    handoff at once on the two processes: one wins. (The replies the killed process had claimed
    come from the restarted process, or after their lease.)"""
    config = tmp_path / "organisation.toml"
    config.write_text(ORG, encoding="utf-8")
    scripts = [await calibrate(language) for language in LANGUAGES]
    async with cluster(2, database_url, tmp_path / "cluster", SecretStr(generate_key()),
                       config, telegram_library=library) as c:
        tally = Tally()
        clients = [asyncio.create_task(c.telegram_client(
            scripts[i % len(scripts)], TG_CHAT_BASE + i, STEPS, 0.05, tally, wait=6))
            for i in range(CHATS)]
        assert await _when(lambda: tally.updates >= CHATS * STEPS // 3, 60)
        c.kill(c.processes[0])  # in the middle of the traffic
        await asyncio.gather(*clients)
        await asyncio.sleep(1)  # the survivor finishes what it took
        await c.start_process(c.processes[0])  # the supervisor brings it back
        # What the killed process had claimed: taken at once by the restarted one (same host,
        # the pid is gone), else by a resend loop once the lease ran out.
        complete = await _when(
            lambda: all(c.tg.per_chat[chat] >= n for chat, n in tally.expected.items()),
            1.5 * LEASE.total_seconds() + 30)
        # A reply it sent but had not marked is sent again then too (at most once more).
        await _owed_sent(database_url, 1.5 * LEASE.total_seconds() + 30)

        # Two confidants press Accept on one offer at the same moment, on the two processes.
        client = TG_CHAT_BASE + 900
        for kind, value in (("command", "/start"), ("press", "lang_en"),
                            ("press", "sexual_harassment"), ("press", "talk_not_tried"),
                            ("press", "pref_female"), ("press", "anonymous"),
                            ("press", "contact_chat"), ("say", "A problem with a volunteer"),
                            ("press", "confirm")):
            await _step(c, client, "en", kind, value, buttons=value != "confirm")
        assert await _when(lambda: all(
            confidant in c.tg._last_keyboard for confidant in (FEMALE_1, FEMALE_2)), 20)
        offers = [_accept_of(c, confidant) for confidant in (FEMALE_1, FEMALE_2)]
        presses = [callback_update(c.tg.next_update_id(), user(confidant, "nl", "Conf"), sent, data)
                   for confidant, (sent, data) in zip((FEMALE_1, FEMALE_2), offers, strict=True)]
        turn = c.proxy.turn["/telegram-hook"]
        await asyncio.gather(*(c.telegram_update(update) for update in presses))
        # What the accept owes the client and the confidants is sent by the live processes (a
        # library's pacing may hold a chat's messages for seconds), then they stop.
        await _owed_sent(database_url, 30)
        # Stopped cleanly, so that every mark and mail of the live processes is stored.
        await asyncio.gather(*(c.stop_process(p) for p in c.processes))
        counts = await c.check()

    lost = {chat: (c.tg.per_chat[chat], n) for chat, n in tally.expected.items()
            if c.tg.per_chat[chat] < n}  # (received, expected)
    # A SIGKILL can repeat what the killed process sent but had not yet marked sent (its last
    # unwritten batch of marks, issue 10): at most the replies to one update per chat.
    repeated = [c.tg.per_chat[chat] - n for chat, n in tally.expected.items()
                if c.tg.per_chat[chat] > n]
    handoffs = await _rows(database_url, "SELECT status, confidant_id FROM handoffs")
    accepted = await _rows(database_url,
                           "SELECT count(*) AS n FROM audit_log WHERE action = 'handoff_accepted'")
    pending = counts["outbox"].get("pending", 0)
    most = max(step.replies for script in scripts for step in (*script.opening, *script.cycle))
    assert (complete, tally.confused, lost, max(repeated, default=0) <= most,
            counts["inbound_updates"],
            counts["owed_unsent"], counts["mails_twice"], counts["mails_received"] + pending) == (
        True, 0, {}, True, tally.updates + tally.stalled + 9 + 2, 0, 0,
        counts["cases"])
    assert counts["cases"] > 0  # each a complaint that reached Send (a slow machine stalls some)
    assert (c.proxy.turn["/telegram-hook"] - turn, [h["status"] for h in handoffs],
            [h["confidant_id"] in (FEMALE_1, FEMALE_2) for h in handoffs],
            accepted[0]["n"]) == (2, ["active"], [True], 1)


PHONES = 16
WA_STEPS = 12


async def test_whatsapp_round_robin_repeats_nothing_and_a_killed_process_loses_nothing(
    tmp_path: Path, database_url: str
) -> None:
    """WhatsApp phones whose messages go to the two processes in turn: every message handled
    once, every reply received once and in order (each phone presses the buttons of the last
    reply: a repeated or early reply would confuse it). Then, with one process SIGKILLed in the
    middle: the webhook answered only after the commit, so every message is handled (by the
    other process), and the replies the killed one had claimed are sent by the restarted one
    (at most those it had sent but not marked come once more)."""
    secret = SecretStr(generate_key())
    scripts = [await calibrate(language) for language in LANGUAGES]
    shapes = await record_shapes(scripts, tmp_path / "record", secret)
    async with cluster(2, database_url, tmp_path / "cluster", secret) as c:
        calm = Tally()
        await asyncio.gather(*(c.whatsapp_client(scripts[i % len(scripts)], shapes, 30_000 + i,
                                                 WA_STEPS, 0.0, calm, 10) for i in range(PHONES)))
        got = c.wa.per_chat.copy()
        spread = dict(c.proxy.forwarded)
        off = {chat: (got[chat], n) for chat, n in calm.expected.items() if got[chat] != n}

        rough = Tally()
        clients = [asyncio.create_task(c.whatsapp_client(
            scripts[i % len(scripts)], shapes, 31_000 + i, WA_STEPS, 0.05, rough, 10))
            for i in range(PHONES)]
        assert await _when(lambda: rough.wa_messages >= PHONES * WA_STEPS // 3, 60)
        c.kill(c.processes[0])  # in the middle of the traffic
        await asyncio.gather(*clients)
        # Its claimed, unsent replies: the restarted process takes them at once (same host, its
        # pid is gone); elsewhere a resend loop would once the lease ended.
        await c.start_process(c.processes[0])
        complete = await _when(lambda: all(
            c.wa.per_chat[chat] >= n for chat, n in rough.expected.items()),
            1.5 * LEASE.total_seconds() + 30)
        await _owed_sent(database_url, 1.5 * LEASE.total_seconds() + 30)
        await asyncio.gather(*(c.stop_process(p) for p in c.processes))
        counts = await c.check()

    lost = {chat: (c.wa.per_chat[chat], n) for chat, n in rough.expected.items()
            if c.wa.per_chat[chat] < n}
    repeated = [c.wa.per_chat[chat] - n for chat, n in rough.expected.items()
                if c.wa.per_chat[chat] > n]
    most = max(len(calls) for calls in shapes.values())
    assert len([port for port, n in spread.items() if n > 0]) == 2  # both processes served
    assert (off, calm.confused, calm.stalled, calm.wa_messages) == ({}, 0, 0, PHONES * WA_STEPS)
    # A reply the killed process sent but had not marked comes once more, and may reach its
    # phone after the phone moved on (it then sees an older screen and stops: "confused").
    assert (complete, lost, rough.confused <= len(repeated), max(repeated, default=0) <= most,
            counts["inbound_updates"], counts["owed_unsent"]) == (
        True, {}, True, True, calm.wa_messages + rough.wa_messages + rough.stalled, 0)
