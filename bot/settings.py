"""Settings from the environment (pydantic-settings) and the organisation's TOML config.

Everything has an embedded default, so `klachtwijzer chat` runs with no tokens and no servers:
SQLite in `./data`, mails written as `.eml` files to `./data/outbox/`, a development key generated
in the data dir.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.pgp import PublicKey, keys_by_address, load_mailbox_keys
from flows.procedure import Procedure, load_procedure
from flows.rules import normalise_email


class Settings(BaseSettings):
    """Process settings. Names are the environment variables documented in README.md."""

    # An empty variable counts as unset (docker-compose passes unset ones as "").
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, env_ignore_empty=True)

    data_dir: Path = Field(Path("data"), validation_alias=AliasChoices("KLACHTWIJZER_DATA_DIR"))
    database_url: str | None = Field(None, validation_alias=AliasChoices("DATABASE_URL"))
    smtp_host: str | None = Field(None, validation_alias=AliasChoices("SMTP_HOST"))
    smtp_port: int | None = Field(None, validation_alias=AliasChoices("SMTP_PORT"), ge=1, le=65535)
    smtp_username: str | None = Field(None, validation_alias=AliasChoices("SMTP_USERNAME"))
    smtp_password: SecretStr | None = Field(None, validation_alias=AliasChoices("SMTP_PASSWORD"))
    smtp_tls: Literal["none", "starttls", "tls"] = Field(
        "starttls", validation_alias=AliasChoices("SMTP_TLS")
    )
    mail_from: str = Field(
        "klachtwijzer@localhost", validation_alias=AliasChoices("MAIL_FROM")
    )
    secret_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("KLACHTWIJZER_SECRET_KEY")
    )
    config: Path | None = Field(None, validation_alias=AliasChoices("KLACHTWIJZER_CONFIG"))
    log_level: str = Field("INFO", validation_alias=AliasChoices("KLACHTWIJZER_LOG_LEVEL"))
    max_attachment_bytes: int = Field(
        20_000_000, validation_alias=AliasChoices("KLACHTWIJZER_MAX_ATTACHMENT_BYTES"), ge=1
    )

    # Telegram (issue 3): runs when a token is set.
    telegram_bot_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("TELEGRAM_BOT_TOKEN")
    )
    telegram_library: Literal["ptb", "aiogram"] = Field(
        "ptb", validation_alias=AliasChoices("TELEGRAM_LIBRARY")
    )
    telegram_api_base: str = Field(
        "https://api.telegram.org", validation_alias=AliasChoices("TELEGRAM_API_BASE")
    )
    telegram_mode: Literal["polling", "webhook"] = Field(
        "polling", validation_alias=AliasChoices("TELEGRAM_MODE")
    )
    telegram_webhook_url: str | None = Field(
        None, validation_alias=AliasChoices("TELEGRAM_WEBHOOK_URL")
    )
    telegram_webhook_secret: SecretStr | None = Field(
        None, validation_alias=AliasChoices("TELEGRAM_WEBHOOK_SECRET")
    )
    telegram_listen_host: str = Field(
        "127.0.0.1", validation_alias=AliasChoices("TELEGRAM_LISTEN_HOST")
    )
    telegram_listen_port: int = Field(
        8443, validation_alias=AliasChoices("TELEGRAM_LISTEN_PORT"), ge=1, le=65535
    )

    # WhatsApp Cloud API (issue 5): runs when all four credentials are set.
    whatsapp_token: SecretStr | None = Field(None, validation_alias=AliasChoices("WHATSAPP_TOKEN"))
    whatsapp_phone_number_id: str | None = Field(
        None, validation_alias=AliasChoices("WHATSAPP_PHONE_NUMBER_ID")
    )
    whatsapp_app_secret: SecretStr | None = Field(
        None, validation_alias=AliasChoices("WHATSAPP_APP_SECRET")
    )
    whatsapp_verify_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("WHATSAPP_VERIFY_TOKEN")
    )
    whatsapp_api_base: str = Field(
        "https://graph.facebook.com/v21.0", validation_alias=AliasChoices("WHATSAPP_API_BASE")
    )
    whatsapp_listen_host: str = Field(
        "127.0.0.1", validation_alias=AliasChoices("WHATSAPP_LISTEN_HOST")
    )
    whatsapp_listen_port: int = Field(
        8444, validation_alias=AliasChoices("WHATSAPP_LISTEN_PORT"), ge=1, le=65535
    )

    @property
    def whatsapp_enabled(self) -> bool:
        return all((self.whatsapp_token, self.whatsapp_phone_number_id, self.whatsapp_app_secret,
                    self.whatsapp_verify_token))

    @field_validator("mail_from")
    @classmethod
    def _mail_from_is_address(cls, value: str) -> str:
        if "@" not in value or any(ch in value for ch in "\r\n<>"):
            raise ValueError("MAIL_FROM must be a plain e-mail address, e.g. bot@example.nl")
        return value

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'klachtwijzer.db').resolve()}"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def smtp_effective_port(self) -> int:
        if self.smtp_port:
            return self.smtp_port
        return {"none": 25, "starttls": 587, "tls": 465}[self.smtp_tls]


@dataclass(frozen=True)
class Confidant:
    """A confidant (vertrouwenspersoon) who takes handoffs on Telegram, by numeric user id."""

    telegram_id: int
    gender: Literal["female", "male"]


@dataclass(frozen=True)
class Organisation:
    """The organisation running the bot: its name, procedure, mailboxes, staff and periods."""

    name: str
    procedure: Procedure
    retention_years: int = 5  # 001 art. 17.4
    mailboxes: dict[str, str] = field(default_factory=dict)
    confidants: tuple[Confidant, ...] = ()
    coordinators: tuple[int, ...] = ()  # Telegram user ids; never usernames
    handoff_timeout_minutes: int = 30
    follow_up_days: int = 14  # 003 §4: ask whether the problem was really solved
    lapse_days: int = 61  # 002 §4.1: unreachable for two months
    whatsapp_template: str | None = None  # used outside WhatsApp's 24-hour window
    # OpenPGP public keys by lower-cased mailbox address: mail to it is sent encrypted (PGP/MIME).
    mailbox_keys: dict[str, PublicKey] = field(default_factory=dict)


DEFAULT_ORGANISATION_NAME = "Steunpunt Vluchtelingen De Bilt"


class ConfigError(ValueError):
    """The organisation config cannot be used; the message says what to fix."""


def load_organisation(path: Path | None) -> Organisation:
    """The organisation from its TOML file, or the default of leaflet `000` when there is none."""
    if path is None:
        procedure = load_procedure()
        return Organisation(DEFAULT_ORGANISATION_NAME, procedure, 5, dict(procedure.mailboxes))
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"KLACHTWIJZER_CONFIG {path}: {exc}") from exc
    procedure_path = raw.get("procedure")
    procedure = load_procedure((path.parent / procedure_path) if procedure_path else None)
    mailboxes = dict(procedure.mailboxes)
    for key, value in raw.get("mailboxes", {}).items():
        if key not in mailboxes:
            raise ConfigError(f"{path}: unknown mailbox '{key}' (known: {sorted(mailboxes)})")
        if normalise_email(str(value)) is None:
            raise ConfigError(f"{path}: mailbox '{key}' is not an e-mail address: {value!r}")
        mailboxes[key] = str(value)
    try:
        mailbox_keys = keys_by_address(mailboxes, load_mailbox_keys(path, raw, known=mailboxes))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    years = int(raw.get("retention", {}).get("years", 5))
    if years < 1:
        raise ConfigError(f"{path}: retention.years must be at least 1")
    procedure = Procedure(**{**procedure.__dict__, "mailboxes": mailboxes})
    telegram = raw.get("telegram", {})
    confidants = []
    for item in telegram.get("confidants", []):
        gender = item.get("gender")
        if gender not in ("female", "male") or not isinstance(item.get("id"), int):
            raise ConfigError(
                f"{path}: each telegram.confidants entry needs a numeric id and gender "
                f"'female' or 'male', got {item!r}"
            )
        confidants.append(Confidant(item["id"], gender))
    coordinators = telegram.get("coordinators", [])
    if not all(isinstance(c, int) for c in coordinators):
        raise ConfigError(f"{path}: telegram.coordinators must be numeric user ids")
    register = raw.get("register", {})
    return Organisation(
        name=str(raw.get("name", DEFAULT_ORGANISATION_NAME)),
        procedure=procedure,
        retention_years=years,
        mailboxes=mailboxes,
        confidants=tuple(confidants),
        coordinators=tuple(coordinators),
        handoff_timeout_minutes=int(raw.get("handoff", {}).get("timeout_minutes", 30)),
        follow_up_days=int(register.get("follow_up_days", 14)),
        lapse_days=int(register.get("lapse_days", 61)),
        whatsapp_template=raw.get("whatsapp", {}).get("template"),
        mailbox_keys=mailbox_keys,
    )
