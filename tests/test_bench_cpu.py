"""`python -m bench.cpu` measures the CPU per message of the bot and of its mirror echo."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow]


def test_cpu_per_message_of_the_bot_and_its_mirror_echo_is_reported() -> None:
    """A short run names a positive CPU figure for the mirror, the bot and their difference."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_URL", "KLACHTWIJZER_", "TELEGRAM_"))}
    done = subprocess.run(
        [sys.executable, "-m", "bench.cpu", "--library", "aiogram", "--chats", "4",
         "--messages", "16", "--runs", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    line = done.stdout.strip().splitlines()[-1]
    found = re.search(r"mirror (\d+), bot (\d+); bot - mirror (-?\d+)", line)
    assert found is not None, line
    assert int(found[1]) > 0 and int(found[2]) > 0
    assert abs(int(found[2]) - int(found[1]) - int(found[3])) <= 1  # each figure rounded
