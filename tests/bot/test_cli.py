"""The `klachtwijzer` command: check-config says clearly what is wrong; keygen, diagram and run work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from bot.root.cli import cli
from storage import Cipher


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SMTP_", "KLACHTWIJZER_", "MAIL_", "DATABASE_"))}
    env.update(KLACHTWIJZER_DATA_DIR=str(tmp_path / "data"), **extra)
    return env


def test_check_config_defaults_ok(tmp_path: Path) -> None:
    """On embedded defaults the config is valid and names the leaflet's two mailboxes."""
    result = CliRunner().invoke(cli, ["check-config"], env=env_for(tmp_path))
    assert result.exit_code == 0, result.output
    assert "mailbox:      committee = klachtencommissie@regioverband.nl" in result.output
    assert "mail:         .eml files in" in result.output
    assert result.output.rstrip().endswith("ok")


def test_check_config_reports_bad_mailbox(tmp_path: Path) -> None:
    """An organisation config with a broken mailbox is refused with the key and the value."""
    config = tmp_path / "org.toml"
    config.write_text('name = "Test"\n[mailboxes]\ncommittee = "not an address"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["check-config"], env=env_for(tmp_path, KLACHTWIJZER_CONFIG=str(config)))
    assert result.exit_code == 1
    assert "mailbox 'committee' is not an e-mail address: 'not an address'" in result.output


def test_check_config_reports_bad_key_and_port(tmp_path: Path) -> None:
    """A malformed secret key or SMTP port is refused without echoing the secret."""
    env = env_for(tmp_path, KLACHTWIJZER_SECRET_KEY="hunter2")
    result = CliRunner().invoke(cli, ["check-config"], env=env)
    assert result.exit_code == 1
    assert "KLACHTWIJZER_SECRET_KEY is not a valid key" in result.output
    assert "hunter2" not in result.output
    result = CliRunner().invoke(cli, ["check-config"], env=env_for(tmp_path, SMTP_PORT="seventy"))
    assert result.exit_code == 1
    assert "smtp_port" in result.output.lower() or "SMTP_PORT" in result.output


def test_keygen_prints_a_usable_key(tmp_path: Path) -> None:
    """`keygen` prints a key that the storage cipher accepts."""
    result = CliRunner().invoke(cli, ["keygen"], env=env_for(tmp_path))
    key = result.output.strip()
    assert Cipher([key]).decrypt(Cipher([key]).encrypt(b"x")) == b"x"


def test_diagram_is_mermaid(tmp_path: Path) -> None:
    """`diagram` draws the organisation's procedure as a Mermaid flowchart; `--format states`
    gives every state of the machine."""
    result = CliRunner().invoke(cli, ["diagram"], env=env_for(tmp_path))
    assert result.output.startswith("flowchart")
    states = CliRunner().invoke(cli, ["diagram", "--format", "states"], env=env_for(tmp_path))
    assert states.output.startswith("stateDiagram-v2\n    [*] --> language\n")


def test_run_starts_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`klachtwijzer run` starts on embedded defaults and stops cleanly on SIGTERM."""
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env_for(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "data" / "klachtwijzer.db").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "generated a development key" in err


def test_check_config_reports_half_configured_channels(tmp_path: Path) -> None:
    """Webhook mode without URL and secret, or WhatsApp with one credential, is refused by name."""
    env = env_for(tmp_path, TELEGRAM_BOT_TOKEN="1:x", TELEGRAM_MODE="webhook", WHATSAPP_TOKEN="t")
    result = CliRunner().invoke(cli, ["check-config"], env=env)
    assert result.exit_code == 1
    assert "TELEGRAM_MODE=webhook needs TELEGRAM_WEBHOOK_URL" in result.output
    assert ("WhatsApp is half configured: also set WHATSAPP_PHONE_NUMBER_ID, WHATSAPP_APP_SECRET, "
            "WHATSAPP_VERIFY_TOKEN") in result.output
