"""The web chat's HTTP side: the full page, the widget script and styles, the labels, the
WebSocket; strict headers on everything, the `Origin` checked on the socket; `run_web`.

    GET /chat, /chat/<organisation slug>   the full page (also fine behind a QR code)
    GET /widget.js                          the embeddable script (pin it with an SRI hash)
    GET /static/chat.css                    the styles (the widget loads them into its shadow root)
    GET /ui/<lang>.json                     the labels in one language (public, no personal data)
    GET /ws                                 the WebSocket (protocol.py)
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from importlib import resources
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from aiohttp import web

import bot.channels.web.protocol as protocol
from bot.channels.web.chat import WebChat
from bot.channels.web.outbound import CHANNEL
from bot.channels.web.texts import ui_texts
from bot.services.handoff_desk import leave_desk, open_desk
from bot.services.intake import megabytes
from flows.model import LANGUAGES, supported_language

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bot.channels.ports import ChannelHost

log = logging.getLogger(__name__)

DRAIN_SECONDS: Final = 10.0
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
STATIC: Final = {"widget.js": "application/javascript", "chat.css": "text/css"}
COMMON_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


_HOST = re.compile(r"^[A-Za-z0-9.\[\]:-]{1,255}$")


def page_csp(host: str) -> str:
    """The page's policy: only our own script, styles and socket; no inline anything."""
    if not _HOST.fullmatch(host):  # a Host header that is not a host: the socket is 'self' only
        return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
                "media-src blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
                "frame-ancestors 'none'")
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
            f"media-src blob:; connect-src 'self' ws://{host} wss://{host}; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'")


def origin_allowed(origin: str | None, host: str, allowed: frozenset[str]) -> bool:
    """The page that opens the socket is ours (same host) or one of the allowed sites."""
    if not origin:
        return False
    origin = origin.rstrip("/").lower()
    if origin in allowed:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc == host.lower()


def allowed_origins(setting: str) -> frozenset[str]:
    """WEB_ALLOWED_ORIGINS ("https://a.nl, https://www.b.nl") as a set of origins."""
    return frozenset(o.strip().rstrip("/").lower() for o in setting.split(",") if o.strip())


class WebServer:
    """The routes of the web chat around one `WebChat`."""

    def __init__(self, chat: WebChat, allowed: frozenset[str]) -> None:
        self.chat = chat
        self.allowed = allowed
        self._static = {name: (resources.files("bot.channels.web") / "static" / name).read_bytes()
                        for name in STATIC}

    def web_app(self) -> web.Application:
        limit = self.chat.app.settings.max_attachment_bytes
        application = web.Application(client_max_size=64 * 1024,
                                      middlewares=[self._headers])
        application.router.add_get("/chat", self._page)
        application.router.add_get("/chat/{slug}", self._page)
        application.router.add_get("/widget.js", self._file)
        application.router.add_get("/static/{name}", self._file)
        application.router.add_get("/ui/{lang}.json", self._ui)
        application.router.add_get("/ws", self._socket)
        # A file frame: the limit in base64, and its JSON; any other frame is checked by parse.
        self._max_ws = max((limit // 3 + 2) * 4 + 4096, 4 * protocol.MAX_FRAME)
        application.on_shutdown.append(self._shutdown)
        return application

    async def _shutdown(self, _application: web.Application) -> None:
        await self.chat.close_all()

    @web.middleware
    async def _headers(self, request: web.Request,
                       handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                       ) -> web.StreamResponse:
        response = await handler(request)
        if not response.prepared:
            response.headers.update(COMMON_HEADERS)
            response.headers.setdefault("Content-Security-Policy",
                                        "default-src 'none'; frame-ancestors 'none'")
        return response

    async def _page(self, request: web.Request) -> web.Response:
        slug = request.match_info.get("slug")
        if slug is not None and not _SLUG.fullmatch(slug):
            raise web.HTTPNotFound()
        language = (supported_language(request.query.get("lang"))
                    or _accepted(request.headers.get("Accept-Language", "")) or "nl")
        t = self.chat.app.catalogs.get(language)
        ui = ui_texts(t)
        body = PAGE.format(
            lang=language, dir="rtl" if t.rtl else "ltr", title=html.escape(ui["title"]),
            intro=html.escape(ui["anonymous"]),
            org=f' data-organisation="{html.escape(slug)}"' if slug else "")
        return web.Response(text=body, content_type="text/html", headers={
            "Content-Security-Policy": page_csp(request.host), "Cache-Control": "no-store"})

    async def _file(self, request: web.Request) -> web.Response:
        name = request.match_info.get("name", "widget.js")
        if name not in STATIC:
            raise web.HTTPNotFound()
        # Public and the same for everyone: any site may load it (with an SRI hash, CORS is needed).
        return web.Response(body=self._static[name], content_type=STATIC[name], charset="utf-8",
                            headers={"Access-Control-Allow-Origin": "*",
                                     "Cross-Origin-Resource-Policy": "cross-origin",
                                     "Cache-Control": "public, max-age=300"})

    async def _ui(self, request: web.Request) -> web.Response:
        language = request.match_info["lang"]
        if language not in LANGUAGES:
            raise web.HTTPNotFound()
        t = self.chat.app.catalogs.get(language)
        texts = ui_texts(t)
        limit = self.chat.app.settings.max_attachment_bytes
        texts["file_too_big"] = texts["file_too_big"].format(size=megabytes(limit, language))
        return web.json_response({"lang": language, "dir": "rtl" if t.rtl else "ltr",
                                  "limit": limit, "texts": texts},
                                 headers={"Access-Control-Allow-Origin": "*",
                                          "Cross-Origin-Resource-Policy": "cross-origin"})

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        if not origin_allowed(request.headers.get("Origin"), request.host, self.allowed):
            log.warning("web chat: a socket from a site that is not allowed was refused")
            raise web.HTTPForbidden(text="origin not allowed")
        ws = web.WebSocketResponse(max_msg_size=self._max_ws, heartbeat=25.0,
                                   compress=False)
        await ws.prepare(request)
        await self.chat.serve(ws, request.remote or "unknown")
        return ws


def _accepted(header: str) -> str | None:
    """The first supported language of an Accept-Language header."""
    for part in header.split(",")[:10]:
        code = supported_language(part.split(";")[0].strip())
        if code:
            return code
    return None


PAGE: Final = """<!doctype html>
<html lang="{lang}" dir="{dir}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<link rel="stylesheet" href="/static/chat.css">
</head>
<body class="kw-page">
<main class="kw-main">
<h1 class="kw-h1">{title}</h1>
<p class="kw-intro">{intro}</p>
<div id="klachtwijzer-chat"></div>
</main>
<script src="/widget.js" data-mode="page" data-language="{lang}"{org} defer></script>
</body>
</html>
"""


async def run_web(app: ChannelHost, stop: asyncio.Event) -> None:
    """Serve the web chat on WEB_LISTEN_HOST:PORT until `stop` is set."""
    settings = app.settings
    chat = WebChat(app)
    server = WebServer(chat, allowed_origins(settings.web_allowed_origins))
    app.channels.register(chat)
    desk = open_desk(app, app.service, CHANNEL)  # web clients may chat with a confidant
    app.service.owed_channels.add(CHANNEL)
    expiry = asyncio.create_task(chat.expiry_loop(stop))
    runner = web.AppRunner(server.web_app(), access_log=None)  # no addresses in the logs
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.web_listen_host, settings.web_listen_port)
        try:
            await site.start()
        except OSError as exc:  # on by default, so a taken port must not stop the other channels
            log.error("web chat: cannot listen on %s:%s (%s); set WEB_LISTEN_HOST or "
                      "WEB_LISTEN_PORT", settings.web_listen_host, settings.web_listen_port,
                      exc.strerror or type(exc).__name__)
        else:
            log.info("web chat: open http://%s:%s/chat in a browser", settings.web_listen_host,
                     settings.web_listen_port)
        await stop.wait()
    finally:
        async with asyncio.timeout(DRAIN_SECONDS):
            await runner.cleanup()
        expiry.cancel()
        await asyncio.gather(expiry, return_exceptions=True)
        await chat.marker.flush()
        app.service.owed_channels.discard(CHANNEL)
        leave_desk(app.service, desk, CHANNEL)


__all__ = ["PAGE", "WebServer", "allowed_origins", "origin_allowed", "page_csp", "protocol",
           "run_web"]
