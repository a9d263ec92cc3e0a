"""The composition root: the one place that builds and wires the parts. Nothing runs at import time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.mail.outbox import FileTransport, MailTransport, OutboxWorker, SmtpTransport
from bot.root.settings import Settings
from bot.services.delivery import Channels
from bot.services.intake import IntakeService
from bot.services.organisation import Organisation, load_organisation
from flows.engine import Engine
from flows.i18n import Catalogs, load_catalogs
from storage import Database, load_key, utc_now
from storage.files import EncryptedFileStore

log = logging.getLogger(__name__)


@dataclass
class App:
    settings: Settings
    organisation: Organisation
    catalogs: Catalogs
    engine: Engine
    db: Database
    transport: MailTransport
    worker: OutboxWorker
    service: IntakeService
    key_generated: bool
    files: EncryptedFileStore
    channels: Channels = field(default_factory=Channels)
    clock: Callable[[], datetime] = utc_now

    @property
    def mail_from(self) -> str:
        return self.settings.mail_from

    @property
    def configured_channels(self) -> frozenset[str]:
        """Client channels with settings, whether or not they run in this process."""
        configured = {"telegram": self.settings.telegram_bot_token is not None,
                      "whatsapp": self.settings.whatsapp_enabled}
        return frozenset(name for name, on in configured.items() if on)

    async def close(self) -> None:
        await self.db.close()

    def background_tasks(self, stop: asyncio.Event) -> list[Coroutine[Any, Any, None]]:
        """What `klachtwijzer run` runs: the outbox worker and every configured channel."""
        from bot.services.scheduler import run_daily

        tasks: list[Coroutine[Any, Any, None]] = [self.worker.run_forever(stop), run_daily(self, stop)]
        if self.settings.telegram_bot_token is not None:
            from bot.channels.telegram.run import run_telegram

            tasks.append(run_telegram(self, stop))
        if self.settings.whatsapp_enabled:
            from bot.channels.whatsapp import run_whatsapp

            tasks.append(run_whatsapp(self, stop))
        return tasks

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; a task that fails stops the others and the error is raised."""
        async with asyncio.TaskGroup() as group:
            for task in self.background_tasks(stop):
                group.create_task(task)


def configure_logging(level: str) -> None:
    """Plain logs without personal data; libraries that log URLs with tokens are kept quiet."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "aiosqlite", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def mail_transport(settings: Settings) -> MailTransport:
    """SMTP when configured; otherwise `.eml` files in `<data dir>/outbox/` (the embedded default)."""
    if settings.smtp_host:
        return SmtpTransport(
            host=settings.smtp_host,
            port=settings.smtp_effective_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            tls=settings.smtp_tls,
        )
    return FileTransport(settings.outbox_dir)


async def build_app(settings: Settings, clock: Callable[[], datetime] = utc_now) -> App:
    organisation = load_organisation(settings.config)
    catalogs = load_catalogs()
    engine = Engine(organisation.procedure, catalogs, organisation=organisation.name)
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    cipher, generated = load_key(settings.data_dir, secret)
    if generated:
        log.warning(
            "No KLACHTWIJZER_SECRET_KEY set: generated a development key in %s. "
            "Set KLACHTWIJZER_SECRET_KEY in production and keep a copy safe.",
            settings.data_dir / "secret.key",
        )
    db = await Database.open(settings.db_url, cipher, clock=clock)
    transport = mail_transport(settings)
    worker = OutboxWorker(db=db, transport=transport, sender=settings.mail_from, clock=clock)
    files = EncryptedFileStore(settings.data_dir / "files", cipher)
    channels = Channels()
    service = IntakeService(engine, db, mail_from=settings.mail_from, clock=clock, files=files,
                            mail_keys=organisation.mailbox_keys)
    return App(settings, organisation, catalogs, engine, db, transport, worker, service, generated,
               files, channels, clock)
