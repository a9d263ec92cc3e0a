"""Fixtures shared by every test folder: a settable clock and the real app on a temporary data dir."""

from __future__ import annotations

import logging
import os
import re
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from bot.root.app import App, build_app
from bot.root.settings import Settings

# Property tests: a quick profile for every run, a deep one for CI's dedicated job (10 000+ inputs).
settings.register_profile("default", max_examples=150, deadline=None)
settings.register_profile(
    "deep", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


class Clock:
    """A clock the test moves by hand; every part of the app reads time from it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 22, 9, 30, tzinfo=UTC))


# The whole suite runs on SQLite files by default, and on PostgreSQL when this names an admin URL
# (`.ci/run` starts a server and runs the suite a second time): each test gets a database of its own.
POSTGRES_ADMIN_URL = os.environ.get("KLACHTWIJZER_TEST_POSTGRES", "")
ON_POSTGRES = POSTGRES_ADMIN_URL.startswith("postgresql")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not ON_POSTGRES:
        return
    skip = pytest.mark.skip(reason="SQLite-specific (file, pragma or locking behaviour)")
    for item in items:
        if "sqlite_only" in item.keywords:
            item.add_marker(skip)


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database for this test: a SQLite file, or a new PostgreSQL database."""
    if not ON_POSTGRES:
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'klachtwijzer.db'}"
        return
    name = f"kw_test_{uuid.uuid4().hex[:16]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings_for(tmp_path: Path, database_url: str) -> Callable[..., Settings]:
    """Settings on a fresh data dir and database; keyword arguments override (field names)."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"data_dir": tmp_path / "data", "mail_from": "bot@klachtwijzer.test"}
        if ON_POSTGRES:
            values["database_url"] = database_url
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
async def app_factory(
    clock: Clock,
) -> AsyncIterator[Callable[[Settings], Awaitable[App]]]:
    """Builds the real app (SQLite file, migrations, outbox) and closes every one it built."""
    built: list[App] = []

    async def make(settings: Settings) -> App:
        app = await build_app(settings, clock=clock)
        built.append(app)
        return app

    yield make
    for app in built:
        await app.close()


# --- the log scan: after the whole run, no log line at INFO or above may carry personal data ------

LOG_FILE_KEY = pytest.StashKey[Path]()
# What must never reach a log: client words (our tests write Arabic and Ukrainian), phone numbers,
# e-mail addresses other than our own test mailboxes, Telegram bot tokens, and the test clients' names.
LEAK_PATTERNS = {
    "Arabic text": re.compile("[\u0600-\u06ff]"),
    "Cyrillic text": re.compile("[\u0400-\u04ff]"),
    "phone number": re.compile(r"\+31[\s-]?6|\b06[\s-]?\d{8}\b"),
    "bot token": re.compile(r"(?<!\d)\d{6,12}:[A-Za-z0-9_-]{20,}"),
    "client e-mail": re.compile(r"[\w.+-]+@example\.(nl|com|org)"),
    "client name": re.compile(r"Sara Haddad|Olena|Omar Ali|Layla Ali|Piet Jansen|Maria\b"),
}


RUN_KEY = "KLACHTWIJZER_TEST_LOG_RUN"  # one id per run, shared with pytest-xdist's workers


def pytest_configure(config: pytest.Config) -> None:
    # Set before xdist starts its workers, which inherit the environment: every process of the
    # run logs to its own file, and the main process scans them all at the end.
    os.environ.setdefault(RUN_KEY, uuid.uuid4().hex)
    # The `klachtwijzer run` processes that tests start serve no staff desk and no web chat unless
    # a test asks for one on a free port: parallel workers would otherwise all reach for 8445/8446.
    os.environ.setdefault("DESK_LISTEN_PORT", "0")
    os.environ.setdefault("WEB_LISTEN_PORT", "0")  # the same for the web chat (port 8445)


def _log_path(name: str) -> Path:
    return Path(tempfile.gettempdir()) / f"klachtwijzer-test-log-{os.environ[RUN_KEY]}-{name}.log"


def pytest_sessionstart(session: pytest.Session) -> None:
    worker = getattr(session.config, "workerinput", {}).get("workerid", "main")
    path = _log_path(worker)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(min(root.level or logging.INFO, logging.INFO))
    # aiosmtpd is the test's own mail server, not part of the product: its INFO lines name
    # the envelope recipients, which are test data.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    session.stash[LOG_FILE_KEY] = path


def scan_log(text: str) -> list[str]:
    """The log lines that carry something personal, each with what was found."""
    found = []
    for line in text.splitlines():
        for what, pattern in LEAK_PATTERNS.items():
            if pattern.search(line):
                found.append(f"{what}: {line[:200]}")
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.stash.get(LOG_FILE_KEY, None) is None:
        return
    for handler in logging.getLogger().handlers:
        handler.flush()
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the main process scans its file after all workers ended
    paths = sorted(_log_path("*").parent.glob(_log_path("*").name))
    text = "".join(p.read_text(encoding="utf-8", errors="replace") for p in paths)
    leaks = scan_log(text)
    lines = len(text.splitlines())
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"log scan: {lines} log lines at INFO or above, {len(leaks)} with personal data")
        for leak in leaks[:20]:
            reporter.write_line(f"  LEAK {leak}")
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    for path in paths:
        path.unlink(missing_ok=True)
