"""The web chat under test: `run_web` on a free loopback port of a real app, and a WebSocket
client that speaks the protocol (for the tests without a browser)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from bot.channels.web import run_web
from bot.root.app import App


class WebRun:
    """`run_web` (the composition root's task) on the app's WEB_LISTEN_PORT; it can be halted and
    resumed on the same port (the server going away and coming back)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.base = f"http://127.0.0.1:{app.settings.web_listen_port}"
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def resume(self) -> None:
        self.stop = asyncio.Event()
        self.task = task = asyncio.create_task(run_web(self.app, self.stop))
        async with aiohttp.ClientSession() as session:
            for _ in range(500):
                assert not task.done(), task.exception()
                try:
                    async with session.get(self.base + "/ui/en.json") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.01)
        raise AssertionError("the web chat did not start")

    async def halt(self) -> None:
        self.stop.set()
        if self.task is not None:
            await self.task
            self.task = None


@asynccontextmanager
async def running_web(app: App) -> AsyncIterator[WebRun]:
    run = WebRun(app)
    await run.resume()
    try:
        yield run
    finally:
        await run.halt()


@asynccontextmanager
async def serving(app: App) -> AsyncIterator[str]:
    """The web chat until the block ends; yields its base URL."""
    async with running_web(app) as run:
        yield run.base


class Client:
    """One browser tab's worth of protocol, without the browser."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.token: str | None = None

    async def frame(self) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=10.0)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        data: dict[str, Any] = json.loads(msg.data)
        return data

    async def send(self, **frame: Any) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def hello(self, token: str | None = None, lang: str = "en",
                    org: str | None = None) -> dict[str, Any]:
        await self.send(t="hello", token=token, lang=lang, org=org)
        ready = await self.frame()
        assert ready["t"] == "ready", ready
        self.token = ready["token"]
        return ready

    async def message(self, **frame: Any) -> list[dict[str, Any]]:
        """Send a client message; every frame up to its ack (outbound messages acknowledged)."""
        mid = frame.pop("id", None) or uuid.uuid4().hex
        await self.send(id=mid, **frame)
        return await self.until_ack(mid)

    async def until_ack(self, mid: str) -> list[dict[str, Any]]:
        frames = []
        while True:
            f = await self.frame()
            frames.append(f)
            if f["t"] in ("msg", "file"):
                await self.send(t="ack", seq=f["seq"])
            if f["t"] == "ack" and f["id"] == mid:
                return frames
            if f["t"] == "notice" and f.get("retry") == mid:
                return frames


def texts(frames: list[dict[str, Any]]) -> list[str]:
    return [f["text"] for f in frames if f["t"] in ("msg", "notice", "code")]


def button_ids(frames: list[dict[str, Any]]) -> list[str]:
    return [b[0] for f in frames if f["t"] == "msg" for row in f["buttons"] for b in row]


@asynccontextmanager
async def client(base: str, origin: str | None = None) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as session, session.ws_connect(
            base.replace("http", "ws") + "/ws", origin=origin or base) as ws:
        yield Client(ws)
