"""Fixtures for the staff desk: the real desk on a loopback port over the real app, accounts made
through the real enrolment, and an HTTP client that keeps cookies and the forms' CSRF token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pyotp
import pytest
from aiohttp.test_utils import TestServer

from bot.desk import DeskConfig, build_desk, invite_account
from bot.desk.accounts import enrol
from bot.desk.security import Throttle, new_totp_secret
from bot.desk.web import DESK
from bot.root.app import App
from tests.conftest import Clock

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Person:
    email: str
    role: str
    organisation: str
    secret: str
    codes: list[str] = field(default_factory=list)

    def code(self, clock: Clock) -> str:
        return pyotp.TOTP(self.secret).at(clock.now)


@dataclass
class Desk:
    server: TestServer
    config: DeskConfig
    app: App
    clock: Clock

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def person(self, email: str, role: str, organisation: str = "default") -> Person:
        """An enrolled account, made through the real invitation and enrolment."""
        link = await invite_account(self.app, self.config, email, role, organisation)
        token = link.rsplit("/", 1)[1]
        secret = new_totp_secret()
        _account, codes = await enrol(self.app, token, PASSWORD, secret,
                                      pyotp.TOTP(secret).at(self.clock.now))
        self.clock.advance(seconds=31)  # the enrolment used this time step's code
        return Person(email, role, organisation, secret, codes)


class Browserless:
    """An HTTP client like a browser without JavaScript: cookies, and the last page's CSRF token."""

    def __init__(self, desk: Desk, session: aiohttp.ClientSession) -> None:
        self.desk = desk
        self.session = session
        self.csrf = ""

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.desk.url(path), allow_redirects=False) as response:
            text = (await response.read()).decode("utf-8", "replace")
            found = CSRF.search(text)
            if found:
                self.csrf = found.group(1)
            return response.status, response.headers.get(
                "Location", "") if 300 <= response.status < 400 else text

    async def post(self, path: str, data: dict[str, str] | None = None, *,
                   csrf: str | None = None) -> tuple[int, str]:
        form = dict(data or {})
        token = self.csrf if csrf is None else csrf
        if token:
            form["csrf"] = token
        async with self.session.post(self.desk.url(path), data=form, allow_redirects=False) as response:
            text = (await response.read()).decode("utf-8", "replace")
            found = CSRF.search(text)
            if found:
                self.csrf = found.group(1)
            return response.status, response.headers.get(
                "Location", "") if 300 <= response.status < 400 else text

    async def login(self, person: Person, *, code: str | None = None,
                    password: str = PASSWORD) -> tuple[int, str]:
        await self.get("/login")
        status = await self.post("/login", {"email": person.email, "password": password,
                                            "code": code or person.code(self.desk.clock)})
        self.desk.clock.advance(seconds=31)  # one code per time step
        return status

    def cookie(self) -> str | None:
        for cookie in self.session.cookie_jar:
            if cookie.key in ("desk_session", "__Host-desk"):
                return cookie.value
        return None


@pytest.fixture
async def desk(app: App, clock: Clock) -> AsyncIterator[Desk]:
    """The desk served on a loopback port of its own, over the real app."""
    server = TestServer(build_desk(app, DeskConfig(), Throttle()), host="127.0.0.1")
    await server.start_server()
    config = DeskConfig(listen_port=server.port or 0)
    server.app[DESK].config = config
    try:
        yield Desk(server, config, app, clock)
    finally:
        await server.close()


@pytest.fixture
async def web(desk: Desk) -> AsyncIterator[Any]:
    """Makes HTTP clients with their own cookie jars."""
    sessions: list[aiohttp.ClientSession] = []

    def make() -> Browserless:
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        sessions.append(session)
        return Browserless(desk, session)

    yield make
    for session in sessions:
        await session.close()
