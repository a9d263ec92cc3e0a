"""Pacing: at most ~1 message per second per chat (in order, 429 `retry_after` waited out), and
the per-chat flood limit on incoming updates."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from bot.channels.telegram.api import TelegramOptions, TelegramRetryAfter

log = logging.getLogger(__name__)
T = TypeVar("T")


class Pacer:
    """Per-chat ordered sending with a token bucket, and waiting out 429 `retry_after`."""

    def __init__(self, options: TelegramOptions,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.options = options
        self._sleep = sleep
        self._queues: dict[int, deque[tuple[Callable[[], Awaitable[Any]], asyncio.Future[Any]]]] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._buckets: dict[int, tuple[float, float]] = {}
        self.retry_waits: list[float] = []  # seconds asked by 429 answers (figures for tests)
        self.pacing_waits: list[float] = []

    async def call(self, factory: Callable[[], Awaitable[T]]) -> T:
        """One API call, repeated after each 429 (up to `retry_attempts` times)."""
        for attempt in range(self.options.retry_attempts + 1):
            try:
                return await factory()
            except TelegramRetryAfter as exc:
                if attempt == self.options.retry_attempts:
                    raise
                self.retry_waits.append(exc.seconds)
                log.warning("Telegram asked to slow down for %s s", exc.seconds)
                await self._sleep(exc.seconds * self.options.time_scale)
        raise AssertionError("unreachable")  # pragma: no cover

    def submit(self, chat_id: int, factory: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        """Queue a message for one chat; the future resolves when it was sent."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(chat_id, deque()).append((factory, future))
        if chat_id not in self._workers:
            self._workers[chat_id] = asyncio.create_task(self._work(chat_id))
        return future

    async def _token(self, chat_id: int) -> None:
        rate, burst = self.options.per_chat_rate, float(self.options.per_chat_burst)
        now = time.monotonic()
        tokens, last = self._buckets.get(chat_id, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens < 1:
            wait = (1 - tokens) / rate
            self.pacing_waits.append(wait)
            await self._sleep(wait)
            now = time.monotonic()
            tokens = min(burst, tokens + wait * rate)
        self._buckets[chat_id] = (tokens - 1, now)

    async def _work(self, chat_id: int) -> None:
        queue = self._queues[chat_id]
        try:
            while queue:
                factory, future = queue.popleft()
                await self._token(chat_id)
                try:
                    result = await self.call(factory)
                except Exception as exc:  # handed to whoever awaits the future
                    if not future.done():
                        future.set_exception(exc)
                else:
                    if not future.done():
                        future.set_result(result)
        finally:
            self._workers.pop(chat_id, None)
            if not queue:
                self._queues.pop(chat_id, None)

    async def drain(self) -> None:
        """Wait until everything queued so far was sent (or failed)."""
        while self._workers:
            await asyncio.gather(*list(self._workers.values()), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._workers.values()):
            task.cancel()
        await asyncio.gather(*list(self._workers.values()), return_exceptions=True)



class FloodLimit:
    """At most `limit` updates per chat per `window` seconds; tells the client once per window."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[int, deque[float]] = {}
        self._told: dict[int, float] = {}

    def full(self, chat_id: int) -> bool:
        """Whether the next update of this chat would be over the limit (nothing is counted)."""
        now = time.monotonic()
        seen = self._seen.get(chat_id, ())
        return sum(1 for at in seen if now - at <= self.window) >= self.limit

    def check(self, chat_id: int) -> Literal["ok", "notice", "drop"]:
        now = time.monotonic()
        seen = self._seen.setdefault(chat_id, deque())
        while seen and now - seen[0] > self.window:
            seen.popleft()
        if len(seen) < self.limit:
            seen.append(now)
            return "ok"
        if now - self._told.get(chat_id, -1e9) > self.window:
            self._told[chat_id] = now
            return "notice"
        return "drop"
