"""`klachtwijzer run` serves the desk on its settings, and runs on when the desk's port is taken."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.bot.whatsapp_helpers import free_port


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SMTP_", "KLACHTWIJZER_", "MAIL_", "DATABASE_", "TELEGRAM_",
                                "WHATSAPP_", "DESK_"))}
    env.update(KLACHTWIJZER_DATA_DIR=str(tmp_path / "data"), **extra)
    return env




def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return err


@pytest.mark.slow
def test_run_serves_the_desk_on_loopback(tmp_path: Path) -> None:
    """With DESK_LISTEN_PORT set, `run` answers the login page there, with the CSP header."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=_env(tmp_path, DESK_LISTEN_PORT=str(port)))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as page:
                    assert page.status == 200
                    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
                    break
            except OSError:
                assert time.monotonic() < deadline, "the desk did not start"
                time.sleep(0.2)
    finally:
        err = _stop(proc)
    assert f"staff desk: listening on 127.0.0.1:{port}" in err


@pytest.mark.slow
def test_run_goes_on_when_the_desk_port_is_taken(tmp_path: Path) -> None:
    """A taken desk port is one clear error line; the bot itself keeps running and stops cleanly."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                env=_env(tmp_path, DESK_LISTEN_PORT=str(port)))
        deadline = time.monotonic() + 30
        while not (tmp_path / "data" / "klachtwijzer.db").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)
        assert proc.poll() is None, "the bot stopped"
        err = _stop(proc)
    assert f"desk: cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err
