"""kill -9 of `klachtwijzer run` (Telegram, against the Bot API stand-in) around a submission.

The client is driven to the summary in-process; then, for each kill point, a copy of that data dir
gets a real bot process, the client presses "Send", the process is killed with SIGKILL after a
delay between 0 and 1.2 s, and a new process is started on the same data. Messages owed to people
(bot/services/delivery.py) must bring the receipt with the reference at least once (at most twice),
and the outbox (.eml files) must hold the complaint exactly once.
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
from pathlib import Path
from typing import Any

import pytest

from bot.channels.telegram.core import CallbackCodec
from bot.root.app import build_app
from bot.root.settings import Settings
from flows.model import Choice, Start, Text
from tests.bot.telegram_stub import BotApiStub, callback_update, user

pytestmark = [pytest.mark.slow, pytest.mark.sqlite_only]

TOKEN = "123456789:AAE-klachtwijzer-test-token-abcdefghij"
CLIENT = 4101
DELAYS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6, 0.8, 1.2)
REFERENCE = re.compile(r"KW-\d{4}-\d{6}")


async def summary_snapshot(data_dir: Path) -> list[str]:
    """A data dir whose client sits at the summary of a formal complaint; the engine's states."""
    app = await build_app(Settings(data_dir=data_dir, mail_from="bot@klachtwijzer.test"))
    try:
        steps = [Start("en"), Choice("lang_en"), Choice("help"),
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


async def start_bot(data_dir: Path, stub: BotApiStub) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SMTP_", "KLACHTWIJZER_", "DATABASE_", "TELEGRAM_"))}
    env.update(KLACHTWIJZER_DATA_DIR=str(data_dir), MAIL_FROM="bot@klachtwijzer.test",
               TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE=stub.base, TELEGRAM_LIBRARY="ptb")
    calls = len(stub.calls)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not any(c.method == "getUpdates" for c in stub.calls[calls:]):
        assert proc.returncode is None, "the bot exited"
        assert time.monotonic() < deadline, "the bot did not start polling"
        await asyncio.sleep(0.02)
    return proc


async def kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGKILL)
    await proc.wait()


def receipts(stub: BotApiStub) -> list[str]:
    return [s.text for s in stub.to(CLIENT) if s.text and REFERENCE.search(s.text)]


def cases(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "klachtwijzer.db") as db:
        count: int = db.execute("select count(*) from cases").fetchone()[0]
    return count


async def until(check: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.05)
    return bool(check())


async def test_kill_9_around_a_submission_loses_no_receipt(tmp_path: Path) -> None:
    """Killed at 11 moments after 'Send': every receipt arrives (once, at most twice), one mail each."""
    template = tmp_path / "template"
    states = await summary_snapshot(template)
    data = CallbackCodec(TOKEN, states).encode(CLIENT, "confirm", "summary")
    client = user(CLIENT, "en", "Crash Client")
    figures = []
    for point, delay in enumerate(DELAYS):
        data_dir = tmp_path / f"point{point}"
        shutil.copytree(template, data_dir)
        stub = BotApiStub(TOKEN)
        await stub.start()
        try:
            proc = await start_bot(data_dir, stub)
            await stub.push(callback_update(stub.next_update_id(), client, None, data))
            await asyncio.sleep(delay)
            await kill(proc)
            proc = await start_bot(data_dir, stub)
            pressed_again = False
            if not await until(lambda stub=stub: receipts(stub), 3) and cases(data_dir) == 0:
                # Killed before the commit (the library may already have acknowledged the
                # update): nothing was registered, the client sees no receipt and presses again.
                pressed_again = True
                await stub.push(callback_update(stub.next_update_id(), client, None, data))
            assert await until(lambda stub=stub: receipts(stub), 10), f"no receipt at point {point}"
            outbox = data_dir / "outbox"
            assert await until(lambda outbox=outbox: len(list(outbox.glob("*.eml"))) >= 1, 15)
            await asyncio.sleep(0.5)  # room for a duplicate to show up
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 20)
        finally:
            await kill(proc)
            await stub.stop()
        references = {m.group(0) for text in receipts(stub) if (m := REFERENCE.search(text))}
        figure = (delay, len(receipts(stub)), cases(data_dir), len(list(outbox.glob("*.eml"))),
                  pressed_again)
        figures.append(figure)
        assert len(references) == 1 and 1 <= len(receipts(stub)) <= 2, figure
        assert cases(data_dir) == 1 and len(list(outbox.glob("*.eml"))) == 1, figure
    print("kill points (delay s, receipts, cases, mails, pressed again):", figures)
