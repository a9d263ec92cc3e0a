"""The checks of `klachtwijzer check-config`: bad settings named by their variable, the data
dir, the database, SMTP and the channel libraries. Each returns lines an operator can act on.
"""

from __future__ import annotations

import asyncio
import importlib.util
import tempfile
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from bot.root.app import database_problem
from bot.root.settings import Settings
from bot.services.organisation import Deployment


def setting_lines(exc: ValidationError) -> list[str]:
    """One line per bad setting, named by its environment variable, without echoing its value."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "settings"
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"setting {where}: {message}")
    return lines


def settings_without_errors(exc: ValidationError) -> Settings:
    """The settings with every invalid value replaced by its default, to check everything else."""
    by_alias = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        for choice in getattr(alias, "choices", ()):
            by_alias[str(choice)] = name
    bad = {by_alias.get(str(e["loc"][0]), str(e["loc"][0])) for e in exc.errors() if e["loc"]}
    defaults = {name: Settings.model_fields[name].default for name in bad if name in Settings.model_fields}
    return Settings(**defaults)


def probe_writable(folder: Path) -> None:
    """Create the folder if needed and write and remove a small file in it."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".check-", delete=True) as fh:
        fh.write(b"ok")
        fh.flush()


async def probe_database(settings: Settings, seconds: float = 5.0) -> str | None:
    """Connect once (no migration) within `timeout` seconds; None when it works."""
    from storage import create_engine

    try:
        engine = create_engine(settings.db_url, pool=False)
    except Exception as exc:
        return database_problem(settings, exc)
    try:
        async with asyncio.timeout(seconds), engine.connect():
            pass
    except Exception as exc:
        return database_problem(settings, exc)
    finally:
        await engine.dispose()
    return None


async def probe_smtp(settings: Settings, seconds: float = 10.0) -> str | None:
    """Connect, EHLO and QUIT (no login, no mail); None when the server answers."""
    import aiosmtplib

    assert settings.smtp_host is not None  # noqa: S101 - checked by the caller
    client = aiosmtplib.SMTP(hostname=settings.smtp_host, port=settings.smtp_effective_port,
                             use_tls=settings.smtp_tls == "tls",
                             start_tls=settings.smtp_tls == "starttls", timeout=seconds)
    try:
        await client.connect()
        await client.ehlo()
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return (f"SMTP_HOST {settings.smtp_host}:{settings.smtp_effective_port} ({settings.smtp_tls}) "
                f"did not answer as a mail server: {reason[:160]}; check SMTP_HOST, SMTP_PORT "
                "and SMTP_TLS")
    finally:
        if client.is_connected:
            client.close()
    return None


LIBRARIES = {"ptb": ("telegram", "python-telegram-bot"), "aiogram": ("aiogram", "aiogram")}


def library_problems(
    settings: Settings, find_spec: Callable[[str], object | None] = importlib.util.find_spec
) -> list[str]:
    """The configured channel's library is installed (looked up, not imported)."""
    if not settings.telegram_bot_token:
        return []
    module, project = LIBRARIES[settings.telegram_library]
    problems = []
    if find_spec(module) is None:
        problems.append(f"TELEGRAM_BOT_TOKEN is set with TELEGRAM_LIBRARY={settings.telegram_library}, "
                        f"but {project} is not installed: pip install "
                        f"'klachtwijzer[{settings.telegram_library}]'")
    elif (settings.telegram_library == "ptb" and settings.telegram_mode == "webhook"
          and find_spec("tornado") is None):
        problems.append("TELEGRAM_MODE=webhook with python-telegram-bot needs its webhook extra: "
                        "pip install 'klachtwijzer[ptb]'")
    return problems


def channel_problems(settings: Settings) -> list[str]:
    """Channel settings that cannot work together, in words an operator can act on."""
    problems = []
    if settings.telegram_bot_token and settings.telegram_mode == "webhook":
        if not settings.telegram_webhook_url:
            problems.append("TELEGRAM_MODE=webhook needs TELEGRAM_WEBHOOK_URL")
        if not settings.telegram_webhook_secret:
            problems.append("TELEGRAM_MODE=webhook needs TELEGRAM_WEBHOOK_SECRET")
    whatsapp = {
        "WHATSAPP_TOKEN": settings.whatsapp_token,
        "WHATSAPP_PHONE_NUMBER_ID": settings.whatsapp_phone_number_id,
        "WHATSAPP_APP_SECRET": settings.whatsapp_app_secret,
        "WHATSAPP_VERIFY_TOKEN": settings.whatsapp_verify_token,
    }
    missing = [name for name, value in whatsapp.items() if not value]
    if 0 < len(missing) < len(whatsapp):
        problems.append(f"WhatsApp is half configured: also set {', '.join(missing)}")
    return problems


async def unconfigured_organisations(settings: Settings, deployment: Deployment,
                                     seconds: float = 5.0) -> list[str]:
    """Warnings for cases in the database whose organisation is no longer configured: nobody's
    register, digest or retention includes them until the slug is configured again.

    Reads the cases table without migrating; a database that cannot be read (not yet created,
    not yet migrated) gives no warning here (`probe_database` reports what is wrong).
    """
    from sqlalchemy import func, select
    from sqlalchemy.exc import SQLAlchemyError

    from storage import create_engine
    from storage.schema import cases

    try:
        engine = create_engine(settings.db_url, pool=False)
    except Exception:
        return []
    try:
        async with asyncio.timeout(seconds), engine.connect() as conn:
            stmt = select(cases.c.organisation, func.count()).group_by(cases.c.organisation)
            counts = {str(slug): int(n) for slug, n in (await conn.execute(stmt)).all()}
    except (SQLAlchemyError, OSError, TimeoutError):
        return []
    finally:
        await engine.dispose()
    known = set(deployment.slugs)
    if not deployment.several:
        # One organisation holds every case, whatever slug they were filed under.
        return []
    return [f"the database holds {n} case{'s' if n != 1 else ''} of organisation '{slug}', "
            f"which is no longer configured (configured: {', '.join(deployment.slugs)}); "
            "add it back as an [[organisations]] entry to reach them"
            for slug, n in sorted(counts.items()) if slug not in known]
