"""`python -m bench`: one run of every measurement, interleaved, median of the rounds; a table, and
with `--json` one JSON line (the last line of stdout). Progress goes to stderr."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench.fill import fill, prepare
from bench.load import Kind, Library, LoadResult, percentile, quiet, run_load
from bench.machine import machine, machine_line
from bench.mirror import Shapes, record_shapes, shape_summary
from bench.raw import raw_transactions
from bench.scale import fresh_database, measure_scale, postgres_version
from bench.script import LANGUAGES, Script, _key, calibrate
from bench.whatsapp import WaShapes, run_whatsapp_load
from bench.whatsapp import record_shapes as record_whatsapp

LIBRARIES: tuple[Library, ...] = ("ptb", "aiogram")
METHOD = (
    "How: the bot is this project's Telegram adapter (build_app + run_telegram, polling); per "
    "message it parses the update, loads the conversation, makes one state-machine step, commits, "
    "writes an outbox row when the step forwards a complaint, and replies (plus what the adapter "
    "always does: a typing action for text, answering and marking a pressed button). The echo bot "
    "is a minimal bot on the same library that answers every message and button with one "
    "sendMessage; the second echo bot also answers each button press with answerCallbackQuery "
    "(at the same time as its sendMessage), which Telegram asks of every bot. All poll the same "
    "in-process Bot API stand-in (tests/bot/telegram_stub.py; getUpdates batches of at most "
    "100, poll timeout 1 s) and get the same updates (the same texts, "
    "the same button messages and callback-data sizes) from the same number of simulated clients, "
    "pushed the same way; each client walks a complaint in its language (nl, uk, ar, en: language "
    "(with the welcome), the first question (route and category), the complaint form with five "
    "typed answers, Send on the summary (the consent), "
    "/restart) and sends its next update when its replies reached the stand-in; a message is done "
    "when its last reply reached the stand-in. The bot's pacing and flood limits are set out of "
    "the way (TelegramOptions). Echo and bot runs alternate (order flipped each round; one "
    "unmeasured run of each first), each on a "
    "fresh stand-in and a fresh database in the data dir (with --postgres: a fresh database on that "
    "server, for the PostgreSQL rows). R1's raw transactions (BEGIN IMMEDIATE, "
    "read the conversation, insert the update id, update the conversation with a 1 KB blob, an "
    "outbox row every N-th, COMMIT) use one connection and the app's pragmas (WAL, "
    "synchronous=FULL); N = <N>, as in the conversation. Flatness: the same bot on fresh chats, "
    "<C> at a time, against a database migrated by the app and filled with sqlite3 executemany "
    "(copies of one real mid-flow conversation with its encrypted blob, never read, and one "
    "inbound update id each). Memory: a fresh process drives the conversations through "
    "app.service.handle and reads VmRSS."
)


def method(plan: Plan, outbox_every: int) -> str:
    """How the figures were made, in a paragraph for the README."""
    return METHOD.replace("<N>", str(outbox_every)).replace("<C>", str(plan.flat_chats))


@dataclass(frozen=True)
class Plan:
    """How much of everything one run measures."""

    rounds: int
    chats: int  # concurrent conversations of the throughput runs (R2; latency at this many)
    messages: int  # measured messages per throughput run
    spread: bool  # warm up until the clients are spread over the conversation (else: /start)
    latency: tuple[tuple[int, int], ...]  # (chats, messages) for the other latencies
    latency_libraries: tuple[Library, ...]
    paced_think: float  # mean pause (s) of a client between a reply and its next message
    paced_messages: int
    raw_transactions: int
    flat_rows: tuple[int, int]
    flat_chats: int
    flat_messages: int
    memory_conversations: int
    scale_chats: int = 32  # 2 processes vs 1 on PostgreSQL: WhatsApp phones, messages each
    scale_steps: int = 30
    warm_up: bool = True  # one unmeasured run of each kind first (--quick: none, figures rough)
    scale_round_robin: bool = True  # also the 2-process run that spreads chats round-robin


FULL = Plan(rounds=3, chats=64, messages=512, spread=True, latency=((1, 104), (8, 160)),
            latency_libraries=("ptb", "aiogram"), paced_think=2.0, paced_messages=256,
            raw_transactions=2000, flat_rows=(1_000, 1_000_000), flat_chats=16,
            flat_messages=256, memory_conversations=10_000, scale_chats=64, scale_steps=40)
QUICK = Plan(rounds=1, chats=64, messages=96, spread=False, latency=((1, 13), (8, 32)),
             latency_libraries=("ptb",), paced_think=1.0, paced_messages=64,
             raw_transactions=300, flat_rows=(1_000, 10_000), flat_chats=8, flat_messages=32,
             memory_conversations=200, scale_chats=16, scale_steps=12, warm_up=False,
             scale_round_robin=False)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


class Bench:
    """The rounds: every measurement once per round, figures kept per round."""

    def __init__(self, plan: Plan, root: Path, secret: SecretStr,
                 echo_concurrent: bool | None, postgres: str | None = None) -> None:
        self.plan = plan
        self.postgres = postgres  # admin URL of a PostgreSQL server: the bot runs there too
        self.root = root
        self.secret = secret
        self.echo_concurrent = echo_concurrent
        self.scripts: list[Script] = []
        self._runs = 0
        self.rates: dict[str, list[float]] = {}
        self.ratios: dict[str, list[float]] = {}
        # library -> "1", "8", "64", "64_paced" -> [(p50 s, p99 s) per round]
        self.latency: dict[str, dict[str, list[tuple[float, float]]]] = {}
        self.shapes: dict[str, Shapes] = {}  # library -> the bot's recorded calls (the mirror's)
        self.wa_shapes: WaShapes = {}  # the WhatsApp bot's Graph API calls (the webhook echo's)

    async def load(self, kind: Kind, library: Library, chats: int, messages: int, *,
                   data_dir: Path | None = None, think: float = 0.0,
                   on_postgres: bool = False) -> LoadResult:
        """One run on a fresh stand-in: a fresh database (SQLite in a new directory, or a new
        PostgreSQL database with `on_postgres`) unless `data_dir` is given."""
        self._runs += 1
        directory = data_dir or self.root / f"run-{self._runs}"
        directory.mkdir(parents=True, exist_ok=True)
        try:
            async with fresh_database(self.postgres if on_postgres else None,
                                      f"kw_bench_{self._runs}") as database_url:
                result = await run_load(kind, library, self.scripts, chats=chats,
                                        messages=messages, spread=self.plan.spread,
                                        data_dir=directory, secret=self.secret,
                                        echo_concurrent=self.echo_concurrent,
                                        chat_offset=10_000 * self._runs, think=think,
                                        database_url=database_url,
                                        shapes=self.shapes.get(library))
        finally:
            if data_dir is None:
                shutil.rmtree(directory, ignore_errors=True)
        paced = f", pausing ~{think:g} s" if think else ""
        where = ", PostgreSQL" if on_postgres else ""
        say(f"  {library:8} {kind:14} {chats:3} chats{paced}{where}: {result.rate:7.1f} msg/s, "
            f"p50 {1000 * percentile(result.latencies, 50):7.1f} ms, "
            f"p99 {1000 * percentile(result.latencies, 99):7.1f} ms ({result.messages} messages)")
        return result

    async def wa_load(self, kind: str, chats: int, messages: int, *, think: float = 0.0,
                      on_postgres: bool = False) -> LoadResult:
        """One WhatsApp run (bench/whatsapp.py) on a fresh Graph stand-in and database."""
        self._runs += 1
        directory = self.root / f"run-{self._runs}"
        directory.mkdir(parents=True, exist_ok=True)
        try:
            async with fresh_database(self.postgres if on_postgres else None,
                                      f"kw_bench_{self._runs}") as database_url:
                result = await run_whatsapp_load(
                    kind, self.scripts, self.wa_shapes, chats=chats, messages=messages,
                    spread=self.plan.spread, data_dir=directory, secret=self.secret, think=think,
                    database_url=database_url, chat_offset=10_000 * self._runs)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        paced = f", pausing ~{think:g} s" if think else ""
        say(f"  whatsapp {kind:14} {chats:3} chats{paced}: {result.rate:7.1f} msg/s, "
            f"p50 {1000 * percentile(result.latencies, 50):7.1f} ms, "
            f"p99 {1000 * percentile(result.latencies, 99):7.1f} ms ({result.messages} messages)")
        return result

    async def whatsapp_round(self, number: int) -> None:
        """WhatsApp: the webhook echo and the bot in turn (order flipped each round), then the
        bot with conversations that pause like people."""
        p = self.plan
        kinds = ("echo", "durable_echo", "bot") if number % 2 else ("bot", "durable_echo", "echo")
        results = {kind: await self.wa_load(kind, p.chats, p.messages) for kind in kinds}
        for kind, result in results.items():
            self.rates.setdefault(f"whatsapp_{kind}", []).append(result.rate)
        self.ratios.setdefault("r2_whatsapp", []).append(
            results["bot"].rate / results["echo"].rate)
        # The floor (bench/floor.py): what one durable transaction per message costs the echo,
        # and the bot against that echo (what Klachtwijzer costs above the floor).
        self.ratios.setdefault("floor_whatsapp", []).append(
            results["durable_echo"].rate / results["echo"].rate)
        self.ratios.setdefault("r2_whatsapp_durable", []).append(
            results["bot"].rate / results["durable_echo"].rate)
        self._note_latency("whatsapp", str(p.chats), results["bot"])
        self._note_latency("whatsapp", f"{p.chats}_paced", await self.wa_load(
            "bot", p.chats, p.paced_messages, think=p.paced_think))

    def _note_latency(self, library: str, label: str, result: LoadResult) -> None:
        per = self.latency.setdefault(library, {})
        per.setdefault(label, []).append(
            (percentile(result.latencies, 50), percentile(result.latencies, 99)))

    async def round(self, number: int, flat_dirs: tuple[Path, Path]) -> None:
        p = self.plan
        say(f"round {number}/{p.rounds}")
        # R2: the echo bots and the bot in turn, the order flipped every round.
        for library in LIBRARIES:
            kinds: tuple[Kind, ...] = ("echo", "echo_answering", "mirror", "bot")
            order = kinds if number % 2 else kinds[::-1]
            results = {kind: await self.load(kind, library, p.chats, p.messages) for kind in order}
            if self.postgres:
                results["bot_pg"] = await self.load("bot", library, p.chats, p.messages,
                                                    on_postgres=True)
                self._note_latency(library, f"{p.chats}_pg", results["bot_pg"])
            for name, result in results.items():
                self.rates.setdefault(f"{library}_{name}", []).append(result.rate)
            self.ratios.setdefault(f"r2_{library}", []).append(
                results["bot"].rate / results["echo"].rate)
            self.ratios.setdefault(f"r2_answering_{library}", []).append(
                results["bot"].rate / results["echo_answering"].rate)
            self.ratios.setdefault(f"r2m_{library}", []).append(
                results["bot"].rate / results["mirror"].rate)
            if self.postgres:
                self.ratios.setdefault(f"r2_{library}_pg", []).append(
                    results["bot_pg"].rate / results["echo"].rate)
            self._note_latency(library, str(p.chats), results["bot"])
        # Latency with fewer conversations, and with 64 that pause like people do.
        for library in p.latency_libraries:
            for chats, messages in p.latency:
                self._note_latency(library, str(chats),
                                   await self.load("bot", library, chats, messages))
        for library in LIBRARIES:
            self._note_latency(library, f"{p.chats}_paced", await self.load(
                "bot", library, p.chats, p.paced_messages, think=p.paced_think))
            if self.postgres:
                self._note_latency(library, f"{p.chats}_paced_pg", await self.load(
                    "bot", library, p.chats, p.paced_messages, think=p.paced_think,
                    on_postgres=True))
        await self.whatsapp_round(number)
        # The web chat (issue 15, built on its own branch) joins here: a `webchat_round` with its
        # WebSocket path against a minimal aiohttp WebSocket echo, noting r2_webchat and its
        # latencies under "webchat" (the worst paced p99 below then covers it too).
        # R1: raw sqlite3 right after the bot runs of this round.
        raw = await asyncio.to_thread(raw_transactions, self.root / "raw-sqlite.db",
                                      p.raw_transactions,
                                      outbox_every=self.scripts[0].outbox_every)
        say(f"  raw sqlite3: {raw:8.1f} transactions/s ({p.raw_transactions} transactions)")
        self.rates.setdefault("raw_sqlite", []).append(raw)
        self.ratios.setdefault("r1", []).append(self.rates["ptb_bot"][-1] / raw)
        # Flatness: the same bot on fresh chats, small and large database in turn.
        per_message: dict[Path, float] = {}
        for directory in (flat_dirs if number % 2 else flat_dirs[::-1]):
            result = await self.load("bot", "ptb", p.flat_chats, p.flat_messages,
                                     data_dir=directory)
            per_message[directory] = result.seconds / result.messages
        small, large = per_message[flat_dirs[0]], per_message[flat_dirs[1]]
        self.rates.setdefault("flat_small_ms", []).append(1000 * small)
        self.rates.setdefault("flat_large_ms", []).append(1000 * large)
        self.ratios.setdefault("flatness", []).append(large / small)


async def fill_flat(plan: Plan, root: Path, secret: SecretStr) -> tuple[Path, Path]:
    dirs = []
    for rows in plan.flat_rows:
        directory = root / f"flat-{rows}"
        path = await prepare(directory, secret)
        total, seconds = await asyncio.to_thread(fill, path, rows)
        say(f"  filled {total:,} conversations in {seconds:.1f} s "
            f"({path.stat().st_size / 1e6:.0f} MB)")
        dirs.append(directory)
    return dirs[0], dirs[1]


async def memory(plan: Plan, root: Path) -> dict[str, float]:
    directory = root / "memory"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.memory", str(plan.memory_conversations), str(directory),
        stdout=subprocess.PIPE)
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError("the memory measurement failed")
    result: dict[str, float] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def measure(plan: Plan, root: Path, echo_concurrent: bool | None,
                  postgres: str | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    secret = _key()
    bench = Bench(plan, root, secret, echo_concurrent, postgres)
    say("calibrating the conversation through the service")
    bench.scripts = [await calibrate(lang) for lang in LANGUAGES]  # alembic: one at a time
    say(f"filling the flatness databases ({plan.flat_rows[0]:,} and {plan.flat_rows[1]:,} "
        "conversations)")
    flat_dirs = await fill_flat(plan, root, secret)
    say("recording the bot's Bot API calls per update (the mirror echo replays them)")
    for library in LIBRARIES:
        bench.shapes[library] = await record_shapes(bench.scripts, library,
                                                    root / f"record-{library}", secret)
        shutil.rmtree(root / f"record-{library}", ignore_errors=True)
    bench.wa_shapes = await record_whatsapp(bench.scripts, root / "record-whatsapp", secret)
    shutil.rmtree(root / "record-whatsapp", ignore_errors=True)
    # Each library builds parts of its models on first use: one unmeasured run of each kind first,
    # so that whichever runs first in round 1 does not pay for it.
    if plan.warm_up:
        say("warming up (not measured)")
        for library in LIBRARIES:
            for kind in ("echo", "echo_answering", "mirror", "bot"):
                await bench.load(kind, library, 8, 32)
        for wa_kind in ("echo", "bot"):
            await bench.wa_load(wa_kind, 8, 32)
    for number in range(1, plan.rounds + 1):
        await bench.round(number, flat_dirs)
    # Issue 13: the web chat's path, WebSocket clients against the real web chat and an echo.
    say(f"web chat: {plan.chats} WebSocket clients, the bot and a minimal aiohttp echo")
    from bench.web import measure_web

    web_figures = await measure_web(bench.scripts, secret, plan.chats, plan.messages,
                                    paced_messages=plan.paced_messages, think=plan.paced_think)
    scale: dict[str, Any] | None = None
    if postgres:
        say(f"2 processes vs 1 on PostgreSQL ({plan.scale_chats} WhatsApp phones, "
            f"{plan.scale_steps} messages each, through a proxy)")
        scale = await measure_scale(postgres, root, secret, bench.scripts, bench.wa_shapes,
                                    chats=plan.scale_chats, steps=plan.scale_steps,
                                    round_robin=plan.scale_round_robin, say=say)
    say(f"memory: {plan.memory_conversations:,} conversations in mid-flow, in a fresh process")
    rss = await memory(plan, root)
    say(f"  RSS {rss['rss_mb']:.1f} MB (before the conversations: {rss['rss_mb_before']:.1f} MB)")

    lat = {lib: {label: {"p50": 1000 * median([v[0] for v in values]),
                         "p99": 1000 * median([v[1] for v in values])}
                 for label, values in per.items()}
           for lib, per in bench.latency.items()}
    rates = {k: median(v) for k, v in bench.rates.items()}
    ratios = {k: median(v) for k, v in bench.ratios.items()}
    result: dict[str, Any] = {
        "r2_ptb": ratios["r2_ptb"],
        "r2_aiogram": ratios["r2_aiogram"],
        "r1": ratios["r1"],
        "p99_ms_64": lat["ptb"][str(plan.chats)]["p99"],
        "flatness": ratios["flatness"],
    }
    for label, figures in lat["ptb"].items():
        result[f"p50_ms_{label}"] = figures["p50"]
        result[f"p99_ms_{label}"] = figures["p99"]
    result.update({
        "r2_answering_ptb": ratios["r2_answering_ptb"],
        "r2_answering_aiogram": ratios["r2_answering_aiogram"],
        "r2m_ptb": ratios["r2m_ptb"],
        "r2m_aiogram": ratios["r2m_aiogram"],
        "msgs_per_s_ptb_mirror": rates["ptb_mirror"],
        "msgs_per_s_aiogram_mirror": rates["aiogram_mirror"],
        "bot_api_calls_per_update": shape_summary(bench.shapes["ptb"]),
        "r2_whatsapp": ratios["r2_whatsapp"],
        "msgs_per_s_whatsapp_bot": rates["whatsapp_bot"],
        "msgs_per_s_whatsapp_echo": rates["whatsapp_echo"],
        "msgs_per_s_whatsapp_durable_echo": rates["whatsapp_durable_echo"],
        "floor_whatsapp": ratios["floor_whatsapp"],
        "r2_whatsapp_durable": ratios["r2_whatsapp_durable"],
        # The worst channel's p99 with 64 conversations that pause like people (goal ≤ 50 ms).
        # 2 processes vs 1 on PostgreSQL (bench/scale.py); None without --postgres.
        "scale_2_over_1": scale["scale_2_over_1"] if scale else None,
        "p99_ms_64_paced": max([per[f"{plan.chats}_paced"]["p99"] for per in lat.values()
                                if f"{plan.chats}_paced" in per]
                               + [web_figures.get("p99_ms_web_paced", 0.0)]),
        "msgs_per_s_ptb_echo_answering": rates["ptb_echo_answering"],
        "msgs_per_s_aiogram_echo_answering": rates["aiogram_echo_answering"],
        "paced_think_s": plan.paced_think,
        "r1_aiogram": rates["aiogram_bot"] / rates["raw_sqlite"],
        "msgs_per_s_ptb_bot": rates["ptb_bot"],
        "msgs_per_s_ptb_echo": rates["ptb_echo"],
        "msgs_per_s_aiogram_bot": rates["aiogram_bot"],
        "msgs_per_s_aiogram_echo": rates["aiogram_echo"],
        "tx_per_s_raw_sqlite": rates["raw_sqlite"],
        "latency_ms": lat,
        "flatness_rows": list(plan.flat_rows),
        "flatness_ms_per_msg": [rates["flat_small_ms"], rates["flat_large_ms"]],
        **web_figures,
        "rss_mb_10k": rss["rss_mb"],
        "rss_mb_before": rss["rss_mb_before"],
        "rss_conversations": rss["conversations"],
        "outbox_every": bench.scripts[0].outbox_every,
        "echo": {None: "library default", True: "concurrent", False: "sequential"}[echo_concurrent],
        "rounds": plan.rounds,
        "plan": asdict(plan),
        "machine": machine(root),
        "seconds": time.perf_counter() - started,
    })
    if postgres:
        result["postgres"] = {
            "r2_ptb": ratios["r2_ptb_pg"], "r2_aiogram": ratios["r2_aiogram_pg"],
            "msgs_per_s_ptb_bot": rates["ptb_bot_pg"],
            "msgs_per_s_aiogram_bot": rates["aiogram_bot_pg"],
            "p99_ms_64": lat["ptb"][f"{plan.chats}_pg"]["p99"],
            "server": await postgres_version(postgres),
        }
    if scale:
        latencies = scale.pop("latencies_2")
        result["scale"] = {**scale, "p50_ms": 1000 * percentile(latencies, 50),
                           "p99_ms": 1000 * percentile(latencies, 99)}
    return result


def table(result: dict[str, Any], plan: Plan, quick: bool) -> str:
    """The figures as a Markdown table (for the README), the machine line and the method."""
    lat = result["latency_ms"]
    spread = " that spreads the clients evenly over the conversation" if plan.spread else ""

    def latency_row(label: str, text: str) -> str:
        cells = []
        for library in LIBRARIES:
            v = lat.get(library, {}).get(label)
            cells.append(f"{v['p50']:.1f} / {v['p99']:.1f}" if v else "-")
        return f"| latency p50 / p99 ms, {text} | {cells[0]} | {cells[1]} |"

    small, large = result["flatness_rows"]
    ms_small, ms_large = result["flatness_ms_per_msg"]
    rows = [
        f"Klachtwijzer bench{' (quick: rough figures)' if quick else ''}: median of "
        f"{plan.rounds} round(s); {plan.chats} concurrent conversations, {plan.messages} measured "
        f"messages per throughput run after a warm-up{spread}; a complaint is forwarded every "
        f"{result['outbox_every']} messages",
        "",
        "| | python-telegram-bot | aiogram |",
        "|---|---:|---:|",
        f"| echo bot ({result['echo']}), messages/s | {result['msgs_per_s_ptb_echo']:.0f} | "
        f"{result['msgs_per_s_aiogram_echo']:.0f} |",
        f"| Klachtwijzer, messages/s | {result['msgs_per_s_ptb_bot']:.0f} | "
        f"{result['msgs_per_s_aiogram_bot']:.0f} |",
        f"| **R2** = bot / echo (goal ≥ 0.8) | **{result['r2_ptb']:.2f}** | "
        f"**{result['r2_aiogram']:.2f}** |",
        f"| echo bot that also answers button presses, messages/s | "
        f"{result['msgs_per_s_ptb_echo_answering']:.0f} | "
        f"{result['msgs_per_s_aiogram_echo_answering']:.0f} |",
        f"| R2 against that echo bot | {result['r2_answering_ptb']:.2f} | "
        f"{result['r2_answering_aiogram']:.2f} |",
        f"| mirror echo (the bot's own Bot API calls: {calls_line(result)}), messages/s | "
        f"{result['msgs_per_s_ptb_mirror']:.0f} | {result['msgs_per_s_aiogram_mirror']:.0f} |",
        f"| **R2m** = bot / mirror echo (goal ≥ 0.85) | **{result['r2m_ptb']:.2f}** | "
        f"**{result['r2m_aiogram']:.2f}** |",
        f"| **R1** = bot / raw sqlite3 ({result['tx_per_s_raw_sqlite']:.0f} transactions/s) | "
        f"**{result['r1']:.2f}** | {result['r1_aiogram']:.2f} |",
    ]
    for chats, _ in plan.latency:
        rows.append(latency_row(str(chats), f"{chats} conversation{'s' if chats > 1 else ''}, "
                                            "each sending as soon as it has its reply"))
    rows += [
        latency_row(str(plan.chats), f"{plan.chats} conversations, each sending as soon as it "
                                     "has its reply (goal p99 ≤ 50)"),
        latency_row(f"{plan.chats}_paced", f"{plan.chats} conversations, each pausing "
                                           f"~{plan.paced_think:g} s (random) before its next message"),
    ]
    pg = result.get("postgres")
    if pg:
        rows += [
            f"| Klachtwijzer on PostgreSQL {pg['server']}, messages/s | "
            f"{pg['msgs_per_s_ptb_bot']:.0f} | {pg['msgs_per_s_aiogram_bot']:.0f} |",
            f"| R2 on PostgreSQL = bot / echo | {pg['r2_ptb']:.2f} | {pg['r2_aiogram']:.2f} |",
            latency_row(f"{plan.chats}_pg", f"{plan.chats} conversations on PostgreSQL, each "
                                            "sending as soon as it has its reply"),
            latency_row(f"{plan.chats}_paced_pg", f"{plan.chats} conversations on PostgreSQL, "
                                                  f"each pausing ~{plan.paced_think:g} s"),
        ]
    wa = lat.get("whatsapp", {})
    rows += [
        f"| WhatsApp: webhook echo (the bot's own Graph API calls) / Klachtwijzer, messages/s | "
        f"{result['msgs_per_s_whatsapp_echo']:.0f} / {result['msgs_per_s_whatsapp_bot']:.0f} | |",
        f"| **R2 WhatsApp** = bot / webhook echo (goal ≥ 0.85) | **{result['r2_whatsapp']:.2f}** | |",
        f"| Floor: the echo with one durable SQLite transaction per message (bench/floor.py), "
        f"messages/s; durable echo / echo | {result['msgs_per_s_whatsapp_durable_echo']:.0f}; "
        f"{result['floor_whatsapp']:.2f} | |",
        f"| R2 WhatsApp above the floor = bot / durable echo | "
        f"{result['r2_whatsapp_durable']:.2f} | |",
        f"| WhatsApp latency p50 / p99 ms, {plan.chats} conversations, each sending as soon as it "
        f"has its reply | {_cell(wa.get(str(plan.chats)))} | |",
        f"| WhatsApp latency p50 / p99 ms, {plan.chats} conversations, each pausing "
        f"~{plan.paced_think:g} s | {_cell(wa.get(f'{plan.chats}_paced'))} | |",
        f"| **p99 ms, {plan.chats} paced conversations, worst channel** (goal ≤ 50) | "
        f"**{result['p99_ms_64_paced']:.1f}** | |",
    ]
    sc = result.get("scale")
    if sc:
        rows += [
            f"| **2 processes vs 1 on PostgreSQL** (`klachtwijzer run` ×2 behind a proxy, "
            f"{sc['chats']} WhatsApp phones, each chat to one process): "
            f"{sc['msgs_per_s_1_process']:.0f} vs {sc['msgs_per_s_2_processes']:.0f} messages/s | "
            f"**{result['scale_2_over_1']:.2f}** | |",
        ]
        if sc["round_robin_repeats"] is not None:
            rows.append(f"| the same chats round-robin over both processes: replies repeated / "
                        f"phones confused | {sc['round_robin_repeats']} / "
                        f"{sc['round_robin_confused']} | |")
    rows += [
        f"| web chat (issue 13), {plan.chats} WebSocket clients: messages/s, bot vs a minimal "
        f"aiohttp echo | {result['msgs_per_s_web_bot']:.0f} vs {result['msgs_per_s_web_echo']:.0f}"
        f" = {result['r2_web']:.2f} | |",
        f"| web chat latency per message, p50 / p99 ms | {result['p50_ms_web']:.0f} / "
        f"{result['p99_ms_web']:.0f} | |",
        f"| web chat floor: the echo with one durable SQLite transaction per message, "
        f"messages/s; durable echo / echo; bot / durable echo | "
        f"{result['msgs_per_s_web_durable_echo']:.0f}; {result['floor_web']:.2f}; "
        f"{result['r2_web_durable']:.2f} | |",
        f"| web chat latency p50 / p99 ms, {plan.chats} clients each pausing "
        f"~{plan.paced_think:g} s | {result['p50_ms_web_paced']:.0f} / "
        f"{result['p99_ms_web_paced']:.0f} | |",
    ]
    rows += [
        f"| **flatness**: ms per message with {small:,} vs {large:,} stored conversations "
        f"(goal ≤ 1.2) | {ms_small:.1f} vs {ms_large:.1f} = **{result['flatness']:.2f}** | |",
        f"| memory: RSS with {result['rss_conversations']:,} conversations in mid-flow | "
        f"{result['rss_mb_10k']:.0f} MB (before them: {result['rss_mb_before']:.0f} MB) | |",
        "",
        f"Machine: {machine_line(result['machine'])}. Whole run: {result['seconds']:.0f} s.",
        "",
        method(plan, result["outbox_every"]),
    ]
    return "\n".join(rows)


def _cell(v: dict[str, float] | None) -> str:
    return f"{v['p50']:.1f} / {v['p99']:.1f}" if v else "-"


def calls_line(result: dict[str, Any]) -> str:
    """"2.08 calls per update: 1.25 sendMessage, ..." from the recorded shapes."""
    calls = result.get("bot_api_calls_per_update", {})
    total = sum(calls.values())
    return f"{total:.2f} per update: " + ", ".join(f"{n:.2f} {m}" for m, n in calls.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="a small run of every measurement (seconds; figures are rough)")
    parser.add_argument("--json", action="store_true", help="also print one JSON line at the end")
    parser.add_argument("--rounds", type=int, help="rounds (default 3, quick 1)")
    parser.add_argument("--messages", type=int, help="measured messages per throughput run")
    parser.add_argument("--echo", choices=("default", "sequential", "concurrent"),
                        default="default",
                        help="how the echo bots take updates (default: each library's default)")
    parser.add_argument("--data-dir", type=Path,
                        help="where the databases go (default: a new dir under ./data, removed "
                             "afterwards); put it on the disk production uses")
    parser.add_argument("--postgres", metavar="ADMIN_URL",
                        help="also run the bot on PostgreSQL: a server's admin URL "
                             "(postgresql+asyncpg://user@host:port/postgres; each run gets a new "
                             "database). A throw-away server: --postgres \"$(bash .ci/postgres)\"")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.rounds:
        plan = Plan(**{**asdict(plan), "rounds": args.rounds})
    if args.messages:
        plan = Plan(**{**asdict(plan), "messages": args.messages})
    quiet()
    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="bench-", dir=args.data_dir))
    else:
        made = not Path("data").exists()
        Path("data").mkdir(exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="bench-", dir="data"))
    try:
        echo = {"default": None, "sequential": False, "concurrent": True}[args.echo]
        result = asyncio.run(measure(plan, root, echo, args.postgres))
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if args.data_dir is None and made:
            with contextlib.suppress(OSError):
                Path("data").rmdir()  # only if empty
    print(table(result, plan, args.quick))
    if args.json:
        print(json.dumps(result, ensure_ascii=False, separators=(",", ":")))
    return 0
