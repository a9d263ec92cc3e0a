"""Klachtwijzer storage: encrypted-at-rest persistence on SQLAlchemy Core (async).

Open with ``db = await Database.open(url, cipher)`` (the cipher from ``load_key``), then work in
transactions: ``async with db.unit_of_work() as uow: ...; await uow.commit()``.
"""

from storage.crypto import Cipher, DecryptionError, generate_key, load_key
from storage.db import Database, UnitOfWork, create_engine, migrate
from storage.records import (
    AuditEntry,
    CaseRecord,
    ConcurrentUpdateError,
    NotFoundError,
    OutboxItem,
    StorageError,
    StoredConversation,
    utc_now,
)

__all__ = [
    "AuditEntry",
    "CaseRecord",
    "Cipher",
    "ConcurrentUpdateError",
    "Database",
    "DecryptionError",
    "NotFoundError",
    "OutboxItem",
    "StorageError",
    "StoredConversation",
    "UnitOfWork",
    "create_engine",
    "generate_key",
    "load_key",
    "migrate",
    "utc_now",
]
