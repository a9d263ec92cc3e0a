"""Issue 14: `run` says what runs; the terminal chat leaves cleanly on Ctrl-C and end of input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.bot.whatsapp_helpers import free_port

pytestmark = pytest.mark.slow


def env_for(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SMTP_", "KLACHTWIJZER_", "MAIL_", "DATABASE_", "TELEGRAM_", "WHATSAPP_"))}
    env["KLACHTWIJZER_DATA_DIR"] = str(tmp_path / "data")
    env["KLACHTWIJZER_SECRET_KEY"] = "uQmRa6lP0ZgmoA9Ldb0VWE6Hm0n8bOp3t1qIYv-VDxQ="
    return env




def wait_for(path: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_run_logs_each_part_and_warns_about_eml_only(tmp_path: Path) -> None:
    """On defaults `run` logs the data dir and the database, and WARNs that mail only goes to .eml."""
    env = env_for(tmp_path)
    port = free_port()
    env["WEB_LISTEN_PORT"] = str(port)  # the web chat is on by default (the suite turns it off)
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(tmp_path / "data" / "klachtwijzer.db")
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "WARNING bot.root.run: mail: no SMTP_HOST set" in err and ".eml files" in err
    assert "WARNING bot.root.run: no messenger channel configured" in err
    assert f"INFO bot.root.run: channel web: open http://127.0.0.1:{port}/chat in a browser" in err
    assert f"INFO bot.root.run: data dir: {(tmp_path / 'data').resolve()}" in err
    assert "INFO bot.root.run: database: SQLite, sqlite+aiosqlite:///" in err


def test_chat_ctrl_c_says_goodbye_without_traceback(tmp_path: Path) -> None:
    """SIGINT while the chat waits for input ends it with a goodbye line, no traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "bot", "chat", "--lang", "en"], env=env_for(tmp_path),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    wait_for(tmp_path / "data" / "klachtwijzer.db")
    time.sleep(3)  # the first message is written and the chat waits on stdin
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err
    assert proc.returncode == 0
    assert out.rstrip().endswith("Goodbye. Your conversation is kept: `klachtwijzer chat` continues it.")


def test_chat_end_of_input_says_goodbye(tmp_path: Path) -> None:
    """End of input (Ctrl-D) leaves with the goodbye line and exit code 0."""
    result = subprocess.run([sys.executable, "-m", "bot", "chat", "--lang", "en"], env=env_for(tmp_path),
                            input="", capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert result.stdout.rstrip().endswith("`klachtwijzer chat` continues it.")
