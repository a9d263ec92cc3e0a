"""The composition root: the one place that builds and wires the parts. Nothing runs at import time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bot.desk.config import DeskConfig
from bot.mail.outbox import FileTransport, MailTransport, OutboxWorker, SmtpTransport
from bot.root.settings import Settings
from bot.services.delivery import Channels
from bot.services.intake import IntakeService
from bot.services.organisation import Deployment, Organisation, load_deployment
from flows.engine import Engine
from flows.i18n import Catalogs, load_catalogs
from storage import Database, load_key, utc_now
from storage.files import EncryptedFileStore

log = logging.getLogger(__name__)

DATABASE_URL_FORM = ("postgresql+asyncpg://USER:PASSWORD@HOST:5432/DBNAME "
                     "(or sqlite+aiosqlite:////path/to/klachtwijzer.db)")


class SetupError(Exception):
    """The application cannot start because of its configuration; the message says what to do."""


def safe_db_url(url: str) -> str:
    """The database URL without its password, for logs and messages."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a URL)"


def database_problem(settings: Settings, exc: BaseException) -> str:
    """One line for an operator: why the database cannot be opened, and what to do."""
    from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

    where = ("DATABASE_URL" if settings.database_url
             else f"the SQLite database in KLACHTWIJZER_DATA_DIR ({settings.data_dir})")
    if isinstance(exc, ArgumentError):
        return f"DATABASE_URL is not a database URL that can be used; expected {DATABASE_URL_FORM}"
    if isinstance(exc, ImportError):
        return (f"DATABASE_URL names a database driver that is not installed ({exc.name}); "
                f"expected {DATABASE_URL_FORM}")
    target = safe_db_url(settings.db_url)
    if isinstance(exc, TimeoutError):
        return f"{where}: no answer from {target}; is the database running and reachable?"
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    reason = str(exc).splitlines()[0].strip() if str(exc).strip() else ""
    detail = f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__
    if isinstance(exc, OSError):
        return f"{where}: cannot reach {target} ({detail}); is the database server running there?"
    if isinstance(exc, SQLAlchemyError) or "asyncpg" in type(exc).__module__:
        return f"{where}: cannot open {target} ({detail}); check the user, password and database name"
    return f"{where}: cannot open {target} ({detail})"


def key_problem(settings: Settings, exc: ValueError) -> str:
    """One line for a secret key that is not a key, without echoing it."""
    if settings.secret_key is not None:
        return "KLACHTWIJZER_SECRET_KEY is not a valid key; make one with `klachtwijzer keygen`"
    return f"{str(exc).split(' (')[0]}; replace it with the key kept safe, or one from `klachtwijzer keygen`"


def data_dir_problem(settings: Settings, exc: OSError) -> str:
    """One line: the data dir (key, SQLite, files, .eml outbox) cannot be written."""
    reason = exc.strerror or type(exc).__name__
    return (f"KLACHTWIJZER_DATA_DIR {settings.data_dir} is not a writable folder ({reason}); "
            "create it or point KLACHTWIJZER_DATA_DIR at one this user may write")


@dataclass
class App:
    settings: Settings
    deployment: Deployment
    catalogs: Catalogs
    engine: Engine  # the default organisation's; `service.engines` has one per organisation
    db: Database
    transport: MailTransport
    worker: OutboxWorker
    service: IntakeService
    key_generated: bool
    files: EncryptedFileStore
    channels: Channels = field(default_factory=Channels)
    clock: Callable[[], datetime] = utc_now

    @property
    def organisation(self) -> Organisation:
        """The default organisation (the only one, in a deployment of one)."""
        return self.deployment.default

    @organisation.setter
    def organisation(self, changed: Organisation) -> None:
        """Replace the default organisation (tests give it staff or other periods)."""
        self.deployment = Deployment((changed, *self.deployment.organisations[1:]))

    @property
    def mail_from(self) -> str:
        return self.settings.mail_from

    @property
    def fallback_mail(self) -> str | None:
        """Where the digest also goes when the committee mailbox refused a mail for good."""
        return self.settings.fallback_mail

    def describe(self) -> list[tuple[int, str]]:
        """What `klachtwijzer run` runs, one (log level, line) per part; no secrets."""
        settings = self.settings
        lines: list[tuple[int, str]] = []
        if settings.telegram_bot_token is not None:
            where = (f"webhook {settings.telegram_webhook_url}, listening on "
                     f"{settings.telegram_listen_host}:{settings.telegram_listen_port}"
                     if settings.telegram_mode == "webhook" else f"polling {settings.telegram_api_base}")
            lines.append((logging.INFO, f"channel telegram ({settings.telegram_library}): {where}"))
        if settings.whatsapp_enabled:
            lines.append((logging.INFO, f"channel whatsapp: webhook listening on "
                                        f"{settings.whatsapp_listen_host}:{settings.whatsapp_listen_port}"))
        if not lines:
            lines.append((logging.WARNING, "no messenger channel configured (set TELEGRAM_BOT_TOKEN or "
                                           "the WHATSAPP_* settings); only the web chat, the outbox "
                                           "and the daily jobs run"))
        # --- issue 13: the web chat, unless WEB_LISTEN_PORT=0 ---
        if settings.web_listen_port:
            lines.append((logging.INFO, f"channel web: open http://{settings.web_listen_host}:"
                                        f"{settings.web_listen_port}/chat in a browser"))
        else:
            lines.append((logging.INFO, "channel web: off in this process (WEB_LISTEN_PORT=0)"))
        # --- end web chat ---
        # the staff desk (issue 12)
        desk = self.desk_config
        if desk.listen_port:
            lines.append((logging.INFO, f"staff desk: listening on {desk.listen_host}:"
                                        f"{desk.listen_port}, open {desk.base_url}"))
        else:
            lines.append((logging.INFO, "staff desk: off in this process (DESK_LISTEN_PORT=0)"))
        if settings.smtp_host:
            lines.append((logging.INFO, f"mail: SMTP {settings.smtp_host}:{settings.smtp_effective_port} "
                                        f"({settings.smtp_tls}), from {settings.mail_from}"))
        else:
            lines.append((logging.WARNING, f"mail: no SMTP_HOST set, mails to the organisation are only "
                                           f"written as .eml files to {settings.outbox_dir.resolve()}"))
        lines.append((logging.INFO, f"data dir: {settings.data_dir.resolve()}"))
        dialect = self.db.engine.dialect.name
        kind = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(dialect, dialect)
        lines.append((logging.INFO, f"database: {kind}, {safe_db_url(settings.db_url)}"))
        return lines

    # --- the staff desk (issue 12) ---
    @property
    def desk_config(self) -> DeskConfig:
        """Where the staff desk listens and the address staff open (DESK_* settings)."""
        s = self.settings
        return DeskConfig(listen_host=s.desk_listen_host, listen_port=s.desk_listen_port,
                          public_url=s.desk_public_url, mail=s.smtp_host is not None)
    # --- end of the staff desk ---

    @property
    def configured_channels(self) -> frozenset[str]:
        """Client channels with settings, whether or not they run in this process."""
        configured = {"telegram": self.settings.telegram_bot_token is not None,
                      "whatsapp": self.settings.whatsapp_enabled,
                      "web": True}  # issue 13: the web chat is always served
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
        # the staff desk (issue 12), unless DESK_LISTEN_PORT=0
        if self.desk_config.listen_port:
            from bot.desk import run_desk

            tasks.append(run_desk(self, self.desk_config, stop))
        # --- issue 13: the web chat, unless WEB_LISTEN_PORT=0 ---
        if self.settings.web_listen_port:
            from bot.channels.web import run_web

            tasks.append(run_web(self, stop))
        # --- end web chat ---
        return tasks

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; a task that fails stops the others and the error is raised."""
        async with asyncio.TaskGroup() as group:
            for task in self.background_tasks(stop):
                group.create_task(task)


# Libraries that log whole updates, requests or SQL parameters (names, stories, phone numbers) at
# DEBUG or INFO, or URLs with the bot token: they never log below WARNING, whatever the level.
THIRD_PARTY_LOGGERS = (
    "telegram", "telegram.ext", "httpx", "httpcore", "aiogram", "aiogram.event",
    "aiogram.dispatcher", "aiohttp", "aiohttp.access", "aiosqlite", "sqlalchemy",
    "sqlalchemy.engine", "asyncio", "mail.log", "tornado.access", "transitions",
)


class ThirdPartyAtWarning(logging.Filter):
    """Drops records below WARNING from the third-party loggers (and their children)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        name = record.name
        return not any(name == n or name.startswith(n + ".") for n in THIRD_PARTY_LOGGERS)


def configure_logging(level: str) -> None:
    """Plain logs without personal data: our own lines at `level` (DEBUG too), third-party
    libraries (which log whole updates, SQL parameters, URLs with tokens) at WARNING and above."""
    numeric = logging.getLevelName(level.upper())
    logging.basicConfig(level=numeric, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(numeric)
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # Children a library configured itself (e.g. "telegram.ext.Updater" at DEBUG) follow too.
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if (isinstance(logger, logging.Logger) and logger.level < logging.WARNING
                and any(name.startswith(n + ".") for n in THIRD_PARTY_LOGGERS)):
            logger.setLevel(logging.WARNING)
    for handler in root.handlers:
        if not any(isinstance(f, ThirdPartyAtWarning) for f in handler.filters):
            handler.addFilter(ThirdPartyAtWarning())


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
    deployment = load_deployment(settings.config)
    catalogs = load_catalogs()
    engines = {o.slug: Engine(o.procedure, catalogs, organisation=o.name)
               for o in deployment.organisations}
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    try:
        cipher, generated = load_key(settings.data_dir, secret)
    except OSError as exc:
        raise SetupError(data_dir_problem(settings, exc)) from exc
    except ValueError as exc:
        raise SetupError(key_problem(settings, exc)) from exc
    if generated:
        log.warning(
            "No KLACHTWIJZER_SECRET_KEY set: generated a development key in %s. "
            "Set KLACHTWIJZER_SECRET_KEY in production and keep a copy safe.",
            settings.data_dir / "secret.key",
        )
    try:
        db = await Database.open(settings.db_url, cipher, clock=clock)
    except (OSError, ImportError, TimeoutError, SQLAlchemyError) as exc:
        raise SetupError(database_problem(settings, exc)) from exc
    except Exception as exc:
        if not type(exc).__module__.startswith("asyncpg"):
            raise  # a bug, not a configuration problem: keep its traceback
        raise SetupError(database_problem(settings, exc)) from exc
    transport = mail_transport(settings)
    worker = OutboxWorker(db=db, transport=transport, sender=settings.mail_from, clock=clock)
    files = EncryptedFileStore(settings.data_dir / "files", cipher)
    channels = Channels()
    keys = {address: key for o in deployment.organisations for address, key in o.mailbox_keys.items()}
    service = IntakeService(engines, db, mail_from=settings.mail_from, clock=clock, files=files,
                            mail_keys=keys, organisations=deployment)
    return App(settings, deployment, catalogs, engines[deployment.default.slug], db, transport, worker,
               service, generated, files, channels, clock)
