"""`python -m bench.cpu`: CPU per message of the bot and of its mirror echo, on the same script.

Messages per second move with whatever else runs on the machine; the CPU time the process spends
per message hardly does. So this runs the bot and the mirror echo (bench/mirror.py) of one
library in turn, with the same clients and the same updates, and prints for each the process's
CPU microseconds per measured message (the bot, the stand-in and the clients all run in this one
process: the stand-in's and the clients' share is the same for both, so bot - mirror is what
Klachtwijzer adds per message). Median of `--runs` runs, after one unmeasured run of each.
`--only bot` skips the mirror (for a profiler: `py-spy record -- python -m bench.cpu --only bot`).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench.load import Kind, Library, quiet, run_load
from bench.mirror import record_shapes
from bench.script import LANGUAGES, _key, calibrate


async def measure(library: Library, chats: int, messages: int, runs: int,
                  kinds: tuple[Kind, ...], think: float) -> dict[str, list[float]]:
    """CPU µs per message of each kind, one figure per run."""
    secret = _key()
    scripts = [await calibrate(language) for language in LANGUAGES]
    root = Path(tempfile.mkdtemp(prefix="kw-bench-cpu-"))
    figures: dict[str, list[float]] = {kind: [] for kind in kinds}
    try:
        shapes = await record_shapes(scripts, library, root / "record", secret)
        for number in range(runs + 1):
            for kind in kinds if number % 2 else kinds[::-1]:
                directory = root / f"run-{number}-{kind}"
                directory.mkdir()
                result = await run_load(kind, library, scripts, chats=chats, messages=messages,
                                        spread=True, data_dir=directory, secret=secret,
                                        chat_offset=10_000 * (2 * number + len(kind)),
                                        think=think, shapes=shapes)
                shutil.rmtree(directory, ignore_errors=True)
                per = 1e6 * result.cpu_seconds / result.messages
                print(f"  {library} {kind:7} run {number}: {per:7.0f} CPU µs/message, "
                      f"{result.rate:6.1f} msg/s", file=sys.stderr, flush=True)
                if number:  # the first run of each is a warm-up
                    figures[kind].append(per)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", choices=("ptb", "aiogram"), default="ptb")
    parser.add_argument("--chats", type=int, default=64)
    parser.add_argument("--messages", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--think", type=float, default=0.0, help="mean pause between messages")
    parser.add_argument("--only", choices=("bot", "mirror"))
    args = parser.parse_args()
    quiet()
    kinds: tuple[Kind, ...] = (args.only,) if args.only else ("mirror", "bot")
    figures = asyncio.run(measure(args.library, args.chats, args.messages, args.runs, kinds,
                                  args.think))
    medians = {kind: statistics.median(values) for kind, values in figures.items()}
    line = ", ".join(f"{kind} {value:.0f}" for kind, value in medians.items())
    if len(medians) == 2:
        line += f"; bot - mirror {medians['bot'] - medians['mirror']:.0f}"
    print(f"{args.library}, {args.chats} chats, {args.messages} messages: CPU µs/message {line}")


if __name__ == "__main__":
    main()
