"""The desk's aiohttp application: routes, templates, middlewares; and running it until stopped."""

from __future__ import annotations

import asyncio
import logging
import warnings
from typing import TYPE_CHECKING

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import session_middleware

import bot.desk.views_admin as views_admin
import bot.desk.views_auth as views_auth
import bot.desk.views_chat as views_chat
import bot.desk.views_chat_files as views_chat_files
import bot.desk.views_register as views_register
import bot.desk.views_signals as views_signals
from bot.desk.config import DeskConfig
from bot.desk.security import Throttle
from bot.desk.sessions import DatabaseStorage
from bot.desk.web import DESK, Desk, guard, headers
from bot.services.handoff_desk import leave_desk, open_desk

if TYPE_CHECKING:
    from bot.desk.web import DeskHost

log = logging.getLogger("bot.desk")
MAX_BODY = 64 * 1024  # forms; the chat's upload may carry a file (`web.uploads`)


def build_desk(host: DeskHost, config: DeskConfig, throttle: Throttle | None = None) -> web.Application:
    """The desk as an aiohttp application (tests serve it on a loopback port of their own)."""
    # aiohttp-session 2.12 keeps its session under a string key of the request, which aiohttp
    # warns about (it prefers typed RequestKey instances); harmless, and not ours to change.
    warnings.filterwarnings("ignore", category=web.NotAppKeyWarning, module="aiohttp_session")
    storage = DatabaseStorage(host, config)
    app = web.Application(client_max_size=MAX_BODY,
                          middlewares=[headers, session_middleware(storage), guard])
    app[DESK] = Desk(host, config, storage, throttle or Throttle())
    aiohttp_jinja2.setup(app, loader=jinja2.PackageLoader("bot.desk", "templates"),
                         autoescape=jinja2.select_autoescape(default=True),
                         undefined=jinja2.StrictUndefined)
    r = app.router
    r.add_get("/", views_auth.home, name="home")
    r.add_get("/static/{name}", views_auth.static, name="static")
    r.add_get("/login", views_auth.login_page, name="login_page")
    r.add_post("/login", views_auth.login, name="login")
    r.add_post("/logout", views_auth.logout, name="logout")
    r.add_post("/logout/everywhere", views_auth.logout_everywhere, name="logout_everywhere")
    r.add_post("/language", views_auth.language, name="language")
    r.add_get("/enrol/{token}", views_auth.enrol_page, name="enrol_page")
    r.add_post("/enrol/{token}", views_auth.enrol, name="enrol")
    r.add_get("/cases", views_register.case_list, name="cases")
    r.add_get("/cases/{reference}", views_register.case_page, name="case")
    r.add_post("/cases/{reference}/status", views_register.change_status, name="case_status")
    r.add_get("/cases/{reference}/attachments/{number}", views_register.attachment,
              name="case_attachment")
    r.add_post("/cases/{reference}/message", views_register.message, name="case_message")
    r.add_post("/cases/{reference}/note", views_register.note, name="case_note")
    r.add_get("/export", views_register.export, name="export")
    r.add_get("/report", views_register.report, name="report")
    r.add_get("/figures", views_admin.figures_page, name="figures")
    r.add_get("/signals", views_signals.signal_page, name="signal_page")
    r.add_post("/signals", views_signals.add_signal, name="signal")
    r.add_get(r"/figures.{format:csv|xlsx}", views_admin.figures_file, name="figures_file")
    r.add_get("/accounts", views_admin.accounts_page, name="accounts")
    r.add_post("/accounts", views_admin.invite, name="invite")
    r.add_post("/accounts/{account}/{action}", views_admin.account_action, name="account_action")
    r.add_get("/audit", views_admin.audit_page, name="audit")
    r.add_get("/settings", views_admin.settings_page, name="settings")
    r.add_get("/requests", views_chat.requests_page, name="requests")
    r.add_get("/requests/updates", views_chat.requests_updates, name="requests_updates")
    r.add_post("/requests/{handoff}/accept", views_chat.accept, name="accept")
    r.add_get("/chat", views_chat.chat_page, name="chat")
    r.add_get("/chat/updates", views_chat.chat_updates, name="chat_updates")
    r.add_get("/chat/file/{message}", views_chat_files.chat_file, name="chat_file")
    r.add_post("/chat/upload", views_chat_files.chat_upload, name="chat_upload")
    r.add_post("/chat/{action:send|share|end}", views_chat.chat_action, name="chat_action")
    app.on_startup.append(_join)
    app.on_cleanup.append(_leave)
    return app


async def _join(app: web.Application) -> None:
    """Confidants chat in the desk: it joins the process's handoff desk as channel "desk"."""
    host = app[DESK].host
    if host.channels.get(views_chat.CHANNEL) is None:
        host.channels.register(views_chat.DeskSender())
    open_desk(host, host.service, views_chat.CHANNEL).keeps_files.add(views_chat.CHANNEL)
    host.service.owed_channels.add(views_chat.CHANNEL)  # shown by the pages, then marked sent


async def _leave(app: web.Application) -> None:
    host = app[DESK].host
    desk = host.service.handoffs
    host.service.owed_channels.discard(views_chat.CHANNEL)
    if desk is not None:
        leave_desk(host.service, desk, views_chat.CHANNEL)


async def run_desk(host: DeskHost, config: DeskConfig, stop: asyncio.Event) -> None:
    """Serve the desk until `stop` is set. If its port is taken, say so and let the bot run on:
    clients must still reach the chat when the staff's desk cannot start."""
    runner = web.AppRunner(build_desk(host, config), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.listen_host, config.listen_port)
    try:
        await site.start()
    except OSError as exc:
        log.error("desk: cannot listen on %s:%s (%s); the staff desk does not run. Set "
                  "DESK_LISTEN_HOST / DESK_LISTEN_PORT to a free address.", config.listen_host,
                  config.listen_port, exc.strerror or type(exc).__name__)
        await runner.cleanup()
        return
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
