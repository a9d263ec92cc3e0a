"""Settings from the environment (pydantic-settings) and the organisation's TOML config.

Everything has an embedded default, so `klachtwijzer chat` runs with no tokens and no servers:
SQLite in `./data`, mails written as `.eml` files to `./data/outbox/`, a development key generated
in the data dir.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    # Where the daily digest also goes when the committee mailbox refused a mail for good (5xx):
    # the people who read the digest would otherwise not learn that their mailbox refuses mail.
    fallback_mail: str | None = Field(None, validation_alias=AliasChoices("KLACHTWIJZER_FALLBACK_MAIL"))
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

    # --- the staff desk (issue 12): served by `klachtwijzer run`, on loopback by default; 0 turns
    # it off in this process (a second process on the same database: one desk is enough) ---
    desk_listen_host: str = Field("127.0.0.1", validation_alias=AliasChoices("DESK_LISTEN_HOST"))
    desk_listen_port: int = Field(8446, validation_alias=AliasChoices("DESK_LISTEN_PORT"), ge=0,
                                  le=65535)
    # The address staff open, e.g. https://desk.example.nl behind a TLS proxy: the links that
    # `klachtwijzer staff invite` prints use it, and with https:// the cookies are Secure.
    desk_public_url: str | None = Field(None, validation_alias=AliasChoices("DESK_PUBLIC_URL"))

    @field_validator("desk_public_url")
    @classmethod
    def _desk_url_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("DESK_PUBLIC_URL must start with https:// (or http:// on loopback)")
        return value
    # --- end of the staff desk's settings ---

    # --- issue 13: the web chat (loopback by default; 0 turns it off in this process) ---
    web_listen_host: str = Field("127.0.0.1", validation_alias=AliasChoices("WEB_LISTEN_HOST"))
    web_listen_port: int = Field(
        8445, validation_alias=AliasChoices("WEB_LISTEN_PORT"), ge=0, le=65535
    )
    # Sites that may embed the widget, e.g. "https://www.example.nl,https://example.nl".
    web_allowed_origins: str = Field("", validation_alias=AliasChoices("WEB_ALLOWED_ORIGINS"))
    # --- end web chat ---

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

    @field_validator("log_level")
    @classmethod
    def _log_level_is_known(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("KLACHTWIJZER_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value.upper()

    @field_validator("fallback_mail")
    @classmethod
    def _fallback_is_address(cls, value: str | None) -> str | None:
        if value is not None and ("@" not in value or any(ch in value for ch in "\r\n<> ,")):
            raise ValueError("KLACHTWIJZER_FALLBACK_MAIL must be one plain e-mail address, "
                             "e.g. coordinator@example.nl")
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
