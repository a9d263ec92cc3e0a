"""The speed bench (bench/) runs end to end in its quick mode and reports every figure.

No timing is asserted: the figures are for the README; these tests only prove that the bench still
measures the current code through its public entry points and says what it measured.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ON_POSTGRES, POSTGRES_ADMIN_URL

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = ("r2_ptb", "r2_aiogram", "r1", "p99_ms_64", "flatness")
FIGURES = (*REQUIRED, "p50_ms_1", "p99_ms_1", "p50_ms_8", "p99_ms_8", "p50_ms_64",
           "msgs_per_s_ptb_bot", "msgs_per_s_ptb_echo", "msgs_per_s_aiogram_bot",
           "msgs_per_s_aiogram_echo", "tx_per_s_raw_sqlite", "rss_mb_10k", "r2_answering_ptb",
           "r2_answering_aiogram", "msgs_per_s_ptb_echo_answering",
           "msgs_per_s_aiogram_echo_answering", "msgs_per_s_web_bot", "msgs_per_s_web_echo",
           "r2_web", "p99_ms_web", "r2m_ptb", "r2m_aiogram", "msgs_per_s_ptb_mirror",
           "msgs_per_s_aiogram_mirror", "r2_whatsapp", "msgs_per_s_whatsapp_bot",
           "msgs_per_s_whatsapp_echo", "p99_ms_64_paced", "msgs_per_s_whatsapp_durable_echo",
           "floor_whatsapp", "r2_whatsapp_durable", "msgs_per_s_web_durable_echo", "floor_web",
           "r2_web_durable", "p99_ms_web_paced")
POSTGRES_FIGURES = ("r2_ptb", "r2_aiogram", "msgs_per_s_ptb_bot", "msgs_per_s_aiogram_bot",
                    "p99_ms_64")
SCALE_FIGURES = ("scale_2_over_1", "msgs_per_s_1_process", "msgs_per_s_2_processes")

pytestmark = [pytest.mark.slow]


class QuickRun:
    def __init__(self, result: dict[str, Any], table: str, data_dir: Path) -> None:
        self.result = result
        self.table = table
        self.data_dir = data_dir


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> QuickRun:
    data_dir = tmp_path_factory.mktemp("bench")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_URL", "KLACHTWIJZER_", "TELEGRAM_"))}
    command = [sys.executable, "-m", "bench", "--quick", "--json", "--data-dir", str(data_dir)]
    if ON_POSTGRES:  # the suite's PostgreSQL pass: the bench runs the bot there too
        command += ["--postgres", POSTGRES_ADMIN_URL]
    done = subprocess.run(
        command,
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=360, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    return QuickRun(json.loads(lines[-1]), "\n".join(lines[:-1]), data_dir)


def test_quick_bench_reports_every_figure_as_a_positive_number(quick_run: QuickRun) -> None:
    """`python -m bench --quick --json` ends with one JSON line whose figures are positive and finite."""
    bad = {key: quick_run.result.get(key) for key in FIGURES
           if not (isinstance(quick_run.result.get(key), int | float)
                   and math.isfinite(quick_run.result[key]) and quick_run.result[key] > 0)}
    assert bad == {}


def test_quick_bench_has_the_second_round_keys(quick_run: QuickRun) -> None:
    """The keys of issue 15 are there: scale_2_over_1 is a figure on PostgreSQL, else null."""
    keys = {key: key in quick_run.result for key in ("r2m_ptb", "r2m_aiogram", "r2_whatsapp",
                                                     "p99_ms_64_paced", "scale_2_over_1")}
    assert keys == dict.fromkeys(keys, True)
    assert (quick_run.result["scale_2_over_1"] is None) == (not ON_POSTGRES)


def test_quick_bench_names_the_machine_and_what_it_counted(quick_run: QuickRun) -> None:
    """The run names the machine, the counts and the conversation mix, and prints the table."""
    result = quick_run.result
    machine = {k: bool(result["machine"].get(k)) for k in ("cpu", "cores", "python", "sqlite", "disk")}
    assert machine == dict.fromkeys(("cpu", "cores", "python", "sqlite", "disk"), True)
    assert (result["plan"]["chats"], result["rss_conversations"], result["outbox_every"]) == (
        64, result["plan"]["memory_conversations"], 10)
    assert "| **R2** = bot / echo (goal ≥ 0.8) |" in quick_run.table


def test_quick_bench_leaves_nothing_in_its_data_dir(quick_run: QuickRun) -> None:
    """The databases the bench made (a million rows in a full run) are removed afterwards."""
    assert list(quick_run.data_dir.iterdir()) == []


@pytest.mark.skipif(not ON_POSTGRES, reason="needs KLACHTWIJZER_TEST_POSTGRES (the PostgreSQL pass)")
def test_quick_bench_runs_the_bot_on_postgresql_too(quick_run: QuickRun) -> None:
    """With --postgres the bench runs the bot on that server and reports its figures and version."""
    pg = quick_run.result["postgres"]
    bad = {key: pg.get(key) for key in POSTGRES_FIGURES
           if not (isinstance(pg.get(key), int | float) and math.isfinite(pg[key]) and pg[key] > 0)}
    assert bad == {}
    assert pg["server"].split(".")[0].isdigit()
    scale = quick_run.result["scale"]
    bad_scale = {key: scale.get(key) for key in SCALE_FIGURES
                 if not (isinstance(scale.get(key), int | float) and scale[key] > 0)}
    assert (bad_scale, scale["sticky_repeats"]) == ({}, 0)
    assert f"| Klachtwijzer on PostgreSQL {pg['server']}, messages/s |" in quick_run.table
