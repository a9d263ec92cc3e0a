"""The ports a channel depends on: the intake service and the slice of the application it needs.

The composition root's `App` satisfies `ChannelHost` structurally, so a channel never imports the
root, and never another channel.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import SecretStr

from bot.services.intake import IntakeService
from bot.services.ports import ServiceHost
from flows.engine import Engine


class ChannelSettings(Protocol):
    """The settings channels read (environment variables of the same names, upper-cased)."""

    @property
    def max_attachment_bytes(self) -> int:
        """The largest file a client may send."""

    @property
    def telegram_bot_token(self) -> SecretStr | None:
        """The bot's token; None when Telegram is off."""

    @property
    def telegram_library(self) -> str:
        """'ptb' or 'aiogram'."""

    @property
    def telegram_api_base(self) -> str:
        """The Bot API's address (a local stand-in in tests)."""

    @property
    def telegram_mode(self) -> str:
        """'polling' or 'webhook'."""

    @property
    def telegram_webhook_url(self) -> str | None:
        """The public address Telegram delivers updates to, in webhook mode."""

    @property
    def telegram_webhook_secret(self) -> SecretStr | None:
        """The secret Telegram sends with each webhook delivery."""

    @property
    def telegram_listen_host(self) -> str:
        """Where the Telegram webhook listens."""

    @property
    def telegram_listen_port(self) -> int:
        """The Telegram webhook's port."""

    @property
    def whatsapp_token(self) -> SecretStr | None:
        """The Graph API access token."""

    @property
    def whatsapp_phone_number_id(self) -> str | None:
        """The WhatsApp business number's id."""

    @property
    def whatsapp_app_secret(self) -> SecretStr | None:
        """The secret Meta signs webhook deliveries with."""

    @property
    def whatsapp_verify_token(self) -> SecretStr | None:
        """The token of Meta's webhook verification request."""

    @property
    def whatsapp_api_base(self) -> str:
        """The Graph API's address (a local stand-in in tests)."""

    @property
    def whatsapp_listen_host(self) -> str:
        """Where the webhook listens."""

    @property
    def whatsapp_listen_port(self) -> int:
        """The webhook's port."""

    # --- issue 13: the web chat ---

    @property
    def web_listen_host(self) -> str:
        """Where the web chat listens."""

    @property
    def web_listen_port(self) -> int:
        """The web chat's port."""

    @property
    def web_allowed_origins(self) -> str:
        """Other sites that may embed the widget, comma-separated origins."""


class ChannelHost(ServiceHost, Protocol):
    """What a channel needs of the running application."""

    @property
    def service(self) -> IntakeService:
        """The intake service every client message goes through."""

    @property
    def engine(self) -> Engine:
        """The procedure's engine (its state names bind buttons to the question they answer)."""

    @property
    def settings(self) -> ChannelSettings:
        """The channel settings."""
