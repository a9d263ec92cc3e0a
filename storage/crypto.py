"""Encryption at rest for personal data.

Every column that can hold personal data (conversation drafts, case payloads, outgoing mail) is
stored as a Fernet token (AES-128-CBC + HMAC-SHA256). Key rotation uses MultiFernet: the first
key encrypts, every key decrypts.

Keys are secrets: no function here puts a key, a plaintext or a token into an exception message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["KEY_FILE_NAME", "Cipher", "DecryptionError", "generate_key", "load_key"]

KEY_FILE_NAME = "secret.key"


class DecryptionError(Exception):
    """A stored token could not be decrypted: wrong key, or the data was altered."""


def generate_key() -> str:
    """A new random Fernet key (url-safe base64 text, 44 characters)."""
    return Fernet.generate_key().decode("ascii")


def _parse_keys(text: str, source: str) -> list[str]:
    """Split comma- or newline-separated keys; validate each without echoing it."""
    keys = [part.strip() for part in text.replace("\n", ",").split(",")]
    keys = [key for key in keys if key]
    if not keys:
        raise ValueError(f"{source} contains no encryption key")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ValueError(
                f"{source}: key {position} of {len(keys)} is not a valid Fernet key "
                "(expected 32 url-safe base64-encoded bytes, 44 characters; "
                "generate one with `klachtwijzer keygen`)"
            ) from None
    return keys


class Cipher:
    """Symmetric encryption with key rotation: the first key encrypts, all keys decrypt."""

    __slots__ = ("_fernet", "_key_count")

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if isinstance(keys, str | bytes):
            raise TypeError("Cipher expects a sequence of keys, not a single key")
        if not keys:
            raise ValueError("Cipher needs at least one key")
        try:
            fernets = [Fernet(key) for key in keys]
        except (ValueError, TypeError):
            raise ValueError("malformed Fernet key (expected 32 url-safe base64 bytes)") from None
        self._fernet = MultiFernet(fernets)
        self._key_count = len(fernets)

    @classmethod
    def from_string(cls, text: str) -> Cipher:
        """Build from one key or several comma-separated keys (newest first)."""
        return cls(_parse_keys(text, "encryption key"))

    def __repr__(self) -> str:
        return f"Cipher(<{self._key_count} key(s)>)"

    def encrypt(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            raise DecryptionError(
                "stored data could not be decrypted: wrong encryption key or altered data"
            ) from None

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt a token under the first (current) key."""
        try:
            return self._fernet.rotate(token)
        except InvalidToken:
            raise DecryptionError(
                "stored data could not be decrypted: wrong encryption key or altered data"
            ) from None

    def encrypt_json(self, obj: Any) -> bytes:
        """JSON with ASCII escapes, so NUL, lone surrogates and bidi marks survive exactly."""
        text = json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
        return self.encrypt(text.encode("ascii"))

    def decrypt_json(self, token: bytes) -> Any:
        return json.loads(self.decrypt(token).decode("ascii"))


def _write_new_key_file(path: Path) -> str | None:
    """Create `path` with mode 0600 holding a new key; None if someone else created it first."""
    key = generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    try:
        os.fchmod(fd, 0o600)  # the umask can only narrow it, but be explicit
        os.write(fd, (key + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def load_key(data_dir: Path, env_key: str | None) -> tuple[Cipher, bool]:
    """The cipher to use, and whether a new development key file was just generated.

    `env_key` (one Fernet key, or several comma-separated for rotation, newest first) wins.
    Otherwise `data_dir/secret.key` is read, or created with mode 0600 if it does not exist.
    """
    if env_key is not None and env_key.strip():
        return Cipher(_parse_keys(env_key, "the encryption key setting")), False

    path = Path(data_dir) / KEY_FILE_NAME
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        created = _write_new_key_file(path)
        if created is not None:
            return Cipher([created]), True
    text = path.read_text(encoding="ascii", errors="replace")
    return Cipher(_parse_keys(text, f"key file {path}")), False
