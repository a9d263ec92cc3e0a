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

from flows.procedure import Procedure, load_procedure
from flows.rules import normalise_email


class Settings(BaseSettings):
    """Process settings. Names are the environment variables documented in README.md."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

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
class Organisation:
    """The organisation running the bot: its name, procedure, mailboxes and retention."""

    name: str
    procedure: Procedure
    retention_years: int = 5  # 001 art. 17.4
    mailboxes: dict[str, str] = field(default_factory=dict)


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
    years = int(raw.get("retention", {}).get("years", 5))
    if years < 1:
        raise ConfigError(f"{path}: retention.years must be at least 1")
    procedure = Procedure(**{**procedure.__dict__, "mailboxes": mailboxes})
    return Organisation(str(raw.get("name", DEFAULT_ORGANISATION_NAME)), procedure, years, mailboxes)
