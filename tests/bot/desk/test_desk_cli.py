"""`klachtwijzer staff invite` prints a one-time link, and refuses bad input in one line."""

from __future__ import annotations

import os
import re
from pathlib import Path

from typer.testing import CliRunner

from bot.root.cli import cli


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SMTP_", "KLACHTWIJZER_", "MAIL_", "DATABASE_", "DESK_"))}
    env.update(KLACHTWIJZER_DATA_DIR=str(tmp_path / "data"), **extra)
    return env


def test_staff_invite_prints_a_link_and_refuses_bad_input(tmp_path: Path) -> None:
    """The link uses DESK_PUBLIC_URL; an unknown role or a bad address is one clear line, exit 1."""
    env = _env(tmp_path, DESK_PUBLIC_URL="https://desk.example.test/")
    done = CliRunner().invoke(cli, ["staff", "invite", "Secretaris@Desk.Test", "--role", "secretary"],
                              env=env)
    assert done.exit_code == 0, done.output
    assert re.fullmatch(r"https://desk\.example\.test/enrol/[\w-]{43}\n", done.stdout)
    role = CliRunner().invoke(cli, ["staff", "invite", "x@desk.test", "--role", "king"], env=env)
    assert role.exit_code == 1 and "error: Choose one of the roles." in role.output
    address = CliRunner().invoke(cli, ["staff", "invite", "not an address", "--role", "secretary"],
                                 env=env)
    assert address.exit_code == 1 and "error: This is not an e-mail address." in address.output
    assert "Traceback" not in role.output + address.output
