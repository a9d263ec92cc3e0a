"""The web chat's path (issue 13): WebSocket clients walking the same conversation against the real
web chat (`bot.channels.web.run_web` on a real app), and against a minimal aiohttp WebSocket echo
that answers each client message with as many frames as the bot does (its replies and an ack).

Each client sends its next message as soon as the ack of the previous one came (the replies come
before the ack), and acknowledges every reply, as the browser does. Figures: messages/s of the bot
and of the echo, their ratio, and the latency p50/p99 per message; the same echo with one durable
SQLite transaction per message (bench/floor.py: the floor of any bot that keeps a conversation);
and the bot's latency with clients that pause like people between messages.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from bench.floor import DurableStore
from bench.load import percentile
from bench.script import Script, Step


@dataclass(frozen=True)
class WebResult:
    rate: float  # client messages per second
    latencies: list[float]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _frame(step: Step, mid: str) -> dict[str, Any]:
    if step.kind == "press":
        return {"t": "choice", "id": mid, "button": step.value, "n": step.replies}
    if step.kind == "say":
        return {"t": "text", "id": mid, "text": step.value, "n": step.replies}
    name = step.value[1:].split()[0]
    if name == "start":
        return {"t": "start", "id": mid, "n": step.replies}
    return {"t": "command", "id": mid, "name": name, "n": step.replies}


async def _client(url: str, base: str, script: Script, budget: int,
                  latencies: list[float], think: float = 0.0) -> int:
    """One browser's worth of protocol: `budget` messages (at most 12: under the chat's rate
    limit, which does not count here), pausing ~`think` s before each; returns how many it
    sent."""
    sent = 0
    pause = random.Random(id(latencies) ^ hash(script.language))  # noqa: S311 - not a secret
    async with aiohttp.ClientSession() as session, session.ws_connect(
            url, origin=base, max_msg_size=0) as ws:
        await ws.send_str(json.dumps({"t": "hello", "token": None, "lang": script.language}))
        ready = json.loads((await ws.receive(timeout=30)).data)
        if ready.get("t") != "ready":
            raise RuntimeError("the web chat did not say ready")
        for step in script.steps():
            if sent >= budget:
                return sent
            if think > 0:
                await asyncio.sleep(pause.expovariate(1 / think))
            mid = uuid.uuid4().hex
            began = time.perf_counter()
            await ws.send_str(json.dumps(_frame(step, mid)))
            while True:
                msg = await ws.receive(timeout=60)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"the socket closed ({msg.type})")
                frame = json.loads(msg.data)
                if frame.get("t") == "msg" and frame.get("seq"):
                    await ws.send_str(json.dumps({"t": "ack", "seq": frame["seq"]}))
                if frame.get("t") == "ack" and frame.get("id") == mid:
                    break
            latencies.append(time.perf_counter() - began)
            sent += 1
    return sent


async def _load(base: str, scripts: list[Script], chats: int, messages: int,
                think: float = 0.0) -> WebResult:
    url = base.replace("http", "ws", 1) + "/ws"
    latencies: list[float] = []
    budget = min(12, -(-messages // chats))
    started = time.perf_counter()
    counts = await asyncio.gather(*(
        _client(url, base, scripts[i % len(scripts)], budget, latencies, think)
        for i in range(chats)))
    elapsed = time.perf_counter() - started
    return WebResult(sum(counts) / elapsed, latencies)


async def _echo_app(store: DurableStore | None = None) -> web.Application:
    """The minimal WebSocket echo: `n` reply frames and the ack for each client message; with
    `store`, one durable transaction per client message before it answers."""
    async def socket_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        seq = 0
        chat = uuid.uuid4().hex
        async for msg in ws:
            frame = json.loads(msg.data)
            if frame.get("t") == "hello":
                await ws.send_str(json.dumps({"t": "ready", "token": "x" * 43, "fresh": True}))
            elif frame.get("t") != "ack":
                if store is not None:
                    await store.step(chat, str(frame.get("id")))
                for _ in range(int(frame.get("n", 1))):
                    seq += 1
                    await ws.send_str(json.dumps({"t": "msg", "seq": seq, "text": "x" * 200,
                                                  "rtl": False, "state": "s", "buttons": []}))
                await ws.send_str(json.dumps({"t": "ack", "id": frame.get("id")}))
        return ws

    application = web.Application()
    application.router.add_get("/ws", socket_handler)
    return application


async def _echo(scripts: list[Script], chats: int, messages: int,
                floor: Path | None) -> WebResult:
    """The echo's run (warm-up not measured); with `floor`, the durable echo on that file."""
    store = await DurableStore.open(floor) if floor is not None else None
    runner = web.AppRunner(await _echo_app(store), access_log=None)
    await runner.setup()
    port = _port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        base = f"http://127.0.0.1:{port}"
        await _load(base, scripts, 8, 32)
        return await _load(base, scripts, chats, messages)
    finally:
        await runner.cleanup()
        if store is not None:
            await store.close()


async def measure_web(scripts: list[Script], secret: SecretStr, chats: int,
                      messages: int, *, paced_messages: int = 0,
                      think: float = 0.0) -> dict[str, float]:
    """The web chat's figures at `chats` concurrent WebSocket clients (warm-up not measured);
    with `paced_messages`, also the bot with clients pausing ~`think` s."""
    from bot.channels.web import run_web
    from bot.root.app import build_app
    from bot.root.settings import Settings

    results: dict[Literal["bot", "paced", "echo", "durable_echo"], WebResult] = {}
    with tempfile.TemporaryDirectory(prefix="kw-bench-web-") as tmp:
        port = _port()
        settings = Settings(data_dir=Path(tmp), mail_from="bench@klachtwijzer.test",
                            database_url=None, secret_key=secret, web_listen_port=port)
        app = await build_app(settings)
        stop = asyncio.Event()
        task = asyncio.create_task(run_web(app, stop))
        base = f"http://127.0.0.1:{port}"
        try:
            await _wait_for(base, task)
            await _load(base, scripts, 8, 32)
            results["bot"] = await _load(base, scripts, chats, messages)
            if paced_messages:
                results["paced"] = await _load(base, scripts, chats, paced_messages, think)
        finally:
            stop.set()
            await task
            await app.close()
        results["echo"] = await _echo(scripts, chats, messages, None)
        results["durable_echo"] = await _echo(scripts, chats, messages, Path(tmp) / "floor.db")
    bot, echo, durable = results["bot"], results["echo"], results["durable_echo"]
    figures = {
        "msgs_per_s_web_bot": bot.rate,
        "msgs_per_s_web_echo": echo.rate,
        "r2_web": bot.rate / echo.rate,
        "p50_ms_web": 1000 * percentile(bot.latencies, 50),
        "p99_ms_web": 1000 * percentile(bot.latencies, 99),
        "msgs_per_s_web_durable_echo": durable.rate,
        "floor_web": durable.rate / echo.rate,
        "r2_web_durable": bot.rate / durable.rate,
    }
    if "paced" in results:
        figures["p50_ms_web_paced"] = 1000 * percentile(results["paced"].latencies, 50)
        figures["p99_ms_web_paced"] = 1000 * percentile(results["paced"].latencies, 99)
    return figures


async def _wait_for(base: str, task: asyncio.Task[None]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(1000):
            if task.done():
                task.result()
            try:
                async with session.get(base + "/ui/en.json") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.01)
    raise RuntimeError("the web chat did not start")
