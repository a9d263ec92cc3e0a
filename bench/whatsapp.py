"""WhatsApp in the bench: the bot's webhook path against a minimal aiohttp webhook echo.

Simulated phones POST signed webhook deliveries (as Meta does) and wait for the replies to reach a
Graph API stand-in (tests/bot/graph_stub.py, counting and signalling instead of keeping). The bot
is the real `run_whatsapp` (signature check, parse, per-chat queue, one state-machine step,
commit, the Graph API sends, the read receipt). The echo is an aiohttp webhook that checks the
signature, parses the JSON, answers 200 and then, one message at a time per chat, makes exactly
the Graph API calls the bot made for the same message (recorded once per language by
`record_shapes`, replayed with the same payloads), and the read receipt.

Both get the same deliveries from the same number of phones: R2 (WhatsApp) = bot / echo. Phones
are numbered per language (`wa_id` = 31, the language's digit, then the chat), so the echo finds
the recorded answer from the delivery alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import random
import socket
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from bench.floor import DurableStore
from bench.load import Arrivals, BenchError, Kind, LoadResult, Running, _Budget, warmup_steps
from bench.script import LANGUAGES, Script, Step
from tests.bot.graph_stub import GraphStub

TOKEN = "EAAG-bench-token"  # noqa: S105 - the stand-in's, not a secret
PHONE_NUMBER_ID = "109876543210"
APP_SECRET = "bench-app-secret"  # noqa: S105 - the stand-in's
VERIFY_TOKEN = "bench-verify"  # noqa: S105 - the stand-in's
ANSWER_TIMEOUT = 60.0
WAMIDS = itertools.count(1)

Key = tuple[str, str, str]  # (language, kind, text or button id)
WaShapes = dict[Key, tuple[dict[str, Any], ...]]  # the Graph message payloads of each answer


def wa_id_for(language: str, chat: int) -> str:
    return f"31{LANGUAGES.index(language)}{chat:08d}"


def language_of(wa_id: str) -> str:
    return LANGUAGES[int(wa_id[2])]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


class WaStub(GraphStub):
    """The Graph API stand-in for load: counts calls, signals a phone's replies, keeps only each
    phone's newest buttons (and, when recording, the payloads)."""

    def __init__(self) -> None:
        super().__init__(TOKEN, PHONE_NUMBER_ID)
        self.counts: Counter[str] = Counter()
        self.per_chat: Counter[str] = Counter()  # "wa:<wa_id>" -> messages sent to it
        self.shown: dict[str, dict[str, Any]] = {}  # wa_id -> newest interactive message
        self.recording: list[dict[str, Any]] | None = None
        self._arrivals: Arrivals[str] = Arrivals()

    def expect(self, wa_id: str, replies: int) -> asyncio.Future[float]:
        return self._arrivals.expect(wa_id, replies)

    async def _messages(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": {"code": 190}}, status=401)
        payload = await request.json()
        if payload.get("status") == "read":
            self.counts["read"] += 1
            return web.json_response({"success": True})
        self.counts[str(payload.get("type"))] += 1
        to = str(payload.get("to"))
        self.per_chat[f"wa:{to}"] += 1
        if self.recording is not None:
            self.recording.append(payload)
        if payload.get("type") == "interactive":
            self.shown[to] = payload["interactive"]
        self._arrivals.arrived(to)
        return web.json_response({"messaging_product": "whatsapp",
                                  "contacts": [{"input": to, "wa_id": to}],
                                  "messages": [{"id": f"wamid.bench-{next(WAMIDS)}"}]})

    def press(self, wa_id: str, button_id: str) -> dict[str, Any]:
        """The interactive reply a phone sends when it taps `button_id` on its newest buttons."""
        shown = self.shown.get(wa_id) or {}
        action = shown.get("action") or {}
        if shown.get("type") == "button":
            for button in action.get("buttons", []):
                if button["reply"]["id"].rpartition("|")[2] == button_id:
                    return {"type": "button_reply", "button_reply": dict(button["reply"])}
        else:
            for section in action.get("sections", []):
                for row in section["rows"]:
                    if row["id"].rpartition("|")[2] == button_id:
                        return {"type": "list_reply",
                                "list_reply": {"id": row["id"], "title": row["title"]}}
        raise BenchError(f"WhatsApp: no button {button_id!r} on screen")


def delivery(wa_id: str, message: dict[str, Any]) -> bytes:
    """A webhook POST body as Meta sends it: one message from one phone."""
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "31612345678", "phone_number_id": PHONE_NUMBER_ID},
             "contacts": [{"profile": {"name": "Client"}, "wa_id": wa_id}],
             "messages": [{"from": wa_id, "id": f"wamid.in-{next(WAMIDS)}",
                           "timestamp": "1795339800", **message}]}
    return json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": "WABA-1", "changes": [{"value": value,
                                                               "field": "messages"}]}]}).encode()


def message_of(stub: WaStub, wa_id: str, step: Step) -> dict[str, Any]:
    if step.kind == "press":
        return {"type": "interactive", "interactive": stub.press(wa_id, step.value)}
    return {"type": "text", "text": {"body": step.value}}


def key_of_message(wa_id: str, message: dict[str, Any]) -> Key:
    language = language_of(wa_id)
    if message.get("type") == "interactive":
        interactive = message["interactive"]
        reply = interactive.get(interactive.get("type"), {})
        return (language, "press", str(reply.get("id", "")).rpartition("|")[2])
    body = str((message.get("text") or {}).get("body", ""))
    return (language, "command" if body.startswith("/") else "say", body)


# --- the two webhooks -----------------------------------------------------------------------------


async def start_whatsapp_bot(stub: WaStub, data_dir: Path, secret: SecretStr,
                             database_url: str | None = None) -> tuple[Running, str, Any]:
    """The real `run_whatsapp` on its own port; (running, webhook url, the channel)."""
    from bot.channels.whatsapp import run_whatsapp
    from bot.root.app import build_app
    from bot.root.settings import Settings

    port = free_port()
    settings = Settings(
        data_dir=data_dir, mail_from="bench@klachtwijzer.test", database_url=database_url,
        secret_key=secret, whatsapp_token=SecretStr(TOKEN),
        whatsapp_phone_number_id=PHONE_NUMBER_ID, whatsapp_app_secret=SecretStr(APP_SECRET),
        whatsapp_verify_token=SecretStr(VERIFY_TOKEN), whatsapp_api_base=stub.base,
        whatsapp_listen_host="127.0.0.1", whatsapp_listen_port=port,
    )
    app = await build_app(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(run_whatsapp(app, stop))
    url = f"http://127.0.0.1:{port}/webhook"
    await _until_listening(url, task)

    async def stopper() -> None:
        stop.set()
        try:
            await asyncio.wait_for(task, 30)
        finally:
            await app.close()

    return Running(stopper), url, app.channels.get("whatsapp")


async def _until_listening(url: str, task: asyncio.Task[Any] | None = None) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(1000):
            if task is not None and task.done():
                task.result()
                raise BenchError("the WhatsApp webhook stopped at once")
            try:
                async with session.get(url, params={
                        "hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                        "hub.challenge": "1"}):
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.01)
    raise BenchError("the WhatsApp webhook did not start")


async def start_whatsapp_echo(stub: WaStub, shapes: WaShapes,
                              durable: Path | None = None) -> tuple[Running, str]:
    """The minimal webhook echo: signature, JSON, 200 at once; then per chat, in order, the
    recorded Graph API calls for this message and the read receipt.

    With `durable` (a new SQLite file) it is the floor of any bot that keeps a conversation: before
    answering, one durable transaction per message (`bench.raw.durable_step`: the update id
    recorded once, the chat's row rewritten with a ~1 KB blob, WAL, synchronous=FULL), and
    nothing else of Klachtwijzer."""
    store = await DurableStore.open(durable) if durable is not None else None
    session = aiohttp.ClientSession()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    graph_url = f"{stub.base}/{PHONE_NUMBER_ID}/messages"
    secret = APP_SECRET.encode()
    chains: dict[str, asyncio.Future[None]] = {}  # per chat: the previous message's work
    tasks: set[asyncio.Task[None]] = set()

    async def answer(wa_id: str, message: dict[str, Any],
                     before: asyncio.Future[None] | None) -> None:
        if before is not None:
            await asyncio.gather(before, return_exceptions=True)
        if store is not None:
            await store.step(wa_id, str(message["id"]))
        for payload in shapes[key_of_message(wa_id, message)]:
            async with session.post(graph_url, json={**payload, "to": wa_id},
                                    headers=headers) as response:
                await response.read()
        async with session.post(graph_url, headers=headers, json={
                "messaging_product": "whatsapp", "status": "read",
                "message_id": message["id"]}) as response:
            await response.read()

    async def webhook(request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(),
                                   request.headers.get("X-Hub-Signature-256", "").encode()):
            return web.Response(status=403)
        payload = json.loads(body)
        for entry in payload.get("entry", []):
            for change in entry.get("changes", []):
                for message in change.get("value", {}).get("messages", []):
                    wa_id = str(message["from"])
                    task = asyncio.ensure_future(answer(wa_id, message, chains.get(wa_id)))
                    chains[wa_id] = task
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        return web.Response(text="ok")

    async def verify(request: web.Request) -> web.Response:
        return web.Response(status=403)

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/webhook", verify)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}/webhook"
    await _until_listening(url)

    async def stopper() -> None:
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()
        await session.close()
        if store is not None:
            await store.close()

    return Running(stopper), url


# --- recording and load ---------------------------------------------------------------------------


async def record_shapes(scripts: Iterable[Script], data_dir: Path, secret: SecretStr) -> WaShapes:
    """The bot's Graph API messages per inbound message, per language (the second time round the
    repeating part), one phone at a time."""
    stub = WaStub()
    await stub.start()
    shapes: WaShapes = {}
    try:
        running, url, channel = await start_whatsapp_bot(stub, data_dir, secret)
        try:
            async with aiohttp.ClientSession() as session:
                for script in scripts:
                    wa_id = wa_id_for(script.language, 99_999_999)
                    steps = [*script.opening, *script.cycle, *script.cycle]
                    for index, step in enumerate(steps):
                        stub.recording = []
                        message = message_of(stub, wa_id, step)
                        await _post(session, url, delivery(wa_id, message))
                        await asyncio.sleep(0)
                        await channel.idle()
                        sent = tuple({k: v for k, v in p.items() if k != "to"}
                                     for p in stub.recording)
                        if index < len(script.opening) or index >= len(script.opening) + len(
                                script.cycle):
                            shapes[key_of_message(wa_id, message)] = sent
                    stub.recording = None
        finally:
            await running.stop()
    finally:
        await stub.stop()
    return shapes


async def _post(session: aiohttp.ClientSession, url: str, body: bytes) -> None:
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)}
    async with session.post(url, data=body, headers=headers) as response:
        if response.status != 200:
            raise BenchError(f"the webhook answered {response.status}")


async def run_whatsapp_load(kind: str, scripts: list[Script], shapes: WaShapes, *, chats: int,
                            messages: int, spread: bool, data_dir: Path, secret: SecretStr,
                            think: float = 0.0, database_url: str | None = None,
                            chat_offset: int = 0) -> LoadResult:
    """`chats` phones against the bot ("bot") or the echo ("echo"); messages/s and latencies
    (from the POST until the last reply reached the Graph stand-in)."""
    stub = WaStub()
    await stub.start()
    try:
        if kind == "bot":
            running, url, _ = await start_whatsapp_bot(stub, data_dir, secret, database_url)
        elif kind == "durable_echo":
            running, url = await start_whatsapp_echo(stub, shapes, data_dir / "floor.sqlite3")
        else:
            running, url = await start_whatsapp_echo(stub, shapes)
        try:
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as session:
                budget = _Budget(total=messages)
                latencies: list[float] = []
                ready = asyncio.Barrier(chats)
                async with asyncio.TaskGroup() as group:
                    for i in range(chats):
                        script = scripts[i % len(scripts)]
                        group.create_task(_phone(
                            stub, session, url, shapes, script,
                            wa_id_for(script.language, chat_offset + i),
                            warmup_steps(script, i, spread), ready, budget, latencies, think))
        finally:
            await running.stop()
    finally:
        await stub.stop()
    seconds = budget.window_end - budget.window_start
    result_kind: Kind = kind if kind in ("bot", "durable_echo") else "echo"  # type: ignore[assignment]
    return LoadResult(result_kind, "whatsapp", chats, messages, seconds,
                      latencies, dict(stub.counts))


async def _phone(stub: WaStub, session: aiohttp.ClientSession, url: str, shapes: WaShapes,
                 script: Script, wa_id: str, warmup: int, ready: asyncio.Barrier,
                 budget: _Budget, latencies: list[float], think: float) -> None:
    pause = random.Random(wa_id)  # noqa: S311 - think times, not secrets
    for number, step in enumerate(script.steps()):
        measured = number >= warmup
        if number == warmup:
            await ready.wait()
            budget.window_start = budget.window_start or time.perf_counter()
        if measured and not budget.take():
            return
        if measured and think > 0:
            await asyncio.sleep(pause.expovariate(1 / think))
        message = message_of(stub, wa_id, step)
        replies = len(shapes[key_of_message(wa_id, message)])
        answered = stub.expect(wa_id, replies)
        pushed = time.perf_counter()
        await _post(session, url, delivery(wa_id, message))
        try:
            done = await asyncio.wait_for(answered, ANSWER_TIMEOUT)
        except TimeoutError:
            raise BenchError(f"WhatsApp: no reply within {ANSWER_TIMEOUT:.0f} s to {step.kind} "
                             f"{step.value[:20]!r}") from None
        if measured:
            latencies.append(done - pushed)
            budget.window_end = max(budget.window_end, done)
