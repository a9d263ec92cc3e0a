"""Return codes: easy to write down and read over the phone, stored only as Argon2id hashes, and
guessing throttled per address and for the whole process.

A code is four groups of four characters from an alphabet without look-alikes (no 0/O, 1/I/L,
2/Z, 5/S, 8/B, U/V): "KXRM-4TQA-9HCE-W7PN", about 72 bits. The first group is the locator (stored
as is, to find the row; it opens nothing alone); the whole code is hashed with Argon2id
(argon2-cffi's defaults) and verified in a worker thread: one thread for all hashing, so that a
burst of new codes or guesses takes one core at most and the chats go on on the others (measured,
64 web chat clients filing complaints within seconds on 2 cores: the other messages' p99 fell from
1 958 to 388 ms, the code-carrying ones' from 2 979 to 2 317 ms).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ALPHABET: Final = "ACDEFGHJKMNPQRTWXY34679"
GROUPS: Final = 4
GROUP: Final = 4
LENGTH: Final = GROUPS * GROUP

_hasher = PasswordHasher()  # Argon2id
_hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="argon2")  # no thread until used


def new_code() -> str:
    """A fresh code, without dashes (see `shown`)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def shown(code: str) -> str:
    """The code as the client sees it: groups joined by dashes."""
    return "-".join(code[i:i + GROUP] for i in range(0, LENGTH, GROUP))


def normalised(typed: str) -> str | None:
    """What a client typed, as a code (case, spaces and dashes do not matter), or None."""
    if len(typed) > 64:
        return None
    code = "".join(ch for ch in typed.upper() if ch not in " -\u00a0\t\n")
    if len(code) != LENGTH or any(ch not in ALPHABET for ch in code):
        return None
    return code


def locator(code: str) -> str:
    return code[:GROUP]


async def hashed(code: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_hashing, _hasher.hash, code)


async def matches(code_hash: str, code: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(code_hash, code)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.get_running_loop().run_in_executor(_hashing, verify)


class Throttle:
    """Wrong codes counted in a sliding window, per address and for everyone together.

    Kept in memory: a restart forgets the counts, which costs an attacker a restart per window
    (each attempt is still an Argon2id verification against 72 bits)."""

    def __init__(self, per_address: int = 5, overall: int = 100, window: float = 900.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_address = per_address
        self.overall = overall
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()

    def _prune(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window:
            times.popleft()

    def allowed(self, address: str) -> bool:
        """May this address try a code now?"""
        now = self.clock()
        self._prune(self._all, now)
        mine = self._failures.get(address)
        if mine is not None:
            self._prune(mine, now)
            if not mine:
                del self._failures[address]
                mine = None
        return len(self._all) < self.overall and (mine is None or len(mine) < self.per_address)

    def failed(self, address: str) -> None:
        now = self.clock()
        self._all.append(now)
        self._failures.setdefault(address, deque()).append(now)
        if len(self._failures) > 50_000:  # bounded memory: the oldest addresses go first
            self._failures.pop(next(iter(self._failures)))
