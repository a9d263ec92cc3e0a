"""WhatsApp test helpers: a signed webhook client (`Meta`), a client's phone (`Phone`), the Graph
API stand-in fixture and `start_whatsapp`, which runs the real `run_whatsapp` entry point.
The fixtures are registered for every test in tests/bot by conftest.py."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest

from bot.channels.whatsapp import (
    BUTTON_TITLE_LIMIT,
    ROW_TITLE_LIMIT,
    TEXT_LIMIT,
    WhatsAppChannel,
    run_whatsapp,
)
from bot.root.app import App
from tests.bot.graph_stub import GraphStub

TOKEN = "EAAG-test-token"
PHONE_NUMBER_ID = "109876543210"
APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "verify-me-please"
OGG_VOICE = b"OggS\x00\x02" + bytes(range(256)) * 8  # stands in for an Opus voice note


_PORTS = random.Random()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range, picked at random. A port from
    bind(0) is ephemeral: between this check and the server's bind, a client socket of the other
    test worker could take it (seen in CI as "address already in use")."""
    low = _ephemeral_low()
    for _ in range(200 if low > 21000 else 0):
        port = _PORTS.randrange(20000, low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        fallback: int = sock.getsockname()[1]
    return fallback


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Meta:
    """Plays Meta's side: signs webhook payloads with the app secret and POSTs them."""

    app: App
    graph: GraphStub
    url: str
    session: aiohttp.ClientSession
    stop: asyncio.Event
    task: asyncio.Task[None]
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def channel(self) -> WhatsAppChannel:
        return cast(WhatsAppChannel, self.app.channels.get("whatsapp"))

    def wamid(self) -> str:
        return f"wamid.HBgLMzE2MTIzNDU2NzgVAgASGBQz-{next(self._ids)}"

    @staticmethod
    def payload(value: dict[str, Any], phone_number_id: str = PHONE_NUMBER_ID) -> dict[str, Any]:
        value = {"messaging_product": "whatsapp",
                 "metadata": {"display_phone_number": "31612345678",
                              "phone_number_id": phone_number_id}, **value}
        return {"object": "whatsapp_business_account",
                "entry": [{"id": "WABA-1", "changes": [{"value": value, "field": "messages"}]}]}

    async def post(self, payload: dict[str, Any] | bytes, *, signature: str | None = "auto") -> int:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if signature == "auto":
            headers["X-Hub-Signature-256"] = sign(body)
        elif signature is not None:
            headers["X-Hub-Signature-256"] = signature
        async with self.session.post(self.url, data=body, headers=headers) as response:
            return response.status

    async def deliver(self, payload: dict[str, Any]) -> None:
        """POST a signed payload, expect 200, and wait until its messages were handled."""
        assert await self.post(payload) == 200
        await self.channel.idle()

    async def verify(self, **query: str) -> tuple[int, str]:
        async with self.session.get(self.url, params=query) as response:
            return response.status, await response.text()


@dataclass
class Phone:
    """One WhatsApp user: sends messages through Meta, reads what the bot sent back."""

    meta: Meta
    wa_id: str = "31612345678"
    seen: int = 0
    last: list[dict[str, Any]] = field(default_factory=list)
    wamids: list[str] = field(default_factory=list)  # of the messages this phone sent

    async def _send(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        message = {"from": self.wa_id, "id": self.meta.wamid(), "timestamp": "1795339800", **message}
        self.wamids.append(message["id"])
        payload = Meta.payload({"contacts": [{"profile": {"name": "Test"}, "wa_id": self.wa_id}],
                                "messages": [message]})
        await self.meta.deliver(payload)
        return self.collect()

    def collect(self) -> list[dict[str, Any]]:
        mine = self.meta.graph.messages_to(self.wa_id)
        self.last = mine[self.seen:]
        self.seen = len(mine)
        return self.last

    async def type(self, text: str) -> list[dict[str, Any]]:
        return await self._send({"type": "text", "text": {"body": text}})

    def choices(self) -> dict[str, tuple[str, str, str]]:
        """Our button id -> (kind of reply, the id as sent, its title), from the newest messages."""
        found: dict[str, tuple[str, str, str]] = {}
        for message in self.last:
            interactive = message.get("interactive")
            if not interactive:
                continue
            if interactive["type"] == "button":
                for button in interactive["action"]["buttons"]:
                    raw = button["reply"]["id"]
                    found[raw.rpartition("|")[2]] = ("button_reply", raw, button["reply"]["title"])
            else:
                for section in interactive["action"]["sections"]:
                    for row in section["rows"]:
                        found[row["id"].rpartition("|")[2]] = ("list_reply", row["id"], row["title"])
        return found

    async def press(self, button_id: str) -> list[dict[str, Any]]:
        """Tap a button or list row that is on screen now; fails the test if it is not."""
        shown = self.choices()
        assert button_id in shown, f"{button_id!r} not among {sorted(shown)}"
        kind, raw, title = shown[button_id]
        return await self.press_raw(kind, raw, title)

    async def press_raw(self, kind: str, raw: str, title: str = "x") -> list[dict[str, Any]]:
        return await self._send({"type": "interactive",
                                 "interactive": {"type": kind, kind: {"id": raw, "title": title}}})

    async def send_media(self, kind: str, media_id: str, data: bytes, mime_type: str,
                         **extra: Any) -> list[dict[str, Any]]:
        self.meta.graph.add_media(media_id, data, mime_type)
        media = {"id": media_id, "mime_type": mime_type,
                 "sha256": hashlib.sha256(data).hexdigest(), **extra}
        return await self._send({"type": kind, kind: media})

    def text(self) -> str:
        """Every text the user saw in the newest messages: text bodies and interactive bodies."""
        parts = []
        for message in self.last:
            if message["type"] == "text":
                parts.append(message["text"]["body"])
            elif message["type"] == "interactive":
                parts.append(message["interactive"]["body"]["text"])
        return "\n".join(parts)

    def newest_interactive(self) -> dict[str, Any]:
        interactive = [m["interactive"] for m in self.last if m["type"] == "interactive"]
        assert interactive, f"no buttons in {self.last}"
        result: dict[str, Any] = interactive[-1]
        return result


def within_limits(messages: list[dict[str, Any]]) -> bool:
    """Every message the bot sent keeps WhatsApp's limits."""
    for message in messages:
        if message["type"] == "text":
            assert len(message["text"]["body"]) <= TEXT_LIMIT
        elif message["type"] == "interactive":
            interactive = message["interactive"]
            assert 0 < len(interactive["body"]["text"]) <= 1024
            if interactive["type"] == "button":
                assert 1 <= len(interactive["action"]["buttons"]) <= 3
                assert all(len(b["reply"]["title"]) <= BUTTON_TITLE_LIMIT
                           for b in interactive["action"]["buttons"])
            else:
                rows = [r for s in interactive["action"]["sections"] for r in s["rows"]]
                assert 1 <= len(rows) <= 10
                assert all(len(r["title"]) <= ROW_TITLE_LIMIT for r in rows)
                assert len(interactive["action"]["button"]) <= 20
    return True


@pytest.fixture
async def graph() -> AsyncIterator[GraphStub]:
    stub = GraphStub(TOKEN, PHONE_NUMBER_ID)
    await stub.start()
    try:
        yield stub
    finally:
        await stub.stop()


StartWhatsApp = Callable[..., Awaitable[Meta]]


@pytest.fixture
async def start_whatsapp(
    app_factory: Any, settings_for: Any, smtp_server: Any, graph: GraphStub, tmp_path: Path
) -> AsyncIterator[StartWhatsApp]:
    """Builds the app with WhatsApp settings and runs `run_whatsapp` (the real entry point)."""
    running: list[Meta] = []
    session = aiohttp.ClientSession()

    async def start(template: str | None = None, app: App | None = None, **overrides: Any) -> Meta:
        if app is None:
            config = None
            if template is not None:
                config = tmp_path / "organisation.toml"
                config.write_text(f'name = "Steunpunt Test"\n[whatsapp]\ntemplate = "{template}"\n',
                                  encoding="utf-8")
            port = free_port()
            settings = settings_for(
                smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_tls="none",
                config=config, whatsapp_token=TOKEN, whatsapp_phone_number_id=PHONE_NUMBER_ID,
                whatsapp_app_secret=APP_SECRET, whatsapp_verify_token=VERIFY_TOKEN,
                whatsapp_api_base=graph.base, whatsapp_listen_port=port, **overrides,
            )
            app = await app_factory(settings)
        assert app is not None
        stop = asyncio.Event()
        task = asyncio.create_task(run_whatsapp(app, stop))
        url = f"http://127.0.0.1:{app.settings.whatsapp_listen_port}/webhook"
        meta = Meta(app, graph, url, session, stop, task)
        for _ in range(500):  # until the listener answers
            assert not task.done(), task.exception()
            try:
                await meta.verify()
                break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.01)
        running.append(meta)
        return meta

    yield start
    for meta in running:
        meta.stop.set()
        await meta.task
    await session.close()


async def stop_whatsapp(meta: Meta) -> None:
    meta.stop.set()
    await meta.task


async def stored_conversation(app: App, wa_id: str) -> Any:
    async with app.db.unit_of_work(read_only=True) as uow:
        return await uow.conversations.get("whatsapp", wa_id)
