"""2 processes vs 1 on PostgreSQL (bench/cluster.py): the same WhatsApp load through the proxy.

Each run is a fresh database, `processes` real `klachtwijzer run` subprocesses and `chats` phones
sending `steps` messages each, the next as soon as the replies to the last one arrived (a closed
loop: the figure is what the processes can take). The first two runs route each chat to one
process (sticky: `scale_2_over_1`); a third spreads the same chats round-robin over both
processes (`scale_2_over_1_round_robin`) and counts the replies that came twice
(`round_robin_repeats`: 0 since owed rows carry a lease, issue 15) and the phones that then saw
other buttons than the ones they waited for and stopped (`round_robin_confused`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench.cluster import Tally, cluster
from bench.script import Script
from bench.whatsapp import WaShapes


@contextlib.asynccontextmanager
async def fresh_database(admin_url: str | None, name: str) -> AsyncIterator[str | None]:
    """A new, empty PostgreSQL database on the server of `admin_url` for one run, dropped after
    it; None (the bot's SQLite default) without a server."""
    if admin_url is None:
        yield None
        return
    import asyncpg

    async def admin(statement: str) -> None:
        conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def postgres_version(admin_url: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return str(await conn.fetchval("SHOW server_version")).split()[0]
    finally:
        await conn.close()


async def one_run(admin_url: str, root: Path, secret: SecretStr, scripts: list[Script],
                  shapes: WaShapes, *, processes: int, chats: int, steps: int,
                  sticky: bool) -> dict[str, Any]:
    name = f"kw_bench_scale_{processes}_{'sticky' if sticky else 'rr'}"
    async with fresh_database(admin_url, name) as url:
        assert url is not None  # noqa: S101 - an admin URL was given
        async with cluster(processes, url, root / name, secret, sticky=sticky) as c:
            tally = Tally()
            started = time.perf_counter()
            await asyncio.gather(*(c.whatsapp_client(scripts[i % len(scripts)], shapes,
                                                     20_000 + i, steps, 0.0, tally, 10)
                                   for i in range(chats)))
            seconds = time.perf_counter() - started
            received = c.wa.per_chat
    repeats = sum(max(0, received[chat] - n) for chat, n in tally.expected.items())
    return {"rate": tally.wa_messages / seconds, "messages": tally.wa_messages,
            "latencies": tally.latencies, "repeats": repeats, "confused": tally.confused,
            "stalled": tally.stalled}


async def measure_scale(admin_url: str, root: Path, secret: SecretStr, scripts: list[Script],
                        shapes: WaShapes, *, chats: int, steps: int, round_robin: bool = True,
                        say: Any = print) -> dict[str, Any]:
    """1 process, then 2 (sticky), then (`round_robin`) 2 round-robin; the figures."""
    runs = {}
    kinds = ((1, True), (2, True), (2, False)) if round_robin else ((1, True), (2, True))
    for processes, sticky in kinds:
        result = await one_run(admin_url, root, secret, scripts, shapes, processes=processes,
                               chats=chats, steps=steps, sticky=sticky)
        routing = "each chat to one process" if sticky else "round-robin"
        say(f"  {processes} process(es) on PostgreSQL, {routing}: {result['rate']:7.1f} msg/s "
            f"({result['messages']} WhatsApp messages, {result['repeats']} repeated replies, "
            f"{result['confused']} phones confused)")
        runs[(processes, sticky)] = result
    one, two = runs[(1, True)], runs[(2, True)]
    spread = runs.get((2, False), {})
    return {"scale_2_over_1": two["rate"] / one["rate"],
            "msgs_per_s_1_process": one["rate"], "msgs_per_s_2_processes": two["rate"],
            "msgs_per_s_2_round_robin": spread.get("rate"),
            "scale_2_over_1_round_robin": (spread["rate"] / one["rate"]) if spread else None,
            "round_robin_repeats": spread.get("repeats"),
            "round_robin_confused": spread.get("confused"),
            "sticky_repeats": one["repeats"] + two["repeats"],
            "latencies_2": two["latencies"], "chats": chats, "steps": steps}
