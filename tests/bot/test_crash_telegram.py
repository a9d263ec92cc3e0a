"""kill -9 of `klachtwijzer run` (Telegram, against the Bot API stand-in) around a submission and
around a live confidant chat (issue 10: messages owed to people are stored, then sent).

Two snapshots are made in-process: a client at the summary of a formal complaint, and a client in
an active live chat with a confidant (both on Telegram). For each kill point a copy of a snapshot
gets a real bot process and a Bot API stand-in of its own (four points run at a time); an update is
pushed (the client presses "Send", the client types to the confidant, or the confidant answers),
the process is killed with SIGKILL after a delay, and a new process is started on the same data at
once, without waiting for its first poll.

If the update was neither committed (its id is not in `inbound_updates`) nor left for redelivery
(the library had acknowledged it), the person sees no answer and sends it again. Then: the receipt
with the reference, or the relayed text, reaches the other side at least once and at most twice;
the outbox (.eml files) holds the complaint exactly once.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bot.channels.telegram.core import CallbackCodec
from bot.root.app import build_app
from bot.root.settings import Settings
from bot.services.handoff_desk import leave_desk, open_desk
from flows.handoff import parse_button
from flows.model import Choice, Event, Start, Text
from tests.bot.telegram_stub import BotApiStub, callback_update, message_update, user

pytestmark = [pytest.mark.slow, pytest.mark.sqlite_only]

TOKEN = "123456789:AAE-klachtwijzer-test-token-abcdefghij"
CLIENT, CONFIDANT = 4101, 501
SUBMIT_DELAYS = (0.0, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6, 0.9)
RELAY_DELAYS = (("client", 0.0), ("client", 0.1), ("client", 0.3),
                ("confidant", 0.0), ("confidant", 0.1), ("confidant", 0.3))
REFERENCE = re.compile(r"KW-\d{4}-\d{6}")
PARALLEL = 4  # kill points at a time
T = TypeVar("T")
ORG = """
name = "Steunpunt Vluchtelingen De Bilt"

[telegram]
confidants = [{ id = 501, gender = "female" }]

[handoff]
timeout_minutes = 600
"""


def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, mail_from="bot@klachtwijzer.test",
                    config=data_dir / "organisation.toml")


async def summary_snapshot(data_dir: Path) -> list[str]:
    """A data dir whose client sits at the summary of a formal complaint; the engine's states."""
    data_dir.mkdir(parents=True)
    (data_dir / "organisation.toml").write_text(ORG, encoding="utf-8")
    app = await build_app(settings(data_dir))
    try:
        steps: list[Event] = [Start("en"), Choice("lang_en"), Choice("help"),
                 Choice("skip_to_complaint"), Text("Client"),
                 Choice("staff_unknown"), Text("It went wrong."), Choice("when_unknown"),
                 Choice("tried_nothing"), Choice("contact_chat")]
        for number, event in enumerate(steps):
            await app.service.handle("telegram", str(CLIENT), event, update_id=f"prep-{number}")
        async with app.db.unit_of_work(read_only=True) as uow:
            stored = await uow.conversations.get("telegram", str(CLIENT))
        assert stored is not None and stored.state == "summary"
        return sorted(app.engine.edges)
    finally:
        await app.close()


async def live_chat_snapshot(data_dir: Path) -> None:
    """A data dir whose client is in an active live chat with the confidant (both on Telegram)."""
    data_dir.mkdir(parents=True)
    (data_dir / "organisation.toml").write_text(ORG, encoding="utf-8")
    app = await build_app(settings(data_dir))
    desk = open_desk(app, app.service, "telegram")
    try:
        steps: list[Event] = [Start("en"), Choice("lang_en"), Choice("sexual_harassment"),
                 Choice("talk_not_tried"), Choice("pref_female"), Choice("anonymous"),
                 Choice("contact_chat"), Text("A problem with a volunteer"), Choice("confirm")]
        for number, event in enumerate(steps):
            reply = await app.service.handle("telegram", str(CLIENT), event,
                                             update_id=f"prep-{number}")
        accept = [b for env in reply.others for item in env.items
                  for b in getattr(item, "button_ids", list)()
                  if (p := parse_button(b)) is not None and p[0] == "accept"]
        assert accept, "no offer reached the confidant"
        answer = await desk.confidant_update(("telegram", str(CONFIDANT)), Choice(accept[0]),
                                             update_id="prep-accept", language="en")
        assert answer.others, "the client was not told that the confidant accepted"
    finally:
        leave_desk(app.service, desk, "telegram")
        await app.close()


async def start_bot(data_dir: Path, stub: BotApiStub, *, wait: bool) -> asyncio.subprocess.Process:
    """`python -m bot run` on this data; `wait`: until it polls (else it starts in the background)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SMTP_", "KLACHTWIJZER_", "DATABASE_", "TELEGRAM_"))}
    env.update(KLACHTWIJZER_DATA_DIR=str(data_dir), MAIL_FROM="bot@klachtwijzer.test",
               KLACHTWIJZER_CONFIG=str(data_dir / "organisation.toml"),
               TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE=stub.base, TELEGRAM_LIBRARY="ptb")
    calls = len(stub.calls)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while wait and not any(c.method == "getUpdates" for c in stub.calls[calls:]):
        assert proc.returncode is None, "the bot exited"
        assert time.monotonic() < deadline, "the bot did not start polling"
        await asyncio.sleep(0.01)
    return proc


async def kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGKILL)
    await proc.wait()


def query(data_dir: Path, sql: str, *args: Any) -> int:
    with sqlite3.connect(data_dir / "klachtwijzer.db") as db:
        count: int = db.execute(sql, args).fetchone()[0]
    return count


def committed(data_dir: Path, update_id: int) -> bool:
    return query(data_dir, "select count(*) from inbound_updates where update_id = ?",
                 str(update_id)) > 0


def mails(data_dir: Path) -> int:
    return len(list((data_dir / "outbox").glob("*.eml")))


async def until(check: Callable[[], Any], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return bool(check())


async def crash_point(data_dir: Path, update: Callable[[BotApiStub], dict[str, Any]],
                      delay: float, seen: Callable[[BotApiStub], int],
                      done: Callable[[], bool]) -> tuple[int, bool]:
    """Push the update, SIGKILL after `delay`, restart at once, wait until `seen` and `done`.

    Returns what `seen` counted, and whether the person had to send the update again (it was
    neither committed nor left for redelivery)."""
    stub = BotApiStub(TOKEN)
    await stub.start()
    try:
        first = update(stub)
        proc = await start_bot(data_dir, stub, wait=True)
        try:
            await stub.push(first)
            await asyncio.sleep(delay)
            await kill(proc)
            pending = any(u["update_id"] == first["update_id"] for u in stub.updates)
            again = not committed(data_dir, first["update_id"]) and not pending
            proc = await start_bot(data_dir, stub, wait=False)
            if again:
                await stub.push(update(stub))
            assert await until(lambda: seen(stub) >= 1 and done(), 30), f"nothing ({delay} s)"
            await asyncio.sleep(0.3)  # room for a duplicate to show up
        finally:
            await kill(proc)
        return seen(stub), again
    finally:
        await stub.stop()


async def in_parallel(points: list[Awaitable[T]]) -> list[T]:
    """The kill points, a few at a time (each has its own data dir, process and stand-in)."""
    gate = asyncio.Semaphore(PARALLEL)

    async def one(point: Awaitable[T]) -> T:
        async with gate:
            return await point

    return list(await asyncio.gather(*(one(p) for p in points)))


async def test_kill_9_around_a_submission_loses_no_receipt(tmp_path: Path) -> None:
    """Killed at 10 moments after 'Send': every receipt arrives (once, at most twice), one mail each."""
    template = tmp_path / "summary"
    states = await summary_snapshot(template)
    data = CallbackCodec(TOKEN, states).encode(CLIENT, "confirm", "summary")
    client = user(CLIENT, "en", "Crash Client")

    def press(stub: BotApiStub) -> dict[str, Any]:
        return callback_update(stub.next_update_id(), client, None, data)

    def receipts(stub: BotApiStub) -> int:
        return sum(1 for s in stub.to(CLIENT) if s.text and REFERENCE.search(s.text))

    async def point(number: int, delay: float) -> tuple[float, int, int, int, bool]:
        data_dir = tmp_path / f"submit{number}"
        shutil.copytree(template, data_dir)
        seen, again = await crash_point(data_dir, press, delay, receipts,
                                        lambda: mails(data_dir) >= 1)
        return delay, seen, query(data_dir, "select count(*) from cases"), mails(data_dir), again

    figures = await in_parallel([point(n, d) for n, d in enumerate(SUBMIT_DELAYS)])
    print("submission kill points (delay s, receipts, cases, mails, sent again):", figures)
    for figure in figures:
        assert 1 <= figure[1] <= 2 and figure[2:4] == (1, 1), figure


async def test_kill_9_around_a_relay_loses_no_message(tmp_path: Path) -> None:
    """Killed at 6 moments after a live-chat message (3 each way): the other side gets it 1-2 times."""
    template = tmp_path / "live"
    await live_chat_snapshot(template)
    people = {"client": user(CLIENT, "en", "Crash Client"),
              "confidant": user(CONFIDANT, "en", "Bea")}

    async def point(number: int, sender: str, delay: float) -> tuple[str, float, int, bool]:
        data_dir = tmp_path / f"relay{number}"
        shutil.copytree(template, data_dir)
        text = f"Message {number} from the {sender}, killed after {delay} s"
        other = CONFIDANT if sender == "client" else CLIENT

        def message(stub: BotApiStub) -> dict[str, Any]:
            return message_update(stub.next_update_id(), people[sender], text=text)

        def arrived(stub: BotApiStub) -> int:
            return sum(1 for s in stub.to(other) if s.text and text in s.text)

        seen, again = await crash_point(data_dir, message, delay, arrived, lambda: True)
        return sender, delay, seen, again

    figures = await in_parallel([point(n, s, d) for n, (s, d) in enumerate(RELAY_DELAYS)])
    print("relay kill points (sender, delay s, messages seen, sent again):", figures)
    for figure in figures:
        assert 1 <= figure[2] <= 2, figure
