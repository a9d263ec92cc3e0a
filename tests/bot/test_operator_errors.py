"""Issue 14: configuration and user errors are one line on stderr and exit code 1, never a traceback;
`check-config` really checks and reports every problem at once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SMTP_", "KLACHTWIJZER_", "MAIL_", "DATABASE_", "TELEGRAM_",
                                "WHATSAPP_"))}
    env["KLACHTWIJZER_DATA_DIR"] = str(tmp_path / "data")
    env.update(extra)
    return env


def klachtwijzer(tmp_path: Path, *args: str, code: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    """Run the real command in a fresh interpreter; `code` runs first (e.g. to hide a package)."""
    start = (f"{code}\nimport sys\nsys.argv = ['klachtwijzer', *{list(args)!r}]\n"
             "from bot.root.cli import main\nmain()")
    return subprocess.run([sys.executable, "-c", start], env=env_for(tmp_path, **env),
                          capture_output=True, text=True, timeout=60, check=False)


def closed_port() -> int:
    """A local port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unwritable_dir(tmp_path: Path) -> Path:
    """A data dir below a regular file: not creatable even for root."""
    blocker = tmp_path / "file.txt"
    blocker.write_text("x", encoding="utf-8")
    return blocker / "data"


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_check_config_names_a_nonsense_database_url(tmp_path: Path) -> None:
    """DATABASE_URL=nonsense is one line naming DATABASE_URL and the expected form, exit 1."""
    result = klachtwijzer(tmp_path, "check-config", DATABASE_URL="nonsense")
    lines = error_lines(result)
    assert result.returncode == 1
    assert len(lines) == 1
    assert "DATABASE_URL" in lines[0] and "postgresql+asyncpg://" in lines[0]


def test_check_config_unreachable_postgres_is_one_quick_line_without_password(tmp_path: Path) -> None:
    """A PostgreSQL on a closed port is one line within seconds, and the password is not shown."""
    url = f"postgresql+asyncpg://kw:hunter2@127.0.0.1:{closed_port()}/kw"
    started = time.monotonic()
    result = klachtwijzer(tmp_path, "check-config", DATABASE_URL=url)
    assert time.monotonic() - started < 20
    lines = error_lines(result)
    assert result.returncode == 1
    assert len(lines) == 1 and "cannot reach" in lines[0]
    assert "hunter2" not in result.stderr + result.stdout


def test_check_config_reports_every_problem_at_once(tmp_path: Path) -> None:
    """A bad setting, an unwritable data dir, a broken config and a missing library: four lines."""
    config = tmp_path / "org.toml"
    config.write_text("name = [unclosed\n", encoding="utf-8")
    result = klachtwijzer(
        tmp_path, "check-config", code="import sys; sys.modules['telegram'] = None",
        SMTP_PORT="seventy", KLACHTWIJZER_DATA_DIR=str(unwritable_dir(tmp_path)),
        KLACHTWIJZER_CONFIG=str(config), TELEGRAM_BOT_TOKEN="1:x",
    )
    lines = error_lines(result)
    assert result.returncode == 1
    assert len(lines) == 4, lines
    assert any("SMTP_PORT" in line for line in lines)
    assert any("KLACHTWIJZER_DATA_DIR" in line and "not a writable folder" in line for line in lines)
    assert any("KLACHTWIJZER_CONFIG" in line for line in lines)
    assert any("pip install 'klachtwijzer[ptb]'" in line for line in lines)
    assert "4 problems found" in result.stderr


def test_check_config_names_the_aiogram_extra(tmp_path: Path) -> None:
    """TELEGRAM_LIBRARY=aiogram without aiogram installed names the [aiogram] extra."""
    result = klachtwijzer(tmp_path, "check-config", code="import sys; sys.modules['aiogram'] = None",
                          TELEGRAM_BOT_TOKEN="1:x", TELEGRAM_LIBRARY="aiogram")
    assert result.returncode == 1
    assert "pip install 'klachtwijzer[aiogram]'" in " ".join(error_lines(result))


def test_check_config_healthy_output_stays_readable(tmp_path: Path) -> None:
    """On defaults: exit 0, the data dir and database are checked, the fallback address is shown."""
    result = klachtwijzer(tmp_path, "check-config", KLACHTWIJZER_FALLBACK_MAIL="coord@example.nl")
    assert result.returncode == 0, result.stderr
    assert "(writable)" in result.stdout and "(reachable)" in result.stdout
    assert "fallback:     coord@example.nl" in result.stdout
    assert result.stdout.rstrip().endswith("ok")


@pytest.fixture
def smtp_port() -> Iterator[int]:
    """A real SMTP server (aiosmtpd) in a thread."""
    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 OK"

    port = closed_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def test_check_config_smtp_greets_a_real_server(tmp_path: Path, smtp_port: int) -> None:
    """`--smtp` passes against a real SMTP server and fails in one line on a closed port."""
    ok = klachtwijzer(tmp_path, "check-config", "--smtp", SMTP_HOST="127.0.0.1",
                      SMTP_PORT=str(smtp_port), SMTP_TLS="none")
    assert ok.returncode == 0, ok.stderr
    assert "(greeted)" in ok.stdout
    bad = klachtwijzer(tmp_path, "check-config", "--smtp", SMTP_HOST="127.0.0.1",
                       SMTP_PORT=str(closed_port()), SMTP_TLS="none")
    lines = error_lines(bad)
    assert bad.returncode == 1 and len(lines) == 1 and "SMTP_HOST 127.0.0.1" in lines[0]


@pytest.mark.parametrize(("args", "env", "expected"), [
    (("case", "list"), {"DATABASE_URL": "nonsense"}, "DATABASE_URL"),
    (("case", "list"), {"DATABASE_URL": "postgresql+asyncpg://kw:pw@127.0.0.1:{port}/kw"}, "cannot reach"),
    (("case", "list"), {"KLACHTWIJZER_DATA_DIR": "{unwritable}"}, "KLACHTWIJZER_DATA_DIR"),
    (("case", "list"), {"SMTP_PORT": "seventy"}, "SMTP_PORT"),
    (("export", "-o", "{tmp}/missing/rows.csv"), {}, "does the folder exist?"),
    (("report", "--year", "2026", "--out", "{unwritable}"), {}, "Not a directory"),
    (("case", "show", "KW-2026-999999"), {}, "fout:"),
])
def test_no_traceback_for_configuration_or_user_errors(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    """Each configuration or user error is one line on stderr with exit code 1."""
    values = {"port": str(closed_port()), "unwritable": str(unwritable_dir(tmp_path)), "tmp": str(tmp_path)}
    result = klachtwijzer(tmp_path, *(a.format(**values) for a in args),
                          **{k: v.format(**values) for k, v in env.items()})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    problem = [line for line in result.stderr.splitlines() if line.startswith(("error:", "fout:"))]
    assert len(problem) == 1 and expected in problem[0], result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    """`--debug` re-raises a configuration error so the traceback is shown."""
    result = klachtwijzer(tmp_path, "--debug", "case", "list", DATABASE_URL="nonsense")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "SetupError" in result.stderr


def test_a_real_bug_keeps_its_traceback(tmp_path: Path) -> None:
    """An unexpected exception (here a ZeroDivisionError planted in keygen) is not hidden."""
    code = "import storage, bot.root.cli as c\nc.generate_key = lambda: 1 / 0"
    result = klachtwijzer(tmp_path, "keygen", code=code)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "ZeroDivisionError" in result.stderr



def test_placeholder_addresses_are_reported_and_run_refuses_to_start(tmp_path: Path) -> None:
    """Lentl's definition names no real mailbox or OKC page (002): check-config names each
    placeholder, and `run` will not start sending complaints to an address nobody reads."""
    config = tmp_path / "lentl.toml"
    config.write_text('name = "Lentl"\nprocedure = "lentl"\n', encoding="utf-8")
    checked = klachtwijzer(tmp_path, "check-config", KLACHTWIJZER_CONFIG=str(config))
    assert checked.returncode == 1
    lines = error_lines(checked)
    assert any("mailbox 'complaints' = klachten@lentl.example.org is a placeholder" in line
               for line in lines), lines
    assert any("https://okc.example.org" in line for line in lines), lines
    ran = klachtwijzer(tmp_path, "run", KLACHTWIJZER_CONFIG=str(config))
    assert ran.returncode == 1 and "Traceback" not in ran.stderr
    assert "is a placeholder; set the real one" in ran.stderr
    config.write_text('name = "Lentl"\nprocedure = "lentl"\n[mailboxes]\n'
                      'complaints = "klachten@lentl.nl"\n', encoding="utf-8")
    lines = error_lines(klachtwijzer(tmp_path, "check-config", KLACHTWIJZER_CONFIG=str(config)))
    assert not any("mailbox 'complaints'" in line for line in lines)
