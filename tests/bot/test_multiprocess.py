"""Two bot processes on one database, receiving interleaved and redelivered updates for the same chats:
no update is lost and none is applied twice (PostgreSQL: row locks and version checks; SQLite: the
file's write lock)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from flows.model import Choice, Start, Text
from storage import generate_key

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHATS = 12
FILES_PER_CHAT = 10  # the engine's attachment limit: every one must be kept exactly once

WORKER = """
import asyncio, json, sys
from bot.root.app import build_app
from bot.root.settings import Settings
from flows.model import Attachment

async def main() -> None:
    work = json.loads(open(sys.argv[1]).read())
    app = await build_app(Settings())
    async def chat(chat_id, items):
        for update_id, ref in items:
            await app.service.handle("telegram", chat_id, Attachment("photo", ref, 10, "image/jpeg"),
                                     update_id=update_id)
    await asyncio.gather(*(chat(c, items) for c, items in work.items()))
    await app.close()

asyncio.run(main())
"""


async def test_two_processes_interleaved_updates(
    tmp_path: Path, app_factory: Any, settings_for: Any, database_url: str
) -> None:
    """Each chat's files arrive split over two processes, some delivered to both: all kept once."""
    key = generate_key()
    settings = settings_for(secret_key=key, database_url=database_url)
    app = await app_factory(settings)
    # To the description of a formal complaint, where files are taken (issue 14: 6 events).
    opening = (Start("en"), Choice("lang_en"), Choice("help"), Choice("skip_to_complaint"),
               Text("Client"), Choice("staff_unknown"))
    for n in range(CHATS):
        for event in opening:
            await app.service.handle("telegram", f"chat-{n}", event)
    await app.close()

    shares: list[dict[str, list[tuple[str, str]]]] = [{}, {}]
    for n in range(CHATS):
        for i in range(FILES_PER_CHAT):
            item = (f"u-{n}-{i}", f"ref-{n}-{i}")
            shares[i % 2].setdefault(f"chat-{n}", []).append(item)
            if i % 3 == 0:  # redelivered to the other process as well
                shares[(i + 1) % 2].setdefault(f"chat-{n}", []).append(item)
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "KLACHTWIJZER_"))}
    env.update(KLACHTWIJZER_DATA_DIR=str(settings.data_dir), DATABASE_URL=database_url,
               KLACHTWIJZER_SECRET_KEY=key, MAIL_FROM="bot@klachtwijzer.test")
    procs = []
    for i, share in enumerate(shares):
        work = tmp_path / f"work-{i}.json"
        work.write_text(json.dumps(share), encoding="utf-8")
        procs.append(await asyncio.create_subprocess_exec(
            sys.executable, str(script), str(work), env=env, cwd=ROOT, stderr=asyncio.subprocess.PIPE))
    results = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 180)
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()[-2000:]
    retries = sum(err.decode().count("retrying a unit of work") for _out, err in results)
    print(f"units of work run again after losing a race: {retries}")

    app = await app_factory(settings)
    async with app.db.unit_of_work(read_only=True) as uow:
        for n in range(CHATS):
            stored = await uow.conversations.get("telegram", f"chat-{n}")
            assert stored is not None
            refs = [a["ref"] for a in stored.data.get("attachments", [])]
            assert sorted(refs) == sorted(f"ref-{n}-{i}" for i in range(FILES_PER_CHAT)), n
            # every update was handled once: each file answered once, the version counts them
            assert stored.version == len(opening) + FILES_PER_CHAT, n
