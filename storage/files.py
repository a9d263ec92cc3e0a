"""Files clients send (photos, documents, voice notes): encrypted, under random names, in one folder.

The client's own file name is never used on disk: a name such as `../../x` or `x\u202efdp.exe` cannot
choose where a file lands. Files are written with mode 0600 through a temporary file and a rename.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from pathlib import Path

from storage.crypto import Cipher

__all__ = ["EncryptedFileStore", "InvalidFileRef"]

_REF = re.compile(r"^[A-Za-z0-9_-]{32}$")


class InvalidFileRef(ValueError):
    """A file reference that this store did not make (and so cannot point anywhere)."""


class EncryptedFileStore:
    """`save` returns a random reference; `read` and `delete` take only such references."""

    def __init__(self, root: Path, cipher: Cipher) -> None:
        self.root = root
        self._cipher = cipher

    def _path(self, ref: str) -> Path:
        if not _REF.fullmatch(ref):
            raise InvalidFileRef("not a file reference of this store")
        return self.root / ref

    def _write(self, data: bytes) -> str:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        ref = secrets.token_urlsafe(24)
        path = self._path(ref)
        tmp = path.with_name(f".{ref}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(self._cipher.encrypt(data))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return ref

    async def save(self, data: bytes) -> str:
        return await asyncio.to_thread(self._write, data)

    async def read(self, ref: str) -> bytes:
        path = self._path(ref)
        token = await asyncio.to_thread(path.read_bytes)
        return self._cipher.decrypt(token)

    async def delete(self, ref: str) -> None:
        path = self._path(ref)
        await asyncio.to_thread(path.unlink, True)

    def exists(self, ref: str) -> bool:
        return self._path(ref).exists()
