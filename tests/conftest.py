"""Fixtures shared by every test folder: a settable clock and the real app on a temporary data dir."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, build_app
from bot.settings import Settings


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


@pytest.fixture
def settings_for(tmp_path: Path) -> Callable[..., Settings]:
    """Settings on a fresh data dir; keyword arguments override (field names, not env names)."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"data_dir": tmp_path / "data", "mail_from": "bot@klachtwijzer.test"}
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
