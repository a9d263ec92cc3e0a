"""The staff desk (issue 12): a web application for the organisation's secretaries, confidants,
coordinators and administrators, served by `klachtwijzer run` beside the chat channels.

An adapter like the channels, for staff instead of clients: server-rendered pages (aiohttp and
Jinja2), accounts with Argon2id passwords and TOTP, server-side sessions, a CSRF token on every
change, and one middleware that checks the role for every route. It uses the register's services
(`bot.services.register`) and the staff repository (`storage.staff_accounts`); only the composition
root imports it.
"""

from bot.desk.accounts import DeskError, invite_account
from bot.desk.config import DeskConfig
from bot.desk.server import build_desk, run_desk

__all__ = ["DeskConfig", "DeskError", "build_desk", "invite_account", "run_desk"]
