"""Fixtures for the bot tests: a real aiosmtpd SMTP server on 127.0.0.1 that we can script, the app
on it, and a recording chat channel for the register's messages to clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP as AioSMTPServer

from bot.root.app import App
from tests.bot.register_helpers import RecordingChannel


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class ScriptedHandler:
    """Answers DATA from `replies` first (e.g. `421 ...` three times), then `default`."""

    replies: list[str] = field(default_factory=list)
    default: str = "250 Message accepted for delivery"
    received: list[Received] = field(default_factory=list)
    data_calls: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_calls += 1
        reply = self.replies.pop(0) if self.replies else self.default
        if reply.startswith("250"):
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        return reply


class SmtpServer:
    """A real SMTP server in the test's event loop; `stop()`/`start()` keep the same port."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self.handler = ScriptedHandler()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: AioSMTPServer(self.handler, hostname="localhost"), self.host, self.port
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


@pytest.fixture
async def smtp_server() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def smtp_unused_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connection refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _submission() -> dict[str, Any]:
    return {
        "kind": "complaint",
        "schema": "B",
        "category": "sexual_harassment",
        "language": "uk",
        "confidant_preference": "female",
        "complainant": {
            "name": "Олена Петренко",
            "anonymous": False,
            "contact": {"method": "phone", "value": "+31 6 12345678"},
        },
        "representative": None,
        "staff_involved": None,
        "description": "Волонтер говорив мені неприємні речі.\nДругий рядок.",
        "incident_dates": {"text": "минулого вівторка", "parsed": "2026-03-03"},
        "steps_taken": {"talked": "not_helped", "text": "Я говорила з координатором."},
        "admissibility": {"status": "admissible", "rule": "001 art. 13.1", "note": None},
        "consent": {"given": True, "share_with": "confidants"},
        "attachments": [],
        "emergency_shown": False,
    }


def _deep_update(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value
    return base


@pytest.fixture
def mail_doc() -> Any:
    """Factory: a `complaint.json` document (flows.complaint) with nested overrides applied."""
    from datetime import UTC, datetime

    from flows.complaint import complaint_document

    def make(reference: str = "KW-2026-000123", **changes: Any) -> dict[str, Any]:
        submission = _deep_update(_submission(), changes)
        return complaint_document(
            submission,
            reference=reference,
            channel="telegram",
            created_at=datetime(2026, 3, 5, 13, 4, tzinfo=UTC),
        )

    return make


@pytest.fixture
async def app(app_factory: Any, settings_for: Any, smtp_server: Any) -> App:
    """The app on a fresh SQLite file (or PostgreSQL database), mailing to `smtp_server`."""
    settings = settings_for(smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_tls="none")
    built: App = await app_factory(settings)
    return built


@pytest.fixture
def chat(app: App) -> RecordingChannel:
    """The terminal channel as a chat that records what the register sends to clients."""
    channel = RecordingChannel("terminal")
    app.channels.register(channel)
    return channel


# The WhatsApp fixtures (Graph API stand-in, the running channel), shared by every WhatsApp test.
from tests.bot.whatsapp_helpers import graph, start_whatsapp  # noqa: E402, F401
