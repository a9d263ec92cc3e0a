"""Memory: the RSS of a process that holds many conversations in mid-flow.

Run in a fresh process (`python -m bench.memory CONVERSATIONS DATA_DIR`), so nothing of the other
measurements is counted: it builds the app, lets every client open the chat and choose a language,
which shows the welcome and the first question (two steps through `app.service.handle`, 64 clients
at a time), and prints one JSON line with the RSS before and after (from /proc/self/status). State
lives in the database, so the figure should hardly grow with the number of conversations.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from bench.script import _key, event_of

STEPS = (("command", "/start"), ("press", "lang_{language}"))
LANGUAGES = ("nl", "uk", "ar", "en")
AT_ONCE = 64


def rss_mb() -> float:
    """VmRSS of this process in MB (Linux); 0 where /proc is not there."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def measure(conversations: int, data_dir: Path) -> dict[str, float]:
    from bot.root.app import build_app
    from bot.root.settings import Settings

    settings = Settings(data_dir=data_dir, mail_from="bench@klachtwijzer.test", database_url=None,
                        secret_key=_key())
    app = await build_app(settings)
    try:
        before = rss_mb()
        started = time.perf_counter()

        async def client(index: int) -> None:
            language = LANGUAGES[index % len(LANGUAGES)]
            for n, (kind, value) in enumerate(STEPS):
                await app.service.handle(
                    "telegram", str(7_000_000 + index),
                    event_of(kind, value.format(language=language), language),
                    update_id=f"{index}-{n}")

        for first in range(0, conversations, AT_ONCE):
            await asyncio.gather(*(client(i) for i in range(first, min(first + AT_ONCE,
                                                                         conversations))))
        seconds = time.perf_counter() - started
        after = rss_mb()
    finally:
        await app.close()
    return {"conversations": conversations, "steps": conversations * len(STEPS),
            "seconds": seconds, "rss_mb_before": before, "rss_mb": after}


def main(argv: list[str]) -> int:
    conversations, data_dir = int(argv[0]), Path(argv[1])
    print(json.dumps(asyncio.run(measure(conversations, data_dir))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
