"""The composition root: the one place that builds and wires the parts. Nothing runs at import time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.outbox import FileTransport, MailTransport, OutboxWorker, SmtpTransport
from bot.service import IntakeService
from bot.settings import Organisation, Settings, load_organisation
from flows.engine import Engine
from flows.i18n import Catalogs, load_catalogs
from storage import Database, load_key, utc_now

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

    async def close(self) -> None:
        await self.db.close()


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
    service = IntakeService(engine, db, mail_from=settings.mail_from, clock=clock)
    return App(settings, organisation, catalogs, engine, db, transport, worker, service, generated)
