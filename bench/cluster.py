"""N `klachtwijzer run` processes on one PostgreSQL database, behind a round-robin proxy.

`Cluster` starts everything a deployment of several processes has, on loopback: the Bot API and
Graph API stand-ins, an SMTP server (aiosmtpd) for the outbox, a round-robin proxy (aiohttp) and N
real `python -m bot run` subprocesses sharing one database, one data dir and one secret key.
Telegram runs in webhook mode (aiogram by default, or python-telegram-bot: both answer after the
update was handled, so a delivery that got no 200 is delivered again, as Telegram does); every
process listens on its own ports and the proxy spreads the deliveries of the same chats over all
of them, one request here, the next there. A process that does not answer is skipped (its
delivery goes to the next one).

The clients are those of the bench: Telegram users walking the complaint (few enough updates per
chat to stay under the per-chat flood limit) and WhatsApp phones (bench/whatsapp.py). What each
client received is counted per chat at the stand-ins, so the harness can check that every reply
came exactly once; `Cluster.check` reads the database: every update handled once, nothing owed
left unsent, every mail of the outbox sent, each Message-ID received once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from bench.load import TOKEN, BenchError, BenchStub
from bench.script import Script, Step
from bench.whatsapp import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    WaShapes,
    WaStub,
    delivery,
    free_port,
    key_of_message,
    message_of,
    sign,
    wa_id_for,
)
from bench.whatsapp import TOKEN as WA_TOKEN
from tests.bot.telegram_stub import callback_update, message_update, user

ROOT = Path(__file__).resolve().parents[1]
HOOK_PATH = "/telegram-hook"
HOOK_SECRET = "bench-webhook-secret-0123456789"  # noqa: S105 - the stand-in's
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
DELIVERY_TRIES = 50  # a delivery that fails (no process answered 200) is tried again, as Meta and
RETRY_PAUSE = 0.1    # Telegram do; seconds between tries
TG_CHAT_BASE = 6_000_000
UPDATE_IDS = itertools.count(5_000_000)


class Proxy:
    """Round-robin over the processes' ports, per path: /telegram-hook and /webhook."""

    def __init__(self, sticky: bool = False) -> None:
        # sticky: each chat always to the same process (by its id), instead of round-robin
        self.sticky = sticky
        self.targets: dict[str, list[int]] = {HOOK_PATH: [], "/webhook": []}
        self.turn: Counter[str] = Counter()
        self.forwarded: Counter[int] = Counter()  # by target port
        self.port = free_port()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.Response:
        if self._session is None:
            return web.Response(status=503)
        path = request.path
        ports = self.targets.get(path, [])
        body = await request.read()
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("content-type", SECRET_HEADER.lower(), "x-hub-signature-256")}
        first = _chat_of(body) if self.sticky else self.turn[path]
        for attempt in range(len(ports)):
            port = ports[(first + attempt) % len(ports)]
            self.turn[path] += 1
            try:
                async with self._session.request(
                        request.method, f"http://127.0.0.1:{port}{path}", data=body,
                        headers=headers, params=request.query) as response:
                    answer = await response.read()
                    self.forwarded[port] += 1
                    return web.Response(status=response.status, body=answer)
            except (aiohttp.ClientError, TimeoutError):
                continue  # that process is down: the next one
        return web.Response(status=502, text="no process answered")


def _chat_of(body: bytes) -> int:
    """The chat a delivery belongs to (Telegram's chat id, WhatsApp's sender), for sticky routing."""
    try:
        data = json.loads(body)
        if "entry" in data:
            value = data["entry"][0]["changes"][0]["value"]
            return int(value["messages"][0]["from"])
        found = data.get("message") or (data.get("callback_query") or {}).get("message") or {}
        return int(found["chat"]["id"])
    except (ValueError, KeyError, IndexError, TypeError):
        return 0


@dataclass
class Process:
    index: int
    telegram_port: int
    whatsapp_port: int
    proc: asyncio.subprocess.Process | None = None
    log: Path | None = None


@dataclass
class Tally:
    """What the clients sent and got."""

    updates: int = 0  # Telegram updates delivered (200)
    wa_messages: int = 0  # WhatsApp messages delivered (200)
    latencies: list[float] = field(default_factory=list)
    stalled: int = 0  # clients that got no (complete) reply in time and stopped
    confused: int = 0  # clients whose screen did not show the button they were to press
    expected: Counter[str] = field(default_factory=Counter)  # chat -> replies it should get


class Cluster:
    """Stand-ins, proxy, SMTP and `processes` bot processes on the PostgreSQL `database_url`."""

    def __init__(self, processes: int, database_url: str, work_dir: Path, secret: SecretStr,
                 config: Path | None = None, sticky: bool = False,
                 telegram_library: str = "aiogram") -> None:
        self.database_url = database_url
        self.telegram_library = telegram_library
        self.work_dir = work_dir
        self.secret = secret
        self.config = config
        self.tg = BenchStub(TOKEN)
        self.wa = WaStub()
        self.proxy = Proxy(sticky)
        self.processes = [Process(i, free_port(), free_port()) for i in range(processes)]
        self.smtp: Any = None
        (work_dir / "data").mkdir(parents=True, exist_ok=True)
        self.mails: list[bytes] = []
        self.tg_sent: Counter[int] = Counter()  # chat -> sendMessage calls
        self.session: aiohttp.ClientSession | None = None

    # --- start and stop -------------------------------------------------------------------------

    async def start(self) -> None:
        from aiosmtpd.controller import Controller

        cluster = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                cluster.mails.append(bytes(envelope.content))
                return "250 OK"

        self.smtp = Controller(Handler(), hostname="127.0.0.1", port=free_port())
        self.smtp.start()
        await self.tg.start()
        await self.wa.start()
        await self.proxy.start()
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        await self._migrate()
        await asyncio.gather(*(self.start_process(p) for p in self.processes))

    async def _migrate(self) -> None:
        """The schema once, before the processes start (they would each migrate at start)."""
        from storage import Cipher, Database

        db = await Database.open(self.database_url, Cipher([self.secret.get_secret_value()]))
        await db.close()

    def env(self, p: Process) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DATABASE_URL", "KLACHTWIJZER_", "TELEGRAM_", "WHATSAPP_",
                                    "SMTP_"))}
        env.update({
            "DATABASE_URL": self.database_url, "KLACHTWIJZER_SECRET_KEY": self.secret.get_secret_value(),
            "KLACHTWIJZER_DATA_DIR": str(self.work_dir / "data"), "KLACHTWIJZER_LOG_LEVEL": "WARNING",
            "MAIL_FROM": "bot@klachtwijzer.test", "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp.port), "SMTP_TLS": "none",
            "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_LIBRARY": self.telegram_library,
            "TELEGRAM_API_BASE": self.tg.base, "TELEGRAM_MODE": "webhook",
            "TELEGRAM_WEBHOOK_URL": f"{self.proxy.base}{HOOK_PATH}",
            "TELEGRAM_WEBHOOK_SECRET": HOOK_SECRET, "TELEGRAM_LISTEN_HOST": "127.0.0.1",
            "TELEGRAM_LISTEN_PORT": str(p.telegram_port),
            "WHATSAPP_TOKEN": WA_TOKEN, "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "WHATSAPP_APP_SECRET": APP_SECRET, "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
            "WHATSAPP_API_BASE": self.wa.base, "WHATSAPP_LISTEN_HOST": "127.0.0.1",
            "WHATSAPP_LISTEN_PORT": str(p.whatsapp_port),
        })
        if self.config is not None:
            env["KLACHTWIJZER_CONFIG"] = str(self.config)
        return env

    async def start_process(self, p: Process) -> None:
        """`python -m bot run` for this process; returns when both its listeners answer."""
        p.log = self.work_dir / f"process-{p.index}.log"
        with p.log.open("ab") as log:
            p.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", cwd=ROOT, env=self.env(p),
                stdout=log, stderr=log)
        await self._listening(p)
        for path, port in ((HOOK_PATH, p.telegram_port), ("/webhook", p.whatsapp_port)):
            if port not in self.proxy.targets[path]:
                self.proxy.targets[path].append(port)

    async def _listening(self, p: Process) -> None:
        session = self._client()
        deadline = time.monotonic() + 60
        for port in (p.telegram_port, p.whatsapp_port):
            while True:
                if p.proc is not None and p.proc.returncode is not None:
                    raise BenchError(f"process {p.index} stopped at start: {self.log_tail(p)}")
                try:
                    async with session.get(f"http://127.0.0.1:{port}/"):
                        break
                except aiohttp.ClientError:
                    if time.monotonic() > deadline:
                        raise BenchError(f"process {p.index} did not listen") from None
                    await asyncio.sleep(0.05)

    def _client(self) -> aiohttp.ClientSession:
        if self.session is None:
            raise BenchError("the cluster was not started")
        return self.session

    def log_tail(self, p: Process) -> str:
        return p.log.read_text(errors="replace")[-2000:] if p.log and p.log.exists() else ""

    def kill(self, p: Process) -> None:
        """SIGKILL: no shutdown, no flush; what it held in memory is gone."""
        if p.proc is not None and p.proc.returncode is None:
            p.proc.send_signal(signal.SIGKILL)

    async def stop_process(self, p: Process) -> None:
        if p.proc is None:
            return
        if p.proc.returncode is None:
            p.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(p.proc.wait(), 40)
        except TimeoutError:
            p.proc.kill()
            await p.proc.wait()

    async def stop(self) -> None:
        await asyncio.gather(*(self.stop_process(p) for p in self.processes),
                             return_exceptions=True)
        if self.session is not None:
            await self.session.close()
        await self.proxy.stop()
        await self.wa.stop()
        await self.tg.stop()
        if self.smtp is not None:
            self.smtp.stop()

    # --- deliveries -----------------------------------------------------------------------------

    async def _deliver(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        """POST through the proxy until some process answers 200 (Telegram and Meta retry)."""
        session = self._client()
        for _ in range(DELIVERY_TRIES):
            try:
                async with session.post(f"{self.proxy.base}{path}", data=body,
                                             headers=headers) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(RETRY_PAUSE)
        raise BenchError(f"no process took a delivery to {path}")

    async def telegram_update(self, update: dict[str, Any]) -> None:
        await self._deliver(HOOK_PATH, json.dumps(update).encode(),
                            {"Content-Type": "application/json", SECRET_HEADER: HOOK_SECRET})

    async def whatsapp_message(self, body: bytes) -> None:
        await self._deliver("/webhook", body, {"Content-Type": "application/json",
                                               "X-Hub-Signature-256": sign(body)})

    # --- clients ----------------------------------------------------------------------------------

    async def telegram_client(self, script: Script, chat_id: int, steps: int, think: float,
                              tally: Tally, wait: float) -> None:
        """One Telegram user: `steps` updates, each after the replies to the one before."""
        sender = user(chat_id, script.language, "Client")
        for step in itertools.islice(script.steps(), steps):
            if think:
                await asyncio.sleep(think)
            update_id = next(UPDATE_IDS)
            if step.kind == "press":
                try:
                    sent, data = self.tg.keyboard_with(chat_id, step.value)
                except BenchError:
                    tally.confused += 1
                    return
                update = callback_update(update_id, sender, sent, data)
            else:
                update = message_update(update_id, sender, text=step.value)
            tally.expected[f"tg:{chat_id}"] += step.replies
            if not await self._exchange(self.tg.expect(chat_id, step.replies),
                                        self.telegram_update(update), tally, wait):
                return
            tally.updates += 1

    async def whatsapp_client(self, script: Script, shapes: WaShapes, index: int, steps: int,
                              think: float, tally: Tally, wait: float) -> None:
        """One WhatsApp phone: `steps` messages, each after the replies to the one before."""
        wa_id = wa_id_for(script.language, index)
        for step in itertools.islice(script.steps(), steps):
            if think:
                await asyncio.sleep(think)
            try:
                message = message_of(self.wa, wa_id, step)
            except BenchError:  # what it got was not what it waited for (counted below)
                tally.confused += 1
                return
            replies = len(shapes[key_of_message(wa_id, message)])
            tally.expected[f"wa:{wa_id}"] += replies
            if not await self._exchange(self.wa.expect(wa_id, replies),
                                        self.whatsapp_message(delivery(wa_id, message)),
                                        tally, wait):
                return
            tally.wa_messages += 1

    async def _exchange(self, answered: asyncio.Future[float], deliver: Any, tally: Tally,
                        wait: float) -> bool:
        pushed = time.perf_counter()
        await deliver
        try:
            done = await asyncio.wait_for(answered, wait)
        except TimeoutError:
            tally.stalled += 1
            return False
        tally.latencies.append(done - pushed)
        return True

    # --- what the database and the stand-ins say ----------------------------------------------

    async def check(self) -> dict[str, Any]:
        """Counts from the database and the stand-ins, after the processes were stopped."""
        import asyncpg

        conn = await asyncpg.connect(self.database_url.replace("postgresql+asyncpg://",
                                                               "postgresql://"))
        try:
            inbound = await conn.fetchval("SELECT count(*) FROM inbound_updates")
            unsent = await conn.fetchval("SELECT count(*) FROM owed_messages WHERE sent_at IS NULL")
            owed = await conn.fetchval("SELECT count(*) FROM owed_messages")
            mails = dict(await conn.fetch("SELECT status, count(*) FROM outbox GROUP BY status"))
            cases = await conn.fetchval("SELECT count(*) FROM cases")
        finally:
            await conn.close()
        ids = Counter(_message_id(raw) for raw in self.mails)
        return {"inbound_updates": inbound, "owed": owed, "owed_unsent": unsent,
                "outbox": mails, "cases": cases, "mails_received": len(self.mails),
                "mails_twice": sum(1 for n in ids.values() if n > 1)}


def _message_id(raw: bytes) -> str:
    for line in raw.split(b"\r\n" if b"\r\n" in raw else b"\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode(errors="replace")
    return ""


@contextlib.asynccontextmanager
async def cluster(processes: int, database_url: str, work_dir: Path, secret: SecretStr,
                  config: Path | None = None, sticky: bool = False,
                  telegram_library: str = "aiogram") -> AsyncIterator[Cluster]:
    running = Cluster(processes, database_url, work_dir, secret, config, sticky, telegram_library)
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


def received_per_chat(c: Cluster) -> Counter[str]:
    """Replies each chat got: Telegram sendMessage calls and WhatsApp messages, per chat."""
    return c.tg.per_chat + c.wa.per_chat


__all__ = ["Cluster", "Proxy", "Step", "Tally", "cluster", "received_per_chat"]
