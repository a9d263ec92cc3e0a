"""Telegram: the library-neutral core, and one thin adapter per library (python-telegram-bot, aiogram)."""
