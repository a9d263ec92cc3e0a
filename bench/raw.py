"""The physical floor: raw sqlite3 transactions of the same shape as one bot message.

One transaction: BEGIN IMMEDIATE; read the conversation row; insert the inbound update id; update
the conversation with a new ~1 KB blob; every N-th time an outbox row (a ~4 KB mail); COMMIT. On one
connection, in a file in the same data dir, with the pragmas the app uses (WAL, synchronous=FULL).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

FALLBACK_PRAGMAS = (
    "PRAGMA busy_timeout = 10000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA secure_delete = ON",
)
SCHEMA = (
    "CREATE TABLE conversations (id INTEGER PRIMARY KEY, channel VARCHAR(16) NOT NULL, "
    "chat_id VARCHAR(64) NOT NULL, state VARCHAR(64) NOT NULL, language VARCHAR(8), "
    "data BLOB NOT NULL, version INTEGER NOT NULL, created_at DATETIME NOT NULL, "
    "updated_at DATETIME NOT NULL, UNIQUE (channel, chat_id))",
    "CREATE TABLE inbound_updates (channel VARCHAR(16) NOT NULL, update_id VARCHAR(128) NOT NULL, "
    "received_at DATETIME NOT NULL, PRIMARY KEY (channel, update_id))",
    "CREATE INDEX ix_inbound_updates_received_at ON inbound_updates (received_at)",
    "CREATE TABLE outbox (id INTEGER PRIMARY KEY, case_reference VARCHAR(32), "
    "recipient VARCHAR(254) NOT NULL, message_id VARCHAR(255) NOT NULL UNIQUE, raw BLOB, "
    "status VARCHAR(16) NOT NULL, next_attempt_at DATETIME NOT NULL, created_at DATETIME NOT NULL)",
    "CREATE INDEX ix_outbox_due ON outbox (status, next_attempt_at)",
)


def app_pragmas() -> tuple[str, ...]:
    """The pragmas the app's SQLite connections get (storage/db.py), or the documented ones."""
    try:
        from storage.db import SQLITE_PRAGMAS
    except ImportError:  # pragma: no cover - storage reworked
        return FALLBACK_PRAGMAS
    return tuple(str(p) for p in SQLITE_PRAGMAS)


def raw_transactions(path: Path, transactions: int, *, outbox_every: int, chats: int = 64) -> float:
    """Transactions per second of `transactions` bot-shaped transactions on a fresh file."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        for pragma in app_pragmas():
            connection.execute(pragma).fetchall()
        for statement in SCHEMA:
            connection.execute(statement)
        now = "2026-11-22 09:30:00.000000"
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO conversations (channel, chat_id, state, language, data, version, "
            "created_at, updated_at) VALUES ('telegram', ?, 'start', 'nl', ?, 1, ?, ?)",
            [(str(9_000_000 + i), os.urandom(1024), now, now) for i in range(chats)])
        connection.execute("COMMIT")
        blob = os.urandom(1024)
        mail = os.urandom(4096)
        started = time.perf_counter()
        for i in range(transactions):
            chat = str(9_000_000 + i % chats)
            connection.execute("BEGIN IMMEDIATE")
            row = connection.execute(
                "SELECT id, state, language, data, version FROM conversations "
                "WHERE channel = 'telegram' AND chat_id = ?", (chat,)).fetchone()
            connection.execute(
                "INSERT INTO inbound_updates (channel, update_id, received_at) VALUES "
                "('telegram', ?, ?)", (str(i), now))
            connection.execute(
                "UPDATE conversations SET state = ?, data = ?, version = version + 1, "
                "updated_at = ? WHERE id = ? AND version = ?",
                (f"step_{i % 13}", blob, now, row[0], row[4]))
            if i % outbox_every == outbox_every - 1:
                connection.execute(
                    "INSERT INTO outbox (case_reference, recipient, message_id, raw, status, "
                    "next_attempt_at, created_at) VALUES (?, 'klachten@example.org', ?, ?, "
                    "'pending', ?, ?)", (f"KW-2026-{i:06d}", f"<{i}@bench>", mail, now, now))
            connection.execute("COMMIT")
        seconds = time.perf_counter() - started
    finally:
        connection.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return transactions / seconds
