"""Server-side sessions for aiohttp-session, kept in the database (table `staff_sessions`).

Why not aiohttp-session's EncryptedCookieStorage: a cookie that carries the session cannot be
ended from the server (a disabled account, a second factor reset, "log out everywhere" would leave
valid cookies behind until they expire). Here the cookie holds only a random key; the table holds
its SHA-256, the data (encrypted) and the times that decide the idle and absolute expiry.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp_session import AbstractStorage, Session

import bot.desk.security as security
from bot.desk.config import DeskConfig

if TYPE_CHECKING:
    from bot.services.ports import ServiceHost

SEEN_KEY = web.RequestKey("desk_session_seen", datetime)
TOUCH_AFTER = timedelta(seconds=60)  # how often a request refreshes the idle clock


class DatabaseStorage(AbstractStorage):
    """aiohttp-session storage: key in an HttpOnly SameSite=Strict cookie, data in the database."""

    def __init__(self, host: ServiceHost, config: DeskConfig) -> None:
        secure = config.secure_cookies
        # "__Host-" cookies must be Secure, path /, without Domain: the browser then refuses them
        # from any other host or over plain HTTP.
        super().__init__(cookie_name="__Host-desk" if secure else "desk_session", secure=secure,
                         httponly=True, samesite="Strict", path="/")
        self._host = host
        self._config = config

    def _expired(self, created: datetime, seen: datetime, now: datetime) -> bool:
        return (now - seen > self._config.idle_timeout
                or now - created > self._config.absolute_timeout)

    async def load_session(self, request: web.Request) -> Session:
        key = self.load_cookie(request)
        if not key or len(key) > 100:
            return Session(None, data=None, new=True)
        now = self._host.clock()
        async with self._host.db.unit_of_work(read_only=True) as uow:
            row = await uow.staff.session(security.token_hash(key))
        if row is None:
            return Session(None, data=None, new=True)
        if self._expired(row.created_at, row.seen_at, now):
            await self.end(key)
            return Session(None, data=None, new=True)
        request[SEEN_KEY] = row.seen_at
        session = Session(key, data={"created": int(row.created_at.timestamp()), "session": row.data},
                          new=False)
        if now - row.seen_at > TOUCH_AFTER:
            session.changed()
        return session

    async def save_session(self, request: web.Request, response: web.StreamResponse,
                           session: Session) -> None:
        key = session.identity
        if session.empty:
            if key:
                await self.end(str(key))
            self.save_cookie(response, "")
            return
        now = self._host.clock()
        data: dict[str, Any] = dict(session)
        account = data.get("account")
        new = key is None
        if new:
            key = security.new_token()
        async with self._host.db.unit_of_work() as uow:
            if new:
                await uow.staff.prune_sessions(now - self._config.idle_timeout)
            await uow.staff.save_session(security.token_hash(str(key)),
                                         account if isinstance(account, int) else None, data, now,
                                         new=new)
            await uow.commit()
        if new:
            self.save_cookie(response, str(key))

    async def end(self, key: str) -> None:
        async with self._host.db.unit_of_work() as uow:
            await uow.staff.end_session(security.token_hash(key))
            await uow.commit()
