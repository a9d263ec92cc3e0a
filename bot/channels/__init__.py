"""Channels: thin adapters between a messenger (Telegram, WhatsApp, the terminal) and the services.
Each depends on the ports in `bot.channels.ports`, never on the composition root or another channel."""
