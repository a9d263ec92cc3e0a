"""Passwords, second factor, tokens and the login throttle: thin wrappers over argon2-cffi, pyotp
and segno, so that the rest of the desk never handles a secret in a way of its own.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# Argon2id with argon2-cffi's defaults (RFC 9106, second recommended option: 64 MiB, t=3, p=4).
_HASHER = PasswordHasher()
_DUMMY: list[str] = []  # a hash to check when the account does not exist (made at first use)


def _dummy() -> str:
    """A hash to check against when there is no account, so that the answer takes as long."""
    if not _DUMMY:
        _DUMMY.append(_HASHER.hash(secrets.token_hex(16)))
    return _DUMMY[0]

PASSWORD_MIN = 12
PASSWORD_MAX = 256
RECOVERY_CODES = 10
TOTP_ISSUER = "Klachtwijzer"


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def check_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches; an account without a password never matches (same time taken)."""
    try:
        return _HASHER.verify(stored or _dummy(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """A random secret for a link or a session cookie (256 bits)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database keeps of a random token: enough to find it, useless to an intruder."""
    return hashlib.sha256(token.encode()).hexdigest()


def address_hash(address: str) -> str:
    """The throttle's key for a network address (the address itself is not kept)."""
    return hashlib.sha256(("desk-address:" + address).encode()).hexdigest()


# --- TOTP (RFC 6238) ---------------------------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


def totp_qr_svg(uri: str, title: str) -> str:
    """The enrolment QR code as an inline SVG element (no script, no style attribute)."""
    return str(segno.make(uri, error="m").svg_inline(scale=4, title=title, border=4,
                                                     dark="#000", light="#fff"))


def totp_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time step `code` belongs to (now, or one step either side), if it was not used before."""
    code = "".join(code.split())
    if not (code.isdecimal() and len(code) == 6):
        return None
    code = "".join(str(unicodedata.decimal(c)) for c in code)  # e.g. Arabic-Indic digits
    totp = pyotp.TOTP(secret)
    for offset in (0, -1, 1):
        moment = now + timedelta(seconds=30 * offset)
        step = int(totp.timecode(moment))
        if secrets.compare_digest(totp.at(moment), code) and (last_step is None or step > last_step):
            return step
    return None


# --- recovery codes ------------------------------------------------------------------------------

_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def new_recovery_codes() -> list[str]:
    """Ten single-use codes of 12 characters (about 59 bits each), shown once."""
    return ["-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(3))
            for _ in range(RECOVERY_CODES)]


def recovery_hash(code: str) -> str:
    return token_hash("recovery:" + "".join(code.lower().split()).replace("-", ""))


def looks_like_recovery_code(code: str) -> bool:
    return len("".join(code.split()).replace("-", "")) == 12


# --- the login throttle ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Throttle:
    """Backoff after `free` failed logins of an account (1 s doubling to `max_wait`), a lockout
    after `lock_after` that an administrator lifts; per address at most `per_address` failures
    in `window`."""

    free: int = 3
    max_wait: timedelta = timedelta(minutes=15)
    lock_after: int = 10
    per_address: int = 30
    window: timedelta = timedelta(minutes=15)

    def wait_after(self, failures: int) -> timedelta | None:
        """How long an account waits after its `failures`-th failed login in a row."""
        if failures < self.free:
            return None
        return min(timedelta(seconds=2 ** (failures - self.free)), self.max_wait)
