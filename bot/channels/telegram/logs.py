"""Logging for Telegram: library loggers kept quiet, and the bot token redacted from every record."""

from __future__ import annotations

import logging

NOISY_LOGGERS = ("httpx", "httpcore", "telegram.ext.Updater", "telegram.Bot", "telegram.request",
                 "tornado.access", "aiohttp.access", "aiogram.event")


class RedactToken(logging.Filter):
    """Replace the bot token in any log record that reaches a handler (URLs in library logs)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.token:
            return True
        message = record.getMessage()
        if self.token in message:
            record.msg = message.replace(self.token, "<token>")
            record.args = None
        if record.exc_text and self.token in record.exc_text:
            record.exc_text = record.exc_text.replace(self.token, "<token>")
        return True


def quiet_logging(token: str) -> None:
    """Libraries log request URLs (with the token) and update contents: keep them at WARNING."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    redact = RedactToken(token)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactToken) for f in handler.filters):
            handler.addFilter(redact)
